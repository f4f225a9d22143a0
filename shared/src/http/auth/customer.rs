//! Customer organizations' credentials on `/v1/customer/...`: an app key
//! (`X-API-Key`, the vendor keys' format, naming a customer tenant) checked
//! against its bindings, or a member's portal session (the
//! `customer_session` cookie, with `X-CSRF-Token` and a same-origin
//! `Origin` on every non-GET call). A vendor's key, an unknown one and a
//! session of nobody are the same 401.

use super::{actor, admit};
use crate::crypto::constant_time_eq;
use crate::domain::{
    cert_sha256_of_pem, Actor, CustomerOrg, CustomerScope, CustomerStatus, MemberRole, Permission,
    RequestOrigin, Role,
};
use crate::error::Error;
use crate::http::{Ctx, Edge};
use crate::ids::{ApiKeyId, ApiKeySecret, Email, TenantId};
use crate::ratelimit::Subject;
use crate::store::TenantStore;
use lambda_http::{Request, RequestExt};

/// The cookie of a member's session on the `/v1/customer` API:
/// `<customer_id>.<session id>` (Path `/v1/customer`). The portal of the
/// organization sets it beside its own page cookie at sign-in.
pub const CUSTOMER_COOKIE: &str = "customer_session";

/// Requests per minute per member session on the API.
pub const SESSION_RATE_LIMIT_PER_MINUTE: u32 = 600;

/// How the caller proved itself.
#[derive(Debug, Clone)]
pub enum CustomerCredential {
    /// An app key with its scopes.
    Key {
        id: ApiKeyId,
        scopes: Vec<CustomerScope>,
    },
    /// A member's portal session, with the member's current role.
    Session {
        email: Email,
        role: MemberRole,
        csrf: String,
    },
}

/// The authenticated caller of a `/v1/customer/...` route, bound to its
/// organization.
pub struct CustomerCaller {
    pub store: TenantStore,
    pub customer: TenantId,
    pub org: CustomerOrg,
    pub actor: Actor,
    pub credential: CustomerCredential,
}

impl CustomerCaller {
    /// Refuse (403 `FORBIDDEN`) unless the caller may do `p`: a person by
    /// role, an app key by scope (see [`Permission`] for the matrix).
    pub fn require(&self, p: Permission) -> Result<(), Error> {
        let ok = match &self.credential {
            CustomerCredential::Key { scopes, .. } => {
                p.key_scope().is_some_and(|s| scopes.contains(&s))
            }
            CustomerCredential::Session { role, .. } => *role >= p.min_role(),
        };
        if ok {
            return Ok(());
        }
        Err(Error::Forbidden(match (&self.credential, p.key_scope()) {
            (CustomerCredential::Key { .. }, Some(s)) => {
                format!("this API key lacks the '{}' scope", s.as_str())
            }
            (CustomerCredential::Key { .. }, None) => {
                format!("an app's API key may not {}; a member must", p.name())
            }
            (CustomerCredential::Session { .. }, _) => format!(
                "your role may not {} (needs {} or above)",
                p.name(),
                p.min_role().as_str()
            ),
        }))
    }

    /// The member's role (`None` for an app key).
    pub fn role(&self) -> Option<MemberRole> {
        match &self.credential {
            CustomerCredential::Session { role, .. } => Some(*role),
            CustomerCredential::Key { .. } => None,
        }
    }

    /// The member's e-mail (`None` for an app key).
    pub fn email(&self) -> Option<&Email> {
        match &self.credential {
            CustomerCredential::Session { email, .. } => Some(email),
            CustomerCredential::Key { .. } => None,
        }
    }
}

/// Authenticate a `/v1/customer/...` request: an `X-API-Key` if it carries
/// one, else the session cookie.
pub(in crate::http) async fn authenticate(
    ctx: &Ctx<'_>,
    req: &Request,
    edge: &mut Edge,
) -> Result<CustomerCaller, Error> {
    if ctx.header("x-api-key").is_some() {
        return app_key(ctx, req, edge).await;
    }
    session(ctx, req, edge).await
}

