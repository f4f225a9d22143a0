//! Entitlement checks, usage records and usage reports.

mod aggregate;
mod batch;
mod record;
pub use batch::{batch, BatchEvent, Outcome as BatchOutcome, MAX_BATCH};
pub use record::record;

use crate::cache::Policies;
use crate::crypto::{sha256_hex, Signer};
use crate::domain::*;
use crate::error::{license_not_found, Error};
use crate::ids::{Feature, LicenseId, LicenseKey, Metric};
use crate::store::usage::{export_partition, IdempotencyRecord, UsageEvent};
use crate::store::{Page, TenantStore};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL: Duration = Duration::hours(48);
/// The largest quantity one record may carry (counters stay far from i64::MAX).
pub const MAX_QUANTITY: u64 = 1_000_000_000;
/// How far back a usage timestamp may lie.
pub const MAX_BACKDATE: Duration = Duration::days(7);
/// Clock skew tolerated for timestamps "in the future".
pub const FUTURE_SKEW: Duration = Duration::seconds(60);

/// What an entitlement check found: the license's standing and, for each
/// asked feature, its spec (when the license defines it) and usage.
pub struct EntitlementCheck {
    pub license_valid: bool,
    pub code: ValidationCode,
    pub features: Vec<Feature>,
    pub specs: Entitlements,
    pub usage: UsageSnapshot,
}

/// `POST /v1/integration/entitlements/check`: one read of the license partition.
pub async fn check(
    policies: &Policies,
    ts: &TenantStore,
    key: &LicenseKey,
    features: Vec<Feature>,
    now: OffsetDateTime,
) -> Result<EntitlementCheck, Error> {
    if features.is_empty() || features.len() > 100 {
        return Err(Error::validation(
            "features must list 1 to 100 feature names",
        ));
    }
    let id = LicenseId::derive(ts.tenant_id(), key);
    let read = ts.read_license(&id, None, now).await?;
    let (code, specs) = match &read.license {
        None => (ValidationCode::NotFound, Entitlements::new()),
        Some(l) => {
            let policy = policies.of_license(ts, &l.policy).await?;
            let code = evaluate(l, &policy, None, &ValidationScope::default(), now);
            (code, l.effective_entitlements(&policy))
        }
    };
    // The current periods' counters of the asked metered features (their
    // shards, read by key: none when none is metered).
    let asked: Entitlements = specs
        .iter()
        .filter(|(f, _)| features.contains(f))
        .map(|(f, s)| (f.clone(), s.clone()))
        .collect();
    let usage = ts.current_usage(&id, &asked, now).await?;
    let license_valid = code == ValidationCode::Valid;
    Ok(EntitlementCheck {
        license_valid,
        code,
        features,
        specs,
        usage,
    })
}

pub struct UsageInput {
    pub license_key: LicenseKey,
    pub metric: Metric,
    pub quantity: u64,
    pub timestamp: Option<OffsetDateTime>,
    pub metadata: Map<String, Value>,
    pub idempotency_key: Option<String>,
    /// Canonical digest of the request body (same key + other body = 409).
    pub body_hash: String,
}

/// A recorded usage: what the record answers, and what its idempotency
/// record keeps (as JSON) for replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecorded {
    pub metric: Metric,
    pub quantity: u64,
    pub period: String,
    pub period_type: Period,
    #[serde(with = "crate::clock::ts")]
    pub timestamp: OffsetDateTime,
    pub used: u64,
    /// `None` for `max` / `last` (no limit applies).
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub overage: u64,
    pub overage_policy: Overage,
    #[serde(default)]
    pub aggregation: Aggregation,
    #[serde(default, with = "crate::clock::ts::option")]
    pub resets_at: Option<OffsetDateTime>,
    pub license_id: LicenseId,
}

/// A usage record's answer, and whether it replays an earlier one.
pub struct RecordReply {
    pub recorded: UsageRecorded,
    pub replayed: bool,
}

/// Canonical digest of a request body (object keys sorted).
pub fn body_digest(body: &Value) -> String {
    sha256_hex(body.to_string().as_bytes())
}

