//! Outbound webhooks.
//!
//! - The outbox is the audit trail: every change writes its audit item in
//!   its own transaction, so an event exists if and only if its change
//!   committed. Usage counters that reach their limit are seen in the same
//!   stream (their old and new images).
//! - [`outbox`]: the table's DynamoDB stream → one SQS message per event and
//!   subscribed endpoint (the `webhook-dispatch` function, stream source).
//! - [`dispatch`]: SQS → a signed HTTPS POST, logged, retried with
//!   exponential backoff through the message's visibility timeout, then the
//!   DLQ (the same function, SQS source).
//! - [`send`]: the HTTP client that refuses non-public addresses at
//!   connection time (DNS can change after the URL was accepted).
//! - This module: the Management API's use cases.

pub mod dispatch;
#[cfg(feature = "dev")]
pub mod local;
pub mod outbox;
pub mod send;

use crate::crypto::{hmac_sha256, Signer};
use crate::domain::webhook::{
    check_url, signature_header, Delivery, EndpointPatch, EventFilter, EventType, OutboundEvent,
    UrlPolicy, WebhookEndpoint,
};
use crate::domain::{Actor, AuditCode};
use crate::error::Error;
use crate::ids::{DeliveryId, TenantId, WebhookEndpointId};
use crate::store::{Page, TenantStore};
use send::Sender;
use serde_json::json;
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

/// `POST /v1/manage/webhook-endpoints`.
pub struct NewEndpoint {
    pub url: String,
    pub events: EventFilter,
    pub description: Option<String>,
}

fn not_found() -> Error {
    Error::not_found(
        "WEBHOOK_ENDPOINT_NOT_FOUND",
        "no webhook endpoint with that id",
    )
}

fn check_description(d: &Option<String>) -> Result<(), Error> {
    if let Some(d) = d {
        crate::domain::bounded("description", d, 500)?;
    }
    Ok(())
}

/// Create an endpoint; returns it with its secret (shown once).
pub async fn create_endpoint(
    ts: &TenantStore,
    wh: &Webhooks,
    req: NewEndpoint,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<(WebhookEndpoint, String), Error> {
    check_url(&req.url, wh.policy)?;
    check_description(&req.description)?;
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    let ep = WebhookEndpoint {
        id: WebhookEndpointId::generate(),
        tenant_id: ts.tenant_id().clone(),
        url: req.url,
        events: req.events,
        description: req.description,
        enabled: true,
        disabled_reason: None,
        salt: hex::encode(salt),
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    let audit = actor
        .audit(
            ts.tenant_id(),
            AuditCode::WebhookEndpointCreated,
            ep.id.as_str(),
            now,
        )
        .with_data(json!({ "url": ep.url, "events": ep.events }));
    ts.create_webhook_endpoint(&ep, &audit).await?;
    let secret = wh.secret(&ep);
    Ok((ep, secret))
}

/// Every endpoint of the tenant.
pub async fn list_endpoints(ts: &TenantStore) -> Result<Vec<WebhookEndpoint>, Error> {
    ts.list_webhook_endpoints().await
}

pub async fn get_endpoint(
    ts: &TenantStore,
    id: &WebhookEndpointId,
) -> Result<WebhookEndpoint, Error> {
    ts.get_webhook_endpoint(id).await?.ok_or_else(not_found)
}

pub async fn patch_endpoint(
    ts: &TenantStore,
    wh: &Webhooks,
    id: &WebhookEndpointId,
    patch: EndpointPatch,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<WebhookEndpoint, Error> {
    if let Some(u) = &patch.url {
        check_url(u, wh.policy)?;
    }
    if let Some(d) = &patch.description {
        check_description(d)?;
    }
    let audit = actor
        .audit(
            ts.tenant_id(),
            AuditCode::WebhookEndpointUpdated,
            id.as_str(),
            now,
        )
        .with_data(json!({
            "url": patch.url,
            "events": patch.events,
            "enabled": patch.enabled,
        }));
    ts.patch_webhook_endpoint(id, &patch, now, &audit)
        .await?
        .ok_or_else(not_found)
}

pub async fn delete_endpoint(
    ts: &TenantStore,
    id: &WebhookEndpointId,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let audit = actor.audit(
        ts.tenant_id(),
        AuditCode::WebhookEndpointDeleted,
        id.as_str(),
        now,
    );
    if ts.delete_webhook_endpoint(id, &audit).await? {
        Ok(())
    } else {
        Err(not_found())
    }
}

pub async fn deliveries(
    ts: &TenantStore,
    signer: &Signer,
    id: &WebhookEndpointId,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<Delivery>, Error> {
    get_endpoint(ts, id).await?;
    ts.list_deliveries(signer, id, limit, cursor).await
}

/// Send `webhook.test` to the endpoint now (even if disabled: it is how a
/// vendor checks a fix before enabling it again).
pub async fn send_test(
    ts: &TenantStore,
    wh: &Webhooks,
    id: &WebhookEndpointId,
    now: OffsetDateTime,
) -> Result<Delivery, Error> {
    let ep = get_endpoint(ts, id).await?;
    let event = OutboundEvent {
        id: format!("evt_{}", ulid::Ulid::new().to_string().to_lowercase()),
        kind: EventType::WebhookTest,
        created_at: now,
        tenant_id: ts.tenant_id().clone(),
        data: json!({ "endpoint_id": ep.id, "message": "a test event" }),
    };
    let payload = serde_json::to_string(&event).map_err(Error::internal)?;
    let a = Attempt {
        event_id: &event.id,
        event_type: event.kind,
        payload: &payload,
        number: 1,
        manual: true,
    };
    wh.attempt(ts, &ep, a, now).await
}

/// Resend a logged delivery's exact payload now (same event id).
pub async fn retry_delivery(
    ts: &TenantStore,
    wh: &Webhooks,
    endpoint: &WebhookEndpointId,
    delivery: &DeliveryId,
    now: OffsetDateTime,
) -> Result<Delivery, Error> {
    let ep = get_endpoint(ts, endpoint).await?;
    let d = ts
        .get_delivery(endpoint, delivery)
        .await?
        .ok_or_else(|| Error::not_found("DELIVERY_NOT_FOUND", "no delivery with that id"))?;
    let a = Attempt {
        event_id: &d.event_id,
        event_type: d.event_type,
        payload: &d.payload,
        number: d.attempt + 1,
        manual: true,
    };
    wh.attempt(ts, &ep, a, now).await
}

/// The tenant a stream or queue record names, checked.
pub(crate) fn tenant(s: &str) -> Result<TenantId, Error> {
    TenantId::parse(s).map_err(|e| Error::internal(format!("bad tenant in record: {e}")))
}
