use lambda_runtime::{service_fn, LambdaEvent};
use shared::lambda::{cold_start, BoxError};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let app = cold_start(webhook_dispatch::FUNCTION).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async {
        webhook_dispatch::handler(&app, event.payload)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "webhook-dispatch batch failed");
                BoxError::from(e.public_message())
            })
    }))
    .await
}
