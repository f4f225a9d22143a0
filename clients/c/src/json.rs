//! The JSON results handed to C: the Rust client's types written out field by field, with
//! times as RFC 3339 (UTC) and codes as the service spells them.

use licensing_client::{
    Activation, License, LicenseFile, LicenseStatus, Validation, ValidationCode,
};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub(crate) fn time(t: OffsetDateTime) -> Value {
    t.format(&Rfc3339).map(Value::String).unwrap_or(Value::Null)
}

fn opt_time(t: Option<OffsetDateTime>) -> Value {
    t.map(time).unwrap_or(Value::Null)
}

pub(crate) fn validation_code(code: ValidationCode) -> &'static str {
    match code {
        ValidationCode::Valid => "VALID",
        ValidationCode::NotFound => "NOT_FOUND",
        ValidationCode::Suspended => "SUSPENDED",
        ValidationCode::Cancelled => "CANCELLED",
        ValidationCode::Expired => "EXPIRED",
        ValidationCode::ProductMismatch => "PRODUCT_MISMATCH",
        ValidationCode::HeartbeatDead => "HEARTBEAT_DEAD",
        ValidationCode::NoActivation => "NO_ACTIVATION",
        ValidationCode::EntitlementsMissing => "ENTITLEMENTS_MISSING",
        ValidationCode::Unknown => "UNKNOWN",
    }
}

fn license_status(status: LicenseStatus) -> &'static str {
    match status {
        LicenseStatus::Active => "active",
        LicenseStatus::Suspended => "suspended",
        LicenseStatus::Cancelled => "cancelled",
        LicenseStatus::Expired => "expired",
        LicenseStatus::PastDue => "past_due",
        LicenseStatus::Unknown => "unknown",
    }
}

pub(crate) fn license(l: &License) -> Value {
    json!({
        "id": l.id,
        "key": l.key,
        "status": license_status(l.status),
        "product": l.product,
        "policy": l.policy,
        "expires_at": opt_time(l.expires_at),
        "seats": { "limit": l.seats.limit, "used": l.seats.used },
        "entitlements": l.entitlements,
    })
}

pub(crate) fn validation(v: &Validation) -> Value {
    json!({
        "valid": v.valid,
        "code": validation_code(v.code),
        "detail": v.detail,
        "license": v.license.as_ref().map(license),
    })
}

pub(crate) fn activation(a: &Activation) -> Value {
    json!({
        "id": a.id,
        "license_id": a.license_id,
        "fingerprint": a.fingerprint,
        "status": a.status,
        "name": a.name,
        "hostname": a.hostname,
        "created_at": opt_time(a.created_at),
        "lease_expires_at": opt_time(a.lease_expires_at),
        "overage": a.overage,
    })
}

pub(crate) fn file(f: &LicenseFile) -> Value {
    json!({
        "format": f.format,
        "tenant_id": f.tenant_id,
        "kid": f.kid,
        "license": license(&f.license),
        "activation": f.activation.as_ref().map(|a| json!({ "id": a.id, "fingerprint": a.fingerprint })),
        "issued_at": time(f.issued_at),
        "expires_at": time(f.expires_at),
        "ttl_seconds": f.ttl_seconds,
        "certificate": f.certificate(),
    })
}
