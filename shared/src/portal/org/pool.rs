//! The organization's home, its license catalog across vendors (with the
//! overage cap form) and the live pool: the pages of `GET /v1/customer/catalog`,
//! `GET /v1/customer/checkouts` and `PATCH /v1/customer/licenses/{id}`.

use super::{OrgReq, Reply};
use crate::clock::rfc3339;
use crate::domain::{Permission, Standing};
use crate::error::{license_not_found, Error};
use crate::ids::LicenseId;
use crate::portal::pages::{csrf, layout, layout_with, PageCtx};
use crate::usecases::pool::{self, CatalogEntry, Held, PoolFigures};
use maud::{html, Markup};
use time::OffsetDateTime;

/// Seconds between two reloads of the live pool page.
pub const POOL_REFRESH_SECS: u32 = 15;

/// `GET /portal/{org}/`: the greeting and the pool's figures.
pub(super) async fn home(r: &OrgReq<'_>) -> Result<Reply, Error> {
    let Some((_, _, member)) = &r.session else {
        return Ok(Reply::see_other(format!("{}/login", r.base())));
    };
    let f = pool::figures(&r.app.store, &r.store, r.now).await?;
    let base = r.base();
    let ctx = r.ctx();
    Ok(Reply::page(layout(
        &ctx,
        "Home",
        html! {
            h1 { (r.org.name) }
            p { "Signed in as " (member.email) " (" (member.role.as_str()) "). Domain "
                (r.org.domain) " verified." }
            (figures(&f))
            p {
                a href={(base) "/licenses"} { "License catalog" } " · "
                a href={(base) "/pool"} { "Who holds what now" }
            }
        },
    )))
}

fn figures(f: &PoolFigures) -> Markup {
    html! {
        section #pool {
            h2 { "License pool" }
            dl.facts {
                dt { "Active licenses" } dd #active-licenses { (f.active_licenses) }
                dt { "Overage checkouts in use now" } dd #overage-now { (f.overage_in_use) }
                dt { "Overage checkouts this month" }
                dd #overage-month { (f.overage_checkouts_this_month) }
                dt { "All checkouts this month" } dd #checkouts-month { (f.checkouts_this_month) }
            }
        }
    }
}

/// `GET /portal/{org}/licenses`: every granted license, live.
pub(super) async fn catalog(r: &OrgReq<'_>) -> Result<Reply, Error> {
    let m = r.member(Permission::Read)?;
    let may_cap = m.role >= Permission::ManageLicenses.min_role();
    let list = pool::catalog(&r.app.store, &r.store, r.now).await?;
    let ctx = r.ctx();
    Ok(Reply::page(catalog_page(
        &ctx,
        &list,
        may_cap,
        r.done(),
        r.now,
    )))
}

/// `POST /portal/{org}/licenses/{id}` (`overage_limit`): the organization's cap.
pub(super) async fn set_cap(r: &OrgReq<'_>) -> Result<Reply, Error> {
    let (form, _) = r.form_for(Permission::ManageLicenses)?;
    let id = r
        .params
        .get("id")
        .and_then(|id| LicenseId::parse(id.as_str()).ok())
        .ok_or_else(license_not_found)?;
    let limit = form
        .text("overage_limit")
        .parse::<u32>()
        .map_err(|_| Error::validation("overage_limit must be a whole number, 0 or more"))?;
    let actor = r.actor()?;
    pool::set_overage_limit(&r.app.store, &r.store, &actor, &id, limit, r.now).await?;
    Ok(Reply::see_other(format!("{}/licenses?done=cap", r.base())))
}

/// `GET /portal/{org}/pool`: the leases held now (reloads itself).
pub(super) async fn live(r: &OrgReq<'_>) -> Result<Reply, Error> {
    r.member(Permission::Read)?;
    let held = pool::checkouts(&r.app.store, &r.store, r.now).await?;
    let ctx = r.ctx();
    Ok(Reply::page(pool_page(&ctx, &held, r.now)))
}

