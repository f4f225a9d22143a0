//! Cold start shared by every function's `main`.

use crate::app::App;
use crate::functions::Function;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Install logging, read config, build clients and read secrets, once. A
/// missing setting or secret stops the function here with a message naming it.
pub async fn cold_start(function: Function) -> Result<App, BoxError> {
    crate::telemetry::init();
    App::from_env(&[function]).await.map_err(|e| {
        tracing::error!(function = function.name(), error = %e, "cold start failed");
        e
    })
}
