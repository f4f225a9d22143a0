//! A customer organization's own API, `/v1/customer/...`: request bodies →
//! use cases → views. Every operation states the [`Permission`] it needs
//! (the RBAC matrix is on [`Permission`] and in docs/customers.md).

mod keys;
mod pool;
pub mod views;

use super::envelope::Reply;
use super::{request, Ctx, CustomerCaller};
use crate::domain::{MemberRole, Permission};
use crate::error::Error;
use crate::functions::{CustomerOp, MemberOp};
use crate::http::auth::CustomerCredential;
use crate::ids::Email;
use crate::usecases::audit;
use crate::usecases::customers::members;
use serde::Deserialize;
use serde_json::json;

type R = Result<Reply, Error>;

pub async fn serve(ctx: &Ctx<'_>, c: &CustomerCaller, op: CustomerOp) -> R {
    match op {
        CustomerOp::Session => session(c),
        CustomerOp::ApiKey(op) => keys::serve(ctx, c, op).await,
        CustomerOp::Member(op) => member(ctx, c, op).await,
        CustomerOp::Pool(op) => pool::serve(ctx, c, op).await,
        CustomerOp::AuditList => {
            c.require(Permission::ReadAudit)?;
            let since = ctx.query.timestamp("since")?;
            let (limit, cursor) = (ctx.query.limit()?, ctx.query.cursor());
            let signer = ctx.app.signer()?;
            let page = audit::list(&c.store, signer, since, limit, cursor).await?;
            Ok(Reply::list(
                page.items.iter().map(crate::views::audit_view).collect(),
                page.next_cursor,
            ))
        }
    }
}

/// `GET /v1/customer/session`: who the session is (a person only).
fn session(c: &CustomerCaller) -> R {
    match &c.credential {
        CustomerCredential::Session { email, role, csrf } => Ok(Reply::ok(json!({
            "customer_id": c.customer,
            "email": email,
            "role": role,
            "csrf_token": csrf,
        }))),
        CustomerCredential::Key { .. } => Err(Error::Forbidden(
            "an app's API key has no session; sign in at the portal".into(),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    email: String,
    role: MemberRole,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: MemberRole,
}

async fn member(ctx: &Ctx<'_>, c: &CustomerCaller, op: MemberOp) -> R {
    let (ts, now) = (&c.store, ctx.now);
    // A malformed e-mail in the path is "not found", as any malformed id.
    let path_email =
        || Email::normalise(ctx.param("email")).map_err(|_| members::member_not_found());
    match op {
        MemberOp::List => {
            c.require(Permission::ReadMembers)?;
            let list = members::list(ts).await?;
            Ok(Reply::list(
                list.iter().map(views::member_view).collect(),
                None,
            ))
        }
        MemberOp::Add => {
            c.require(Permission::ManageMembers)?;
            let b: InviteBody = request::json(ctx.body)?;
            let email = Email::normalise(&b.email)
                .map_err(|_| Error::validation("email is not an e-mail address"))?;
            let (mailer, base) = mail(ctx)?;
            let m = members::invite(ts, &c.org, mailer, base, &c.actor, email, b.role, now).await?;
            Ok(Reply::created(views::member_view(&m)))
        }
        MemberOp::Patch => {
            c.require(Permission::ManageMembers)?;
            let email = path_email()?;
            let b: RoleBody = request::json(ctx.body)?;
            let m = members::change_role(ts, &c.actor, &email, b.role, now).await?;
            Ok(Reply::ok(views::member_view(&m)))
        }
        MemberOp::Remove => {
            c.require(Permission::ManageMembers)?;
            let email = path_email()?;
            members::remove(ts, &c.actor, &email, now).await?;
            Ok(Reply::ok(json!({ "email": email, "removed": true })))
        }
    }
}

/// The mailer and the portal's origin (for sign-in links).
fn mail<'a>(ctx: &'a Ctx<'_>) -> Result<(&'a crate::mail::Mailer, &'a str), Error> {
    let mailer = ctx
        .app
        .mailer
        .as_ref()
        .ok_or_else(|| Error::internal("this function has no mail sender configured"))?;
    let base = ctx
        .app
        .config
        .portal_base_url
        .as_deref()
        .ok_or_else(|| Error::internal("no portal base URL configured"))?;
    Ok((mailer, base))
}
