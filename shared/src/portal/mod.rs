//! The portal: server-rendered HTML at `/portal/...` for a vendor's staff
//! (find a license, act on it, API keys, team) and its end customers (their
//! licenses and machines). Another edge beside [`crate::http`]: it turns
//! requests into the same use cases and their results into pages.
//!
//! Security model (see docs/portal.md): sign-in by a one-time link (stored
//! hashed, single use by a conditional write, 15 minutes); a session cookie
//! (HttpOnly, Secure, SameSite=Strict, path-scoped to one tenant's portal)
//! naming a session bound to one tenant, one e-mail and one role; every POST
//! checks its Origin and, once signed in, the session's CSRF token; a strict
//! CSP and no script.

mod billing;
pub mod chart;
mod customers;
pub mod org;
pub mod org_costs;
pub mod pages;
pub mod web;

use crate::app::App;
use crate::domain::*;
use crate::error::Error;
use crate::ids::{ActivationId, ApiKeyId, Email, Fingerprint, LicenseId, TenantId};
use crate::store::TenantStore;
use crate::usecases::licensing::{self, ActivationRef, Lifecycle, RenewTo};
use crate::usecases::{catalog, metering, portal as uc};
use futures::FutureExt;
use lambda_http::{Body, Request, RequestExt, Response};
use maud::Markup;
use pages::PageCtx;
use std::collections::HashMap;
use std::sync::OnceLock;
use time::OffsetDateTime;
use tracing::Instrument;
use web::Form;

/// The portal's pages, by path (the method is matched in [`serve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Home,
    Login,
    Auth,
    Verify,
    Logout,
    Staff,
    StaffLicenses,
    StaffLicense,
    ApiKeys,
    Team,
    Me,
    MeLicense,
    MeLicenseFile,
    Billing,
    BillingExport,
    Costs,
    StaffCustomers,
    StaffCustomer,
    /// A customer organization's own page.
    Org(org::OrgPage),
}

fn router() -> &'static matchit::Router<Page> {
    static R: OnceLock<matchit::Router<Page>> = OnceLock::new();
    R.get_or_init(|| {
        let mut r = matchit::Router::new();
        let routes = [
            ("/portal/{tenant}", Page::Home),
            ("/portal/{tenant}/", Page::Home),
            ("/portal/{tenant}/login", Page::Login),
            ("/portal/{tenant}/auth", Page::Auth),
            ("/portal/{tenant}/verify", Page::Verify),
            ("/portal/{tenant}/logout", Page::Logout),
            ("/portal/{tenant}/staff", Page::Staff),
            ("/portal/{tenant}/staff/licenses", Page::StaffLicenses),
            ("/portal/{tenant}/staff/licenses/{id}", Page::StaffLicense),
            ("/portal/{tenant}/staff/api-keys", Page::ApiKeys),
            ("/portal/{tenant}/staff/team", Page::Team),
            ("/portal/{tenant}/staff/billing", Page::Billing),
            ("/portal/{tenant}/staff/billing/export", Page::BillingExport),
            ("/portal/{tenant}/staff/customers", Page::StaffCustomers),
            ("/portal/{tenant}/staff/customers/{id}", Page::StaffCustomer),
            ("/portal/{tenant}/me", Page::Me),
            ("/portal/{tenant}/costs", Page::Costs),
            ("/portal/{tenant}/me/licenses/{id}", Page::MeLicense),
            (
                "/portal/{tenant}/me/licenses/{id}/file",
                Page::MeLicenseFile,
            ),
        ];
        let org_routes = org::ROUTES.map(|(path, p)| (path, Page::Org(p)));
        for (path, page) in routes.into_iter().chain(org_routes) {
            r.insert(path, page)
                .unwrap_or_else(|e| panic!("portal routes: {e}"));
        }
        r
    })
}

/// What a handler answers: a page, or a redirect (303 after a POST).
struct Reply {
    status: u16,
    body: ReplyBody,
    cookies: Vec<String>,
}

