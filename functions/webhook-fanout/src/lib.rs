//! The `webhook-fanout` function: batches of the table's DynamoDB stream
//! (filtered by the event source mapping to audit items and usage
//! counters). Each committed change that is a webhook event becomes one SQS
//! message per enabled, subscribed endpoint, for `webhook-deliver`.

use aws_lambda_events::event::dynamodb::Event;
use shared::app::App;
use shared::functions::Function;

pub const FUNCTION: Function = Function::WebhookFanout;

/// A failure fails the batch as a whole: the stream hands it over again
/// (bisected), with the same event ids.
pub async fn handler(app: &App, event: Event) -> Result<(), shared::Error> {
    shared::webhooks::dispatch::handle_stream(app, event).await
}
