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
}

impl WebhookSecrets {
    /// `prefix`: the function's `SECRETS_PREFIX` (`None` when it has none:
    /// every use is then an internal error, never a silent default).
    pub fn new(secrets: Secrets, prefix: Option<String>) -> Self {
        let cache = Cache::builder()
            .max_capacity(10_000)
            .time_to_live(WEBHOOK_SECRET_TTL)
            .build();
        Self {
            secrets,
            prefix,
            cache,
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
}
