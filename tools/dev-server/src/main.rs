//! `dev-server`: every function's handler on loopback at the contract's
//! paths. Reads the same settings the functions read (see `make dev`).

use shared::app::App;
use shared::functions::Function;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    shared::telemetry::init();
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|_| format!("PORT must be a port number, not {p:?}"))?,
        Err(_) => 3000,
    };
    let app = Arc::new(App::from_env(&Function::ALL).await?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(addr = %listener.local_addr()?, "dev server listening");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    dev_server::serve(listener, app, shutdown).await?;
    Ok(())
}
