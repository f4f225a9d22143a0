//! The overage export as CSV and JSON. Amounts are the currency's decimal
//! strings, made from integer minor units.

use super::{Export, ExportRow};
use crate::domain::billing::Bill;
use crate::domain::money::{Currency, Money};
use crate::error::Error;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const CSV_HEADER: [&str; 7] = [
    "CRM_Account_ID",
    "Customer_Name",
    "Product",
    "Total_Overage_Checkouts",
    "Total_Cost",
    "Currency",
    "Billing_Period",
];

/// One row per license and billing period (`Total_Cost`: the overage
/// checkouts' cost), then one row per priced metric with overage that
/// period: `Product` is `<product> / <metric>`, the count column holds the
/// metric's units beyond its limit and `Total_Cost` their cost. The
/// `Total_Cost` of a license's rows add up to its overage cost.
pub fn to_csv(e: &Export) -> Result<String, Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER).map_err(Error::internal)?;
    for r in &e.rows {
        let name = r.license.customer_name();
        let crm = crate::views::csv_text(r.license.crm_account_id());
        let name = crate::views::csv_text(&name);
        let (cur, period) = (r.bill.total.currency.code(), r.bill.period.to_string());
        w.write_record([
            crm.as_ref(),
            name.as_ref(),
            crate::views::csv_text(&r.product_name).as_ref(),
            &r.bill.overage_checkouts.to_string(),
            &r.bill.checkout_cost.decimal(),
            cur,
            &period,
        ])
        .map_err(Error::internal)?;
        for m in r.bill.metered_overage() {
            let product = format!("{} / {}", r.product_name, m.metric);
            w.write_record([
                crm.as_ref(),
                name.as_ref(),
                crate::views::csv_text(&product).as_ref(),
                &m.units.to_string(),
                &m.cost.decimal(),
                cur,
                &period,
            ])
            .map_err(Error::internal)?;
        }
    }
    let bytes = w.into_inner().map_err(Error::internal)?;
    String::from_utf8(bytes).map_err(Error::internal)
}

/// Sums per currency: overage revenue, commit fees, total billable.
#[derive(Debug, Clone, Copy)]
pub struct Totals {
    pub overage: Money,
    pub commit: Money,
    pub billable: Money,
}

pub fn totals(rows: &[ExportRow]) -> Result<BTreeMap<&'static str, Totals>, Error> {
    let mut out: BTreeMap<&'static str, Totals> = BTreeMap::new();
    for r in rows {
        let c: Currency = r.bill.total.currency;
        let zero = Money::zero(c);
        let t = out.entry(c.code()).or_insert(Totals {
            overage: zero,
            commit: zero,
            billable: zero,
        });
        t.overage = t.overage.checked_add(r.bill.overage_cost)?;
        t.commit = t.commit.checked_add(r.bill.commit_fee)?;
        t.billable = t.billable.checked_add(r.bill.total)?;
    }
    Ok(out)
}

/// Rows grouped by customer (CRM account, then name), in row order.
pub fn by_customer(rows: &[ExportRow]) -> Vec<(&str, String, Vec<&ExportRow>)> {
    let mut out: Vec<(&str, String, Vec<&ExportRow>)> = Vec::new();
    for r in rows {
        let (crm, name) = (r.license.crm_account_id(), r.license.customer_name());
        match out.last_mut() {
            Some((c, n, v)) if *c == crm && *n == name => v.push(r),
            _ => out.push((crm, name, vec![r])),
        }
    }
    out
}

/// The contract's JSON shape. `currency` and `total_overage_revenue` name
/// the export's one currency; an export in several has them `null` and
/// `totals` per currency.
pub fn to_json(e: &Export) -> Result<Value, Error> {
    let totals = totals(&e.rows)?;
    let single = (totals.len() == 1).then(|| totals.iter().next()).flatten();
    let customers: Vec<Value> = by_customer(&e.rows)
        .into_iter()
        .map(|(crm, name, rows)| {
            let customer_id = rows.first().and_then(|r| r.license.customer_id());
            let products: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "product_id": r.license.product,
                        "product_name": r.product_name,
                        "license_id": r.license.license_id,
                        "billing_period": r.bill.period.to_string(),
                        "currency": r.bill.total.currency,
                        "overage_checkouts": r.bill.overage_checkouts,
                        "overage_unit_price": r.license.commercial.unit_price().decimal(),
                        "checkout_overage_cost": r.bill.checkout_cost.decimal(),
                        "metered_overage": metered_view(&r.bill),
                        "overage_cost": r.bill.overage_cost.decimal(),
                        "commit_qty": r.license.commercial.commit_qty,
                        "commit_fee": r.bill.commit_fee.decimal(),
                        "total_billable": r.bill.total.decimal(),
                    })
                })
                .collect();
            json!({
                "crm_account_id": (!crm.is_empty()).then_some(crm),
                "customer_id": customer_id,
                "customer_name": name,
                "products": products,
            })
        })
        .collect();
    let per_currency: Vec<Value> = totals
        .iter()
        .map(|(c, t)| {
            json!({
                "currency": c,
                "total_overage_revenue": t.overage.decimal(),
                "total_commit_fees": t.commit.decimal(),
                "total_billable": t.billable.decimal(),
            })
        })
        .collect();
    Ok(json!({
        "vendor_id": e.vendor_id,
        "period": { "start": e.start.to_string(), "end": e.end.to_string() },
        "currency": single.map(|(c, _)| c),
        "total_overage_revenue": single.map(|(_, t)| t.overage.decimal()),
        "total_billable": single.map(|(_, t)| t.billable.decimal()),
        "totals": per_currency,
        "customers": customers,
        "next_cursor": e.next_cursor,
    }))
}

/// Each priced metric of a bill: usage, limit, units beyond it, unit price
/// and cost (units 0 when within the limit).
pub fn metered_view(b: &Bill) -> Value {
    let lines: Vec<Value> = b
        .metered
        .iter()
        .map(|m| {
            json!({
                "metric": m.metric,
                "used": m.used,
                "limit": m.limit,
                "overage_units": m.units,
                "unit_price": m.unit_price.decimal(),
                "cost": m.cost.decimal(),
            })
        })
        .collect();
    Value::Array(lines)
}

/// A bill as an organization's catalog shows it ("cost this period"): the
/// same figures as the export's product entry.
pub fn bill_view(b: &Bill) -> Value {
    json!({
        "period": b.period.to_string(),
        "currency": b.total.currency,
        "commit_fee": b.commit_fee.decimal(),
        "overage_checkouts": b.overage_checkouts,
        "checkout_overage_cost": b.checkout_cost.decimal(),
        "metered_overage": metered_view(b),
        "overage_cost": b.overage_cost.decimal(),
        "total": b.total.decimal(),
    })
}
