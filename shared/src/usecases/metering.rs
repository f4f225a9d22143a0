//! Entitlement checks, usage records and usage reports.

use crate::cache::Policies;
use crate::crypto::{sha256_hex, Signer};
use crate::domain::*;
use crate::error::{license_not_found, Error};
use crate::ids::{Feature, LicenseId, LicenseKey, Metric};
use crate::store::usage::{
    export_partition, IdempotencyRecord, RecordOutcome, RecordWrite, UsageEvent,
};
use crate::store::{Page, TenantStore};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
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
    let (code, specs, usage) = match &read.license {
        None => (
            ValidationCode::NotFound,
            Entitlements::new(),
            Default::default(),
        ),
        Some(l) => {
            let policy = policies.of_license(ts, &l.policy).await?;
            let code = evaluate(l, &policy, None, &ValidationScope::default(), now);
            let specs = l.effective_entitlements(&policy);
            // The current periods' counters of the features asked about.
            let asked: Entitlements = specs
                .iter()
                .filter(|(f, _)| features.contains(f))
                .map(|(f, s)| (f.clone(), s.clone()))
                .collect();
            let usage = ts
                .current_usage(&l.id, &crate::domain::current_periods(&asked, now))
                .await?;
            (code, specs, usage)
        }
    };
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
    pub limit: u64,
    pub remaining: u64,
    pub overage: u64,
    pub overage_policy: Overage,
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

