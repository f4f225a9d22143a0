//! Everything a function builds once at cold start: configuration, clients,
//! secrets and the in-memory caches that keep a warm request to one
//! DynamoDB round trip.

use crate::aws::{Clients, Secrets};
use crate::cache::{ApiKeys, KeyPrincipal, Policies};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::crypto::{constant_time_eq, Pepper, Signer};
use crate::error::Error;
use crate::functions::Function;
use crate::ids::ApiKeyId;
use crate::provisioning::ProvisioningQueue;
use crate::store::Store;
use crate::usecases::stripe::secret::WebhookSecrets;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A function's state: built once at cold start, shared by every request.
/// Handlers hand each use case only the parts it needs.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub secrets: Secrets,
    pub clients: Clients,
    pub clock: Arc<dyn Clock>,
    /// The pepper and the cache of resolved API keys.
    pub keys: ApiKeys,
    pub policies: Policies,
    pub webhook_secrets: WebhookSecrets,
    /// `None` in functions without `PROVISIONING_QUEUE_URL`.
    pub provisioning: Option<ProvisioningQueue>,
    signer: Option<Signer>,
    operator_token: Option<String>,
    rate: RateLimiter,
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
        let provisioning = config
            .provisioning_queue_url
            .clone()
            .map(|url| ProvisioningQueue::new(clients.sqs.clone(), url));
        Ok(App {
            store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
            webhook_secrets: WebhookSecrets::new(secrets.clone(), config.secrets_prefix.clone()),
            secrets,
            clients,
            clock,
            keys: ApiKeys::new(pepper.map(|p| Pepper::new(p.into_bytes()))),
            policies: Policies::default(),
            provisioning,
            signer: signer.map(|s| Signer::new(s.into_bytes())),
            operator_token,
            rate: RateLimiter::default(),
            config,
        })
    }

    pub fn pepper(&self) -> Result<&Pepper, Error> {
        self.keys.pepper()
    }

    pub fn signer(&self) -> Result<&Signer, Error> {
        self.signer
            .as_ref()
            .ok_or_else(|| Error::internal("this function has no signing key configured"))
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
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
