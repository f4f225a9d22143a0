//! The `webhook-dispatch` function. Two event sources reach it: the
//! table's DynamoDB stream (audit items and usage counters → one SQS
//! message per event and subscribed endpoint) and the delivery queue
//! (signed POST, logged, retried with backoff, then the DLQ).

use shared::app::App;
use shared::functions::Function;

pub const FUNCTION: Function = Function::WebhookDispatch;

/// A stream batch fails as a whole (the stream hands it over again, with
/// the same event ids); an SQS batch answers its partial failures.
pub async fn handler(
    app: &App,
    event: serde_json::Value,
) -> Result<serde_json::Value, shared::Error> {
    shared::webhooks::dispatch::handle_lambda(app, event).await
}
