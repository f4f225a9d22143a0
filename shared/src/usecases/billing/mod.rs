//! Money: a license's commercial terms, the overage export, and the period
//! close that emits `invoice.ready` (`docs/billing.md`).

mod close;
mod pdf;
mod render;

pub use close::{close_period, close_tenant_period, CloseSummary};
pub use render::{to_csv, to_json};

use crate::crypto::Signer;
use crate::domain::billing::{parse_day, Bill, BilledLicense, CommercialTerms, Period};
use crate::domain::{Actor, AuditCode, License};
use crate::error::Error;
use crate::ids::{LicenseId, ProductCode};
use crate::store::TenantStore;
use serde_json::json;
use std::collections::HashMap;
use time::{Date, OffsetDateTime};

/// Set, replace or (with `None`) remove a license's commercial terms, with
/// a `LICENSE.COMMERCIAL_UPDATED` audit event.
pub async fn set_terms(
    ts: &TenantStore,
    actor: &Actor,
    id: &LicenseId,
    terms: Option<CommercialTerms>,
    now: OffsetDateTime,
) -> Result<License, Error> {
    if let Some(t) = &terms {
        t.check()?;
    }
    let audit = actor
        .audit(
            ts.tenant_id(),
            AuditCode::LicenseCommercialUpdated,
            id.as_str(),
            now,
        )
        .with_data(json!({ "commercial": terms }));
    ts.set_commercial(id, terms.as_ref(), &audit, now).await
}

/// What an export asks for.
#[derive(Debug, Clone)]
pub struct ExportQuery {
    pub start: Date,
    pub end: Date,
    /// Only this CRM account's licenses.
    pub crm_account_id: Option<String>,
    /// Licenses per page (1..=1000).
    pub limit: i32,
    pub cursor: Option<String>,
}

/// At most this many months in one export.
pub const MAX_EXPORT_MONTHS: usize = 24;

impl ExportQuery {
    /// From the query string's values (`None`: absent).
    pub fn parse(
        start: Option<&str>,
        end: Option<&str>,
        crm: Option<&str>,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<ExportQuery, Error> {
        let start = parse_day(
            "start_date",
            start.ok_or_else(|| Error::validation("start_date is required (YYYY-MM-DD)"))?,
        )?;
        let end = parse_day(
            "end_date",
            end.ok_or_else(|| Error::validation("end_date is required (YYYY-MM-DD)"))?,
        )?;
        if end < start {
            return Err(Error::validation("end_date must not be before start_date"));
        }
        if Period::range(start, end, MAX_EXPORT_MONTHS).is_none() {
            let msg = format!("an export spans at most {MAX_EXPORT_MONTHS} months");
            return Err(Error::validation(msg));
        }
        let limit = match limit {
            None => 1000,
            Some(v) => v
                .parse::<i32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| Error::validation("limit must be from 1 to 1000"))?,
        };
        if let Some(c) = crm {
            crate::domain::bounded("customer_crm_id", c, 128)?;
        }
        Ok(ExportQuery {
            start,
            end,
            crm_account_id: crm.map(str::to_string),
            limit,
            cursor: cursor.map(str::to_string),
        })
    }

    pub fn periods(&self) -> Vec<Period> {
        Period::range(self.start, self.end, MAX_EXPORT_MONTHS).unwrap_or_default()
    }
}

/// One license in one billing period.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub license: BilledLicense,
    pub product_name: String,
    pub bill: Bill,
}

/// One page of the overage export.
#[derive(Debug, Clone)]
pub struct Export {
    pub vendor_id: String,
    pub start: Date,
    pub end: Date,
    pub rows: Vec<ExportRow>,
    pub next_cursor: Option<String>,
}

/// One page of the overage export: the licenses with commercial terms (from
/// their index, never a scan of every license), each with its bill for every
/// month of the range its contract covers.
pub async fn overage_export(
    ts: &TenantStore,
    signer: &Signer,
    q: &ExportQuery,
) -> Result<Export, Error> {
    let page = ts
        .billed_licenses(signer, q.limit, q.cursor.as_deref())
        .await?;
    let licenses: Vec<BilledLicense> = page
        .items
        .into_iter()
        .filter(|l| {
            q.crm_account_id
                .as_deref()
                .is_none_or(|c| l.crm_account_id() == c)
        })
        .collect();
    let rows = bills(ts, &licenses, &q.periods()).await?;
    Ok(Export {
        vendor_id: ts.tenant_id().to_string(),
        start: q.start,
        end: q.end,
        rows,
        next_cursor: page.next_cursor,
    })
}

/// The bills of `licenses` for each of `periods` their contracts cover,
/// ordered by customer, then product, license and period.
pub async fn bills(
    ts: &TenantStore,
    licenses: &[BilledLicense],
    periods: &[Period],
) -> Result<Vec<ExportRow>, Error> {
    let wanted: Vec<(LicenseId, Period)> = licenses
        .iter()
        .flat_map(|l| {
            periods
                .iter()
                .filter(|p| l.commercial.covers(**p))
                .map(|p| (l.license_id.clone(), *p))
        })
        .collect();
    let counts = ts.overage_checkouts(&wanted).await?;
    let names = product_names(ts, licenses).await?;
    let mut rows = Vec::with_capacity(wanted.len());
    for l in licenses {
        for p in periods.iter().filter(|p| l.commercial.covers(**p)) {
            let n = counts
                .get(&(l.license_id.clone(), *p))
                .copied()
                .unwrap_or(0);
            rows.push(ExportRow {
                license: l.clone(),
                product_name: names.get(&l.product).cloned().unwrap_or_default(),
                bill: l.commercial.bill(*p, n)?,
            });
        }
    }
    rows.sort_by(|a, b| {
        let key = |r: &ExportRow| {
            (
                r.license.crm_account_id().to_string(),
                r.license.customer_name(),
                r.license.product.to_string(),
                r.license.license_id.to_string(),
                r.bill.period,
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(rows)
}

/// What one license bills for one period (commit and overage): for a page
/// that shows a license's costs (e.g. an organization's "Costs" page).
pub async fn license_costs(
    ts: &TenantStore,
    id: &LicenseId,
    period: Period,
) -> Result<Option<Bill>, Error> {
    let Some(l) = ts.get_license(id).await? else {
        return Ok(None);
    };
    let Some(entry) = BilledLicense::of(&l) else {
        return Ok(None);
    };
    let counts = ts.overage_checkouts(&[(id.clone(), period)]).await?;
    let n = counts.get(&(id.clone(), period)).copied().unwrap_or(0);
    Ok(Some(entry.commercial.bill(period, n)?))
}

async fn product_names(
    ts: &TenantStore,
    licenses: &[BilledLicense],
) -> Result<HashMap<ProductCode, String>, Error> {
    let mut out = HashMap::new();
    for l in licenses {
        if out.contains_key(&l.product) {
            continue;
        }
        let name = ts.get_product(&l.product).await?.map(|p| p.name);
        out.insert(
            l.product.clone(),
            name.unwrap_or_else(|| l.product.to_string()),
        );
    }
    Ok(out)
}

pub use pdf::to_pdf;
