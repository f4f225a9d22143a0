//! The portal of a customer organization (a tenant of kind `customer`),
//! `/portal/{customer_id}/...`: its members sign in by one-time link (the
//! same flow as a vendor's portal) and land on the organization's home.
//! Signing in sets the page cookie (Path `/portal/{customer_id}`) and the
//! API cookie (`customer_session`, Path `/v1/customer`) of one session.

use super::pages::{self, PageCtx};
use super::web::{self, Form};
use super::{Page, Reply};
use crate::app::App;
use crate::domain::portal::{LINK_REQUESTS_PER_WINDOW, LINK_WINDOW_SECS};
use crate::domain::{CustomerOrg, CustomerStatus, Member, Role, Session};
use crate::error::Error;
use crate::ids::Email;
use crate::store::TenantStore;
use crate::usecases::customers::{self, members};
use crate::usecases::portal::{digest, link_refused};
use lambda_http::{Request, RequestExt};
use maud::{html, Markup};
use time::OffsetDateTime;

/// One request to an organization's portal.
struct OrgReq<'a> {
    app: &'a App,
    req: &'a Request,
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
}

/// Serve `page` of an active organization's portal.
pub(super) async fn serve(
    app: &App,
    req: &Request,
    org: CustomerOrg,
    page: Page,
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
    let r = OrgReq {
        app,
        req,
        now,
        org,
        store,
        session,
    };
    match (page, req.method().as_str()) {
        (Page::Home, "GET") => home(&r),
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

fn home(r: &OrgReq<'_>) -> Result<Reply, Error> {
    let Some((_, _, member)) = &r.session else {
        return Ok(Reply::see_other(format!("{}/login", r.base())));
    };
    let ctx = r.ctx();
    Ok(Reply::page(pages::layout(
        &ctx,
        "Home",
        html! {
            h1 { (r.org.name) }
            p { "Signed in as " (member.email) " (" (member.role.as_str()) "). Domain "
                (r.org.domain) " verified." }
            (home_sections(&r.org, member))
        },
    )))
}

/// The hook of the organization's home page: what it shows below the
/// greeting. The license pool (catalog figures: vendor, product, seats in
/// use / available, overage, cost) goes here.
pub fn home_sections(_org: &CustomerOrg, _member: &Member) -> Markup {
    html! {
        section #pool {
            h2 { "License pool" }
            p { "Licenses vendors grant to your organization appear here." }
        }
    }
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
