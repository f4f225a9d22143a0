//! What the service answers. Unknown fields are ignored, unknown enum values map to `Unknown`,
//! so newer servers keep working with older apps.

use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;

/// The answer of `validate`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Validation {
    /// Whether the license may be used (`code` is `VALID`).
    pub valid: bool,
    /// Why, in the order of precedence the service applies.
    pub code: ValidationCode,
    /// A human sentence.
    #[serde(default)]
    pub detail: Option<String>,
    /// The license; `None` when `code` is `NOT_FOUND`.
    #[serde(default)]
    pub license: Option<License>,
}

/// The result code of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValidationCode {
    /// The license is valid.
    Valid,
    /// No such license.
    NotFound,
    /// Suspended (by the vendor, or past due beyond the grace period).
    Suspended,
    /// Cancelled (terminal).
    Cancelled,
    /// Expired.
    Expired,
    /// The license is for another product.
    ProductMismatch,
    /// A node-locked activation missed its heartbeat; the next heartbeat revives it.
    HeartbeatDead,
    /// The fingerprint is not activated on this license (or its lease lapsed).
    NoActivation,
    /// A requested entitlement is not granted.
    EntitlementsMissing,
    /// A code this version of the client does not know.
    #[serde(other)]
    Unknown,
}

/// A license as `validate` and license files show it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct License {
    /// The license id.
    pub id: String,
    /// The license key.
    pub key: String,
    /// Its lifecycle state.
    pub status: LicenseStatus,
    /// The product code.
    #[serde(default)]
    pub product: Option<String>,
    /// The policy (plan) id.
    #[serde(default)]
    pub policy: Option<String>,
    /// When it expires; `None` for a perpetual license.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Seat limit (and, from `validate`, seats in use).
    #[serde(default)]
    pub seats: Seats,
    /// The effective entitlements, by feature: `true`, or an object describing a metered one.
    #[serde(default)]
    pub entitlements: BTreeMap<String, serde_json::Value>,
    /// `node_locked` or `floating` (`None` from a service that does not say).
    #[serde(default)]
    pub activation_mode: Option<String>,
    /// Floating: how long a lease lasts unless a heartbeat renews it.
    #[serde(default)]
    pub lease_seconds: Option<u64>,
    /// Node-locked: the policy requires a heartbeat at least this often (`None`: no
    /// heartbeats at all).
    #[serde(default)]
    pub heartbeat_seconds: Option<u64>,
}

impl License {
    /// Whether seats are floating leases (`activation_mode` is `floating`).
    pub fn is_floating(&self) -> bool {
        self.activation_mode.as_deref() == Some("floating")
    }

    /// Whether `feature` is granted: present and neither `false` nor `null`.
    pub fn has_entitlement(&self, feature: &str) -> bool {
        self.entitlements.get(feature).is_some_and(|spec| {
            !matches!(
                spec,
                serde_json::Value::Bool(false) | serde_json::Value::Null
            )
        })
    }
}

/// A license's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenseStatus {
    /// Active.
    Active,
    /// Suspended.
    Suspended,
    /// Cancelled.
    Cancelled,
    /// Expired.
    Expired,
    /// Payment failed; valid until the grace period ends.
    PastDue,
    /// A state this version of the client does not know.
    #[serde(other)]
    Unknown,
}

/// Seats of a license.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Seats {
    /// The seat limit; `None` when unlimited or not given.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Seats in use (only in `validate` answers).
    #[serde(default)]
    pub used: Option<u64>,
}

/// An activation (a seat, or on a floating policy a lease).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Activation {
    /// The activation id, for [`heartbeat`](crate::Client::heartbeat).
    pub id: String,
    /// The license it belongs to.
    pub license_id: String,
    /// The machine fingerprint.
    pub fingerprint: String,
    /// Its state, such as `active`.
    #[serde(default)]
    pub status: Option<String>,
    /// The name given at activation.
    #[serde(default)]
    pub name: Option<String>,
    /// The hostname given at activation.
    #[serde(default)]
    pub hostname: Option<String>,
    /// When it was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When it was last activated (a floating lease: last checked out or renewed by checkout).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_activated_at: Option<OffsetDateTime>,
    /// When its last heartbeat was received.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_heartbeat_at: Option<OffsetDateTime>,
    /// Floating policies: when the lease lapses unless a heartbeat renews it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub lease_expires_at: Option<OffsetDateTime>,
    /// Floating policies: whether this lease was granted beyond the seat limit.
    #[serde(default)]
    pub overage: Option<bool>,
}

/// The answer of `checkout` (only the certificate is used: everything else is read from the
/// verified file).
#[derive(Debug, Deserialize)]
pub(crate) struct CheckoutAnswer {
    pub certificate: String,
}

/// The error half of the envelope.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// The success half of the envelope.
#[derive(Debug, Deserialize)]
pub(crate) struct DataEnvelope<T> {
    pub data: T,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_parses_with_unknown_fields_and_codes() {
        let json = r#"{
            "valid": true, "code": "VALID", "detail": "ok", "extra": 1,
            "license": { "id": "lic_1", "key": "K", "status": "past_due", "product": "desktop",
                         "policy": "pol_1", "expires_at": "2026-11-30T12:00:00.000Z",
                         "seats": { "limit": 5, "used": 2 },
                         "entitlements": { "export": true, "off": false,
                                           "api-calls": { "limit": 10, "used": 1 } } } }"#;
        let v: Validation = serde_json::from_str(json).unwrap();
        assert!(v.valid);
        assert_eq!(v.code, ValidationCode::Valid);
        let license = v.license.unwrap();
        assert_eq!(license.status, LicenseStatus::PastDue);
        assert_eq!(
            license.expires_at,
            Some(time::macros::datetime!(2026-11-30 12:00 UTC))
        );
        assert_eq!(
            license.seats,
            Seats {
                limit: Some(5),
                used: Some(2)
            }
        );
        assert!(license.has_entitlement("export"));
        assert!(license.has_entitlement("api-calls"));
        assert!(!license.has_entitlement("off"));
        assert!(!license.has_entitlement("missing"));

        let v: Validation =
            serde_json::from_str(r#"{"valid":false,"code":"SOMETHING_NEW","license":null}"#)
                .unwrap();
        assert_eq!(v.code, ValidationCode::Unknown);
        assert_eq!(v.license, None);
    }

    #[test]
    fn activation_parses_leases() {
        let json = r#"{ "id": "act_1", "license_id": "lic_1", "fingerprint": "fp",
                        "status": "active", "lease_expires_at": "2026-11-30T12:15:00Z",
                        "overage": true, "metadata": {} }"#;
        let a: Activation = serde_json::from_str(json).unwrap();
        assert_eq!(
            a.lease_expires_at,
            Some(time::macros::datetime!(2026-11-30 12:15 UTC))
        );
        assert_eq!(a.overage, Some(true));
        assert_eq!(a.created_at, None);
    }
}
