//! A tenant's Stripe webhook signing secret: kept in Secrets Manager under
//! the tenant's prefix, cached per instance.

use crate::aws::Secrets;
use crate::domain::{Actor, AuditCode, AuditEvent};
use crate::error::Error;
use crate::ids::TenantId;
use crate::store::TenantStore;
use moka::sync::Cache;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How long a tenant's Stripe webhook secret is cached.
pub const WEBHOOK_SECRET_TTL: Duration = Duration::from_secs(300);
/// How long "this tenant has no webhook secret" is cached: short, so a
/// secret set through the management API is used within seconds.
pub const NO_WEBHOOK_SECRET_TTL: Duration = Duration::from_secs(10);

/// The webhook secrets of every tenant, read through a per-instance cache.
pub struct WebhookSecrets {
    secrets: Secrets,
    prefix: Option<String>,
    cache: Cache<TenantId, Arc<(Option<String>, Instant)>>,
    /// Stripe API keys, for the meter-event sender (present ones only).
    api_keys: Cache<TenantId, Arc<String>>,
}

impl WebhookSecrets {
    /// `prefix`: the function's `SECRETS_PREFIX` (`None` when it has none:
    /// every use is then an internal error, never a silent default).
    pub fn new(secrets: Secrets, prefix: Option<String>) -> Self {
        let cache = Cache::builder()
            .max_capacity(10_000)
            .time_to_live(WEBHOOK_SECRET_TTL)
            .build();
        let api_keys = Cache::builder()
            .max_capacity(10_000)
            .time_to_live(WEBHOOK_SECRET_TTL)
            .build();
        Self {
            secrets,
            prefix,
            cache,
            api_keys,
        }
    }

    /// The Secrets Manager id of a tenant's webhook secret.
    pub fn secret_id(&self, t: &TenantId) -> Result<String, Error> {
        let prefix = self
            .prefix
            .as_deref()
            .ok_or_else(|| Error::internal("this function has no SECRETS_PREFIX configured"))?;
        Ok(format!("{prefix}/{t}/stripe-webhook-secret"))
    }

    /// The tenant's webhook secret, cached for [`WEBHOOK_SECRET_TTL`]. An
    /// absent secret is cached for [`NO_WEBHOOK_SECRET_TTL`] only: unsigned
    /// floods cost few Secrets Manager calls, and a newly set secret is
    /// picked up within seconds by every instance.
    pub async fn get(&self, t: &TenantId) -> Result<Option<String>, Error> {
        if let Some(v) = self.cache.get(t) {
            if v.0.is_some() || v.1.elapsed() < NO_WEBHOOK_SECRET_TTL {
                return Ok(v.0.clone());
            }
        }
        let v = self.secrets.get(&self.secret_id(t)?).await?;
        self.cache
            .insert(t.clone(), Arc::new((v.clone(), Instant::now())));
        Ok(v)
    }

    /// Store (or replace) the tenant's webhook secret. Secrets Manager is
    /// not transactional with DynamoDB: the audit event is written after
    /// the secret.
    pub async fn set(
        &self,
        ts: &TenantStore,
        actor: &Actor,
        secret: &str,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        check_secret_format(secret)?;
        let t = ts.tenant_id();
        self.secrets.put(&self.secret_id(t)?, secret).await?;
        self.cache.insert(
            t.clone(),
            Arc::new((Some(secret.to_string()), Instant::now())),
        );
        let code = AuditCode::StripeIntegrationUpdated;
        let audit = AuditEvent::new(t, code, &actor.actor, t.as_str(), now, &actor.request_id)
            .with_data(json!({ "integration": "stripe", "webhook_secret": "updated" }));
        ts.put_audit(&audit).await
    }
}

impl WebhookSecrets {
    /// The Secrets Manager id of a tenant's Stripe API key (same prefix).
    pub fn api_key_id(&self, t: &TenantId) -> Result<String, Error> {
        Ok(self
            .secret_id(t)?
            .replace("/stripe-webhook-secret", "/stripe-api-key"))
    }

