//! Who is calling. Every credential of the JSON API (an API key, a client
//! app's license key, none at all for a public trial) goes through the one
//! [`authenticate`]: identify the caller, admit it under its rate limit,
//! then refuse what the credential may not do. The operator token (Platform
//! API) and Stripe's signature are checked by their own surfaces.

mod customer;

pub(super) use customer::authenticate as authenticate_customer;
pub use customer::{CustomerCaller, CustomerCredential, CUSTOMER_COOKIE};

use super::{Ctx, Edge};
use crate::domain::{Actor, Scope, Tenant, TenantStatus};
use crate::error::Error;
use crate::functions::IntegrationOp;
use crate::ids::{ApiKeyId, LicenseId, LicenseKey, TenantId};
use crate::ratelimit::{RateState, Subject};
use crate::usecases::TenantStore;
use lambda_http::{Request, RequestExt};
use std::sync::Arc;

/// The authenticated caller of an API-key or license-key route, bound to
/// its tenant.
pub struct Caller {
    pub store: TenantStore,
    pub actor: Actor,
    /// `Some`: a client app authenticated by a license key, which may act
    /// on this one license only.
    pub license: Option<LicenseId>,
    pub default_grace_days: u32,
    /// `Some`: no credential at all, a public trial's caller (`X-Tenant-Id`
    /// only), with its tenant's `settings.public_trials_per_day`.
    pub public_trials_per_day: Option<u32>,
}

/// The credential a request presents.
pub(super) enum Credential {
    /// `X-API-Key`, which must carry this scope.
    ApiKey(Scope),
    /// `Authorization: License <key>` with `X-Tenant-Id`.
    License(TenantId, LicenseKey),
    /// No credential: `X-Tenant-Id` and the source address (public trials).
    Public(Option<String>),
}

impl Credential {
    /// An Integration request's credential: a license key if it presents
    /// one, none at all for a credential-less trial, else an API key.
    pub(super) fn of_integration(
        ctx: &Ctx<'_>,
        req: &Request,
        op: IntegrationOp,
    ) -> Result<Credential, Error> {
        let credential_less =
            ctx.header("x-api-key").is_none() && ctx.header("authorization").is_none();
        Ok(match license_credential(ctx)? {
            Some((tenant, key)) => {
                client_nonce(ctx)?;
                Credential::License(tenant, key)
            }
            None if op == IntegrationOp::Trial && credential_less => {
                Credential::Public(source_ip(req))
            }
            None => Credential::ApiKey(Scope::Integration),
        })
    }
}

/// What a rate limit counts: an owned [`Subject`].
enum Counted {
    Key(ApiKeyId),
    License(LicenseId),
    Address(String),
}

impl Counted {
    fn subject(&self) -> Subject<'_> {
        match self {
            Counted::Key(k) => Subject::Key(k),
            Counted::License(l) => Subject::License(l),
            Counted::Address(ip) => Subject::Address(ip),
        }
    }
}

/// What a credential proved, before its rate limit was applied.
struct Identified {
    caller: Caller,
    counted: Counted,
    limit: u32,
    /// A refusal that comes only after the rate limit (an API key's inactive
    /// tenant or missing scope), so that it carries the rate-limit state.
    refusal: Option<Error>,
}

/// The caller behind `credential`, admitted under its rate limit. Whatever
/// the outcome, `edge` learns what the response needs: the signer once a
/// tenant is known, the rate-limit state once one was taken (also on a 429
/// or a 403), and the API key's `last_used_at` write to await.
pub(super) async fn authenticate(
    ctx: &Ctx<'_>,
    credential: Credential,
    edge: &mut Edge,
) -> Result<Caller, Error> {
    let who = match credential {
        Credential::ApiKey(scope) => api_key(ctx, scope, edge).await?,
        Credential::License(tenant, key) => license_key(ctx, tenant, key, edge).await?,
        Credential::Public(ip) => public(ctx, ip, edge).await?,
    };
    let state = admit(ctx, &who.caller.store, who.counted.subject(), who.limit).await;
    edge.rate = Some(state);
    state.check()?;
    match who.refusal {
        Some(e) => Err(e),
        None => Ok(who.caller),
    }
}

/// One request of `subject` against `limit` per minute, across instances.
pub(super) async fn admit(
    ctx: &Ctx<'_>,
    store: &TenantStore,
    subject: Subject<'_>,
    limit: u32,
) -> RateState {
    let now = ctx.now.unix_timestamp();
    ctx.app.rate.admit(store, subject, limit, now).await
}

pub(super) fn actor(ctx: &Ctx<'_>, actor: String) -> Actor {
    Actor {
        actor,
        request_id: ctx.request_id.clone(),
    }
}

