//! Entitlement checks, usage records and usage reports.

use crate::app::App;
use crate::clock::rfc3339;
use crate::crypto::sha256_hex;
use crate::domain::*;
use crate::error::{license_not_found, Error};
use crate::ids::{Feature, LicenseId, LicenseKey, Metric};
use crate::store::usage::{
    export_partition, IdempotencyRecord, RecordOutcome, RecordWrite, UsageEvent,
};
use crate::store::TenantStore;
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

/// `POST /v1/integration/entitlements/check`: one read of the license partition.
pub async fn check(
    app: &App,
    ts: &TenantStore,
    key: &LicenseKey,
    features: &[Feature],
    now: OffsetDateTime,
) -> Result<Value, Error> {
    let id = LicenseId::derive(ts.tenant_id(), key);
    let read = ts.read_license(&id, None, now).await?;
    let (valid, code, specs) = match &read.license {
        None => (false, ValidationCode::NotFound, Entitlements::new()),
        Some(l) => {
            let policy = super::licensing::load_policy(app, ts, &l.policy).await?;
            let code = evaluate(l, &policy, None, &ValidationScope::default(), now);
            (
                code == ValidationCode::Valid,
                code,
                l.effective_entitlements(&policy),
            )
        }
    };
    let mut results = Map::new();
    for f in features {
        let v = match specs.get(f) {
            Some(spec) if valid => spec_view(f, spec, &read.usage, now, true),
            Some(spec) => {
                let mut v = spec_view(f, spec, &read.usage, now, true);
                v["granted"] = json!(false);
                v
            }
            None => json!({ "granted": false, "type": null, "reason": "not_defined" }),
        };
        results.insert(f.to_string(), v);
    }
    Ok(json!({ "license_valid": valid, "code": code, "results": results }))
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

/// What a usage record answers: status, `data`, and whether it is a replay.
pub struct RecordReply {
    pub status: u16,
    pub data: Value,
    pub replayed: bool,
}

/// Canonical digest of a request body (object keys sorted).
pub fn body_digest(body: &Value) -> String {
    sha256_hex(body.to_string().as_bytes())
}

/// `POST /v1/integration/usage/record`: one BatchGetItem (license, counter,
/// idempotency record) and one TransactWriteItems.
pub async fn record(
    app: &App,
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
    if at > now + FUTURE_SKEW {
        return Err(Error::invalid(
            "TIMESTAMP_OUT_OF_RANGE",
            "timestamp is in the future",
        ));
    }
    if at < now - MAX_BACKDATE {
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
    let policy = super::licensing::load_policy(app, ts, &license.policy).await?;
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
    let data = json!({
        "metric": input.metric,
        "quantity": input.quantity,
        "period": window.key,
        "period_type": period.as_str(),
        "timestamp": rfc3339(at),
        "used": used,
        "limit": limit,
        "remaining": limit.saturating_sub(used),
        "overage": used.saturating_sub(limit),
        "overage_policy": if hard { "deny" } else { "allow" },
        "resets_at": window.resets_at.map(rfc3339),
        "license_id": id,
    });
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
    let idem_rec = input.idempotency_key.as_ref().map(|k| IdempotencyRecord {
        key: k.clone(),
        body_hash: input.body_hash.clone(),
        status: 201,
        response: data.to_string(),
        created_at: now,
        ttl: (now + IDEMPOTENCY_TTL).unix_timestamp(),
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
            idempotency: idem_rec.as_ref(),
            now,
        })
        .await?;
    match outcome {
        RecordOutcome::Recorded => Ok(RecordReply {
            status: 201,
            data,
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
    let data = serde_json::from_str(&rec.response).map_err(Error::internal)?;
    Ok(RecordReply {
        status: rec.status,
        data,
        replayed: true,
    })
}

/// One usage row as reports show it.
pub fn counter_view(c: &UsageCounter) -> Value {
    json!({
        "license_id": c.license_id,
        "customer_email": c.customer_email,
        "metric": c.metric,
        "period": c.period,
        "used": c.used,
        "limit": c.limit,
        "overage": c.overage(),
    })
}

/// A usage event as the management API lists it: it is the record's audit entry.
pub fn event_view(e: &UsageEvent) -> Value {
    json!({
        "id": e.id,
        "code": e.code,
        "severity": "info",
        "license_id": e.license_id,
        "metric": e.metric,
        "quantity": e.quantity,
        "period": e.period,
        "timestamp": rfc3339(e.timestamp),
        "recorded_at": rfc3339(e.recorded_at),
        "actor": e.actor,
        "request_id": e.request_id,
        "idempotency_key": e.idempotency_key,
        "metadata": e.metadata,
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

/// CSV of usage rows, with a header row.
pub fn to_csv(rows: &[UsageCounter]) -> Result<String, Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "license_id",
        "customer_email",
        "metric",
        "period",
        "limit",
        "used",
        "overage",
    ])
    .map_err(Error::internal)?;
    for c in rows {
        w.write_record([
            c.license_id.as_ref().map(|l| l.as_str()).unwrap_or(""),
            c.customer_email.as_ref().map(|e| e.as_str()).unwrap_or(""),
            c.metric.as_str(),
            c.period.as_str(),
            &c.limit.map(|l| l.to_string()).unwrap_or_default(),
            &c.used.to_string(),
            &c.overage().to_string(),
        ])
        .map_err(Error::internal)?;
    }
    String::from_utf8(w.into_inner().map_err(Error::internal)?).map_err(Error::internal)
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

    #[test]
    fn csv_quotes_fields() {
        let c = UsageCounter {
            metric: Metric::parse("api-calls").unwrap(),
            period: "2026-11".into(),
            used: 12,
            license_id: None,
            customer_email: Some(crate::ids::Email::normalise("a,b@example.com").unwrap()),
            limit: Some(10),
            resets_epoch: None,
        };
        let s = to_csv(&[c]).unwrap();
        assert_eq!(s, "license_id,customer_email,metric,period,limit,used,overage\n,\"a,b@example.com\",api-calls,2026-11,10,12,2\n");
    }
}