fn status(e: &CatalogEntry, now: OffsetDateTime) -> &'static str {
    match e.license.standing(now) {
        Standing::Valid(s) | Standing::Suspended(s) => s,
        Standing::Cancelled => "cancelled",
        Standing::Expired => "expired",
    }
}

fn catalog_page(
    ctx: &PageCtx<'_>,
    list: &[CatalogEntry],
    may_cap: bool,
    done: Option<&str>,
    now: OffsetDateTime,
) -> Markup {
    let base = ctx.base();
    layout(
        ctx,
        "Licenses",
        html! {
            h1 { "License catalog" }
            @if let Some(d) = done { p.flash #flash { (d) } }
            @if list.is_empty() {
                p.muted #empty { "No vendor has granted your organization a license yet." }
            } @else {
                table.stack #catalog {
                    thead { tr {
                        th { "Vendor" } th { "Product" } th { "Status" } th { "Seats in use" }
                        th { "Available" } th { "Overage in use" } th { "Overage cap" }
                    } }
                    tbody {
                        @for e in list {
                            @let (l, g, live) = (&e.license, &e.grant, &e.leases);
                            @let max = l.terms.max_overage;
                            tr data-license=(l.id) {
                                td data-label="Vendor" { (g.vendor_name) }
                                td data-label="Product" {
                                    (g.product_name.as_deref().unwrap_or(g.product.as_str()))
                                    " " code.muted { (g.product) }
                                }
                                td data-label="Status" {
                                    @let s = status(e, now);
                                    span class={"badge " (s)} { (s) }
                                }
                                td.seats data-label="Seats in use" {
                                    (live.used) " of " (l.max_activations)
                                }
                                td.available data-label="Available" {
                                    (l.max_activations.saturating_sub(live.used))
                                }
                                td.overage data-label="Overage in use" { (live.overage_used) }
                                td.cap data-label="Overage cap" {
                                    @if may_cap && max > 0 {
                                        form.inline method="post"
                                            action={(base) "/licenses/" (l.id)} {
                                            (csrf(ctx))
                                            input type="number" name="overage_limit" min="0"
                                                max=(max) value=(g.overage_cap(max))
                                                aria-label="Overage cap";
                                            " of " (max) " "
                                            button type="submit" { "Set" }
                                        }
                                    } @else {
                                        (g.overage_cap(max)) " of " (max)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.muted { "Seats and overage are read live from each vendor's license. The cap \
                       limits how many overage seats your people may take (at most the \
                       vendor's maximum)." }
        },
    )
}

fn pool_page(ctx: &PageCtx<'_>, held: &[Held], now: OffsetDateTime) -> Markup {
    let head = html! {
        meta http-equiv="refresh" content=(POOL_REFRESH_SECS);
    };
    layout_with(
        ctx,
        "Pool",
        head,
        html! {
            h1 { "Who holds what now" }
            p.muted { "Live checkouts across every vendor; this page reloads every "
                (POOL_REFRESH_SECS) " seconds. Read at " (rfc3339(now)) "." }
            @if held.is_empty() {
                p.muted #empty { "Nobody holds a license right now." }
            } @else {
                table.stack #checkouts {
                    thead { tr {
                        th { "User" } th { "Host" } th { "Vendor / product" } th { "Since" }
                        th { "Overage" }
                    } }
                    tbody {
                        @for h in held {
                            @let a = &h.lease;
                            tr data-checkout=(a.id) {
                                td.user data-label="User" { (a.user.as_deref().unwrap_or("")) }
                                td.host data-label="Host" {
                                    (a.hostname.as_deref().unwrap_or("—"))
                                }
                                td data-label="Vendor / product" {
                                    (h.grant.vendor_name) " / "
                                    (h.grant.product_name.as_deref()
                                        .unwrap_or(h.grant.product.as_str()))
                                }
                                td data-label="Since" { (rfc3339(a.created_at)) }
                                td.overage data-label="Overage" {
                                    @if a.overage { span.badge.suspended { "yes" } } @else { "no" }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
