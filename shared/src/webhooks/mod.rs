//! Outbound webhooks.
//!
//! - The outbox is the audit trail: every change writes its audit item in
//!   its own transaction, so an event exists if and only if its change
//!   committed. Usage counters that reach their limit are seen in the same
//!   stream (their old and new images).
//! - [`outbox`]: the table's DynamoDB stream → one SQS message per event and
//!   subscribed endpoint (the `webhook-fanout` function, stream source).
//! - [`dispatch`]: SQS → a signed HTTPS POST, logged, retried with
//!   exponential backoff through the message's visibility timeout, then the
//!   DLQ (the same function, SQS source).
//! - [`send`]: the HTTP client that refuses non-public addresses at
//!   connection time (DNS can change after the URL was accepted).
//! - This module: the endpoint secret and one signed, logged attempt. The
//!   Management API's endpoint use cases are in [`crate::usecases::webhooks`].

pub mod dispatch;
#[cfg(feature = "dev")]
pub mod local;
pub mod meter;
pub mod outbox;
pub mod send;

use crate::crypto::hmac_sha256;
use crate::domain::webhook::{signature_header, Delivery, EventType, UrlPolicy, WebhookEndpoint};
use crate::error::Error;
use crate::ids::{DeliveryId, TenantId};
use crate::store::TenantStore;
use send::Sender;
use time::OffsetDateTime;

/// What delivering needs: the master secret endpoint secrets derive from,
/// the address policy and the HTTP client. Built once at cold start.
pub struct Webhooks {
    master: Vec<u8>,
    pub policy: UrlPolicy,
    pub sender: Sender,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    pub fn new(master: impl Into<Vec<u8>>, policy: UrlPolicy) -> Result<Self, Error> {
        Ok(Self {
            master: master.into(),
            policy,
            sender: Sender::new(policy)?,
        })
    }

    /// An endpoint's signing secret: derived, never stored.
    pub fn secret(&self, ep: &WebhookEndpoint) -> String {
        let mac = hmac_sha256(
            &self.master,
            &[
                b"licensing/webhook-endpoint-secret/v1\0",
                ep.tenant_id.as_str().as_bytes(),
                b"\0",
                ep.id.as_str().as_bytes(),
                b"\0",
                ep.salt.as_bytes(),
            ],
        );
        format!("whsec_{}", hex::encode(mac))
    }

    /// Sign and POST the event to `ep` now, and log the attempt.
    pub async fn attempt(
        &self,
        ts: &TenantStore,
        ep: &WebhookEndpoint,
        a: Attempt<'_>,
        now: OffsetDateTime,
    ) -> Result<Delivery, Error> {
        let payload = a.payload;
        let secret = self.secret(ep);
        let signature = signature_header(&secret, now.unix_timestamp(), payload.as_bytes());
        let out = self.sender.post(&ep.url, payload, &signature).await;
        let d = Delivery {
            id: DeliveryId::at(now),
            endpoint_id: ep.id.clone(),
            event_id: a.event_id.to_string(),
            event_type: a.event_type,
            attempt: a.number,
            manual: a.manual,
            at: now,
            status_code: out.status,
            duration_ms: out.duration_ms,
            succeeded: out.succeeded(),
            error: out.error,
            response_excerpt: out.excerpt,
            payload: payload.to_string(),
        };
        ts.put_delivery(&d).await?;
        Ok(d)
    }
}

/// One delivery of one event.
pub struct Attempt<'a> {
    pub event_id: &'a str,
    pub event_type: EventType,
    /// The exact body to sign and send.
    pub payload: &'a str,
    /// 1-based; manual resends count on from the attempt they repeat.
    pub number: u32,
    pub manual: bool,
}

/// The tenant a stream or queue record names, checked.
pub(crate) fn tenant(s: &str) -> Result<TenantId, Error> {
    TenantId::parse(s).map_err(|e| Error::internal(format!("bad tenant in record: {e}")))
}
