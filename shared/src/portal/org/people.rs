//! The organization's members and roles (`/v1/customer/members`: every
//! member reads, admins invite, change roles and remove; the last admin
//! stays) and its audit trail (`/v1/customer/audit-events`, newest first).

use super::{OrgReq, Reply};
use crate::clock::rfc3339;
use crate::domain::{AuditEvent, Member, MemberRole, Permission};
use crate::error::Error;
use crate::ids::Email;
use crate::portal::pages::{csrf, layout, PageCtx};
use crate::usecases::audit;
use crate::usecases::customers::members;
use maud::{html, Markup};

/// Audit events per page.
pub const AUDIT_PAGE: i32 = 50;

const ROLES: [MemberRole; 3] = [MemberRole::Viewer, MemberRole::Manager, MemberRole::Admin];

/// `GET /portal/{org}/members`.
pub(super) async fn members(r: &OrgReq<'_>) -> Result<Reply, Error> {
    let me = r.member(Permission::ReadMembers)?;
    let admin = me.role >= Permission::ManageMembers.min_role();
    let list = members::list(&r.store).await?;
    let ctx = r.ctx();
    Ok(Reply::page(members_page(&ctx, &list, admin, r.done())))
}

fn role_of(s: &str) -> Result<MemberRole, Error> {
    MemberRole::parse(s).ok_or_else(|| Error::validation("role is viewer, manager or admin"))
}

/// `POST /portal/{org}/members`: `action` = `invite` (`email`, `role`),
/// `role` (`email`, `role`) or `remove` (`email`). Admins only.
pub(super) async fn member_action(r: &OrgReq<'_>) -> Result<Reply, Error> {
    let (form, _) = r.form_for(Permission::ManageMembers)?;
    let actor = r.actor()?;
    let email = || {
        Email::normalise(form.text("email"))
            .map_err(|_| Error::validation("enter a valid e-mail address"))
    };
    let done = match form.text("action") {
        "invite" => {
            let role = role_of(form.text("role"))?;
            let mailer = r
                .app
                .mailer
                .as_ref()
                .ok_or_else(|| Error::internal("PORTAL_SENDER is not configured"))?;
            let base = r.base_url()?;
            members::invite(
                &r.store,
                &r.org,
                mailer,
                base,
                &actor,
                email()?,
                role,
                r.now,
            )
            .await?;
            "invited"
        }
        "role" => {
            let role = role_of(form.text("role"))?;
            members::change_role(&r.store, &actor, &email()?, role, r.now).await?;
            "role"
        }
        "remove" => {
            members::remove(&r.store, &actor, &email()?, r.now).await?;
            "removed"
        }
        _ => return Err(Error::validation("unknown action")),
    };
    Ok(Reply::see_other(format!(
        "{}/members?done={done}",
        r.base()
    )))
}

/// `GET /portal/{org}/audit[?cursor=]`: newest first, [`AUDIT_PAGE`] a page.
pub(super) async fn audit(r: &OrgReq<'_>) -> Result<Reply, Error> {
    r.member(Permission::ReadAudit)?;
    let cursor = r.query("cursor").filter(|c| !c.is_empty());
    let signer = r.app.signer()?;
    let page = audit::list(&r.store, signer, None, AUDIT_PAGE, cursor.as_deref()).await?;
    let ctx = r.ctx();
    Ok(Reply::page(audit_page(
        &ctx,
        &page.items,
        page.next_cursor.as_deref(),
    )))
}

fn role_select(selected: MemberRole, id: Option<&str>) -> Markup {
    html! {
        select name="role" id=[id] aria-label="Role" {
            @for role in ROLES {
                option value=(role.as_str()) selected[role == selected] { (role.as_str()) }
            }
        }
    }
}

fn members_page(ctx: &PageCtx<'_>, list: &[Member], admin: bool, done: Option<&str>) -> Markup {
    let base = ctx.base();
    let action = format!("{base}/members");
    layout(
        ctx,
        "Members",
        html! {
            h1 { "Members and roles" }
            @if let Some(d) = done { p.flash #flash { (d) } }
            p.muted { "Viewers read the catalog, the pool, members and the audit trail; \
                       managers also manage API keys and overage caps; admins also manage \
                       members. The last admin can be neither removed nor demoted." }
            @if admin {
                form #invite method="post" action=(action) {
                    (csrf(ctx))
                    input type="hidden" name="action" value="invite";
                    label for="email" { "Invite (e-mail)" }
                    input #email type="email" name="email" required autocomplete="off";
                    label for="invite-role" { "Role" }
                    (role_select(MemberRole::Viewer, Some("invite-role")))
                    " " button type="submit" { "Invite" }
                }
            }
            table.stack #members {
                thead { tr {
                    th { "E-mail" } th { "Role" } th { "Invited by" } th { "Since" } th { "" }
                } }
                tbody {
                    @for m in list {
                        tr data-email=(m.email) {
                            td data-label="E-mail" { (m.email) }
                            td.role data-label="Role" {
                                @if admin {
                                    form.inline method="post" action=(action) {
                                        (csrf(ctx))
                                        input type="hidden" name="action" value="role";
                                        input type="hidden" name="email" value=(m.email);
                                        (role_select(m.role, None))
                                        " " button type="submit" { "Change" }
                                    }
                                } @else {
                                    (m.role.as_str())
                                }
                            }
                            td data-label="Invited by" { (m.invited_by) }
                            td data-label="Since" { (rfc3339(m.created_at)[..10]) }
                            td {
                                @if admin {
                                    form.inline method="post" action=(action) {
                                        (csrf(ctx))
                                        input type="hidden" name="action" value="remove";
                                        input type="hidden" name="email" value=(m.email);
                                        button.danger type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn audit_page(ctx: &PageCtx<'_>, events: &[AuditEvent], next: Option<&str>) -> Markup {
    let base = ctx.base();
    layout(
        ctx,
        "Audit",
        html! {
            h1 { "Audit trail" }
            p.muted { "Newest first." }
            @if events.is_empty() {
                p.muted #empty { "Nothing yet." }
            } @else {
                table.stack #audit {
                    thead { tr {
                        th { "When" } th { "Event" } th { "By" } th { "Target" } th { "Details" }
                    } }
                    tbody {
                        @for e in events {
                            tr {
                                td data-label="When" { (rfc3339(e.at)) }
                                td.code data-label="Event" { code { (code_of(e)) } }
                                td data-label="By" { (e.actor) }
                                td data-label="Target" { code { (e.target_id) } }
                                td data-label="Details" {
                                    @if !e.data.is_null() { code { (e.data.to_string()) } }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(c) = next {
                p { a #older href={(base) "/audit?cursor=" (urlencode(c))} { "Older events" } }
            }
        },
    )
}

/// The event's code as the API spells it (`GRANT.UPDATED`).
fn code_of(e: &AuditEvent) -> String {
    serde_json::to_value(e.code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A cursor in a query string.
fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
