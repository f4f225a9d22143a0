//! Every response view, in one place: how domain values look on the wire.
//! Use cases return domain values; handlers render them with these.

use crate::clock::rfc3339;
use crate::crypto::SigningKeys;
use crate::domain::seats::LiveLeases;
use crate::domain::stripe::Receipt;
use crate::domain::*;
use crate::error::Error;
use crate::ids::{Feature, TenantId};
use crate::usecases::licensing::LicenseState;
use crate::usecases::metering::{EntitlementCheck, UsageRecorded};
use crate::usecases::tenants::STAGES;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// A product as responses show it.
pub fn product_view(p: &Product) -> Value {
    json!({
        "code": p.code,
        "name": p.name,
        "trial": p.trial,
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
    })
}

/// A policy as responses show it.
pub fn policy_view(p: &Policy) -> Value {
    json!({
        "id": p.id,
        "product": p.product,
        "name": p.name,
        "max_activations": p.max_activations,
        "duration_days": p.duration_days,
        "entitlements": p.entitlements,
        "grace_period_days": p.grace_period_days,
        "stripe_price_ids": p.stripe_price_ids,
        "activation_mode": p.terms.activation_mode,
        "lease_seconds": p.terms.lease_seconds,
        "max_overage": p.terms.max_overage,
        "heartbeat_seconds": p.terms.heartbeat_seconds,
        "max_deactivations": p.terms.max_deactivations,
        "client_auth": p.client_auth,
        "max_file_ttl_seconds": p.max_file_ttl_seconds,
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
    })
}

/// An audit event as the audit trail lists it.
pub fn audit_view(a: &AuditEvent) -> Value {
    json!({
        "id": a.id,
        "code": a.code,
        "tenant_id": a.tenant_id,
        "actor": a.actor,
        "target_id": a.target_id,
        "at": rfc3339(a.at),
        "request_id": a.request_id,
        "severity": a.severity,
        "data": a.data,
    })
}

/// Entitlement answers as the contract shows them. Without usage (a listing
/// that did not read the counters) metered entitlements omit `used`.
pub fn entitlement_view(
    feature_specs: &Entitlements,
    usage: Option<&UsageSnapshot>,
    now: OffsetDateTime,
) -> Map<String, Value> {
    let mut out = Map::new();
    let none = UsageSnapshot::new();
    for (feature, spec) in feature_specs {
        let mut v = spec_view(feature, spec, usage.unwrap_or(&none), now, false);
        if usage.is_none() {
            if let Some(o) = v.as_object_mut() {
                o.remove("used");
            }
        }
        out.insert(feature.to_string(), v);
    }
    out
}

/// One feature's answer. `detailed` adds the check endpoint's fields.
pub fn spec_view(
    feature: &Feature,
    spec: &EntitlementSpec,
    usage: &UsageSnapshot,
    now: OffsetDateTime,
    detailed: bool,
) -> Value {
    match spec {
        EntitlementSpec::Boolean {} if !detailed => Value::Bool(true),
        EntitlementSpec::Boolean {} => json!({ "granted": true, "type": "boolean" }),
        EntitlementSpec::Metered {
            limit,
            period,
            overage,
            aggregation,
            unique_by,
            ..
        } => {
            let window = period.window(now);
            let used = usage
                .get(&(feature.to_string(), window.key.clone()))
                .map(|c| c.used)
                .unwrap_or(0);
            // `max` / `last` have no limit (a stored one would be ignored).
            let limit = limit.filter(|_| aggregation.limited());
            if !detailed {
                let mut v = json!({
                    "limit": limit,
                    "used": used,
                    "period": period.as_str(),
                    "aggregation": aggregation,
                });
                if let Some(by) = unique_by {
                    v["unique_by"] = json!(by);
                }
                return v;
            }
            let remaining = limit.map(|l| l.saturating_sub(used));
            let mut v = json!({
                "granted": remaining.is_none_or(|r| r > 0) || *overage == Overage::Allow,
                "type": "metered",
                "aggregation": aggregation,
                "limit": limit,
                "used": used,
                "remaining": remaining,
                "overage": limit.map(|l| used.saturating_sub(l)).unwrap_or(0),
                "overage_policy": overage,
                "period": period.as_str(),
                "resets_at": window.resets_at.map(rfc3339),
            });
            if let Some(by) = unique_by {
                v["unique_by"] = json!(by);
            }
            v
        }
    }
}

