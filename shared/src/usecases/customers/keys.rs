//! A customer organization's app keys: `/v1/customer/api-keys`.

use crate::crypto::Pepper;
use crate::domain::Actor;
use crate::domain::{
    AppType, AuditCode, CustomerKeyRecord, CustomerScope, KeyBindings, MAX_KEY_DAYS,
};
use crate::error::Error;
use crate::ids::{ApiKeyId, ApiKeySecret};
use crate::usecases::TenantStore;
use serde_json::json;
use time::OffsetDateTime;

/// What a new app key is to be.
pub struct NewKey {
    pub app_name: String,
    pub app_type: AppType,
    pub scopes: Vec<CustomerScope>,
    pub expires_in_days: Option<u32>,
    pub bindings: KeyBindings,
}

/// Make an app key; the key string is returned once and never stored.
pub async fn create(
    pepper: &Pepper,
    ts: &TenantStore,
    actor: &Actor,
    mut new: NewKey,
    now: OffsetDateTime,
) -> Result<(CustomerKeyRecord, String), Error> {
    crate::domain::bounded("app_name", &new.app_name, 200)?;
    new.scopes.sort();
    new.scopes.dedup();
    if new.scopes.is_empty() {
        return Err(Error::validation(
            "scopes must name at least one of license:checkout, license:return, license:read",
        ));
    }
    let expires_at = match new.expires_in_days {
        None => None,
        Some(d) if (1..=MAX_KEY_DAYS).contains(&d) => Some(now + time::Duration::days(d.into())),
        Some(_) => {
            return Err(Error::validation(format!(
                "expires_in_days must be 1 to {MAX_KEY_DAYS}"
            )))
        }
    };
    let secret = ApiKeySecret::generate(ts.tenant_id());
    let rec = CustomerKeyRecord {
        id: secret.key_id.clone(),
        tenant_id: ts.tenant_id().clone(),
        app_name: new.app_name.trim().to_string(),
        app_type: new.app_type,
        scopes: new.scopes,
        hash: pepper.hash(secret.secret_bytes()),
        bindings: new.bindings,
        created_by: actor.actor.clone(),
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    let audit = actor
        .audit(
            ts.tenant_id(),
            AuditCode::ApiKeyCreated,
            rec.id.as_str(),
            now,
        )
        .with_data(json!({ "app_name": rec.app_name, "scopes": rec.scopes }));
    ts.create_customer_key(&rec, &audit).await?;
    Ok((rec, secret.expose()))
}

pub async fn list(ts: &TenantStore) -> Result<Vec<CustomerKeyRecord>, Error> {
    let mut keys = ts.list_customer_keys().await?;
    keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
    Ok(keys)
}

/// Revoke an app key of this organization (another's, or none, is 404).
pub async fn revoke(
    ts: &TenantStore,
    actor: &Actor,
    id: &ApiKeyId,
    now: OffsetDateTime,
) -> Result<CustomerKeyRecord, Error> {
    let audit = actor.audit(ts.tenant_id(), AuditCode::ApiKeyRevoked, id.as_str(), now);
    ts.revoke_customer_key(id, now, &audit)
        .await?
        .ok_or(Error::ApiKeyNotFound)
}
