//! The `webhook-deliver` function: the webhook delivery queue's consumer.
//! Each message is signed and POSTed (10 s), logged, and on failure hidden
//! for its backoff and reported as a partial batch failure; a message that
//! keeps failing reaches the dead-letter queue.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::app::App;
use shared::functions::Function;

pub const FUNCTION: Function = Function::WebhookDeliver;

pub async fn handler(app: &App, event: SqsEvent) -> SqsBatchResponse {
    shared::webhooks::dispatch::handle_batch(app, event).await
}