enum ReplyBody {
    Html(Markup),
    Css,
    Redirect(String),
    /// A download: file name and text.
    File(String, String),
    /// A binary download: file name, content type and bytes.
    Bytes(String, &'static str, Vec<u8>),
}

impl Reply {
    fn page(m: Markup) -> Self {
        Self {
            status: 200,
            body: ReplyBody::Html(m),
            cookies: Vec::new(),
        }
    }
    fn see_other(location: String) -> Self {
        Self {
            status: 303,
            body: ReplyBody::Redirect(location),
            cookies: Vec::new(),
        }
    }
    fn with_cookie(mut self, c: String) -> Self {
        self.cookies.push(c);
        self
    }
}

/// One request's context.
struct Req<'a> {
    app: &'a App,
    req: &'a Request,
    request_id: String,
    now: OffsetDateTime,
    params: HashMap<String, String>,
    tenant: Tenant,
    store: TenantStore,
    session: Option<(String, Session)>,
}

impl<'a> Req<'a> {
    fn header(&self, name: &str) -> Option<&str> {
        self.req.headers().get(name).and_then(|v| v.to_str().ok())
    }
    fn query(&self, name: &str) -> Option<String> {
        self.req
            .query_string_parameters_ref()
            .and_then(|q| q.first(name).map(str::to_string))
    }
    fn ctx(&self) -> PageCtx<'_> {
        PageCtx {
            tenant_id: self.tenant.tenant_id.as_str(),
            tenant_name: &self.tenant.name,
            session: self.session.as_ref().map(|(_, s)| s),
        }
    }
    fn base(&self) -> String {
        format!("/portal/{}", self.tenant.tenant_id)
    }
    fn base_url(&self) -> Result<&str, Error> {
        self.app
            .config
            .portal_base_url
            .as_deref()
            .ok_or_else(|| Error::internal("PORTAL_BASE_URL is not configured"))
    }
    /// A POST from one of this portal's pages.
    fn check_origin(&self) -> Result<(), Error> {
        web::check_origin(
            self.header("origin"),
            self.header("referer"),
            self.base_url()?,
        )
    }
    /// The signed-in person, with `role`; else 401 (or 404 for the wrong role).
    fn who(&self, role: Role) -> Result<&Session, Error> {
        match &self.session {
            None => Err(Error::Unauthenticated),
            Some((_, s)) if s.role == role => Ok(s),
            Some(_) => Err(Error::not_found(
                "PAGE_NOT_FOUND",
                "there is no such page for you here",
            )),
        }
    }
    /// A signed-in POST: the Origin, then the form's CSRF token.
    fn form_of(&self, role: Role) -> Result<(Form, &Session), Error> {
        self.check_origin()?;
        let s = self.who(role)?;
        let form = Form::parse(self.req.body().as_ref());
        web::check_csrf(&form, s)?;
        Ok((form, s))
    }
    fn actor(&self, s: &Session) -> Actor {
        uc::actor(s, &self.request_id)
    }
    fn signer(&self) -> Result<&crate::crypto::Signer, Error> {
        self.app.signer()
    }
}

/// Serve one portal request. Never fails: every error is a page.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let request_id = crate::http::request_id(&req);
    let span = tracing::info_span!(
        "portal",
        request_id = %request_id,
        method = %req.method(),
        page = tracing::field::Empty,
        tenant = tracing::field::Empty,
        status = tracing::field::Empty
    );
    async move {
        let mut ctx_for_error: Option<(String, String, Option<Session>)> = None;
        let served = serve(app, &req, &request_id, &mut ctx_for_error);
        let result = match std::panic::AssertUnwindSafe(served).catch_unwind().await {
            Ok(r) => r,
            Err(_) => {
                tracing::error!("a portal handler panicked");
                Err(Error::internal("panic"))
            }
        };
        let resp = match result {
            Ok(reply) => render(reply),
            Err(e) => {
                if let Error::Internal(detail) | Error::Unavailable(detail) = &e {
                    tracing::error!(error = %detail, "portal request failed");
                }
                error_reply(&e, ctx_for_error)
            }
        };
        tracing::Span::current().record("status", resp.status().as_u16());
        tracing::info!(status = resp.status().as_u16(), "response");
        resp
    }
    .instrument(span)
    .await
}

