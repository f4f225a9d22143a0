//! Money: a license's commercial terms, the overage export, and the period
//! close that emits `invoice.ready` (`docs/billing.md`).

mod close;
mod pdf;
mod render;

pub use close::{close_period, close_tenant_period, CloseSummary};
pub use render::{bill_view, metered_view, to_csv, to_json};

use crate::crypto::Signer;
use crate::domain::billing::{
    parse_day, priced_metrics, Bill, BilledLicense, CommercialTerms, MeteredUsage, Period,
    PricedMetric,
};
use crate::domain::{Actor, AuditCode, License};
use crate::error::Error;
use crate::ids::{LicenseId, Metric, PolicyId, ProductCode};
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
/// ordered by customer, then product, license and period: overage
/// checkouts from the month's checkout counter, each priced metric's usage
/// from the month's (sharded) usage counter. The one computation behind the
/// export, the period close and an organization's "cost this period".
pub async fn bills(
    ts: &TenantStore,
    licenses: &[BilledLicense],
    periods: &[Period],
) -> Result<Vec<ExportRow>, Error> {
    let covered = |l: &BilledLicense| -> Vec<Period> {
        periods
            .iter()
            .copied()
            .filter(|p| l.commercial.covers(*p))
            .collect()
    };
    let wanted: Vec<(LicenseId, Period)> = licenses
        .iter()
        .flat_map(|l| covered(l).into_iter().map(|p| (l.license_id.clone(), p)))
        .collect();
    let counts = ts.overage_checkouts(&wanted).await?;
    let priced = priced_metrics_of(ts, licenses).await?;
    let metered_wanted: Vec<(LicenseId, Metric, String)> = licenses
        .iter()
        .flat_map(|l| {
            let ms = priced.get(&l.license_id).map(Vec::as_slice).unwrap_or(&[]);
            covered(l).into_iter().flat_map(move |p| {
                ms.iter()
                    .map(move |m| (l.license_id.clone(), m.metric.clone(), p.to_string()))
            })
        })
        .collect();
    let used = ts.counter_totals(&metered_wanted).await?;
    let names = product_names(ts, licenses).await?;
    let mut rows = Vec::with_capacity(wanted.len());
    for l in licenses {
        let ms = priced.get(&l.license_id).map(Vec::as_slice).unwrap_or(&[]);
        for p in covered(l) {
            let n = counts.get(&(l.license_id.clone(), p)).copied().unwrap_or(0);
            let usage: Vec<MeteredUsage> = ms
                .iter()
                .map(|m| MeteredUsage {
                    metric: m.clone(),
                    used: used
                        .get(&(l.license_id.clone(), m.metric.clone(), p.to_string()))
                        .copied()
                        .unwrap_or(0),
                })
                .collect();
            rows.push(ExportRow {
                license: l.clone(),
                product_name: names.get(&l.product).cloned().unwrap_or_default(),
                bill: l.commercial.bill(p, n, &usage)?,
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

/// Each license's priced metrics (`docs/billing.md`, "Metered overage"):
/// its entitlements in force (the policy's, changed by the license's
/// overrides) as they are when the bill is made. One BatchGetItem per 100
/// licenses and one read per distinct policy.
async fn priced_metrics_of(
    ts: &TenantStore,
    licenses: &[BilledLicense],
) -> Result<HashMap<LicenseId, Vec<PricedMetric>>, Error> {
    let ids: Vec<LicenseId> = licenses.iter().map(|l| l.license_id.clone()).collect();
    let mut policies: HashMap<PolicyId, Option<crate::domain::Policy>> = HashMap::new();
    let mut out = HashMap::new();
    for l in ts.licenses_by_id(&ids).await? {
        if !policies.contains_key(&l.policy) {
            let p = ts.get_policy(&l.policy).await?;
            policies.insert(l.policy.clone(), p);
        }
        let Some(Some(policy)) = policies.get(&l.policy) else {
            continue;
        };
        let priced = priced_metrics(&l.effective_entitlements(policy));
        if !priced.is_empty() {
            out.insert(l.id.clone(), priced);
        }
    }
    Ok(out)
}

/// What one license bills for one period (commit and overage), by the same
/// computation as the export ([`bills`]): an organization's catalog and
/// "Costs" page show these figures. `None`: the license has no commercial
/// terms, or its contract does not cover the period.
pub async fn license_costs(
    ts: &TenantStore,
    license: &License,
    period: Period,
) -> Result<Option<Bill>, Error> {
    let Some(entry) = BilledLicense::of(license) else {
        return Ok(None);
    };
    let rows = bills(ts, &[entry], &[period]).await?;
    Ok(rows.into_iter().next().map(|r| r.bill))
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