    /// The tenant's Stripe API key, if set (read through, not cached: it
    /// is used by the billing-meter sender, not on a request path).
    pub async fn api_key(&self, t: &TenantId) -> Result<Option<String>, Error> {
        self.secrets.get(&self.api_key_id(t)?).await
    }

    /// The tenant's Stripe API key through a per-instance cache
    /// ([`WEBHOOK_SECRET_TTL`]; an absent key is not cached).
    pub async fn api_key_cached(&self, t: &TenantId) -> Result<Option<String>, Error> {
        if let Some(k) = self.api_keys.get(t) {
            return Ok(Some(k.as_str().to_string()));
        }
        let k = self.api_key(t).await?;
        if let Some(k) = &k {
            self.api_keys.insert(t.clone(), Arc::new(k.clone()));
        }
        Ok(k)
    }

    /// Store (or replace) the tenant's Stripe API key; audit
    /// `INTEGRATION.STRIPE_UPDATED` (the key is never written anywhere else).
    pub async fn set_api_key(
        &self,
        ts: &TenantStore,
        actor: &Actor,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        check_api_key_format(key)?;
        let t = ts.tenant_id();
        self.secrets.put(&self.api_key_id(t)?, key).await?;
        self.api_keys.insert(t.clone(), Arc::new(key.to_string()));
        let code = AuditCode::StripeIntegrationUpdated;
        let audit = AuditEvent::new(t, code, &actor.actor, t.as_str(), now, &actor.request_id)
            .with_data(json!({ "integration": "stripe", "api_key": "updated" }));
        ts.put_audit(&audit).await
    }
}

/// A secret or restricted Stripe key: `sk_live_`, `sk_test_`, `rk_live_` or
/// `rk_test_` and 10 to 250 letters and digits.
pub fn check_api_key_format(key: &str) -> Result<(), Error> {
    let rest = ["sk_live_", "sk_test_", "rk_live_", "rk_test_"]
        .iter()
        .find_map(|p| key.strip_prefix(p));
    match rest {
        Some(r)
            if (10..=250).contains(&r.len()) && r.bytes().all(|c| c.is_ascii_alphanumeric()) =>
        {
            Ok(())
        }
        _ => Err(Error::validation(
            "api_key must be a Stripe secret or restricted key (sk_live_, sk_test_, rk_live_ or \
             rk_test_ and 10 to 250 letters or digits)",
        )),
    }
}

/// `whsec_` and 16 to 200 of `[A-Za-z0-9+/=_-]`.
pub fn check_secret_format(secret: &str) -> Result<(), Error> {
    let rest = secret.strip_prefix("whsec_").ok_or_else(|| {
        Error::validation(
            "webhook_secret must be the endpoint's signing secret, starting with whsec_",
        )
    })?;
    let ok_char =
        |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-');
    if !(16..=200).contains(&rest.len()) || !rest.bytes().all(ok_char) {
        return Err(Error::validation(
            "webhook_secret is not a well-formed Stripe signing secret \
             (whsec_ and 16 to 200 letters or digits)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_format() {
        assert!(check_secret_format("whsec_0123456789abcdefABCDEF").is_ok());
        assert!(check_secret_format("sk_live_0123456789abcdef").is_err());
        assert!(check_secret_format("whsec_short").is_err());
        assert!(check_secret_format("whsec_0123456789abcdef with space").is_err());
        assert!(check_secret_format(&format!("whsec_{}", "a".repeat(201))).is_err());
    }

    #[test]
    fn api_key_format() {
        assert!(check_api_key_format("sk_test_51AbCdEf0123456789").is_ok());
        assert!(check_api_key_format("rk_live_0123456789").is_ok());
        assert!(check_api_key_format("pk_live_0123456789abcdef").is_err());
        assert!(check_api_key_format("sk_test_short").is_err());
        assert!(check_api_key_format("sk_test_0123456789 x").is_err());
        assert!(check_api_key_format("whsec_0123456789abcdefABCDEF").is_err());
    }
}
