use lambda_runtime::{service_fn, LambdaEvent};
use shared::lambda::{cold_start, BoxError};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let app = cold_start(billing_close::FUNCTION).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let app = &app;
        async move {
            let summary = billing_close::handler(app, &event.context.request_id)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "billing close failed; the schedule's retry runs it again");
                    BoxError::from(e.public_message())
                })?;
            Ok::<_, BoxError>(serde_json::json!(summary))
        }
    }))
    .await
}
