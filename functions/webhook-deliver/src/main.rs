use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use shared::lambda::{cold_start, BoxError};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let app = cold_start(webhook_deliver::FUNCTION).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, std::convert::Infallible>(webhook_deliver::handler(&app, event.payload).await)
    }))
    .await
}
