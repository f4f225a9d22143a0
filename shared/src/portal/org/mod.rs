//! The portal of a customer organization (a tenant of kind `customer`),
//! `/portal/{customer_id}/...`: its members sign in by one-time link (the
//! same flow as a vendor's portal) and run the organization's pool: home,
//! license catalog (with the overage cap), the live pool, app keys,
//! members and roles, audit. Signing in sets the page cookie (Path
//! `/portal/{customer_id}`) and the API cookie (`customer_session`, Path
//! `/v1/customer`) of one session.
//!
//! Every page checks the member's role against the same [`Permission`] as
//! the `/v1/customer` route it mirrors, and calls the same use case.

mod keys;
mod people;
mod pool;

use super::pages::{self, PageCtx};
use super::web::{self, Form};
use super::{Page, Reply};
use crate::app::App;
use crate::domain::portal::{LINK_REQUESTS_PER_WINDOW, LINK_WINDOW_SECS};
use crate::domain::{Actor, CustomerOrg, CustomerStatus, Member, Permission, Role, Session};
use crate::error::Error;
use crate::ids::Email;
use crate::store::TenantStore;
use crate::usecases::customers::{self, members};
use crate::usecases::portal::{digest, link_refused};
use lambda_http::{Request, RequestExt};
use std::collections::HashMap;
use time::OffsetDateTime;

/// The organization's own pages (beside sign-in, home and sign-out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgPage {
    /// `/licenses`: the catalog across vendors; POST `/licenses/{id}` sets a cap.
    Licenses,
    License,
    /// `/pool`: who holds what now.
    Pool,
    ApiKeys,
    Members,
    Audit,
}

/// The organization's paths, for the portal's router.
pub(super) const ROUTES: [(&str, OrgPage); 6] = [
    ("/portal/{tenant}/licenses", OrgPage::Licenses),
    ("/portal/{tenant}/licenses/{id}", OrgPage::License),
    ("/portal/{tenant}/pool", OrgPage::Pool),
    ("/portal/{tenant}/api-keys", OrgPage::ApiKeys),
    ("/portal/{tenant}/members", OrgPage::Members),
    ("/portal/{tenant}/audit", OrgPage::Audit),
];

/// One request to an organization's portal.
struct OrgReq<'a> {
    app: &'a App,
    req: &'a Request,
    request_id: &'a str,
    params: HashMap<String, String>,
    now: OffsetDateTime,
    org: CustomerOrg,
    store: TenantStore,
    /// The session id and session, with the member's current record.
    session: Option<(String, Session, Member)>,
}

impl OrgReq<'_> {
    fn ctx(&self) -> PageCtx<'_> {
        PageCtx {
            tenant_id: self.org.tenant_id.as_str(),
            tenant_name: &self.org.name,
            session: self.session.as_ref().map(|(_, s, _)| s),
        }
    }
    fn base(&self) -> String {
        format!("/portal/{}", self.org.tenant_id)
    }
    fn base_url(&self) -> Result<&str, Error> {
        self.app
            .config
            .portal_base_url
            .as_deref()
            .ok_or_else(|| Error::internal("PORTAL_BASE_URL is not configured"))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.req.headers().get(name).and_then(|v| v.to_str().ok())
    }
    fn check_origin(&self) -> Result<(), Error> {
        web::check_origin(
            self.header("origin"),
            self.header("referer"),
            self.base_url()?,
        )
    }
    fn form(&self) -> Form {
        Form::parse(self.req.body().as_ref())
    }
    fn query(&self, name: &str) -> Option<String> {
        self.req
            .query_string_parameters_ref()
            .and_then(|q| q.first(name).map(str::to_string))
    }
    /// The signed-in member, if their role may do `p` (the API's rule:
    /// [`Permission::min_role`]); else 401, or 403 as the API answers.
    fn member(&self, p: Permission) -> Result<&Member, Error> {
        let (_, _, m) = self.session.as_ref().ok_or(Error::Unauthenticated)?;
        if m.role >= p.min_role() {
            return Ok(m);
        }
        Err(Error::Forbidden(format!(
            "your role may not {} (needs {} or above)",
            p.name(),
            p.min_role().as_str()
        )))
    }
    /// A signed-in POST allowed `p`: the Origin, the form's CSRF token, the role.
    fn form_for(&self, p: Permission) -> Result<(Form, &Member), Error> {
        self.check_origin()?;
        let (_, s, _) = self.session.as_ref().ok_or(Error::Unauthenticated)?;
        let form = self.form();
        web::check_csrf(&form, s)?;
        Ok((form, self.member(p)?))
    }
    /// Who did it, for the audit trail: `member:<email>`, as on the API.
    fn actor(&self) -> Result<Actor, Error> {
        let (_, s, _) = self.session.as_ref().ok_or(Error::Unauthenticated)?;
        Ok(crate::usecases::portal::actor(s, self.request_id))
    }
    /// A `done` message from a redirect, only from a fixed list.
    fn done(&self) -> Option<&'static str> {
        Some(match self.query("done")?.as_str() {
            "cap" => "Overage cap saved.",
            "revoked" => "API key revoked: it stops working at once.",
            "invited" => "Invitation sent: they can sign in with the e-mailed link.",
            "role" => "Role changed.",
            "removed" => "Member removed: their sessions end at their next request.",
            _ => return None,
        })
    }
}

