//! Typed configuration, read from the environment once at cold start. A
//! missing setting stops the function with a message naming it.

/// One environment setting a function may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    TableName,
    PepperSecretId,
    SigningKeySecretId,
    SigningMasterSecretId,
    OperatorTokenSecretId,
    SecretsPrefix,
    ProvisioningQueueUrl,
    WebhookMasterSecretId,
    WebhookQueueUrl,
    WebhookAllowLoopbackHttp,
    WebhookRetryBaseSeconds,
    PortalBaseUrl,
    PortalSender,
    StripeApiBase,
}

/// One of the two deliberate defaults (the other: the system DNS resolver):
/// Stripe's own API, unless `STRIPE_API_BASE` points elsewhere (a local
/// stand-in in tests).
pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";

impl Setting {
    pub fn env_var(self) -> &'static str {
        match self {
            Setting::TableName => "TABLE_NAME",
            Setting::PepperSecretId => "PEPPER_SECRET_ID",
            Setting::SigningKeySecretId => "SIGNING_KEY_SECRET_ID",
            Setting::SigningMasterSecretId => "SIGNING_MASTER_SECRET_ID",
            Setting::OperatorTokenSecretId => "OPERATOR_TOKEN_SECRET_ID",
            Setting::SecretsPrefix => "SECRETS_PREFIX",
            Setting::ProvisioningQueueUrl => "PROVISIONING_QUEUE_URL",
            Setting::WebhookMasterSecretId => "WEBHOOK_MASTER_SECRET_ID",
            Setting::WebhookQueueUrl => "WEBHOOK_QUEUE_URL",
            Setting::WebhookAllowLoopbackHttp => "WEBHOOK_ALLOW_LOOPBACK_HTTP",
            Setting::WebhookRetryBaseSeconds => "WEBHOOK_RETRY_BASE_SECONDS",
            Setting::PortalBaseUrl => "PORTAL_BASE_URL",
            Setting::PortalSender => "PORTAL_SENDER",
            Setting::StripeApiBase => "STRIPE_API_BASE",
        }
    }
    pub fn describe(self) -> &'static str {
        match self {
            Setting::TableName => "the DynamoDB table",
            Setting::PepperSecretId => "the Secrets Manager id of the API-key pepper",
            Setting::SigningKeySecretId => "the Secrets Manager id of the signing key (cursors)",
            Setting::SigningMasterSecretId => {
                "the Secrets Manager id of the master secret of the tenants' Ed25519 signing keys"
            }
            Setting::OperatorTokenSecretId => "the Secrets Manager id of the operator token",
            Setting::SecretsPrefix => {
                "the name prefix of per-tenant secrets (Stripe webhook secrets)"
            }
            Setting::ProvisioningQueueUrl => "the URL of the tenant provisioning SQS queue",
            Setting::WebhookMasterSecretId => {
                "the Secrets Manager id of the master secret of webhook signing secrets"
            }
            Setting::WebhookQueueUrl => "the URL of the webhook delivery SQS queue",
            Setting::WebhookAllowLoopbackHttp => {
                "true or false: whether webhook URLs may be http:// to loopback (local only)"
            }
            Setting::WebhookRetryBaseSeconds => {
                "whole seconds before the first webhook retry (doubling after)"
            }
            Setting::PortalBaseUrl => {
                "the portal's public origin (https://host), the base of sign-in links"
            }
            Setting::PortalSender => "the SES-verified address portal e-mail is sent from",
            Setting::StripeApiBase => {
                "the Stripe API origin, http(s)://host[:port] (default https://api.stripe.com)"
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {var} is not set or not valid ({what}); the function cannot start")]
pub struct ConfigError {
    pub var: &'static str,
    pub what: &'static str,
}

/// Everything any function reads from its environment. A function reads only
/// the settings `functions::Function::settings` lists; the others stay `None`.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub table_name: String,
    pub pepper_secret_id: Option<String>,
    pub signing_key_secret_id: Option<String>,
    pub signing_master_secret_id: Option<String>,
    pub operator_token_secret_id: Option<String>,
    pub secrets_prefix: Option<String>,
    pub provisioning_queue_url: Option<String>,
    pub webhook_master_secret_id: Option<String>,
    pub webhook_queue_url: Option<String>,
    /// `Some(true)`: the local development setting (http:// to loopback).
    pub webhook_allow_loopback_http: Option<bool>,
    pub webhook_retry_base_secs: Option<u64>,
    pub portal_base_url: Option<String>,
    pub portal_sender: Option<String>,
    /// `LICENSING_DNS_RESOLVER=host:port`: the DNS server the domain proof
    /// of customer organizations asks (UDP and TCP). One of the two settings
    /// with a deliberate default (the other: `STRIPE_API_BASE`): unset, the system resolver is used (as deployed
    /// on Lambda); tests and `make dev` point it at a loopback server.
    pub dns_resolver: Option<std::net::SocketAddr>,
    /// Where billing meter events are posted (see [`DEFAULT_STRIPE_API_BASE`]).
    pub stripe_api_base: Option<String>,
}

/// The environment variable of [`Config::dns_resolver`].
pub const DNS_RESOLVER_VAR: &str = "LICENSING_DNS_RESOLVER";

/// `host:port` as a socket address (`127.0.0.1:5353`, `[::1]:53`, `localhost:5353`).
pub fn parse_dns_resolver(v: &str) -> Result<std::net::SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    let bad = ConfigError {
        var: DNS_RESOLVER_VAR,
        what:
            "host:port of the DNS server for domain proofs (optional; unset = the system resolver)",
    };
    let v = v.trim();
    if let Ok(a) = v.parse() {
        return Ok(a);
    }
    v.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or(bad)
}

