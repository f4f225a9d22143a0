//! The SQS adapter: the provisioning queue's messages and sending, a
//! generic long-polling consumer that stands in locally for Lambda's SQS
//! event source mappings, and the DLQ re-drive (both behind the `dev`
//! feature: no Lambda compiles them). It knows SQS and message shapes, and
//! no use case: `provisioning` (the worker) and `webhooks` build on it.

use crate::error::Error;
use crate::ids::TenantId;
use crate::store::sdk_error;
#[cfg(feature = "dev")]
use aws_lambda_events::event::sqs::SqsMessage;
#[cfg(feature = "dev")]
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::{Deserialize, Serialize};
#[cfg(feature = "dev")]
use std::time::Duration;

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
