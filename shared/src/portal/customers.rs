//! The staff's "Customers" page: find verified customer organizations (by
//! domain, name or this vendor's CRM id; the search of
//! `GET /v1/manage/customers/search`), link a CRM account id (as
//! `PUT /v1/manage/customers/{id}/crm`), and see the licenses this vendor
//! granted an organization (only this vendor's).

use super::pages::{csrf, layout, PageCtx};
use super::{Reply, Req};
use crate::clock::rfc3339;
use crate::domain::{License, Role};
use crate::error::Error;
use crate::ids::{CrmAccountId, TenantId};
use crate::usecases::customers::crm::{self, Found, Search};
use maud::{html, Markup};

/// The search's filters, as the select offers them.
const BY: [(&str, &str); 3] = [
    ("name", "Name starts with"),
    ("domain", "Domain"),
    ("crm", "Your CRM id"),
];

/// `GET /portal/{tenant}/staff/customers?by=name|domain|crm&q=`.
pub(super) async fn search(r: &Req<'_>) -> Result<Reply, Error> {
    r.who(Role::Staff)?;
    let by = r.query("by").unwrap_or_else(|| "name".into());
    let q = r.query("q").unwrap_or_default();
    let found = if q.trim().is_empty() {
        None
    } else {
        let (q_, b) = (Some(q.as_str()), by.as_str());
        let parsed = match b {
            "domain" => Search::parse(q_, None, None),
            "crm" => Search::parse(None, None, q_),
            _ => Search::parse(None, q_, None),
        };
        Some(match parsed {
            Ok(s) => Ok(crm::search(&r.app.store, &r.store, s).await?),
            Err(e @ Error::Invalid { .. }) => Err(e.public_message()),
            Err(e) => return Err(e),
        })
    };
    Ok(Reply::page(search_page(&r.ctx(), &by, &q, found)))
}

fn customer_id(r: &Req<'_>) -> Result<TenantId, Error> {
    r.params
        .get("id")
        .and_then(|id| TenantId::parse(id.as_str()).ok())
        .ok_or_else(crm::customer_not_found)
}

/// `GET /portal/{tenant}/staff/customers/{id}`: the organization, its CRM
/// link and this vendor's licenses granted to it.
pub(super) async fn page(r: &Req<'_>) -> Result<Reply, Error> {
    r.who(Role::Staff)?;
    let c = crm::customer(&r.app.store, &r.store, &customer_id(r)?).await?;
    let done = (r.query("done").as_deref() == Some("linked")).then_some("CRM id linked.");
    Ok(Reply::page(customer_page(&r.ctx(), &c, done, r)))
}

/// `POST /portal/{tenant}/staff/customers/{id}` (`crm_account_id`).
pub(super) async fn link(r: &Req<'_>) -> Result<Reply, Error> {
    let (form, s) = r.form_of(Role::Staff)?;
    let id = customer_id(r)?;
    let crm_id = CrmAccountId::parse(form.text("crm_account_id").to_string())
        .map_err(|e| Error::validation(format!("crm_account_id {e}")))?;
    let actor = r.actor(s);
    crm::link(&r.app.store, &r.store, &actor, &id, &crm_id, r.now).await?;
    Ok(Reply::see_other(format!(
        "{}/staff/customers/{id}?done=linked",
        r.base()
    )))
}

