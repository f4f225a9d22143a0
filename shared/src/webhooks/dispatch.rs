//! The two webhook functions, each with its own typed event:
//! `webhook-fanout` takes batches of the table's stream ([`handle_stream`]),
//! `webhook-deliver` batches of the delivery queue ([`handle_batch`]: sign,
//! POST, log, back off).

use super::outbox::{self, DeliveryMessage, DeliveryQueue, MeterMessage};
use super::{Attempt, Webhooks};
use crate::app::App;
use crate::domain::meter_events::MeterOutcome;
use crate::domain::webhook::backoff_secs;
use crate::domain::{AuditCode, AuditEvent};
use crate::error::Error;
use crate::store::{sdk_error, Store};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::json;
use time::OffsetDateTime;
use tracing::Instrument;

/// Who disables a failing endpoint, in its audit event.
const ACTOR: &str = "webhooks";

/// What became of one delivery message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Delivered, or nothing left to do (endpoint gone, disabled, or no
    /// longer subscribed): delete the message.
    Done,
    /// Failed: deliver again after this many seconds.
    RetryIn(u64),
}

/// Deliver one message (attempt `attempt`, 1-based).
pub async fn deliver(
    store: &Store,
    wh: &Webhooks,
    m: &DeliveryMessage,
    attempt: u32,
    retry_base: u64,
    now: OffsetDateTime,
) -> Result<Step, Error> {
    let ts = store.tenant(&m.tenant_id);
    let Some(ep) = ts.get_webhook_endpoint(&m.endpoint_id).await? else {
        tracing::info!(endpoint = %m.endpoint_id, "endpoint deleted; event dropped");
        return Ok(Step::Done);
    };
    if !ep.enabled || !ep.events.matches(m.event_type) {
        tracing::info!(endpoint = %ep.id, "endpoint disabled or unsubscribed; event dropped");
        return Ok(Step::Done);
    }
    let a = Attempt {
        event_id: &m.event_id,
        event_type: m.event_type,
        payload: &m.payload,
        number: attempt,
        manual: false,
    };
    let d = wh.attempt(&ts, &ep, a, now).await?;
    tracing::info!(
        endpoint = %ep.id,
        event = %m.event_id,
        attempt,
        status = d.status_code,
        succeeded = d.succeeded,
        "webhook delivery"
    );
    if d.succeeded {
        ts.webhook_recovered(&ep).await?;
        return Ok(Step::Done);
    }
    let audit = AuditEvent::new(
        ts.tenant_id(),
        AuditCode::WebhookEndpointDisabled,
        ACTOR,
        ep.id.as_str(),
        now,
        &format!("req_{}", d.id),
    )
    .with_data(json!({
        "reason": "every delivery failed for 3 days",
        "failing_since": ep.failing_since.map(crate::clock::rfc3339),
    }));
    if ts.webhook_failed(&ep, now, &audit).await? {
        tracing::warn!(endpoint = %ep.id, "endpoint disabled after 3 days of failures");
        return Ok(Step::Done);
    }
    Ok(Step::RetryIn(backoff_secs(retry_base, attempt)))
}

/// `webhook-fanout`: one batch of the table's stream (filtered to audit
/// items and usage counters by the event source mapping). A failure fails
/// the batch as a whole: the stream hands it over again, with the same
/// event ids.
pub async fn handle_stream(
    app: &App,
    event: aws_lambda_events::event::dynamodb::Event,
) -> Result<(), Error> {
    let changes = outbox::from_lambda(event);
    let queued = outbox::handle_changes(&app.store, app.webhook_queue()?, &changes).await?;
    tracing::info!(changes = changes.len(), queued, "stream batch fanned out");
    Ok(())
}

/// One SQS batch, its messages concurrently (each waits at most 10 s).
/// Failures are reported back (partial batch response) after their
/// visibility timeout was set to the backoff; a message that keeps failing
/// reaches the DLQ after the queue's maxReceiveCount.
pub async fn handle_batch(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let results = futures::future::join_all(event.records.into_iter().map(|msg| {
        let id = msg.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("webhook_message", message_id = %id);
        async move { (id, one(app, msg).await) }.instrument(span)
    }))
    .await;
    let mut resp = SqsBatchResponse::default();
    for (id, ok) in results {
        if !ok {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            resp.batch_item_failures.push(f);
        }
    }
    resp
}

async fn one(app: &App, msg: SqsMessage) -> bool {
    let attempt = msg
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let body = msg.body.as_deref().unwrap_or("");
    if let Ok(m) = serde_json::from_str::<MeterMessage>(body) {
        return meter_one(app, &msg, &m, attempt).await;
    }
    let m: DeliveryMessage = match serde_json::from_str(body) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "poison message: not a webhook delivery");
            return false;
        }
    };
    let (Ok(wh), Ok(queue)) = (app.webhooks(), app.webhook_queue()) else {
        tracing::error!("webhook-deliver is not configured for deliveries");
        return false;
    };
    let base = app.config.webhook_retry_base_secs.unwrap_or(60);
    match deliver(&app.store, wh, &m, attempt, base, app.now()).await {
        Ok(Step::Done) => true,
        Ok(Step::RetryIn(secs)) => {
            if let Some(handle) = msg.receipt_handle.as_deref() {
                delay(queue, handle, secs).await;
            }
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "delivery could not be completed; SQS retries it");
            false
        }
    }
}

/// One billing meter event: sent, or retried with backoff (5xx, 429, no
/// answer), or logged and dropped (any other 4xx: a retry would not help).
async fn meter_one(app: &App, msg: &SqsMessage, m: &MeterMessage, attempt: u32) -> bool {
    let Ok(queue) = app.webhook_queue() else {
        tracing::error!("webhook-deliver is not configured for deliveries");
        return false;
    };
    let base = app
        .config
        .stripe_api_base
        .as_deref()
        .unwrap_or(crate::config::DEFAULT_STRIPE_API_BASE);
    let step = match super::meter::send(&app.webhook_secrets, base, m).await {
        Ok(MeterOutcome::Sent | MeterOutcome::Rejected) => return true,
        Ok(MeterOutcome::Retry) => attempt,
        Err(e) => {
            tracing::warn!(error = %e, usage_event = %m.usage_event_id, "meter event not sent");
            attempt
        }
    };
    let base = app.config.webhook_retry_base_secs.unwrap_or(60);
    if let Some(handle) = msg.receipt_handle.as_deref() {
        delay(queue, handle, backoff_secs(base, step)).await;
    }
    false
}

/// Hide the message for `secs` (its backoff) before SQS hands it out again.
async fn delay(queue: &DeliveryQueue, receipt_handle: &str, secs: u64) {
    let res = queue
        .sqs()
        .change_message_visibility()
        .queue_url(queue.url())
        .receipt_handle(receipt_handle)
        .visibility_timeout(secs.min(i32::MAX as u64) as i32)
        .send()
        .await;
    if let Err(e) = res {
        let error = sdk_error("ChangeMessageVisibility", e);
        tracing::warn!(%error, "could not set the retry delay; the queue's default applies");
    }
}
