//! Everything a function builds once at cold start: configuration, clients,
//! secrets and the in-memory caches that keep a warm request to one
//! DynamoDB round trip.

use crate::aws::{Clients, Secrets};
use crate::cache::{ApiKeys, LicenseTerms, Policies, Tenants};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::crypto::{constant_time_eq, Pepper, Signer, SigningKeys};
use crate::domain::webhook::UrlPolicy;
use crate::error::Error;
use crate::functions::Function;
use crate::ratelimit::RateLimiter;
use crate::sqs::ProvisioningQueue;
use crate::store::Store;
use crate::usecases::stripe::secret::WebhookSecrets;
use crate::webhooks::outbox::DeliveryQueue;
use crate::webhooks::Webhooks;
use std::sync::Arc;

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
    /// Each license's seat terms, as last seen.
    pub license_terms: LicenseTerms,
    /// Tenant records of license-key callers.
    pub tenants: Tenants,
    pub webhook_secrets: WebhookSecrets,
    /// `None` in functions without `PROVISIONING_QUEUE_URL`.
    pub provisioning: Option<ProvisioningQueue>,
    signer: Option<Signer>,
    signing_keys: Option<SigningKeys>,
    operator_token: Option<String>,
    /// Global rate limits per API key and per license.
    pub rate: RateLimiter,
    /// `None` in functions without `WEBHOOK_MASTER_SECRET_ID`.
    webhooks: Option<Webhooks>,
    /// `None` in functions without `WEBHOOK_QUEUE_URL`.
    webhook_queue: Option<DeliveryQueue>,
    /// `None` in functions without `PORTAL_SENDER`.
    pub mailer: Option<crate::mail::Mailer>,
    /// The TXT resolver of customer domain proofs, made on first use.
    dns: std::sync::OnceLock<crate::dns::TxtResolver>,
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
        let (pepper, signer, operator_token, master, webhook_master) = tokio::try_join!(
            read(config.pepper_secret_id.clone()),
            read(config.signing_key_secret_id.clone()),
            read(config.operator_token_secret_id.clone()),
            read(config.signing_master_secret_id.clone()),
            read(config.webhook_master_secret_id.clone()),
        )?;
        let policy = match config.webhook_allow_loopback_http {
            Some(true) => UrlPolicy::AllowLoopbackHttp,
            _ => UrlPolicy::PublicHttps,
        };
        let webhooks = webhook_master
            .map(|m| Webhooks::new(m.into_bytes(), policy))
            .transpose()?;
        let webhook_queue = config
            .webhook_queue_url
            .clone()
            .map(|url| DeliveryQueue::new(clients.sqs.clone(), url));
        let provisioning = config
            .provisioning_queue_url
            .clone()
            .map(|url| ProvisioningQueue::new(clients.sqs.clone(), url));
        let mailer = config
            .portal_sender
            .clone()
            .map(|from| crate::mail::Mailer::new(clients.ses.clone(), from));
        Ok(App {
            store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
            webhook_secrets: WebhookSecrets::new(secrets.clone(), config.secrets_prefix.clone()),
            secrets,
            clients,
            clock,
            keys: ApiKeys::new(pepper.map(|p| Pepper::new(p.into_bytes()))),
            policies: Policies::default(),
            license_terms: LicenseTerms::default(),
            tenants: Tenants::default(),
            provisioning,
            signer: signer.map(|s| Signer::new(s.into_bytes())),
            signing_keys: master.map(|m| SigningKeys::new(m.into_bytes())),
            operator_token,
            rate: RateLimiter::default(),
            webhooks,
            webhook_queue,
            mailer,
            dns: std::sync::OnceLock::new(),
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

    /// The tenants' Ed25519 keys (functions that sign answers or files).
    pub fn signing_keys(&self) -> Result<&SigningKeys, Error> {
        self.signing_keys
            .as_ref()
            .ok_or_else(|| Error::internal("this function has no signing master secret configured"))
    }

    /// Webhook secrets and delivery (manage, webhook-deliver).
    pub fn webhooks(&self) -> Result<&Webhooks, Error> {
        self.webhooks
            .as_ref()
            .ok_or_else(|| Error::internal("this function has no webhook master secret configured"))
    }

    pub fn webhook_queue(&self) -> Result<&DeliveryQueue, Error> {
        self.webhook_queue
            .as_ref()
            .ok_or_else(|| Error::internal("this function has no webhook queue configured"))
    }

    /// The resolver of customer domain proofs (`config.dns_resolver`, else
    /// the system's).
    pub fn dns(&self) -> Result<&crate::dns::TxtResolver, Error> {
        if let Some(r) = self.dns.get() {
            return Ok(r);
        }
        let r = crate::dns::TxtResolver::new(self.config.dns_resolver)?;
        Ok(self.dns.get_or_init(|| r))
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
}
