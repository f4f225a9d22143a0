//! The staff's "Billing" page: a month picker, what each license with
//! commercial terms bills that month, and the overage export as CSV, JSON
//! or PDF (served here under the staff session; the same export as
//! `GET /v1/manage/billing/overage`). No JavaScript.

use super::pages::{layout, PageCtx};
use super::{Reply, ReplyBody, Req};
use crate::domain::billing::Period;
use crate::domain::Role;
use crate::error::Error;
use crate::usecases::billing::{self, Export, ExportQuery};
use maud::{html, Markup};

/// The month asked (`?period=YYYY-MM`), or the current one.
fn period(r: &Req<'_>) -> Result<Period, Error> {
    match r.query("period").filter(|p| !p.is_empty()) {
        Some(p) => Period::parse(&p),
        None => Ok(Period::of(r.now.date())),
    }
}

async fn export_of(r: &Req<'_>, p: Period) -> Result<Export, Error> {
    let (start, end) = (p.first_day().to_string(), p.last_day().to_string());
    let q = ExportQuery::parse(Some(&start), Some(&end), None, None, None)?;
    billing::overage_export(&r.store, r.signer()?, &q).await
}

/// `GET /portal/{tenant}/staff/billing`.
pub(super) async fn page(r: &Req<'_>) -> Result<Reply, Error> {
    r.who(Role::Staff)?;
    let p = period(r)?;
    let export = export_of(r, p).await?;
    let totals = billing::to_json(&export)?;
    Ok(Reply::page(billing_page(&r.ctx(), p, &export, &totals)))
}

/// `GET /portal/{tenant}/staff/billing/export?period=&format=csv|json|pdf`.
pub(super) async fn download(r: &Req<'_>) -> Result<Reply, Error> {
    r.who(Role::Staff)?;
    let p = period(r)?;
    let export = export_of(r, p).await?;
    let name = format!("overage-{p}");
    let (file, mime, bytes) = match r.query("format").as_deref() {
        Some("csv") => (
            format!("{name}.csv"),
            "text/csv; charset=utf-8",
            billing::to_csv(&export)?.into_bytes(),
        ),
        Some("pdf") => (
            format!("{name}.pdf"),
            "application/pdf",
            billing::to_pdf(&export)?,
        ),
        Some("json") => (
            format!("{name}.json"),
            "application/json",
            serde_json::to_vec_pretty(&billing::to_json(&export)?).map_err(Error::internal)?,
        ),
        _ => return Err(Error::validation("format must be csv, json or pdf")),
    };
    Ok(Reply {
        status: 200,
        body: ReplyBody::Bytes(file, mime, bytes),
        cookies: Vec::new(),
    })
}

fn billing_page(
    ctx: &PageCtx<'_>,
    p: Period,
    export: &Export,
    totals: &serde_json::Value,
) -> Markup {
    let base = ctx.base();
    let link = |format: &str| format!("{base}/staff/billing/export?period={p}&format={format}");
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    layout(
        ctx,
        "Billing",
        html! {
            h1 { "Billing" }
            form.search method="get" action={(base) "/staff/billing"} {
                label for="period" { "Billing month" }
                input #period type="month" name="period" value=(p.to_string()) required;
                button type="submit" { "Show" }
            }
            p #exports {
                "Overage export for " (p.to_string()) ": "
                a #export-csv href=(link("csv")) { "CSV" } " · "
                a #export-json href=(link("json")) { "JSON" } " · "
                a #export-pdf href=(link("pdf")) { "PDF" }
            }
            @if export.rows.is_empty() {
                p.muted #no-terms { "No license with commercial terms bills this month." }
            } @else {
                table.licenses #billing {
                    thead { tr {
                        th { "CRM account" } th { "Customer" } th { "Product" } th { "License" }
                        th { "Overage checkouts" } th { "Overage" } th { "Commit" } th { "Total" }
                    } }
                    tbody {
                        @for row in &export.rows {
                            @let cur = row.bill.total.currency.code();
                            tr {
                                td { (row.license.crm_account_id()) }
                                td { (row.license.customer_name()) }
                                td { (row.product_name) }
                                td { a href={(base) "/staff/licenses/" (row.license.license_id)} { code { (row.license.license_id) } } }
                                td.overage { (row.bill.overage_checkouts) }
                                td { (row.bill.overage_cost.decimal()) " " (cur) }
                                td { (row.bill.commit_fee.decimal()) " " (cur) }
                                td.total { (row.bill.total.decimal()) " " (cur) }
                            }
                        }
                    }
                }
                @for t in totals["totals"].as_array().into_iter().flatten() {
                    p.total {
                        "Total billable (" (text(&t["currency"])) "): "
                        strong { (text(&t["total_billable"])) } " — overage " (text(&t["total_overage_revenue"]))
                    }
                }
                @if export.next_cursor.is_some() {
                    p.muted { "The first 1,000 licenses are shown; the export API pages through all." }
                }
            }
        },
    )
}