fn bad(s: Setting) -> ConfigError {
    ConfigError {
        var: s.env_var(),
        what: s.describe(),
    }
}

impl Config {
    /// The settings of several functions at once (the dev server runs them all).
    pub fn from_env_for(settings: &[Setting]) -> Result<Self, ConfigError> {
        Self::from_lookup(settings, |k| std::env::var(k).ok())
    }

    pub fn from_lookup(
        settings: &[Setting],
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut c = Config::default();
        let mut table = None;
        for &s in settings {
            let v = get(s.env_var())
                .filter(|v| !v.trim().is_empty())
                .or_else(|| {
                    (s == Setting::StripeApiBase).then(|| DEFAULT_STRIPE_API_BASE.to_string())
                })
                .ok_or(ConfigError {
                    var: s.env_var(),
                    what: s.describe(),
                })?;
            match s {
                Setting::TableName => table = Some(v),
                Setting::PepperSecretId => c.pepper_secret_id = Some(v),
                Setting::SigningKeySecretId => c.signing_key_secret_id = Some(v),
                Setting::SigningMasterSecretId => c.signing_master_secret_id = Some(v),
                Setting::OperatorTokenSecretId => c.operator_token_secret_id = Some(v),
                Setting::SecretsPrefix => {
                    c.secrets_prefix = Some(v.trim_end_matches('/').to_string())
                }
                Setting::ProvisioningQueueUrl => c.provisioning_queue_url = Some(v),
                Setting::WebhookMasterSecretId => c.webhook_master_secret_id = Some(v),
                Setting::WebhookQueueUrl => c.webhook_queue_url = Some(v),
                Setting::WebhookAllowLoopbackHttp => {
                    c.webhook_allow_loopback_http = Some(match v.trim() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad(s)),
                    })
                }
                Setting::WebhookRetryBaseSeconds => {
                    let n = v
                        .trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| (1..=3600).contains(n));
                    c.webhook_retry_base_secs = Some(n.ok_or(bad(s))?);
                }
                Setting::PortalBaseUrl => {
                    c.portal_base_url = Some(v.trim_end_matches('/').to_string())
                }
                Setting::PortalSender => c.portal_sender = Some(v),
                Setting::StripeApiBase => {
                    let v = v.trim().trim_end_matches('/');
                    let ok = (v.starts_with("https://") || v.starts_with("http://"))
                        && url::Url::parse(v).is_ok_and(|u| u.host_str().is_some());
                    if !ok {
                        return Err(bad(s));
                    }
                    c.stripe_api_base = Some(v.to_string());
                }
            }
        }
        if let Some(v) = get(DNS_RESOLVER_VAR).filter(|v| !v.trim().is_empty()) {
            c.dns_resolver = Some(parse_dns_resolver(&v)?);
        }
        c.table_name = table.ok_or(ConfigError {
            var: "TABLE_NAME",
            what: Setting::TableName.describe(),
        })?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::Function;

    #[test]
    fn missing_setting_is_named() {
        let err = Config::from_lookup(Function::Validate.settings(), |k| {
            (k == "TABLE_NAME").then(|| "t".into())
        })
        .unwrap_err();
        assert_eq!(err.var, "PEPPER_SECRET_ID");
        assert!(err.to_string().contains("PEPPER_SECRET_ID"));
    }

    #[test]
    fn all_set() {
        let value = |k: &str| match k {
            "WEBHOOK_ALLOW_LOOPBACK_HTTP" => "false".to_string(),
            "WEBHOOK_RETRY_BASE_SECONDS" => "60".to_string(),
            _ => format!("v-{k}"),
        };
        let c = Config::from_lookup(Function::Manage.settings(), |k| {
            (k != DNS_RESOLVER_VAR).then(|| value(k))
        })
        .unwrap();
        assert_eq!(c.table_name, "v-TABLE_NAME");
        assert!(c.pepper_secret_id.is_some());
    }

    #[test]
    fn the_dns_resolver_is_optional_and_checked() {
        let set = [Setting::TableName];
        let c = Config::from_lookup(&set, |k| (k == "TABLE_NAME").then(|| "t".into())).unwrap();
        assert_eq!(c.dns_resolver, None);
        let with = |v: &'static str| {
            move |k: &str| match k {
                "TABLE_NAME" => Some("t".to_string()),
                DNS_RESOLVER_VAR => Some(v.to_string()),
                _ => None,
            }
        };
        let c = Config::from_lookup(&set, with("127.0.0.1:5353")).unwrap();
        assert_eq!(c.dns_resolver.unwrap().port(), 5353);
        let err = Config::from_lookup(&set, with("nope")).unwrap_err();
        assert_eq!(err.var, DNS_RESOLVER_VAR);
    }

    #[test]
    fn webhook_settings_must_be_well_formed() {
        let set = [Setting::TableName, Setting::WebhookAllowLoopbackHttp];
        let get = |v: &'static str| {
            move |k: &str| {
                (k != DNS_RESOLVER_VAR).then(|| if k == "TABLE_NAME" { "t" } else { v }.into())
            }
        };
        assert!(Config::from_lookup(&set, get("yes")).is_err());
        let c = Config::from_lookup(&set, get("false")).unwrap();
        assert_eq!(c.webhook_allow_loopback_http, Some(false));
        let set = [Setting::TableName, Setting::WebhookRetryBaseSeconds];
        assert!(Config::from_lookup(&set, get("0")).is_err());
        assert!(Config::from_lookup(&set, get("60")).is_ok());
    }

    #[test]
    fn stripe_api_base_defaults_to_stripe() {
        let set = [Setting::TableName, Setting::StripeApiBase];
        let only_table = |k: &str| (k == "TABLE_NAME").then(|| "t".to_string());
        let c = Config::from_lookup(&set, only_table).unwrap();
        assert_eq!(c.stripe_api_base.as_deref(), Some(DEFAULT_STRIPE_API_BASE));
        // Each lookup answers only the variables it means to set.
        let local = |k: &str| match k {
            "TABLE_NAME" => Some("t".to_string()),
            "STRIPE_API_BASE" => Some("http://127.0.0.1:9999/".to_string()),
            _ => None,
        };
        let c = Config::from_lookup(&set, local).unwrap();
        assert_eq!(c.stripe_api_base.as_deref(), Some("http://127.0.0.1:9999"));
        let bad = |k: &str| match k {
            "TABLE_NAME" => Some("t".to_string()),
            "STRIPE_API_BASE" => Some("ftp://x".to_string()),
            _ => None,
        };
        assert!(Config::from_lookup(&set, bad).is_err());
    }
}
