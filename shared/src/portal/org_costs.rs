//! The organization's "Costs" page, `/portal/{customer_id}/costs`: what
//! each vendor bills it this month (UTC) — commit fees and overage, per
//! license — with the totals per vendor and per currency. The figures are
//! the catalog's `cost_this_period`, computed as the vendors' overage
//! export computes them (`usecases::billing::license_costs`).

use super::pages::{self, PageCtx};
use super::Reply;
use crate::app::App;
use crate::domain::billing::{Bill, Period};
use crate::domain::money::Money;
use crate::domain::{CustomerOrg, Member};
use crate::error::Error;
use crate::usecases::pool::{self, CatalogEntry};
use maud::{html, Markup};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Commit, overage and total of some bills in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sums {
    pub commit: Money,
    pub overage: Money,
    pub total: Money,
}

/// The sums of `bills` per currency code (exact, integer minor units).
pub fn sums<'a>(
    bills: impl IntoIterator<Item = &'a Bill>,
) -> Result<BTreeMap<&'static str, Sums>, Error> {
    let mut out: BTreeMap<&'static str, Sums> = BTreeMap::new();
    for b in bills {
        let c = b.total.currency;
        let zero = Money::zero(c);
        let s = out.entry(c.code()).or_insert(Sums {
            commit: zero,
            overage: zero,
            total: zero,
        });
        s.commit = s.commit.checked_add(b.commit_fee)?;
        s.overage = s.overage.checked_add(b.overage_cost)?;
        s.total = s.total.checked_add(b.total)?;
    }
    Ok(out)
}

/// The page (a signed-in member of any role; otherwise the sign-in page).
pub(super) async fn serve(
    app: &App,
    ctx: &PageCtx<'_>,
    org: &CustomerOrg,
    member: Option<&Member>,
    now: OffsetDateTime,
) -> Result<Reply, Error> {
    if member.is_none() {
        return Ok(Reply::see_other(format!("{}/login", ctx.base())));
    }
    let store = app.store.tenant(&org.tenant_id);
    let catalog = pool::catalog(&app.store, &store, now).await?;
    let period = pool::this_period(now);
    Ok(Reply::page(pages::layout(
        ctx,
        "Costs",
        page(&catalog, period)?,
    )))
}

/// The page's content from the catalog. Pure.
pub fn page(catalog: &[CatalogEntry], period: Period) -> Result<Markup, Error> {
    let mut by_vendor: BTreeMap<(&str, &str), Vec<&CatalogEntry>> = BTreeMap::new();
    for e in catalog {
        let g = &e.grant;
        by_vendor
            .entry((g.vendor_name.as_str(), g.vendor_id.as_str()))
            .or_default()
            .push(e);
    }
    let all = sums(catalog.iter().filter_map(|e| e.cost.as_ref()))?;
    let mut vendors = Vec::new();
    for ((name, id), entries) in &by_vendor {
        let totals = sums(entries.iter().filter_map(|e| e.cost.as_ref()))?;
        vendors.push(vendor_section(name, id, entries, &totals));
    }
    Ok(html! {
        h1 { "Costs " (period) }
        p { "What each vendor bills your organization this month (UTC) so far: commit fees "
            "and overage (checkouts beyond the committed seats, usage beyond a metric's limit). "
            "The same figures as your vendors' billing export." }
        section #totals {
            h2 { "Totals" }
            @if all.is_empty() {
                p { "No license granted to your organization is billed this month." }
            } @else {
                table.totals {
                    thead { tr { th { "Currency" } th { "Commit" } th { "Overage" } th { "Total" } } }
                    tbody {
                        @for (cur, s) in &all {
                            tr data-currency=(cur) {
                                td { (cur) }
                                td.commit { (s.commit.decimal()) }
                                td.overage { (s.overage.decimal()) }
                                td.total { (s.total.decimal()) }
                            }
                        }
                    }
                }
            }
        }
        @for v in &vendors { (v) }
    })
}

fn vendor_section(
    name: &str,
    id: &str,
    entries: &[&CatalogEntry],
    totals: &BTreeMap<&'static str, Sums>,
) -> Markup {
    html! {
        section.vendor data-vendor=(id) {
            h2 { (name) }
            table.costs {
                thead { tr {
                    th { "Product" } th { "License" } th { "Commit" }
                    th { "Overage" } th { "Currency" } th { "Total" }
                } }
                tbody {
                    @for e in entries {
                        tr data-license=(e.license.id) {
                            td { (e.grant.product_name.as_deref().unwrap_or(e.grant.product.as_str())) }
                            td { code { (e.license.id) } }
                            @match &e.cost {
                                Some(b) => {
                                    td.commit { (b.commit_fee.decimal()) }
                                    td.overage { (b.overage_cost.decimal()) (overage_detail(b)) }
                                    td { (b.total.currency.code()) }
                                    td.total { (b.total.decimal()) }
                                }
                                None => { td colspan="4" { "Not billed through commercial terms" } }
                            }
                        }
                    }
                }
                tfoot {
                    @for (cur, s) in totals {
                        tr.subtotal data-currency=(cur) {
                            td colspan="2" { "Total " (name) }
                            td.commit { (s.commit.decimal()) }
                            td.overage { (s.overage.decimal()) }
                            td { (cur) }
                            td.total { (s.total.decimal()) }
                        }
                    }
                }
            }
        }
    }
}

/// What the overage is made of: checkouts, and each metric beyond its limit.
fn overage_detail(b: &Bill) -> Markup {
    html! {
        @if b.overage_checkouts > 0 || b.metered_overage().next().is_some() {
            ul.detail {
                @if b.overage_checkouts > 0 {
                    li { (b.overage_checkouts) " overage checkouts: " (b.checkout_cost.decimal()) }
                }
                @for m in b.metered_overage() {
                    li { (m.units) " " (m.metric) " beyond " (m.limit) ": " (m.cost.decimal()) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::billing::CommercialTerms;

    fn terms(currency: &str, fee: u64) -> CommercialTerms {
        serde_json::from_value(serde_json::json!({
            "currency": currency, "commit_qty": 5, "commit_fee_minor": fee,
            "billing_cycle": "monthly", "overage_unit_price_minor": 250,
            "contract": { "start_date": "2026-01-01", "end_date": "2026-12-31" }
        }))
        .unwrap()
    }

    #[test]
    fn sums_are_per_currency_and_exact() {
        let p = Period::parse("2026-12").unwrap();
        let bills = [
            terms("EUR", 100_001).bill(p, 3, &[]).unwrap(),
            terms("EUR", 99_999).bill(p, 1, &[]).unwrap(),
            terms("JPY", 5000).bill(p, 2, &[]).unwrap(),
        ];
        let s = sums(&bills).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s["EUR"].commit.decimal(), "2000.00");
        assert_eq!(s["EUR"].overage.decimal(), "10.00");
        assert_eq!(s["EUR"].total.decimal(), "2010.00");
        assert_eq!(s["JPY"].total.decimal(), "5500");
    }
}