/// The license as responses show it.
/// `leases`: floating licenses' unexpired leases; without them (a listing
/// that did not read the partition) a floating license's `used` is null.
pub fn license_view_parts(
    license: &License,
    policy: Option<&Policy>,
    usage: Option<&UsageSnapshot>,
    leases: Option<LiveLeases>,
    now: OffsetDateTime,
) -> Value {
    let seats = match license.terms.activation_mode {
        ActivationMode::NodeLocked => {
            json!({ "limit": license.max_activations, "used": license.seats_used })
        }
        // Lapsed leases hold no seat, whatever the counters still say.
        ActivationMode::Floating => json!({
            "limit": license.max_activations,
            "used": leases.map(|l| l.used),
            "overage_limit": license.terms.max_overage,
            "overage_used": leases.map(|l| l.overage_used),
        }),
    };
    let entitlements = policy
        .map(|p| entitlement_view(&license.effective_entitlements(p), usage, now))
        .unwrap_or_default();
    json!({
        "id": license.id,
        "key": license.key,
        "status": license.status_str(now),
        "product": license.product,
        "policy": license.policy,
        "customer_email": license.customer_email,
        "customer_email_verified": !license.email_unverified,
        "expires_at": license.expires_at.map(rfc3339),
        "grace_until": license.grace_until.map(rfc3339),
        "seats": seats,
        "activation_mode": license.terms.activation_mode,
        "lease_seconds": license.terms.lease_seconds,
        "heartbeat_seconds": license.terms.heartbeat_seconds,
        "max_deactivations": license.terms.max_deactivations,
        "entitlements": entitlements,
        "metadata": license.metadata,
        "commercial": license.commercial,
        "organization": license.organization,
        "created_at": rfc3339(license.created_at),
        "updated_at": rfc3339(license.updated_at),
    })
}

/// A license with its policy and usage.
pub fn license_view(s: &LicenseState, now: OffsetDateTime) -> Value {
    license_view_parts(
        &s.license,
        s.policy.as_deref(),
        Some(&s.usage),
        Some(s.leases),
        now,
    )
}

/// A webhook endpoint (never its secret).
pub fn webhook_endpoint_view(e: &crate::domain::webhook::WebhookEndpoint) -> Value {
    json!({
        "id": e.id,
        "url": e.url,
        "events": e.events,
        "description": e.description,
        "enabled": e.enabled,
        "disabled_reason": e.disabled_reason,
        "failing_since": e.failing_since.map(rfc3339),
        "created_at": rfc3339(e.created_at),
        "updated_at": rfc3339(e.updated_at),
    })
}

/// One delivery attempt (the payload is the event as sent).
pub fn delivery_view(d: &crate::domain::webhook::Delivery) -> Value {
    json!({
        "id": d.id,
        "endpoint_id": d.endpoint_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "attempt": d.attempt,
        "manual": d.manual,
        "at": rfc3339(d.at),
        "status_code": d.status_code,
        "duration_ms": d.duration_ms,
        "succeeded": d.succeeded,
        "error": d.error,
        "response_excerpt": d.response_excerpt,
        "payload": serde_json::from_str::<Value>(&d.payload).unwrap_or(Value::Null),
    })
}