fn error_reply(e: &Error, ctx: Option<(String, String, Option<Session>)>) -> Response<Body> {
    let (status, code, _) = e.parts();
    let (tid, name, session) = ctx.unwrap_or_else(|| (String::new(), "Licensing".into(), None));
    let page = pages::error(
        &PageCtx {
            tenant_id: &tid,
            tenant_name: &name,
            session: session.as_ref(),
        },
        status,
        code,
        &e.public_message(),
    );
    let mut reply = Reply::page(page);
    reply.status = status;
    let mut resp = render(reply);
    if let Error::RateLimited { retry_after_secs }
    | Error::DeactivationLimitReached {
        retry_after_secs: Some(retry_after_secs),
        ..
    } = e
    {
        if let Ok(v) = http::HeaderValue::from_str(&retry_after_secs.to_string()) {
            resp.headers_mut().insert("retry-after", v);
        }
    }
    resp
}

fn render(reply: Reply) -> Response<Body> {
    let mut b = Response::builder().status(reply.status);
    for (k, v) in web::security_headers() {
        b = b.header(k, v);
    }
    for c in &reply.cookies {
        b = b.header("set-cookie", c.as_str());
    }
    let built = match reply.body {
        ReplyBody::Html(m) => b
            .header("content-type", "text/html; charset=utf-8")
            .body(Body::Text(m.into_string())),
        ReplyBody::Css => b
            .header("content-type", "text/css; charset=utf-8")
            .body(Body::Text(pages::CSS.to_string())),
        ReplyBody::Redirect(to) => b.header("location", to).body(Body::Empty),
        ReplyBody::File(name, text) => b
            .header("content-type", "text/plain; charset=utf-8")
            .header(
                "content-disposition",
                format!("attachment; filename=\"{name}\""),
            )
            .body(Body::Text(text)),
        ReplyBody::Bytes(name, mime, bytes) => b
            .header("content-type", mime)
            .header(
                "content-disposition",
                format!("attachment; filename=\"{name}\""),
            )
            .body(Body::Binary(bytes)),
    };
    built.unwrap_or_else(|_| {
        let mut r = Response::new(Body::Text("internal error".into()));
        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

fn not_found() -> Error {
    Error::not_found("PAGE_NOT_FOUND", "there is no such page")
}

async fn serve(
    app: &App,
    req: &Request,
    request_id: &str,
    error_ctx: &mut Option<(String, String, Option<Session>)>,
) -> Result<Reply, Error> {
    let path = req.uri().path();
    let method = req.method().as_str();
    if path == pages::CSS_PATH {
        return Ok(Reply {
            status: 200,
            body: ReplyBody::Css,
            cookies: Vec::new(),
        });
    }
    let m = router().at(path).map_err(|_| not_found())?;
    let page = *m.value;
    tracing::Span::current().record("page", format!("{page:?}"));
    let params: HashMap<String, String> = m
        .params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let tenant_id = params
        .get("tenant")
        .and_then(|t| TenantId::parse(t.as_str()).ok())
        .ok_or_else(not_found)?;
    let now = app.now();
    let tenant = match uc::open_tenant(&app.store, &tenant_id).await {
        Ok(t) => t,
        // Not a vendor's portal: perhaps a customer organization's.
        Err(e) => match app.store.get_customer(&tenant_id).await? {
            Some(org) => {
                return org::serve(app, req, request_id, params, org, page, error_ctx).await
            }
            None => return Err(e),
        },
    };
    tracing::Span::current().record("tenant", tenant_id.as_str());
    let store = app.store.tenant(&tenant_id);
    let cookie = web::cookie(
        req.headers().get("cookie").and_then(|v| v.to_str().ok()),
        web::COOKIE,
    );
    let session = match cookie {
        Some(id) => uc::session(&store, &tenant, id, now)
            .await?
            .map(|s| (id.to_string(), s)),
        None => None,
    };
    *error_ctx = Some((
        tenant_id.to_string(),
        tenant.name.clone(),
        session.as_ref().map(|(_, s)| s.clone()),
    ));
    let r = Req {
        app,
        req,
        request_id: request_id.to_string(),
        now,
        params,
        tenant,
        store,
        session,
    };
    match (page, method) {
        (Page::Home, "GET") => home(&r),
        (Page::Login, "GET") => Ok(Reply::page(pages::login(&r.ctx()))),
        (Page::Login, "POST") => request_link(&r).await,
        (Page::Auth, "GET") => {
            let token = r.query("token").unwrap_or_default();
            Ok(Reply::page(pages::confirm(&r.ctx(), &token)))
        }
        (Page::Auth, "POST") => sign_in(&r).await,
        (Page::Verify, "GET") => {
            let token = r.query("token").unwrap_or_default();
            Ok(Reply::page(pages::verify_confirm(&r.ctx(), &token)))
        }
        (Page::Verify, "POST") => verify_email(&r).await,
        (Page::Logout, "POST") => sign_out(&r).await,
        (Page::Staff, "GET") => staff_search(&r).await,
        (Page::StaffLicenses, "POST") => issue_license(&r).await,
        (Page::StaffLicense, "GET") => staff_license(&r).await,
        (Page::StaffLicense, "POST") => staff_license_action(&r).await,
        (Page::ApiKeys, "GET") => api_keys(&r, None).await,
        (Page::ApiKeys, "POST") => api_key_action(&r).await,
        (Page::Team, "GET") => team(&r).await,
        (Page::Team, "POST") => team_action(&r).await,
        (Page::Billing, "GET") => billing::page(&r).await,
        (Page::BillingExport, "GET") => billing::download(&r).await,
        (Page::StaffCustomers, "GET") => customers::search(&r).await,
        (Page::StaffCustomer, "GET") => customers::page(&r).await,
        (Page::StaffCustomer, "POST") => customers::link(&r).await,
        // An organization's pages are not a vendor's.
        (Page::Org(_), _) => Err(not_found()),
        (Page::Me, "GET") => my_licenses(&r).await,
        (Page::MeLicense, "POST") => customer_deactivate(&r).await,
        (Page::MeLicenseFile, "GET") => customer_license_file(&r).await,
        (Page::Costs, _) => Err(not_found()),
        _ => Err(Error::MethodNotAllowed {
            method: method.to_string(),
            allow: vec!["GET", "POST"],
        }),
    }
}

fn home(r: &Req<'_>) -> Result<Reply, Error> {
    let to = match &r.session {
        Some((_, s)) if s.role == Role::Staff => format!("{}/staff", r.base()),
        Some(_) => format!("{}/me", r.base()),
        None => format!("{}/login", r.base()),
    };
    Ok(Reply::see_other(to))
}

async fn request_link(r: &Req<'_>) -> Result<Reply, Error> {
    r.check_origin()?;
    let form = Form::parse(r.req.body().as_ref());
    let email = Email::normalise(form.text("email"))
        .map_err(|_| Error::validation("enter a valid e-mail address"))?;
    let mailer = r
        .app
        .mailer
        .as_ref()
        .ok_or_else(|| Error::internal("PORTAL_SENDER is not configured"))?;
    uc::request_link(&r.store, &r.tenant, mailer, r.base_url()?, &email, r.now).await?;
    Ok(Reply::page(pages::link_sent(&r.ctx())))
}

async fn sign_in(r: &Req<'_>) -> Result<Reply, Error> {
    r.check_origin()?;
    let form = Form::parse(r.req.body().as_ref());
    let (id, session) = uc::sign_in(&r.store, &r.tenant, form.text("token"), r.now).await?;
    let max_age = session.expires_epoch - r.now.unix_timestamp();
    let cookie = web::session_cookie(r.tenant.tenant_id.as_str(), &id, max_age);
    Ok(Reply::see_other(format!("{}/", r.base())).with_cookie(cookie))
}

/// Follow a public trial's e-mail verification link (once).
async fn verify_email(r: &Req<'_>) -> Result<Reply, Error> {
    r.check_origin()?;
    let form = Form::parse(r.req.body().as_ref());
    uc::verify_trial_email(&r.store, form.text("token"), &r.request_id, r.now).await?;
    Ok(Reply::page(pages::verified(&r.ctx())))
}

async fn sign_out(r: &Req<'_>) -> Result<Reply, Error> {
    r.check_origin()?;
    let Some((id, s)) = &r.session else {
        return Err(Error::Unauthenticated);
    };
    web::check_csrf(&Form::parse(r.req.body().as_ref()), s)?;
    uc::sign_out(&r.store, id).await?;
    Ok(Reply::see_other(format!("{}/login", r.base()))
        .with_cookie(web::clear_cookie(r.tenant.tenant_id.as_str())))
}

async fn staff_search(r: &Req<'_>) -> Result<Reply, Error> {
    r.who(Role::Staff)?;
    let q = r.query("q").unwrap_or_default();
    let found = match uc::search_licenses(&r.store, r.signer()?, &q, r.now).await {
        Ok(found) => Ok(found),
        Err(e @ Error::Invalid { .. }) => Err(e.public_message()),
        Err(e) => return Err(e),
    };
    let policies = r.store.list_policies(r.signer()?, 100, None).await?.items;
    let found = found.as_deref().map_err(Clone::clone);
    let page = pages::staff_search(&r.ctx(), &q, found, &policies, r.now);
    Ok(Reply::page(page))
}

/// Issue a license (policy and customer e-mail), then show it.
async fn issue_license(r: &Req<'_>) -> Result<Reply, Error> {
    let (form, s) = r.form_of(Role::Staff)?;
    let policy = crate::ids::PolicyId::parse(form.text("policy"))
        .map_err(|_| Error::validation("choose a policy"))?;
    let customer_email = Email::normalise(form.text("email"))
        .map_err(|_| Error::validation("enter the customer's e-mail address"))?;
    let req = licensing::NewLicense {
        policy,
        customer_email,
        expires_at: None,
        key: None,
        metadata: serde_json::Map::new(),
        commercial: None,
        grant_to: None,
    };
    let state = licensing::issue(&r.app.policies, &r.store, &r.actor(s), req, r.now).await?;
    Ok(Reply::see_other(format!(
        "{}/staff/licenses/{}?done=issued",
        r.base(),
        state.license.id
    )))
}

fn license_id(r: &Req<'_>) -> Result<LicenseId, Error> {
    r.params
        .get("id")
        .and_then(|id| LicenseId::parse(id.as_str()).ok())
        .ok_or_else(crate::error::license_not_found)
}

/// A `done` message from a redirect, only from a fixed list.
fn done_message(r: &Req<'_>) -> Option<&'static str> {
    Some(match r.query("done")?.as_str() {
        "suspended" => "License suspended.",
        "resumed" => "License resumed.",
        "cancelled" => "License cancelled.",
        "renewed" => "License renewed.",
        "issued" => "License issued: the customer can sign in with their e-mail.",
        "deactivated" => "Machine deactivated; its seat is free.",
        "invited" => "Invitation saved: they can now sign in with their e-mail.",
        "removed" => "Removed: their sessions end at their next request.",
        _ => return None,
    })
}

async fn staff_license(r: &Req<'_>) -> Result<Reply, Error> {
    let s = r.who(Role::Staff)?;
    let id = license_id(r)?;
    let license = uc::license_for(&r.store, s, &id).await?;
    let signer = r.signer()?;
    let (policy, activations, counters, daily, audit) = tokio::try_join!(
        r.app.policies.get(&r.store, &license.policy),
        licensing::activations(&r.store, &id),
        metering::usage_of_license(&r.store, &id, None, None),
        uc::daily_usage(&r.store, signer, &id, r.now, 30),
        uc::license_audit(&r.store, signer, &id, 200),
    )?;
    let page = pages::LicensePage {
        license: &license,
        policy: policy.as_deref(),
        activations: &activations,
        counters: &counters,
        daily: &daily,
        audit: &audit,
        done: done_message(r),
        now: r.now,
    };
    Ok(Reply::page(pages::license(&r.ctx(), &page)))
}

fn activation_of(form: &Form, license: &LicenseId) -> Result<ActivationId, Error> {
    ActivationId::parse(form.text("activation"))
        .ok()
        .filter(|a| &a.license_id() == license)
        .ok_or_else(licensing::activation_not_found)
}

async fn staff_license_action(r: &Req<'_>) -> Result<Reply, Error> {
    let (form, s) = r.form_of(Role::Staff)?;
    let id = license_id(r)?;
    uc::license_for(&r.store, s, &id).await?;
    let actor = r.actor(s);
    let what = match form.text("action") {
        "suspend" => Lifecycle::Suspend,
        "resume" => Lifecycle::Resume,
        "cancel" => Lifecycle::Cancel,
        "renew" => {
            let days = form
                .text("days")
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=licensing::MAX_RENEW_DAYS).contains(d))
                .ok_or_else(|| Error::validation("renew by 1 to 36500 days"))?;
            Lifecycle::Renew(RenewTo::Days(days))
        }
        "deactivate" => {
            let which = ActivationRef::Id(activation_of(&form, &id)?);
            licensing::deactivate(&r.store, &actor, which, r.now).await?;
            return Ok(Reply::see_other(format!(
                "{}/staff/licenses/{id}?done=deactivated",
                r.base()
            )));
        }
        _ => return Err(Error::validation("unknown action")),
    };
    let done = match what {
        Lifecycle::Suspend => "suspended",
        Lifecycle::Resume => "resumed",
        Lifecycle::Cancel => "cancelled",
        Lifecycle::Renew(_) => "renewed",
    };
    licensing::lifecycle(&r.app.policies, &r.store, &actor, &id, what, r.now).await?;
    Ok(Reply::see_other(format!(
        "{}/staff/licenses/{id}?done={done}",
        r.base()
    )))
}

async fn api_keys(r: &Req<'_>, new_key: Option<&str>) -> Result<Reply, Error> {
    r.who(Role::Staff)?;
    let keys = r.store.list_api_keys().await?;
    Ok(Reply::page(pages::api_keys(
        &r.ctx(),
        &keys,
        new_key,
        r.now,
    )))
}

async fn api_key_action(r: &Req<'_>) -> Result<Reply, Error> {
    let (form, s) = r.form_of(Role::Staff)?;
    let actor = r.actor(s);
    match form.text("action") {
        "create" => {
            let name = form.text("name").to_string();
            bounded("name", &name, 200)?;
            let scope = match form.text("scope") {
                "admin" => Scope::Admin,
                "integration" => Scope::Integration,
                _ => return Err(Error::validation("scope is admin or integration")),
            };
            let pepper = r.app.pepper()?;
            let (_, key) =
                catalog::create_api_key(pepper, &r.store, &actor, name, vec![scope], None, r.now)
                    .await?;
            // Shown once, on this answer only (not a redirect that could be replayed).
            api_keys(r, Some(&key)).await
        }
        "revoke" => {
            let id = ApiKeyId::parse(form.text("key"))
                .map_err(|_| Error::not_found("API_KEY_NOT_FOUND", "no API key with that id"))?;
            catalog::revoke_api_key(&r.app.keys, &r.store, &actor, &id, r.now).await?;
            Ok(Reply::see_other(format!("{}/staff/api-keys", r.base())))
        }
        _ => Err(Error::validation("unknown action")),
    }
}

async fn team(r: &Req<'_>) -> Result<Reply, Error> {
    r.who(Role::Staff)?;
    let staff = r.store.list_staff().await?;
    let admin = r.tenant.admin_email.as_str();
    Ok(Reply::page(pages::team(
        &r.ctx(),
        admin,
        &staff,
        done_message(r),
    )))
}

/// Invite (`email`), or `action` = `remove` (`email`).
async fn team_action(r: &Req<'_>) -> Result<Reply, Error> {
    let (form, s) = r.form_of(Role::Staff)?;
    let email = Email::normalise(form.text("email"))
        .map_err(|_| Error::validation("enter a valid e-mail address"))?;
    let done = match form.text("action") {
        "" | "invite" => {
            uc::invite_staff(&r.store, &r.actor(s), email, r.now).await?;
            "invited"
        }
        "remove" => {
            uc::remove_staff(&r.store, &r.tenant, &r.actor(s), &email, r.now).await?;
            "removed"
        }
        _ => return Err(Error::validation("unknown action")),
    };
    Ok(Reply::see_other(format!(
        "{}/staff/team?done={done}",
        r.base()
    )))
}

async fn my_licenses(r: &Req<'_>) -> Result<Reply, Error> {
    let s = r.who(Role::Customer)?;
    let licenses = uc::my_licenses(&r.store, r.signer()?, s).await?;
    let mut with_machines = Vec::with_capacity(licenses.len());
    for l in licenses {
        let acts = r.store.list_activations(&l.id).await?;
        with_machines.push((l, acts));
    }
    let page = pages::my_licenses(&r.ctx(), &with_machines, done_message(r), r.now);
    Ok(Reply::page(page))
}

/// A signed offline license file of one of my licenses (30 days, cut to
/// the policy's `max_file_ttl_seconds` and never past the license),
/// optionally bound to one of its active machines.
async fn customer_license_file(r: &Req<'_>) -> Result<Reply, Error> {
    let s = r.who(Role::Customer)?;
    let id = license_id(r)?;
    // Another customer's license is not found, exactly like a missing one.
    let license = uc::license_for(&r.store, s, &id).await?;
    let fingerprint = match r.query("fingerprint").filter(|f| !f.is_empty()) {
        Some(f) => Some(Fingerprint::parse(f)?),
        None => None,
    };
    let signer = licensing::FileSigner {
        keys: r.app.signing_keys()?,
        version: r.tenant.signing_key_version,
    };
    let file = licensing::checkout(
        &r.app.policies,
        &r.app.license_terms,
        &r.store,
        &license.key,
        fingerprint,
        PORTAL_FILE_TTL,
        signer,
        false,
        r.now,
    )
    .await?;
    let name = format!("{}.lic", license.id);
    Ok(Reply {
        status: 200,
        body: ReplyBody::File(name, file.certificate),
        cookies: Vec::new(),
    })
}

/// License files from the portal are asked for 30 days; the policy's
/// `max_file_ttl_seconds` (14 days unless set) and the license's own expiry
/// cut that, as for the API.
const PORTAL_FILE_TTL: u32 = 30 * 86_400;

async fn customer_deactivate(r: &Req<'_>) -> Result<Reply, Error> {
    let (form, s) = r.form_of(Role::Customer)?;
    let id = license_id(r)?;
    // Another customer's license is not found, exactly like a missing one.
    uc::license_for(&r.store, s, &id).await?;
    if form.text("action") != "deactivate" {
        return Err(Error::validation("unknown action"));
    }
    let which = ActivationRef::Id(activation_of(&form, &id)?);
    // The churn limit of the license's policy applies as in the API.
    licensing::deactivate(&r.store, &r.actor(s), which, r.now).await?;
    Ok(Reply::see_other(format!(
        "{}/me?done=deactivated",
        r.base()
    )))
}
