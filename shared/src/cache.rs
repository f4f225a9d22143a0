//! The per-instance caches that keep a warm request to one DynamoDB round
//! trip. Use cases take the one they need, never the whole [`crate::app::App`].

use crate::crypto::Pepper;
use crate::domain::{ApiKeyRecord, Policy, Scope, Tenant, TenantStatus};
use crate::error::Error;
use crate::ids::{ApiKeyId, ApiKeySecret, PolicyId, TenantId};
use crate::store::{Store, TenantStore};
use moka::sync::Cache;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// How long a resolved API key (and its tenant's status) is trusted.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
/// How long a policy is cached by the functions that read it.
pub const POLICY_CACHE_TTL: Duration = Duration::from_secs(60);

/// Policies by tenant and id, read through (this instance's own changes
/// replace an entry at once; others' within [`POLICY_CACHE_TTL`]).
pub struct Policies {
    cache: Cache<(TenantId, PolicyId), Arc<Policy>>,
}

impl Default for Policies {
    fn default() -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(POLICY_CACHE_TTL)
                .build(),
        }
    }
}

impl Policies {
    pub async fn get(&self, ts: &TenantStore, id: &PolicyId) -> Result<Option<Arc<Policy>>, Error> {
        let k = (ts.tenant_id().clone(), id.clone());
        if let Some(p) = self.cache.get(&k) {
            return Ok(Some(p));
        }
        let p = ts.get_policy(id).await?.map(Arc::new);
        if let Some(p) = &p {
            self.cache.insert(k, p.clone());
        }
        Ok(p)
    }

    /// The policy a license refers to: its absence is a broken reference.
    pub async fn of_license(&self, ts: &TenantStore, id: &PolicyId) -> Result<Arc<Policy>, Error> {
        self.get(ts, id)
            .await?
            .ok_or_else(|| Error::internal(format!("license refers to missing policy {id}")))
    }

    pub fn remember(&self, tenant: &TenantId, p: Policy) {
        self.cache
            .insert((tenant.clone(), p.id.clone()), Arc::new(p));
    }
}

/// An API key as resolved from the store, with its tenant.
#[derive(Debug)]
pub struct ResolvedKey {
    pub key: ApiKeyRecord,
    pub tenant: Tenant,
}

/// A caller authenticated by API key.
#[derive(Debug, Clone)]
pub struct KeyPrincipal {
    pub tenant: TenantId,
    pub key_id: ApiKeyId,
    pub scopes: Vec<Scope>,
    pub rate_limit_per_minute: u32,
    /// False while the tenant is provisioning, failed, suspended or closed:
    /// the key is known but every request answers `TENANT_INACTIVE`.
    pub tenant_active: bool,
    /// The tenant's default grace period for new policies.
    pub default_grace_days: u32,
}

/// API keys: the pepper that hashes them and the cache of resolved keys.
pub struct ApiKeys {
    pepper: Option<Pepper>,
    cache: Cache<(TenantId, ApiKeyId), Arc<ResolvedKey>>,
}

impl ApiKeys {
    pub fn new(pepper: Option<Pepper>) -> Self {
        let cache = Cache::builder()
            .max_capacity(10_000)
            .time_to_live(KEY_CACHE_TTL)
            .build();
        Self { pepper, cache }
    }

    pub fn pepper(&self) -> Result<&Pepper, Error> {
        self.pepper
            .as_ref()
            .ok_or_else(|| Error::internal("this function has no pepper configured"))
    }

    /// Authenticate an `X-API-Key`. On a cache miss the key and its tenant
    /// come from one BatchGetItem, the secret is verified once, and
    /// `last_used_at` is written by a task that runs alongside the request
    /// (the caller awaits it before it answers, so a frozen Lambda never
    /// leaves it half done).
    pub async fn authenticate(
        &self,
        store: &Store,
        header: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(KeyPrincipal, Option<tokio::task::JoinHandle<()>>), Error> {
        let secret = header
            .and_then(|h| ApiKeySecret::parse(h.trim()))
            .ok_or(Error::Unauthenticated)?;
        let cache_key = (secret.tenant.clone(), secret.key_id.clone());
        let mut touch = None;
        let resolved = match self.cache.get(&cache_key) {
            Some(r) => {
                if !self.pepper()?.verify(secret.secret_bytes(), &r.key.hash) {
                    return Err(Error::Unauthenticated);
                }
                r
            }
            None => {
                let ts = store.tenant(&secret.tenant);
                let (key, tenant) = ts.resolve_key(&secret.key_id).await?;
                let (Some(key), Some(tenant)) = (key, tenant) else {
                    return Err(Error::Unauthenticated);
                };
                // Verify before caching or touching: a wrong secret must not refresh anything.
                if !self.pepper()?.verify(secret.secret_bytes(), &key.hash) {
                    return Err(Error::Unauthenticated);
                }
                let r = Arc::new(ResolvedKey { key, tenant });
                // Only an active tenant's keys are cached: a tenant that is
                // still provisioning is let in the moment it becomes active.
                if r.tenant.status == TenantStatus::Active {
                    self.cache.insert(cache_key, r.clone());
                }
                let id = secret.key_id.clone();
                touch = Some(tokio::spawn(async move {
                    if let Err(e) = ts.touch_key(&id, now).await {
                        tracing::warn!(error = %e, key_id = %id, "could not record last_used_at");
                    }
                }));
                r
            }
        };
        if !resolved.key.usable_at(now) {
            return Err(Error::Unauthenticated);
        }
        let principal = KeyPrincipal {
            tenant: resolved.tenant.tenant_id.clone(),
            key_id: resolved.key.id.clone(),
            scopes: resolved.key.scopes.clone(),
            rate_limit_per_minute: resolved.tenant.settings.rate_limit_per_minute,
            tenant_active: resolved.tenant.status == TenantStatus::Active,
            default_grace_days: resolved.tenant.settings.default_grace_days,
        };
        Ok((principal, touch))
    }

    /// Forget a cached key (after revoking it in this instance).
    pub fn forget(&self, tenant: &TenantId, id: &ApiKeyId) {
        self.cache.invalidate(&(tenant.clone(), id.clone()));
    }
}