/// An activation as responses show it.
pub fn activation_view(a: &Activation, now: OffsetDateTime) -> Value {
    json!({
        "id": a.id,
        "license_id": a.license_id,
        "fingerprint": a.fingerprint,
        "name": a.name,
        "hostname": a.hostname,
        "user": a.user,
        "metadata": a.metadata,
        "status": match (a.deactivated_at, a.holds_seat(now)) {
            (Some(_), _) => "deactivated",
            (None, false) => "expired",
            (None, true) => "active",
        },
        "created_at": rfc3339(a.created_at),
        "last_activated_at": rfc3339(a.last_activated_at),
        "deactivated_at": a.deactivated_at.map(rfc3339),
        "lease_expires_at": a.lease_expires_at().map(rfc3339),
        "overage": a.overage,
        "last_heartbeat_at": a.last_heartbeat_at.map(rfc3339),
    })
}

/// An API key as responses show it: never the hash.
pub fn api_key_view(k: &ApiKeyRecord) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "scopes": k.scopes,
        "created_at": rfc3339(k.created_at),
        "expires_at": k.expires_at.map(rfc3339),
        "revoked_at": k.revoked_at.map(rfc3339),
        "last_used_at": k.last_used_at.map(rfc3339),
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
        "aggregation": c.aggregation,
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

/// A usage record's answer (also what a replay answers).
pub fn usage_recorded_view(r: &UsageRecorded) -> Value {
    json!({
        "metric": r.metric,
        "quantity": r.quantity,
        "period": r.period,
        "period_type": r.period_type,
        "timestamp": rfc3339(r.timestamp),
        "used": r.used,
        "limit": r.limit,
        "remaining": r.remaining,
        "overage": r.overage,
        "overage_policy": r.overage_policy,
        "aggregation": r.aggregation,
        "resets_at": r.resets_at.map(rfc3339),
        "license_id": r.license_id,
    })
}

/// One event's answer in a usage batch.
pub fn batch_result_view(id: &str, o: &crate::usecases::metering::BatchOutcome) -> Value {
    use crate::usecases::metering::BatchOutcome as O;
    match o {
        O::Recorded { used, limit } => {
            json!({ "id": id, "status": "recorded", "used": used, "limit": limit })
        }
        O::Duplicate => json!({ "id": id, "status": "duplicate" }),
        O::Rejected { code, used, limit } => {
            let mut v = json!({ "id": id, "status": "rejected", "code": code });
            if let (Some(u), Some(l)) = (used, limit) {
                v["used"] = json!(u);
                v["limit"] = json!(l);
            }
            v
        }
    }
}

/// An entitlement check's answer.
pub fn entitlement_check_view(c: &EntitlementCheck, now: OffsetDateTime) -> Value {
    let mut results = Map::new();
    for f in &c.features {
        let v = match c.specs.get(f) {
            Some(spec) => {
                let mut v = spec_view(f, spec, &c.usage, now, true);
                if !c.license_valid {
                    v["granted"] = json!(false);
                }
                v
            }
            None => json!({ "granted": false, "type": null, "reason": "not_defined" }),
        };
        results.insert(f.to_string(), v);
    }
    json!({ "license_valid": c.license_valid, "code": c.code, "results": results })
}

/// One version of a tenant's signing key, as the public listing shows it.
pub fn signing_key_view(
    tenant: &TenantId,
    keys: &SigningKeys,
    version: u32,
    created_at: OffsetDateTime,
    active: bool,
) -> Value {
    use base64::Engine as _;
    let public = keys.public_key(tenant.as_str(), version);
    json!({
        "kid": crate::crypto::kid(version),
        "algorithm": "ed25519",
        "public_key": base64::engine::general_purpose::STANDARD.encode(public),
        "created_at": rfc3339(created_at),
        "status": if active { "active" } else { "retired" },
    })
}

/// Every version of a tenant's signing key, newest first.
pub fn signing_keys_view(tenant: &Tenant, keys: &SigningKeys) -> Vec<Value> {
    let mut out: Vec<Value> = tenant
        .signing_key_versions()
        .into_iter()
        .map(|(v, at, active)| signing_key_view(&tenant.tenant_id, keys, v, at, active))
        .collect();
    out.reverse();
    out
}

