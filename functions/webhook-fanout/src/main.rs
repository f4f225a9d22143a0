use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{service_fn, LambdaEvent};
use shared::lambda::{cold_start, BoxError};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let app = cold_start(webhook_fanout::FUNCTION).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| async {
        webhook_fanout::handler(&app, event.payload)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "stream batch failed; the stream hands it over again");
                BoxError::from(e.public_message())
            })
    }))
    .await
}
