//! Products, policies and API keys of the management API.

use crate::cache::{ApiKeys, Policies};
use crate::crypto::{Pepper, Signer};
use crate::domain::*;
use crate::error::Error;
use crate::ids::{ApiKeyId, ApiKeySecret, PolicyId, ProductCode, TenantId};
use crate::store::{Page, TenantStore};
use serde_json::json;
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
        trial: None,
        created_at: now,
        updated_at: now,
    };
    let audit = actor.audit(
        ts.tenant_id(),
        AuditCode::ProductCreated,
        p.code.as_str(),
        now,
    );
    ts.create_product(&p, &audit).await?;
    Ok(p)
}

/// `GET /v1/manage/products`: one page of the tenant's products.
pub async fn list_products(
    ts: &TenantStore,
    signer: &Signer,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<Product>, Error> {
    ts.list_products(signer, limit, cursor).await
}

pub async fn get_product(ts: &TenantStore, code: &ProductCode) -> Result<Product, Error> {
    ts.get_product(code).await?.ok_or_else(product_not_found)
}

pub async fn update_product(
    ts: &TenantStore,
    actor: &Actor,
    code: &ProductCode,
    patch: ProductPatch,
    now: OffsetDateTime,
) -> Result<Product, Error> {
    let audit = actor.audit(
        ts.tenant_id(),
        AuditCode::ProductUpdated,
        code.as_str(),
        now,
    );
    if let Some(Some(trial)) = &patch.trial {
        trial.check()?;
    }
    let audit = match &patch.trial {
        Some(trial) => audit.with_data(json!({ "trial": trial })),
        None => audit,
    };
    ts.update_product(code, &patch, &audit, now)
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
    pub terms: SeatTerms,
    pub client_auth: bool,
    pub max_file_ttl_seconds: u32,
}

pub async fn create_policy(
    policies: &Policies,
    ts: &TenantStore,
    actor: &Actor,
    input: PolicyInput,
    now: OffsetDateTime,
) -> Result<Policy, Error> {
    input.terms.check()?;
    let p = Policy {
        id: PolicyId::generate(),
        product: input.product,
        name: input.name,
        max_activations: input.max_activations,
        duration_days: input.duration_days,
        entitlements: input.entitlements,
        grace_period_days: input.grace_period_days,
        stripe_price_ids: input.stripe_price_ids,
        terms: input.terms.with_default_lease(),
        client_auth: input.client_auth,
        max_file_ttl_seconds: input.max_file_ttl_seconds,
        created_at: now,
        updated_at: now,
    };
    let audit = actor
        .audit(ts.tenant_id(), AuditCode::PolicyCreated, p.id.as_str(), now)
        .with_data(json!({ "product": p.product, "name": p.name }));
    ts.create_policy(&p, &audit).await?;
    policies.remember(ts.tenant_id(), p.clone());
    Ok(p)
}

/// `GET /v1/manage/policies`: one page of the tenant's policies.
pub async fn list_policies(
    ts: &TenantStore,
    signer: &Signer,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<Policy>, Error> {
    ts.list_policies(signer, limit, cursor).await
}

pub async fn get_policy(ts: &TenantStore, id: &PolicyId) -> Result<Policy, Error> {
    ts.get_policy(id).await?.ok_or_else(policy_not_found)
}

pub async fn update_policy(
    policies: &Policies,
    ts: &TenantStore,
    actor: &Actor,
    id: &PolicyId,
    patch: PolicyPatch,
    now: OffsetDateTime,
) -> Result<Policy, Error> {
    // Seat terms are checked as a whole: read the policy, apply the patch,
    // check, and write only if the policy is still the one read.
    let mut terms = None;
    if patch.touches_terms() {
        let current = get_policy(ts, id).await?;
        let merged = patch.terms_over(current.terms).with_default_lease();
        merged.check()?;
        terms = Some((merged, current.updated_at));
    }
    let audit = actor.audit(ts.tenant_id(), AuditCode::PolicyUpdated, id.as_str(), now);
    let Some(p) = ts.update_policy(id, &patch, terms, &audit, now).await? else {
        return match terms {
            Some(_) if ts.get_policy(id).await?.is_some() => Err(Error::Unavailable(
                "the policy changed during the update; retry".into(),
            )),
            _ => Err(policy_not_found()),
        };
    };
    policies.remember(ts.tenant_id(), p.clone());
    Ok(p)
}

/// A new API key: the record (hash only) and the key string, shown once.
pub fn new_api_key(
    pepper: &Pepper,
    tenant: &TenantId,
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
        hash: pepper.hash(secret.secret_bytes()),
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        activated_at: None,
    };
    (rec, secret.expose())
}

/// `GET /v1/manage/api-keys`: every API key of the tenant.
pub async fn list_api_keys(ts: &TenantStore) -> Result<Vec<ApiKeyRecord>, Error> {
    ts.list_api_keys().await
}

pub async fn create_api_key(
    pepper: &Pepper,
    ts: &TenantStore,
    actor: &Actor,
    name: String,
    mut scopes: Vec<Scope>,
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(ApiKeyRecord, String), Error> {
    if expires_at.is_some_and(|e| e <= now) {
        return Err(Error::validation("expires_at must be in the future"));
    }
    scopes.sort_by_key(|s| *s as u8);
    scopes.dedup();
    if scopes.is_empty() {
        return Err(Error::validation(
            "scopes must name at least one of integration, admin",
        ));
    }
    let (rec, key) = new_api_key(pepper, ts.tenant_id(), name, scopes, expires_at, now);
    let audit = actor
        .audit(
            ts.tenant_id(),
            AuditCode::ApiKeyCreated,
            rec.id.as_str(),
            now,
        )
        .with_data(json!({ "scopes": rec.scopes, "name": rec.name }));
    ts.create_api_key(&rec, &audit).await?;
    Ok((rec, key))
}

pub async fn revoke_api_key(
    keys: &ApiKeys,
    ts: &TenantStore,
    actor: &Actor,
    id: &ApiKeyId,
    now: OffsetDateTime,
) -> Result<ApiKeyRecord, Error> {
    let audit = actor.audit(ts.tenant_id(), AuditCode::ApiKeyRevoked, id.as_str(), now);
    let rec = ts.revoke_api_key(id, now, &audit).await?;
    keys.forget(ts.tenant_id(), id);
    Ok(rec)
}