/// An offline license file, as checkout answers it.
pub fn license_file_view(f: &crate::usecases::licensing::LicenseFile) -> Value {
    json!({
        "certificate": f.certificate,
        "issued_at": rfc3339(f.issued_at),
        "expires_at": rfc3339(f.expires_at),
        "kid": f.kid,
    })
}

/// A Stripe webhook delivery's receipt.
pub fn receipt_view(r: &Receipt) -> Value {
    let mut v = json!({
        "received": true,
        "event_id": r.event_id,
        "type": r.kind,
        "outcome": r.outcome_str(),
    });
    if let Some(l) = &r.license_id {
        v["license_id"] = json!(l);
    }
    if let Some(reason) = &r.reason {
        v["reason"] = json!(reason);
    }
    v
}

/// The tenant as the Platform API shows it.
pub fn tenant_view(t: &Tenant) -> Value {
    let stages: Vec<_> = STAGES
        .iter()
        .map(|name| {
            let s = t.stages.get(*name);
            json!({
                "stage": name,
                "state": s.map(|s| s.state.as_str()).unwrap_or("pending"),
                "attempts": s.map(|s| s.attempts).unwrap_or(0),
                "last_error": s.and_then(|s| s.last_error.clone()),
                "updated_at": s.map(|s| rfc3339(s.updated_at)),
            })
        })
        .collect();
    json!({
        "tenant_id": t.tenant_id,
        "name": t.name,
        "admin_email": t.admin_email,
        "plan": t.plan,
        "status": t.status.as_str(),
        "settings": t.settings,
        "license_limit": t.license_limit,
        "licenses_issued": t.licenses_issued,
        "stages": stages,
        "created_at": rfc3339(t.created_at),
        "updated_at": rfc3339(t.updated_at),
    })
}

/// CSV of usage rows, with a header row.
/// A text cell a spreadsheet will not run as a formula: a leading `=`, `+`,
/// `-`, `@`, tab or carriage return is escaped with `'` (OWASP's advice for
/// CSV injection).
pub(crate) fn csv_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

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
        "aggregation",
    ])
    .map_err(Error::internal)?;
    for c in rows {
        w.write_record([
            c.license_id.as_ref().map(|l| l.as_str()).unwrap_or(""),
            &csv_text(c.customer_email.as_ref().map(|e| e.as_str()).unwrap_or("")),
            c.metric.as_str(),
            c.period.as_str(),
            &c.limit.map(|l| l.to_string()).unwrap_or_default(),
            &c.used.to_string(),
            &c.overage().to_string(),
            c.aggregation.as_str(),
        ])
        .map_err(Error::internal)?;
    }
    String::from_utf8(w.into_inner().map_err(Error::internal)?).map_err(Error::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_fields() {
        let c = UsageCounter {
            metric: crate::ids::Metric::parse("api-calls").unwrap(),
            period: "2026-11".into(),
            used: 12,
            license_id: None,
            customer_email: Some(crate::ids::Email::normalise("a,b@example.com").unwrap()),
            limit: Some(10),
            resets_epoch: None,
            aggregation: Default::default(),
        };
        let s = to_csv(&[c]).unwrap();
        let header = "license_id,customer_email,metric,period,limit,used,overage,aggregation\n";
        assert_eq!(
            s,
            format!("{header},\"a,b@example.com\",api-calls,2026-11,10,12,2,sum\n")
        );
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        for (email, cell) in [
            ("=cmd|' /c calc'!a@x.co", "'=cmd|' /c calc'!a@x.co"),
            ("+1@x.co", "'+1@x.co"),
            ("-1@x.co", "'-1@x.co"),
            ("@a@x.co", "'@a@x.co"),
            ("ann@x.co", "ann@x.co"),
        ] {
            assert_eq!(csv_text(email), cell);
        }
    }
}