/// Serve `page` of an active organization's portal.
pub(super) async fn serve(
    app: &App,
    req: &Request,
    request_id: &str,
    params: HashMap<String, String>,
    org: CustomerOrg,
    page: Page,
    error_ctx: &mut Option<(String, String, Option<Session>)>,
) -> Result<Reply, Error> {
    if org.status != CustomerStatus::Active {
        return Err(Error::not_found(
            "PORTAL_NOT_FOUND",
            "there is no portal here",
        ));
    }
    let now = app.now();
    let store = app.store.tenant(&org.tenant_id);
    let cookie = web::cookie(
        req.headers().get("cookie").and_then(|v| v.to_str().ok()),
        web::COOKIE,
    );
    let session = match cookie {
        Some(id) if !id.is_empty() && id.len() <= 128 => member_session(&store, id, now).await?,
        _ => None,
    };
    *error_ctx = Some((
        org.tenant_id.to_string(),
        org.name.clone(),
        session.as_ref().map(|(_, s, _)| s.clone()),
    ));
    let r = OrgReq {
        app,
        req,
        request_id,
        params,
        now,
        org,
        store,
        session,
    };
    match (page, req.method().as_str()) {
        (Page::Home, "GET") => pool::home(&r).await,
        (Page::Org(OrgPage::Licenses), "GET") => pool::catalog(&r).await,
        (Page::Org(OrgPage::License), "POST") => pool::set_cap(&r).await,
        (Page::Org(OrgPage::Pool), "GET") => pool::live(&r).await,
        (Page::Org(OrgPage::ApiKeys), "GET") => keys::page(&r, None).await,
        (Page::Org(OrgPage::ApiKeys), "POST") => keys::action(&r).await,
        (Page::Org(OrgPage::Members), "GET") => people::members(&r).await,
        (Page::Org(OrgPage::Members), "POST") => people::member_action(&r).await,
        (Page::Org(OrgPage::Audit), "GET") => people::audit(&r).await,
        (Page::Login, "GET") => Ok(Reply::page(pages::login(&r.ctx()))),
        (Page::Login, "POST") => request_link(&r).await,
        (Page::Auth, "GET") => {
            let token = req
                .query_string_parameters_ref()
                .and_then(|q| q.first("token").map(str::to_string))
                .unwrap_or_default();
            Ok(Reply::page(pages::confirm(&r.ctx(), &token)))
        }
        (Page::Auth, "POST") => sign_in(&r).await,
        (Page::Logout, "POST") => sign_out(&r).await,
        (Page::Costs, "GET") => {
            super::org_costs::serve(app, &r.ctx(), &r.org, r.session.as_ref().map(|s| &s.2), now)
                .await
        }
        _ => Err(super::not_found()),
    }
}

/// The live session with this id whose member still is one.
async fn member_session(
    ts: &TenantStore,
    id: &str,
    now: OffsetDateTime,
) -> Result<Option<(String, Session, Member)>, Error> {
    let Some(s) = ts
        .get_session(&digest(id))
        .await?
        .filter(|s| s.live_at(now) && s.role == Role::Member)
    else {
        return Ok(None);
    };
    Ok(ts
        .get_member(&s.email)
        .await?
        .map(|m| (id.to_string(), s, m)))
}

/// E-mail a sign-in link if the address is a member; the same answer
/// either way (only the per-address limit refuses, 429).
async fn request_link(r: &OrgReq<'_>) -> Result<Reply, Error> {
    r.check_origin()?;
    let email = Email::normalise(r.form().text("email"))
        .map_err(|_| Error::validation("enter a valid e-mail address"))?;
    let at = r.now.unix_timestamp();
    let window = at - at.rem_euclid(LINK_WINDOW_SECS);
    let subject = format!("LINK#{}", digest(email.as_str()));
    let claim = r
        .store
        .take_tokens(&subject, window, 1, LINK_REQUESTS_PER_WINDOW)
        .await?;
    if claim.granted == 0 {
        return Err(Error::RateLimited {
            retry_after_secs: (window + LINK_WINDOW_SECS - at).max(1) as u64,
        });
    }
    if r.store.get_member(&email).await?.is_some() {
        let mailer = r
            .app
            .mailer
            .as_ref()
            .ok_or_else(|| Error::internal("PORTAL_SENDER is not configured"))?;
        let intro = "You asked to sign in.";
        members::send_link(
            &r.store,
            &r.org,
            mailer,
            r.base_url()?,
            &email,
            intro,
            r.now,
        )
        .await?;
    }
    Ok(Reply::page(pages::link_sent(&r.ctx())))
}

/// Consume the link (once), open a session, set both cookies.
async fn sign_in(r: &OrgReq<'_>) -> Result<Reply, Error> {
    r.check_origin()?;
    let form = r.form();
    let token = form.text("token");
    if token.is_empty() || token.len() > 128 {
        return Err(link_refused());
    }
    let link = r
        .store
        .consume_magic_link(&digest(token), r.now)
        .await?
        .filter(|l| l.role == Role::Member)
        .ok_or_else(link_refused)?;
    // A member removed after the link was sent no longer gets in.
    if r.store.get_member(&link.email).await?.is_none() {
        return Err(link_refused());
    }
    let (id, session) = customers::open_session(&r.store, &link.email, r.now).await?;
    let max_age = session.expires_epoch - r.now.unix_timestamp();
    let t = &r.org.tenant_id;
    Ok(Reply::see_other(format!("{}/", r.base()))
        .with_cookie(web::session_cookie(t.as_str(), &id, max_age))
        .with_cookie(customers::api_cookie(t, &id, max_age)))
}

async fn sign_out(r: &OrgReq<'_>) -> Result<Reply, Error> {
    r.check_origin()?;
    let Some((id, s, _)) = &r.session else {
        return Err(Error::Unauthenticated);
    };
    web::check_csrf(&r.form(), s)?;
    r.store.delete_session(&digest(id)).await?;
    let t = &r.org.tenant_id;
    Ok(Reply::see_other(format!("{}/login", r.base()))
        .with_cookie(web::clear_cookie(t.as_str()))
        .with_cookie(customers::api_cookie(t, "", 0)))
}
