//! The provisioning queue: enqueueing, the SQS batch handler the
//! `provision-worker` Lambda runs (partial batch failures), and a local
//! long-polling consumer that stands in for Lambda's event source mapping
//! (with `redrive`, behind the `dev` feature: no Lambda compiles it).

use crate::app::App;
use crate::error::Error;
use crate::ids::TenantId;
use crate::store::sdk_error;
use crate::usecases::tenants::{provision, StageHook};
#[cfg(feature = "dev")]
use aws_lambda_events::event::sqs::SqsMessage;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::{Deserialize, Serialize};
#[cfg(feature = "dev")]
use std::sync::Arc;
#[cfg(feature = "dev")]
use std::time::Duration;
use tracing::Instrument;

/// The message body: which tenant to provision.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionMessage {
    pub tenant_id: TenantId,
}

/// The provisioning queue a function sends to.
#[derive(Clone)]
pub struct ProvisioningQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl ProvisioningQueue {
    pub fn new(sqs: aws_sdk_sqs::Client, url: String) -> Self {
        Self { sqs, url }
    }

    /// Ask for `tenant` to be provisioned (or its pipeline resumed).
    pub async fn enqueue(&self, tenant: &TenantId) -> Result<(), Error> {
        enqueue(&self.sqs, &self.url, tenant).await
    }
}

pub async fn enqueue(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    tenant: &TenantId,
) -> Result<(), Error> {
    let body = serde_json::to_string(&ProvisionMessage {
        tenant_id: tenant.clone(),
    })
    .map_err(Error::internal)?;
    sqs.send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| sdk_error("SendMessage", e))?;
    Ok(())
}

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
        poll_queue(sqs, self.queue_url, self.wait, visibility, stop, handler).await;
    }
}

/// Long-poll `queue_url`, hand each batch to `handler`, delete what it did
/// not report as failed; failures come back after their visibility timeout
/// (`visibility` seconds, unless the handler set another), and the queue's
/// redrive policy moves them to the DLQ after its `maxReceiveCount`.
#[cfg(feature = "dev")]
pub async fn poll_queue<F, Fut>(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    wait: Duration,
    visibility: i32,
    mut stop: tokio::sync::watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(SqsEvent) -> Fut,
    Fut: std::future::Future<Output = SqsBatchResponse>,
{
    loop {
        if *stop.borrow() {
            return;
        }
        let recv = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait.as_secs() as i32)
            .visibility_timeout(visibility)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send();
        let out = tokio::select! {
            r = recv => r,
            _ = stop.changed() => return,
        };
        let msgs = match out {
            Ok(o) => o.messages.unwrap_or_default(),
            Err(e) => {
                let error = sdk_error("ReceiveMessage", e);
                tracing::warn!(%error, queue = %queue_url, "polling a queue failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if msgs.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        let mut handles = std::collections::HashMap::new();
        for m in msgs {
            let mut s = SqsMessage::default();
            s.message_id = m.message_id.clone();
            s.receipt_handle = m.receipt_handle.clone();
            s.body = m.body.clone();
            s.attributes = m
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect();
            s.event_source = Some("aws:sqs".into());
            if let (Some(id), Some(h)) = (m.message_id, m.receipt_handle) {
                handles.insert(id, h);
            }
            event.records.push(s);
        }
        let resp = handler(event).await;
        let failed: std::collections::HashSet<String> = resp
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        for (id, handle) in handles {
            if failed.contains(&id) {
                continue;
            }
            if let Err(e) = sqs
                .delete_message()
                .queue_url(&queue_url)
                .receipt_handle(handle)
                .send()
                .await
            {
                let error = sdk_error("DeleteMessage", e);
                tracing::warn!(%error, "could not delete a processed message");
            }
        }
    }
}

/// Move every message from the DLQ back to the queue (an operator's
/// re-drive after fixing the cause). Returns how many moved.
#[cfg(feature = "dev")]
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    queue_url: &str,
) -> Result<usize, Error> {
    let mut moved = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| sdk_error("ReceiveMessage", e))?;
        let msgs = out.messages.unwrap_or_default();
        if msgs.is_empty() {
            return Ok(moved);
        }
        for m in msgs {
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(m.body.unwrap_or_default())
                .send()
                .await
                .map_err(|e| sdk_error("SendMessage", e))?;
            if let Some(h) = m.receipt_handle {
                sqs.delete_message()
                    .queue_url(dlq_url)
                    .receipt_handle(h)
                    .send()
                    .await
                    .map_err(|e| sdk_error("DeleteMessage", e))?;
            }
            moved += 1;
        }
    }
}
