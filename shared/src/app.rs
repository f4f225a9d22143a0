//! Everything a function builds once at cold start: configuration, clients,
//! secrets and the in-memory caches that keep a warm request to one
//! DynamoDB round trip.

use crate::aws::{Clients, Secrets};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::crypto::{constant_time_eq, Pepper, Signer};
use crate::domain::{ApiKeyRecord, Policy, Scope, Tenant, TenantStatus};
use crate::error::Error;
use crate::functions::Function;
use crate::ids::{ApiKeyId, ApiKeySecret, PolicyId, TenantId};
use crate::store::{Store, TenantStore};
use moka::sync::Cache;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a resolved API key (and its tenant's status) is trusted.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
/// How long a policy is cached by the functions that read it.
pub const POLICY_CACHE_TTL: Duration = Duration::from_secs(60);
/// How long a tenant's Stripe webhook secret is cached.
pub const WEBHOOK_SECRET_TTL: Duration = Duration::from_secs(300);
/// How long "this tenant has no webhook secret" is cached: short, so a
/// secret set through the management API is used within seconds.
pub const NO_WEBHOOK_SECRET_TTL: Duration = Duration::from_secs(10);

pub struct App {
    pub config: Config,
    pub store: Store,
    pub secrets: Secrets,
    pub clients: Clients,
    pub clock: Arc<dyn Clock>,
    pepper: Option<Pepper>,
    signer: Option<Signer>,
    operator_token: Option<String>,
    keys: Cache<(TenantId, ApiKeyId), Arc<ResolvedKey>>,
    policies: Cache<(TenantId, PolicyId), Arc<Policy>>,
    /// A tenant's Stripe webhook secret and when it was read.
    pub(crate) webhook_secrets: Cache<TenantId, Arc<(Option<String>, Instant)>>,
    rate: RateLimiter,
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

/// Rate-limit state to report on the response.
#[derive(Debug, Clone, Copy)]
pub struct RateState {
    pub limit: u32,
    pub remaining: u32,
    pub reset_epoch: i64,
    pub retry_after: Option<u64>,
}

impl App {
    /// Cold start of a function: read config, build clients, read secrets.
    pub async fn from_env(
        functions: &[Function],
    ) -> Result<App, Box<dyn std::error::Error + Send + Sync>> {
        let mut settings = Vec::new();
        for f in functions {
            for s in f.settings() {
                if !settings.contains(s) {
                    settings.push(*s);
                }
            }
        }
        let config = Config::from_env_for(&settings)?;
        let sdk = crate::aws::sdk_config().await;
        Ok(App::build(config, Clients::new(&sdk), Arc::new(SystemClock)).await?)
    }

    pub async fn build(
        config: Config,
        clients: Clients,
        clock: Arc<dyn Clock>,
    ) -> Result<App, Error> {
        let secrets = Secrets::new(clients.secrets.clone());
        let read = |id: Option<String>| {
            let secrets = secrets.clone();
            async move {
                match id {
                    Some(id) => secrets.require(&id).await.map(Some),
                    None => Ok(None),
                }
            }
        };
        let (pepper, signer, operator_token) = tokio::try_join!(
            read(config.pepper_secret_id.clone()),
            read(config.signing_key_secret_id.clone()),
            read(config.operator_token_secret_id.clone()),
        )?;
        Ok(App {
            store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
            secrets,
            clients,
            clock,
            pepper: pepper.map(|p| Pepper::new(p.into_bytes())),
            signer: signer.map(|s| Signer::new(s.into_bytes())),
            operator_token,
            keys: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(KEY_CACHE_TTL)
                .build(),
            policies: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(POLICY_CACHE_TTL)
                .build(),
            webhook_secrets: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(WEBHOOK_SECRET_TTL)
                .build(),
            rate: RateLimiter::default(),
            config,
        })
    }

    pub fn pepper(&self) -> Result<&Pepper, Error> {
        self.pepper
            .as_ref()
            .ok_or_else(|| Error::internal("this function has no pepper configured"))
    }

    pub fn signer(&self) -> Result<&Signer, Error> {
        self.signer
            .as_ref()
            .ok_or_else(|| Error::internal("this function has no signing key configured"))
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// Authenticate an `X-API-Key`. On a cache miss the key and its tenant
    /// come from one BatchGetItem, and `last_used_at` is written by a task
    /// that runs alongside the request (the caller awaits it before it
    /// answers, so a frozen Lambda never leaves it half done).
    pub async fn authenticate_key(
        &self,
        header: Option<&str>,
    ) -> Result<(KeyPrincipal, Option<tokio::task::JoinHandle<()>>), Error> {
        let secret = header
            .and_then(|h| ApiKeySecret::parse(h.trim()))
            .ok_or(Error::Unauthenticated)?;
        let now = self.now();
        let cache_key = (secret.tenant.clone(), secret.key_id.clone());
        let mut touch = None;
        let resolved = match self.keys.get(&cache_key) {
            Some(r) => r,
            None => {
                let ts = self.store.tenant(&secret.tenant);
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
                    self.keys.insert(cache_key, r.clone());
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
        if !self
            .pepper()?
            .verify(secret.secret_bytes(), &resolved.key.hash)
            || !resolved.key.usable_at(now)
        {
            return Err(Error::Unauthenticated);
        }
        Ok((
            KeyPrincipal {
                tenant: resolved.tenant.tenant_id.clone(),
                key_id: resolved.key.id.clone(),
                scopes: resolved.key.scopes.clone(),
                rate_limit_per_minute: resolved.tenant.settings.rate_limit_per_minute,
                tenant_active: resolved.tenant.status == TenantStatus::Active,
                default_grace_days: resolved.tenant.settings.default_grace_days,
            },
            touch,
        ))
    }

    /// Forget a cached key (after revoking it in this instance).
    pub fn forget_key(&self, tenant: &TenantId, id: &ApiKeyId) {
        self.keys.invalidate(&(tenant.clone(), id.clone()));
    }

    /// Bearer operator token, compared in constant time.
    pub fn authenticate_operator(&self, header: Option<&str>) -> Result<(), Error> {
        let expected = self
            .operator_token
            .as_deref()
            .ok_or_else(|| Error::internal("no operator token configured"))?;
        let presented = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(Error::Unauthenticated)?;
        if presented.is_empty() || !constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
            return Err(Error::Unauthenticated);
        }
        Ok(())
    }

    /// A policy, from the cache or the store (the cache is bounded to
    /// [`POLICY_CACHE_TTL`]; this instance's own changes replace it at once).
    pub async fn policy(
        &self,
        ts: &TenantStore,
        id: &PolicyId,
    ) -> Result<Option<Arc<Policy>>, Error> {
        let k = (ts.tenant_id().clone(), id.clone());
        if let Some(p) = self.policies.get(&k) {
            return Ok(Some(p));
        }
        let p = ts.get_policy(id).await?.map(Arc::new);
        if let Some(p) = &p {
            self.policies.insert(k, p.clone());
        }
        Ok(p)
    }

    pub fn remember_policy(&self, tenant: &TenantId, p: Policy) {
        self.policies
            .insert((tenant.clone(), p.id.clone()), Arc::new(p));
    }

    pub fn rate_check(&self, p: &KeyPrincipal) -> RateState {
        self.rate.check(
            &p.key_id,
            p.rate_limit_per_minute,
            self.now().unix_timestamp(),
        )
    }
}

/// Fixed one-minute windows per API key, per function instance. A shared
/// counter would cost a DynamoDB write per request; the per-instance limit
/// bounds each instance and is documented as such.
#[derive(Default)]
struct RateLimiter {
    windows: Mutex<HashMap<ApiKeyId, (i64, u32)>>,
    last_sweep: Mutex<Option<Instant>>,
}

impl RateLimiter {
    fn check(&self, key: &ApiKeyId, limit: u32, now: i64) -> RateState {
        let window = now - now.rem_euclid(60);
        let reset = window + 60;
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut sweep = self.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
            if sweep.is_none_or(|t| t.elapsed() > Duration::from_secs(120)) {
                w.retain(|_, (start, _)| *start >= window);
                *sweep = Some(Instant::now());
            }
        }
        let entry = w.entry(key.clone()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= limit {
            return RateState {
                limit,
                remaining: 0,
                reset_epoch: reset,
                retry_after: Some((reset - now).max(1) as u64),
            };
        }
        entry.1 += 1;
        RateState {
            limit,
            remaining: limit - entry.1,
            reset_epoch: reset,
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_windows() {
        let r = RateLimiter::default();
        let k = ApiKeyId::generate();
        let t0: i64 = 1_800_000_000; // a multiple of 60: the start of a window
        assert_eq!(r.check(&k, 2, t0).remaining, 1);
        assert_eq!(r.check(&k, 2, t0 + 1).remaining, 0);
        let s = r.check(&k, 2, t0 + 59);
        assert_eq!(s.retry_after, Some(1));
        assert_eq!(r.check(&k, 2, t0 + 60).remaining, 1);
    }
}
