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

/// How long a resolved API key (and its tenant's status) is trusted before
/// it is read again: revocation, key expiry and tenant suspension take effect
/// in every instance within this, at the cost of one `BatchGetItem` per key
/// per instance per this interval (0.2 reads per key per instance-second).
pub const KEY_FRESHNESS: time::Duration = time::Duration::seconds(5);
/// How often one instance records a key's `last_used_at`.
pub const TOUCH_EVERY: time::Duration = time::Duration::seconds(60);
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

/// An API key as resolved from the store, with its tenant, and when.
#[derive(Debug)]
pub struct ResolvedKey {
    pub key: ApiKeyRecord,
    pub tenant: Tenant,
    pub read_at: OffsetDateTime,
}

/// A caller authenticated by API key.
#[derive(Debug, Clone)]
pub struct KeyPrincipal {
    pub tenant: TenantId,
    pub key_id: ApiKeyId,
    pub scopes: Vec<Scope>,
    pub rate_limit_per_minute: u32,
    /// The version of the tenant's key that signs its answers.
    pub signing_key_version: u32,
    /// False while the tenant is provisioning, failed, suspended or closed:
    /// the key is known but every request answers `TENANT_INACTIVE`.
    pub tenant_active: bool,
    /// The tenant's default grace period for new policies.
    pub default_grace_days: u32,
}

/// API keys: the pepper that hashes them, the cache of resolved keys
/// (fresh for [`KEY_FRESHNESS`] on the app's clock) and when this instance
/// last recorded each key's use.
pub struct ApiKeys {
    pepper: Option<Pepper>,
    cache: Cache<(TenantId, ApiKeyId), Arc<ResolvedKey>>,
    touched: Cache<(TenantId, ApiKeyId), OffsetDateTime>,
}

impl ApiKeys {
    pub fn new(pepper: Option<Pepper>) -> Self {
        // The moka TTLs only bound memory; freshness is judged on the app's clock.
        let cache = Cache::builder()
            .max_capacity(10_000)
            .time_to_live(Duration::from_secs(60))
            .support_invalidation_closures()
            .build();
        let touched = Cache::builder()
            .max_capacity(10_000)
            .time_to_live(Duration::from_secs(120))
            .build();
        Self {
            pepper,
            cache,
            touched,
        }
    }

    pub fn pepper(&self) -> Result<&Pepper, Error> {
        self.pepper
            .as_ref()
            .ok_or_else(|| Error::internal("this function has no pepper configured"))
    }

