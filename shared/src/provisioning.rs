//! The provisioning queue's consumer: the SQS batch handler the
//! `provision-worker` Lambda runs (partial batch failures), and a local
//! consumer that stands in for Lambda's event source mapping (behind the
//! `dev` feature). Messages, sending and polling are the SQS adapter's
//! ([`crate::sqs`]).

use crate::app::App;
use crate::sqs::ProvisionMessage;
use crate::usecases::tenants::{provision, StageHook};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
#[cfg(feature = "dev")]
use std::sync::Arc;
#[cfg(feature = "dev")]
use std::time::Duration;
use tracing::Instrument;

/// Handle one SQS batch: every message is one tenant to provision (or to
/// resume). Failed messages are reported back so SQS retries only them; a
/// message that keeps failing moves to the DLQ after the queue's
/// `maxReceiveCount`, with the tenant showing `failed`, the stage and the error.
pub async fn handle_batch(app: &App, event: SqsEvent, hook: &dyn StageHook) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for msg in event.records {
        let id = msg.message_id.clone().unwrap_or_default();
        let receives = msg
            .attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str);
        // The span is entered by `instrument` for each poll of the future,
        // never held as a guard across an `.await`.
        let span = tracing::info_span!(
            "sqs_message",
            message_id = %id,
            receive_count = receives.unwrap_or("?")
        );
        let ok = handle_message(app, msg.body.as_deref(), hook)
            .instrument(span)
            .await;
        if !ok {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            failures.push(f);
        }
    }
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failures;
    resp
}

/// One message; `false` when it failed (SQS delivers it again).
async fn handle_message(app: &App, body: Option<&str>, hook: &dyn StageHook) -> bool {
    let m: ProvisionMessage = match serde_json::from_str(body.unwrap_or("")) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "poison message: not a provisioning request");
            return false;
        }
    };
    match provision(&app.store, &m.tenant_id, hook, app.clock.as_ref()).await {
        Ok(status) => {
            let status = status.as_str();
            tracing::info!(tenant = %m.tenant_id, status, "provisioning finished");
            true
        }
        Err(e) => {
            tracing::warn!(tenant = %m.tenant_id, error = %e, "provisioning attempt failed");
            false
        }
    }
}

/// A local stand-in for Lambda's SQS event source mapping: long-poll, hand
/// each batch to [`handle_batch`], delete what succeeded, and leave failures
/// to come back after `retry_after` (the queue's redrive policy moves them to
/// the DLQ after its `maxReceiveCount`).
#[cfg(feature = "dev")]
pub struct LocalConsumer {
    pub app: Arc<App>,
    pub queue_url: String,
    pub wait: Duration,
    pub retry_after: Duration,
    pub hook: Arc<dyn StageHook>,
}

#[cfg(feature = "dev")]
impl LocalConsumer {
    pub async fn run(self, stop: tokio::sync::watch::Receiver<bool>) {
        let sqs = self.app.clients.sqs.clone();
        let visibility = self.retry_after.as_secs().max(1) as i32;
        let (app, hook) = (self.app.clone(), self.hook.clone());
        let handler = move |event| {
            let (app, hook) = (app.clone(), hook.clone());
            async move { handle_batch(&app, event, hook.as_ref()).await }
        };
        crate::sqs::poll_queue(sqs, self.queue_url, self.wait, visibility, stop, handler).await;
    }
}
