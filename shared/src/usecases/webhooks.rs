//! Outbound webhook endpoints, as the Management API manages them: create,
//! list, read, change, delete, their delivery logs, a test event and a
//! manual resend. Signing and sending stay in [`crate::webhooks`].

use crate::crypto::Signer;
use crate::domain::webhook::{
    check_url, Delivery, EndpointPatch, EventFilter, EventType, OutboundEvent, WebhookEndpoint,
};
use crate::domain::{Actor, AuditCode};
use crate::error::Error;
use crate::ids::{DeliveryId, WebhookEndpointId};
use crate::store::{Page, TenantStore};
use crate::webhooks::{Attempt, Webhooks};
use serde_json::json;
use time::OffsetDateTime;

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