    /// Authenticate an `X-API-Key`. On a miss (or a cached key older than
    /// [`KEY_FRESHNESS`]) the key and its tenant come from one BatchGetItem
    /// and the secret is verified once. At most every [`TOUCH_EVERY`] per
    /// key, `last_used_at` is written by a task that runs alongside the
    /// request (the caller awaits it before it answers, so a frozen Lambda
    /// never leaves it half done).
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
        let cached = self
            .cache
            .get(&cache_key)
            .filter(|r| now - r.read_at < KEY_FRESHNESS);
        let resolved = match cached {
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
                    self.cache.invalidate(&cache_key);
                    return Err(Error::Unauthenticated);
                };
                // Verify before caching or touching: a wrong secret must not refresh anything.
                if !self.pepper()?.verify(secret.secret_bytes(), &key.hash) {
                    return Err(Error::Unauthenticated);
                }
                // Keys of suspended, closed and failed tenants are cached too
                // (their requests answer TENANT_INACTIVE without a read each);
                // a tenant still provisioning is read each time, so it is let
                // in the moment it becomes active.
                let r = Arc::new(ResolvedKey {
                    key,
                    tenant,
                    read_at: now,
                });
                if r.tenant.status != TenantStatus::Provisioning {
                    self.cache.insert(cache_key.clone(), r.clone());
                }
                r
            }
        };
        let mut touch = None;
        let due = self
            .touched
            .get(&cache_key)
            .is_none_or(|at| now - at >= TOUCH_EVERY);
        if due && resolved.key.usable_at(now) {
            self.touched.insert(cache_key, now);
            let (ts, id) = (store.tenant(&secret.tenant), secret.key_id.clone());
            touch = Some(tokio::spawn(async move {
                if let Err(e) = ts.touch_key(&id, now).await {
                    tracing::warn!(error = %e, key_id = %id, "could not record last_used_at");
                }
            }));
        }
        if !resolved.key.usable_at(now) {
            return Err(Error::Unauthenticated);
        }
        let principal = KeyPrincipal {
            tenant: resolved.tenant.tenant_id.clone(),
            key_id: resolved.key.id.clone(),
            scopes: resolved.key.scopes.clone(),
            rate_limit_per_minute: resolved.tenant.settings.rate_limit_per_minute,
            signing_key_version: resolved.tenant.signing_key_version,
            tenant_active: resolved.tenant.status == TenantStatus::Active,
            default_grace_days: resolved.tenant.settings.default_grace_days,
        };
        Ok((principal, touch))
    }

    /// Forget a cached key (after revoking it in this instance).
    pub fn forget(&self, tenant: &TenantId, id: &ApiKeyId) {
        self.cache.invalidate(&(tenant.clone(), id.clone()));
    }

    /// Forget every cached key of a tenant (after suspending or closing it
    /// in this instance: effective here at once, elsewhere within
    /// [`KEY_FRESHNESS`]).
    /// Whether this instance should record a key's `last_used_at` now (at
    /// most every [`TOUCH_EVERY`] per key); if so, it is remembered as done.
    /// For keys authenticated elsewhere (customer organizations' app keys).
    pub fn touch_due(&self, tenant: &TenantId, id: &ApiKeyId, now: OffsetDateTime) -> bool {
        let k = (tenant.clone(), id.clone());
        let due = self
            .touched
            .get(&k)
            .is_none_or(|at| now - at >= TOUCH_EVERY);
        if due {
            self.touched.insert(k, now);
        }
        due
    }

    pub fn forget_tenant(&self, tenant: &TenantId) {
        let t = tenant.clone();
        if let Err(e) = self.cache.invalidate_entries_if(move |(kt, _), _| *kt == t) {
            // Only when the cache was built without invalidation closures.
            tracing::error!(error = %e, "could not drop a tenant's cached keys");
            self.cache.invalidate_all();
        }
    }
}

/// Each license's seat terms as this instance last saw them, so an
/// activation is one transaction: every seat write is conditional on the
/// terms, so a stale entry costs one refused write, never a wrong seat.
pub struct LicenseTerms {
    cache: Cache<(TenantId, crate::ids::LicenseId), crate::domain::SeatTerms>,
}

impl Default for LicenseTerms {
    fn default() -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(POLICY_CACHE_TTL)
                .build(),
        }
    }
}

impl LicenseTerms {
    /// The terms last seen (node-locked defaults when never seen).
    pub fn get(&self, t: &TenantId, id: &crate::ids::LicenseId) -> crate::domain::SeatTerms {
        self.cache.get(&(t.clone(), id.clone())).unwrap_or_default()
    }

    pub fn remember(
        &self,
        t: &TenantId,
        id: &crate::ids::LicenseId,
        terms: crate::domain::SeatTerms,
    ) {
        self.cache.insert((t.clone(), id.clone()), terms);
    }
}

/// Tenant records for license-key callers, fresh for [`KEY_FRESHNESS`] on
/// the app's clock (unknown tenants too: a flood of made-up tenant ids costs
/// one read per id per 5 s, not one per request).
pub struct Tenants {
    cache: Cache<TenantId, (Option<Arc<Tenant>>, OffsetDateTime)>,
}

impl Default for Tenants {
    fn default() -> Self {
        let cache = Cache::builder()
            .max_capacity(10_000)
            .time_to_live(Duration::from_secs(60))
            .build();
        Self { cache }
    }
}

impl Tenants {
    pub async fn get(
        &self,
        store: &Store,
        t: &TenantId,
        now: OffsetDateTime,
    ) -> Result<Option<Arc<Tenant>>, Error> {
        if let Some((tenant, at)) = self.cache.get(t) {
            if now - at < KEY_FRESHNESS {
                return Ok(tenant);
            }
        }
        let tenant = store.get_tenant(t).await?.map(Arc::new);
        self.cache.insert(t.clone(), (tenant.clone(), now));
        Ok(tenant)
    }

    pub fn forget(&self, t: &TenantId) {
        self.cache.invalidate(t);
    }
}
