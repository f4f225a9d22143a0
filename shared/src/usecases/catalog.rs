//! Products, policies and API keys of the management API.

use crate::app::App;
use crate::domain::*;
use crate::error::Error;
use crate::ids::{ApiKeyId, ApiKeySecret, PolicyId, ProductCode};
use crate::store::catalog::{change, Changes};
use crate::store::TenantStore;
use time::OffsetDateTime;

pub async fn create_product(
    ts: &TenantStore,
    actor: &Actor,
    code: ProductCode,
    name: String,
    now: OffsetDateTime,
) -> Result<Product, Error> {
    let p = Product {
        code,
        name,
        created_at: now,
        updated_at: now,
    };
    let audit = AuditEvent::new(
        ts.tenant_id(),
        AuditCode::ProductCreated,
        &actor.actor,
        p.code.as_str(),
        now,
        &actor.request_id,
    );
    ts.create_product(&p, &audit).await?;
    Ok(p)
}

pub async fn rename_product(
    ts: &TenantStore,
    actor: &Actor,
    code: &ProductCode,
    name: Option<String>,
    now: OffsetDateTime,
) -> Result<Product, Error> {
    let mut changes: Changes = vec![change("updated_at", &crate::clock::rfc3339(now))?];
    if let Some(n) = name {
        changes.push(change("name", &n)?);
    }
    let audit = AuditEvent::new(
        ts.tenant_id(),
        AuditCode::ProductUpdated,
        &actor.actor,
        code.as_str(),
        now,
        &actor.request_id,
    );
    ts.update_product(code, changes, &audit)
        .await?
        .ok_or_else(product_not_found)
}

pub fn product_not_found() -> Error {
    Error::not_found("PRODUCT_NOT_FOUND", "no product with that code")
}

pub fn policy_not_found() -> Error {
    Error::not_found("POLICY_NOT_FOUND", "no policy with that id")
}

/// The fields of a policy a caller sets.
pub struct PolicyInput {
    pub product: ProductCode,
    pub name: String,
    pub max_activations: u32,
    pub duration_days: Option<u32>,
    pub entitlements: Entitlements,
    pub grace_period_days: u32,
    pub stripe_price_ids: Vec<String>,
}

pub async fn create_policy(
    app: &App,
    ts: &TenantStore,
    actor: &Actor,
    input: PolicyInput,
    now: OffsetDateTime,
) -> Result<Policy, Error> {
    let p = Policy {
        id: PolicyId::generate(),
        product: input.product,
        name: input.name,
        max_activations: input.max_activations,
        duration_days: input.duration_days,
        entitlements: input.entitlements,
        grace_period_days: input.grace_period_days,
        stripe_price_ids: input.stripe_price_ids,
        created_at: now,
        updated_at: now,
    };
    let audit = AuditEvent::new(
        ts.tenant_id(),
        AuditCode::PolicyCreated,
        &actor.actor,
        p.id.as_str(),
        now,
        &actor.request_id,
    )
    .with_data(serde_json::json!({ "product": p.product, "name": p.name }));
    ts.create_policy(&p, &audit).await?;
    app.remember_policy(ts.tenant_id(), p.clone());
    Ok(p)
}

pub async fn update_policy(
    app: &App,
    ts: &TenantStore,
    actor: &Actor,
    id: &PolicyId,
    mut changes: Changes,
    now: OffsetDateTime,
) -> Result<Policy, Error> {
    changes.push(change("updated_at", &crate::clock::rfc3339(now))?);
    let audit = AuditEvent::new(
        ts.tenant_id(),
        AuditCode::PolicyUpdated,
        &actor.actor,
        id.as_str(),
        now,
        &actor.request_id,
    );
    let p = ts
        .update_policy(id, changes, &audit)
        .await?
        .ok_or_else(policy_not_found)?;
    app.remember_policy(ts.tenant_id(), p.clone());
    Ok(p)
}

/// A new API key: the record (hash only) and the key string, shown once.
pub fn new_api_key(
    app_pepper: &crate::crypto::Pepper,
    tenant: &crate::ids::TenantId,
    name: String,
    scopes: Vec<Scope>,
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> (ApiKeyRecord, String) {
    let secret = ApiKeySecret::generate(tenant);
    let rec = ApiKeyRecord {
        id: secret.key_id.clone(),
        tenant_id: tenant.clone(),
        name,
        scopes,
        hash: app_pepper.hash(secret.secret_bytes()),
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        activated_at: None,
    };
    (rec, secret.expose())
}

pub async fn create_api_key(
    app: &App,
    ts: &TenantStore,
    actor: &Actor,
    name: String,
    scopes: Vec<Scope>,
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(ApiKeyRecord, String), Error> {
    if expires_at.is_some_and(|e| e <= now) {
        return Err(Error::validation("expires_at must be in the future"));
    }
    let (rec, key) = new_api_key(app.pepper()?, ts.tenant_id(), name, scopes, expires_at, now);
    let audit = AuditEvent::new(
        ts.tenant_id(),
        AuditCode::ApiKeyCreated,
        &actor.actor,
        rec.id.as_str(),
        now,
        &actor.request_id,
    )
    .with_data(serde_json::json!({ "scopes": rec.scopes, "name": rec.name }));
    ts.create_api_key(&rec, &audit).await?;
    Ok((rec, key))
}

pub async fn revoke_api_key(
    app: &App,
    ts: &TenantStore,
    actor: &Actor,
    id: &ApiKeyId,
    now: OffsetDateTime,
) -> Result<ApiKeyRecord, Error> {
    let audit = AuditEvent::new(
        ts.tenant_id(),
        AuditCode::ApiKeyRevoked,
        &actor.actor,
        id.as_str(),
        now,
        &actor.request_id,
    );
    let rec = ts.revoke_api_key(id, now, &audit).await?;
    app.forget_key(ts.tenant_id(), id);
    Ok(rec)
}