/// `POST /v1/integration/usage/record`: one BatchGetItem (license, counter,
/// idempotency record) and one TransactWriteItems.
pub async fn record(
    policies: &Policies,
    ts: &TenantStore,
    actor: &Actor,
    input: UsageInput,
    now: OffsetDateTime,
) -> Result<RecordReply, Error> {
    if input.quantity == 0 || input.quantity > MAX_QUANTITY {
        return Err(Error::validation(format!(
            "quantity must be an integer from 1 to {MAX_QUANTITY}"
        )));
    }
    let at = input.timestamp.unwrap_or(now);
    // Checked: a clock at the calendar's end must not panic either.
    if now
        .checked_add(FUTURE_SKEW)
        .is_some_and(|latest| at > latest)
    {
        return Err(Error::invalid(
            "TIMESTAMP_OUT_OF_RANGE",
            "timestamp is in the future",
        ));
    }
    if now
        .checked_sub(MAX_BACKDATE)
        .is_some_and(|earliest| at < earliest)
    {
        return Err(Error::invalid(
            "TIMESTAMP_OUT_OF_RANGE",
            "timestamp is more than 7 days old",
        ));
    }
    let id = LicenseId::derive(ts.tenant_id(), &input.license_key);
    // The metric's period is known only once the license is read, so the one
    // read asks for the counter of each possible period of `at`.
    let candidates: Vec<String> = [Period::Day, Period::Month, Period::Total]
        .iter()
        .map(|p| p.window(at).key)
        .collect();
    let (license, counters, idem) = ts
        .read_for_record(
            &id,
            &input.metric,
            &candidates,
            input.idempotency_key.as_deref(),
        )
        .await?;
    if let Some(rec) = idem.filter(|r| r.ttl >= now.unix_timestamp()) {
        return replay(rec, &input.body_hash);
    }
    let license = license.ok_or_else(license_not_found)?;
    not_in_force(&license, now)?;
    let policy = policies.of_license(ts, &license.policy).await?;
    let spec = license.effective_entitlements(&policy);
    let Some(EntitlementSpec::Metered {
        limit,
        period,
        overage,
    }) = spec.get(&crate::ids::Feature::parse(input.metric.as_str())?)
    else {
        return Err(Error::invalid(
            "UNKNOWN_METRIC",
            format!(
                "'{}' is not a metered entitlement of this license",
                input.metric
            ),
        ));
    };
    let (limit, period, hard) = (*limit, *period, *overage == Overage::Deny);
    let window = period.window(at);
    let counter = counters.into_iter().find(|c| c.period == window.key);
    if hard && input.quantity > limit {
        return Err(Error::QuotaExceeded {
            metric: input.metric.to_string(),
            limit,
            used: counter.map(|c| c.used).unwrap_or(0),
            quantity: input.quantity,
        });
    }
    let used_before = counter.as_ref().map(|c| c.used).unwrap_or(0);
    let used = used_before.saturating_add(input.quantity);
    let recorded = UsageRecorded {
        metric: input.metric.clone(),
        quantity: input.quantity,
        period: window.key.clone(),
        period_type: period,
        timestamp: at,
        used,
        limit,
        remaining: limit.saturating_sub(used),
        overage: used.saturating_sub(limit),
        overage_policy: if hard { Overage::Deny } else { Overage::Allow },
        resets_at: window.resets_at,
        license_id: id.clone(),
    };
    let event = UsageEvent {
        id: format!("use_{}", ulid::Ulid::new()),
        code: "USAGE.RECORDED".into(),
        license_id: id.clone(),
        metric: input.metric.clone(),
        quantity: input.quantity,
        period: window.key.clone(),
        timestamp: at,
        recorded_at: now,
        actor: actor.actor.clone(),
        request_id: actor.request_id.clone(),
        idempotency_key: input.idempotency_key.clone(),
        metadata: input.metadata,
    };
    // USAGE.RECORDED in the tenant's audit trail (the usage event itself
    // lives in the license's usage partition, for the export).
    let audit = actor
        .audit(ts.tenant_id(), AuditCode::UsageRecorded, id.as_str(), now)
        .with_data(json!({
            "usage_event_id": event.id,
            "metric": event.metric,
            "quantity": event.quantity,
            "period": event.period,
            "idempotency_key": event.idempotency_key,
        }));
    let response = serde_json::to_string(&recorded).map_err(Error::internal)?;
    let idem_rec = input.idempotency_key.as_ref().map(|k| IdempotencyRecord {
        key: k.clone(),
        body_hash: input.body_hash.clone(),
        status: 201,
        response,
        created_at: now,
        ttl: now
            .unix_timestamp()
            .saturating_add(IDEMPOTENCY_TTL.whole_seconds()),
    });
    let outcome = ts
        .record_usage(RecordWrite {
            license: &license,
            metric: &input.metric,
            period_key: &window.key,
            resets_at: window.resets_at,
            quantity: input.quantity,
            limit,
            hard_limit: hard,
            event: &event,
            audit: &audit,
            idempotency: idem_rec.as_ref(),
            now,
        })
        .await?;
    match outcome {
        RecordOutcome::Recorded => Ok(RecordReply {
            recorded,
            replayed: false,
        }),
        RecordOutcome::Replay(rec) => replay(rec, &input.body_hash),
        RecordOutcome::QuotaExceeded { used } => Err(Error::QuotaExceeded {
            metric: input.metric.to_string(),
            limit,
            used,
            quantity: input.quantity,
        }),
        RecordOutcome::LicenseNotInForce(None) => Err(license_not_found()),
        RecordOutcome::LicenseNotInForce(Some(l)) => {
            not_in_force(&l, now)?;
            Err(Error::Unavailable(
                "the license changed while recording; retry".into(),
            ))
        }
    }
}

fn not_in_force(l: &License, now: OffsetDateTime) -> Result<(), Error> {
    match l.standing(now) {
        Standing::Valid(_) => Ok(()),
        Standing::Suspended(_) => Err(Error::LicenseNotActive("suspended")),
        Standing::Cancelled => Err(Error::LicenseNotActive("cancelled")),
        Standing::Expired => Err(Error::LicenseNotActive("expired")),
    }
}

fn replay(rec: IdempotencyRecord, body_hash: &str) -> Result<RecordReply, Error> {
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

/// Every license's usage in a period (`YYYY-MM`, `YYYY-MM-DD` or `total`),
/// a page at a time.
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