/// An API key, rate limited per key; its tenant must be active and the key
/// must carry `needed`.
async fn api_key(ctx: &Ctx<'_>, needed: Scope, edge: &mut Edge) -> Result<Identified, Error> {
    let app = ctx.app;
    let (principal, touch) = app
        .keys
        .authenticate(&app.store, ctx.header("x-api-key"), ctx.now)
        .await?;
    edge.touch = touch;
    edge.signer = Some((principal.tenant.clone(), principal.signing_key_version));
    tracing::Span::current().record("tenant", principal.tenant.as_str());
    let refusal = if !principal.tenant_active {
        Some(Error::TenantInactive)
    } else if !principal.scopes.contains(&needed) {
        let name = if needed == Scope::Admin {
            "admin"
        } else {
            "integration"
        };
        Some(Error::Forbidden(format!(
            "this API key lacks the '{name}' scope"
        )))
    } else {
        None
    };
    Ok(Identified {
        caller: Caller {
            store: app.store.tenant(&principal.tenant),
            actor: actor(ctx, principal.key_id.to_string()),
            license: None,
            default_grace_days: principal.default_grace_days,
            public_trials_per_day: None,
        },
        limit: principal.rate_limit_per_minute,
        counted: Counted::Key(principal.key_id),
        refusal,
    })
}

/// A client app's license key: scoped to that license, rate limited per
/// license. The key's existence is proven by the operation's own read of
/// the license (validate) or one read (the others); an unknown tenant, an
/// inactive one and an unknown key are the same 401.
async fn license_key(
    ctx: &Ctx<'_>,
    tenant: TenantId,
    key: LicenseKey,
    edge: &mut Edge,
) -> Result<Identified, Error> {
    let t = client_tenant(ctx, &tenant, edge).await?;
    let license = LicenseId::derive(&tenant, &key);
    let limit = t.settings.license_rate_limit_per_minute;
    Ok(Identified {
        caller: Caller {
            store: ctx.app.store.tenant(&tenant),
            actor: actor(ctx, format!("license:{license}")),
            license: Some(license.clone()),
            default_grace_days: t.settings.default_grace_days,
            public_trials_per_day: None,
        },
        counted: Counted::License(license),
        limit,
        refusal: None,
    })
}

/// No credential, naming its tenant (`X-Tenant-Id`): it may only start
/// public trials, rate limited per source address. An unknown or inactive
/// tenant is the same 401 as for a license key.
async fn public(ctx: &Ctx<'_>, ip: Option<String>, edge: &mut Edge) -> Result<Identified, Error> {
    let tenant = ctx.header("x-tenant-id").ok_or(Error::Unauthenticated)?;
    let tenant = TenantId::parse(tenant.trim()).map_err(|_| Error::Unauthenticated)?;
    let t = client_tenant(ctx, &tenant, edge).await?;
    let ip = ip.ok_or(Error::Unauthenticated)?;
    Ok(Identified {
        caller: Caller {
            store: ctx.app.store.tenant(&tenant),
            actor: actor(ctx, format!("public:{ip}")),
            license: None,
            default_grace_days: t.settings.default_grace_days,
            public_trials_per_day: Some(t.settings.public_trials_per_day),
        },
        limit: t.settings.public_trial_rate_limit_per_minute,
        counted: Counted::Address(ip),
        refusal: None,
    })
}

/// The active tenant a client names (the same 401 for an unknown or an
/// inactive one); its answers are signed with its current key.
async fn client_tenant(
    ctx: &Ctx<'_>,
    tenant: &TenantId,
    edge: &mut Edge,
) -> Result<Arc<Tenant>, Error> {
    let app = ctx.app;
    let Some(t) = app.tenants.get(&app.store, tenant, ctx.now).await? else {
        return Err(Error::Unauthenticated);
    };
    if t.status != TenantStatus::Active {
        return Err(Error::Unauthenticated);
    }
    tracing::Span::current().record("tenant", tenant.as_str());
    edge.signer = Some((tenant.clone(), t.signing_key_version));
    Ok(t)
}

/// `Authorization: License <key>` with `X-Tenant-Id`, if the request uses
/// them. Anything malformed is the same 401 as an unknown key.
fn license_credential(ctx: &Ctx<'_>) -> Result<Option<(TenantId, LicenseKey)>, Error> {
    let Some(auth) = ctx.headers.get("authorization") else {
        return Ok(None);
    };
    let auth = auth.to_str().map_err(|_| Error::Unauthenticated)?;
    let Some(key) = auth.strip_prefix("License ") else {
        return Err(Error::Unauthenticated);
    };
    let key = LicenseKey::parse(key.trim()).map_err(|_| Error::Unauthenticated)?;
    let tenant = ctx.header("x-tenant-id").ok_or(Error::Unauthenticated)?;
    let tenant = TenantId::parse(tenant.trim()).map_err(|_| Error::Unauthenticated)?;
    Ok(Some((tenant, key)))
}

/// The shortest `X-Nonce` a license-key request may send.
const MIN_CLIENT_NONCE: usize = 16;

/// A license-key request (a client app) must send `X-Nonce` of at least
/// [`MIN_CLIENT_NONCE`] characters (the edge has already refused one that is
/// not 1 to 128 printable ASCII characters): its answer is signed over the
/// nonce, and an app's answers must not be replayable. Checked before the
/// tenant is looked up, so it says nothing about the tenant or the key.
fn client_nonce(ctx: &Ctx<'_>) -> Result<(), Error> {
    match ctx.header("x-nonce") {
        Some(n) if n.len() >= MIN_CLIENT_NONCE => Ok(()),
        _ => Err(Error::NonceRequired),
    }
}

/// The address API Gateway saw the request come from.
pub(in crate::http) fn source_ip(req: &Request) -> Option<String> {
    use lambda_http::request::RequestContext;
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.http.source_ip.clone(),
        _ => None,
    }
    .filter(|ip| !ip.is_empty() && ip.len() <= 64)
}
