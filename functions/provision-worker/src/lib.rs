//! The `provision-worker` function: the provisioning queue's consumer. Each
//! SQS batch runs (or resumes) the pipeline of the tenants it names and
//! reports partial batch failures.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::app::App;
use shared::functions::Function;
use shared::usecases::tenants::NoHook;

pub const FUNCTION: Function = Function::ProvisionWorker;

pub async fn handler(app: &App, event: SqsEvent) -> SqsBatchResponse {
    shared::provisioning::handle_batch(app, event, &NoHook).await
}