fn search_page(
    ctx: &PageCtx<'_>,
    by: &str,
    q: &str,
    found: Option<Result<Vec<Found>, String>>,
) -> Markup {
    let base = ctx.base();
    layout(
        ctx,
        "Customers",
        html! {
            h1 { "Customer organizations" }
            p.muted { "Organizations that verified their domain. Find one to link your CRM \
                       account and see the licenses you granted it." }
            form.search method="get" action={(base) "/staff/customers"} {
                label for="by" { "Find by" }
                select #by name="by" {
                    @for (v, l) in BY { option value=(v) selected[v == by] { (l) } }
                }
                " "
                input #q type="search" name="q" value=(q) required aria-label="Search";
                " " button type="submit" { "Search" }
            }
            @match found {
                None => {}
                Some(Err(msg)) => { p.error #error { (msg) } }
                Some(Ok(list)) if list.is_empty() => { p.muted #none { "No organization found." } }
                Some(Ok(list)) => {
                    table.stack #customers {
                        thead { tr {
                            th { "Organization" } th { "Domain" } th { "Country" }
                            th { "Your CRM id" }
                        } }
                        tbody {
                            @for f in &list {
                                @let e = &f.entry;
                                tr data-customer=(e.customer_id) {
                                    td data-label="Organization" {
                                        a href={(base) "/staff/customers/" (e.customer_id)} {
                                            (e.name)
                                        }
                                    }
                                    td data-label="Domain" { (e.domain) }
                                    td data-label="Country" { (e.country.as_deref().unwrap_or("")) }
                                    td.crm data-label="Your CRM id" {
                                        (f.crm_account_id.as_ref().map(|c| c.as_str()).unwrap_or("—"))
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

fn licenses_table(base: &str, licenses: &[License], r: &Req<'_>) -> Markup {
    html! {
        @if licenses.is_empty() {
            p.muted #no-licenses { "You have granted this organization no license yet." }
        } @else {
            table.stack #licenses {
                thead { tr {
                    th { "License" } th { "Product" } th { "Status" } th { "Seats" }
                    th { "Overage max" } th { "Expires" }
                } }
                tbody {
                    @for l in licenses {
                        tr data-license=(l.id) {
                            td data-label="License" {
                                a href={(base) "/staff/licenses/" (l.id)} { (l.id) }
                            }
                            td data-label="Product" { (l.product) }
                            td data-label="Status" {
                                @let s = match l.standing(r.now) {
                                    crate::domain::Standing::Valid(s)
                                    | crate::domain::Standing::Suspended(s) => s,
                                    crate::domain::Standing::Cancelled => "cancelled",
                                    crate::domain::Standing::Expired => "expired",
                                };
                                span class={"badge " (s)} { (s) }
                            }
                            td data-label="Seats" { (l.max_activations) }
                            td data-label="Overage max" { (l.terms.max_overage) }
                            td data-label="Expires" {
                                (l.expires_at.map(|t| rfc3339(t)[..10].to_string())
                                    .unwrap_or_else(|| "never".into()))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn customer_page(ctx: &PageCtx<'_>, c: &crm::Customer, done: Option<&str>, r: &Req<'_>) -> Markup {
    let base = ctx.base();
    let e = &c.found.entry;
    let crm_now = c.found.crm_account_id.as_ref().map(|c| c.as_str());
    layout(
        ctx,
        &e.name,
        html! {
            h1 { (e.name) }
            @if let Some(d) = done { p.flash #flash { (d) } }
            dl.facts {
                dt { "Id" } dd { code { (e.customer_id) } }
                dt { "Domain" } dd { (e.domain) " (verified " (rfc3339(e.verified_at)[..10]) ")" }
                dt { "Country" } dd { (e.country.as_deref().unwrap_or("—")) }
                dt { "Your CRM id" } dd #crm { (crm_now.unwrap_or("—")) }
            }
            form #link-crm method="post" action={(base) "/staff/customers/" (e.customer_id)} {
                (csrf(ctx))
                label for="crm_account_id" { "Link your CRM account id" }
                input #crm_account_id name="crm_account_id" required maxlength="128"
                    value=(crm_now.unwrap_or(""));
                " " button type="submit" { "Link" }
            }
            h2 { "Your licenses granted to " (e.name) }
            (licenses_table(&base, &c.licenses, r))
            p.muted { "Issue one with POST /v1/manage/licenses and \"customer\": {\"id\": \""
                (e.customer_id) "\"}." }
        },
    )
}