pub(crate) fn not_in_force(l: &License, now: OffsetDateTime) -> Result<(), Error> {
    match l.standing(now) {
        Standing::Valid(_) => Ok(()),
        Standing::Suspended(_) => Err(Error::LicenseNotActive("suspended")),
        Standing::Cancelled => Err(Error::LicenseNotActive("cancelled")),
        Standing::Expired => Err(Error::LicenseNotActive("expired")),
    }
}

pub(crate) fn replay(rec: IdempotencyRecord, body_hash: &str) -> Result<RecordReply, Error> {
    if rec.body_hash != body_hash {
        return Err(Error::conflict(
            "IDEMPOTENCY_KEY_REUSED",
            "this idempotency key was used with a different request body",
        ));
    }
    let recorded = serde_json::from_str(&rec.response).map_err(Error::internal)?;
    Ok(RecordReply {
        recorded,
        replayed: true,
    })
}

/// Validate a period query value: `YYYY-MM`, `YYYY-MM-DD` or `total`.
pub fn parse_period(p: &str) -> Result<String, Error> {
    let ok = p == "total"
        || time::Date::parse(
            &format!("{p}-01"),
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .is_ok()
            && p.len() == 7
        || time::Date::parse(p, time::macros::format_description!("[year]-[month]-[day]")).is_ok()
            && p.len() == 10;
    if ok {
        Ok(p.to_string())
    } else {
        Err(Error::validation(
            "period must be YYYY-MM, YYYY-MM-DD or total",
        ))
    }
}

/// The export partition of a period query (`YYYY-MM-DD` lives in its month).
pub fn partition_of(period: &str) -> &str {
    export_partition(period)
}

/// A license's usage counters (optionally one metric, one period).
pub async fn usage_of_license(
    ts: &TenantStore,
    id: &LicenseId,
    metric: Option<&Metric>,
    period: Option<&str>,
) -> Result<Vec<UsageCounter>, Error> {
    if ts.get_license(id).await?.is_none() {
        return Err(license_not_found());
    }
    ts.usage_of_license(id, metric, period).await
}

/// `GET /v1/manage/usage/export`: one page of the period partition's counters.
pub async fn usage_export(
    ts: &TenantStore,
    signer: &Signer,
    period: &str,
    metric: Option<&Metric>,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<UsageCounter>, Error> {
    ts.usage_by_period(signer, period, metric, limit, cursor)
        .await
}

/// Every license's usage in a period (`YYYY-MM`, `YYYY-MM-DD` or `total`),
/// a page at a time: the period's partition, keeping that period's counters.
pub async fn usage_in_period(
    ts: &TenantStore,
    signer: &Signer,
    period: &str,
    metric: Option<&Metric>,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<UsageCounter>, Error> {
    let mut page = ts
        .usage_by_period(signer, partition_of(period), metric, limit, cursor)
        .await?;
    page.items
        .retain(|c| c.period == period || (period.len() == 7 && c.period.starts_with(period)));
    Ok(page)
}

/// The usage events (each record's audit entry) of one license in one month.
#[allow(clippy::too_many_arguments)]
pub async fn usage_events(
    ts: &TenantStore,
    signer: &Signer,
    id: &LicenseId,
    month: &str,
    metric: Option<&Metric>,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<UsageEvent>, Error> {
    if ts.get_license(id).await?.is_none() {
        return Err(license_not_found());
    }
    let mut page = ts
        .list_usage_events(signer, id, month, limit, cursor)
        .await?;
    page.items.retain(|e| metric.is_none_or(|m| &e.metric == m));
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert!(parse_period("2026-11").is_ok());
        assert!(parse_period("2026-11-05").is_ok());
        assert!(parse_period("total").is_ok());
        assert!(parse_period("2026-13").is_err());
        assert!(parse_period("2026-1").is_err());
        assert!(parse_period("nope").is_err());
        assert_eq!(partition_of("2026-11-05"), "2026-11");
    }
}