async fn app_key(ctx: &Ctx<'_>, req: &Request, edge: &mut Edge) -> Result<CustomerCaller, Error> {
    let app = ctx.app;
    let secret = ctx
        .header("x-api-key")
        .and_then(|h| ApiKeySecret::parse(h.trim()))
        .ok_or(Error::Unauthenticated)?;
    let ts = app.store.tenant(&secret.tenant);
    let found = ts.resolve_customer_key(&secret.key_id).await?;
    let (Some(key), Some(org)) = (found.key, found.org) else {
        return Err(Error::Unauthenticated);
    };
    if !app.keys.pepper()?.verify(secret.secret_bytes(), &key.hash) || !key.usable_at(ctx.now) {
        return Err(Error::Unauthenticated);
    }
    tracing::Span::current().record("tenant", org.tenant_id.as_str());
    let state = admit(ctx, &ts, Subject::Key(&key.id), org.rate_limit_per_minute).await;
    edge.rate = Some(state);
    state.check()?;
    if org.status != CustomerStatus::Active {
        return Err(Error::TenantInactive);
    }
    let (source, cert) = (super::source_ip(req), client_cert_sha256(req));
    let origin = RequestOrigin {
        hostname: ctx.header("x-hostname"),
        source_ip: source.as_deref(),
        client_cert_sha256: cert.as_deref(),
    };
    if let Err(what) = key.bindings.check(&origin) {
        tracing::info!(key_id = %key.id, binding = what, "key binding mismatch");
        return Err(Error::denied(
            "KEY_BINDING_MISMATCH",
            format!("this API key may not be used from here: its {what} binding does not match"),
        ));
    }
    if app.keys.touch_due(&org.tenant_id, &key.id, ctx.now) {
        let (ts, id, now) = (ts.clone(), key.id.clone(), ctx.now);
        edge.touch = Some(tokio::spawn(async move {
            if let Err(e) = ts.touch_customer_key(&id, now).await {
                tracing::warn!(error = %e, key_id = %id, "could not record last_used_at");
            }
        }));
    }
    Ok(CustomerCaller {
        actor: actor(ctx, key.id.to_string()),
        customer: org.tenant_id.clone(),
        store: ts,
        org,
        credential: CustomerCredential::Key {
            id: key.id,
            scopes: key.scopes,
        },
    })
}

async fn session(ctx: &Ctx<'_>, req: &Request, edge: &mut Edge) -> Result<CustomerCaller, Error> {
    let app = ctx.app;
    let raw = crate::portal::web::cookie(ctx.header("cookie"), CUSTOMER_COOKIE)
        .ok_or(Error::Unauthenticated)?;
    let (customer, sid) = raw.split_once('.').ok_or(Error::Unauthenticated)?;
    let customer = TenantId::parse(customer).map_err(|_| Error::Unauthenticated)?;
    if sid.is_empty() || sid.len() > 128 {
        return Err(Error::Unauthenticated);
    }
    let ts = app.store.tenant(&customer);
    let digest = crate::usecases::portal::digest(sid);
    let s = ts
        .get_org_session(&digest)
        .await?
        .filter(|s| s.live_at(ctx.now) && s.role == Role::Member)
        .ok_or(Error::Unauthenticated)?;
    let (member, org) = ts.resolve_member(&s.email).await?;
    let (Some(member), Some(org)) = (member, org) else {
        return Err(Error::Unauthenticated);
    };
    if org.status != CustomerStatus::Active {
        return Err(Error::Unauthenticated);
    }
    tracing::Span::current().record("tenant", org.tenant_id.as_str());
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        let base = app
            .config
            .portal_base_url
            .as_deref()
            .ok_or_else(|| Error::internal("no portal base URL configured"))?;
        crate::portal::web::check_origin(ctx.header("origin"), None, base)?;
        let token = ctx.header("x-csrf-token").unwrap_or("");
        if !constant_time_eq(token.as_bytes(), s.csrf.as_bytes()) {
            return Err(crate::portal::web::csrf_refused());
        }
    }
    let subject = format!("S#{}", &digest[..16]);
    let state = admit(
        ctx,
        &ts,
        Subject::Address(&subject),
        SESSION_RATE_LIMIT_PER_MINUTE,
    )
    .await;
    edge.rate = Some(state);
    state.check()?;
    Ok(CustomerCaller {
        actor: actor(ctx, s.actor_name()),
        customer: org.tenant_id.clone(),
        store: ts,
        org,
        credential: CustomerCredential::Session {
            email: member.email,
            role: member.role,
            csrf: s.csrf,
        },
    })
}

/// The hex SHA-256 of the DER of the client certificate API Gateway's
/// mutual TLS passed on (`requestContext.authentication.clientCert`).
fn client_cert_sha256(req: &Request) -> Option<String> {
    use lambda_http::request::RequestContext;
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c
            .authentication
            .as_ref()?
            .client_cert
            .as_ref()?
            .client_cert_pem
            .as_deref()
            .and_then(cert_sha256_of_pem),
        _ => None,
    }
}
