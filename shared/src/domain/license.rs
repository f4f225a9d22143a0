use super::catalog::{EntitlementSpec, Entitlements, Policy, SeatTerms};
use crate::clock::ts;
use crate::ids::{
    ActivationId, Email, Feature, Fingerprint, LicenseId, LicenseKey, Metric, PolicyId,
    ProductCode, TenantId,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// The status a license is stored with. `expired` is never stored: it is
/// derived from `expires_at`, so no job has to flip it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenseStatus {
    Active,
    Suspended,
    Cancelled,
    PastDue,
}

impl LicenseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseStatus::Active => "active",
            LicenseStatus::Suspended => "suspended",
            LicenseStatus::Cancelled => "cancelled",
            LicenseStatus::PastDue => "past_due",
        }
    }
}

/// What ties a license to Stripe.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StripeLink {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// A one-off (`mode: payment`) purchase: the checkout session that paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_session_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct License {
    pub id: LicenseId,
    pub key: LicenseKey,
    pub product: ProductCode,
    pub policy: PolicyId,
    pub customer_email: Email,
    pub status: LicenseStatus,
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<OffsetDateTime>,
    /// `expires_at` as epoch seconds, for write conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_epoch: Option<i64>,
    /// While `past_due`: valid until then.
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub grace_until: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_epoch: Option<i64>,
    /// Seat limit of this license (from its policy at issue or plan change,
    /// or set on the license): the activation transaction compares against it.
    pub max_activations: u32,
    /// Held activations (node-locked) or leases within `max_activations`
    /// (floating, expired ones included until reclaimed): changed only
    /// inside activation transactions.
    #[serde(default)]
    pub seats_used: u32,
    /// Floating: held overage leases (beyond `max_activations`).
    #[serde(default)]
    pub overage_used: u32,
    /// Seat terms, copied from the policy at issue and at a policy change.
    #[serde(flatten)]
    pub terms: SeatTerms,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// Per-license entitlement changes: a spec grants or changes a feature,
    /// `null` revokes it.
    #[serde(default)]
    pub entitlement_overrides: BTreeMap<Feature, Option<EntitlementSpec>>,
    #[serde(default)]
    pub stripe: StripeLink,
    /// `created` of the newest Stripe event applied (0: none).
    #[serde(default)]
    pub stripe_event_at: i64,
    /// A public trial's e-mail, until its owner follows the link sent to
    /// it: it gives no portal access. Absent (every other license): the
    /// vendor's own word, verified.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub email_unverified: bool,
    /// Commit and overage terms (`docs/billing.md`); `None`: not billed
    /// through the overage export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commercial: Option<super::billing::CommercialTerms>,
    /// The customer organization the license was issued to (its id and
    /// name, copied at issue; the grant in the organization's partition is
    /// the link itself). `None`: issued to an e-mail only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<super::billing::GrantedOrg>,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "ts")]
    pub updated_at: OffsetDateTime,
}

/// Everything a new license is made from: the management API, Stripe and
/// (later) trials all build licenses through [`License::issue`].
pub struct LicenseDraft<'a> {
    pub tenant: &'a TenantId,
    pub policy: &'a Policy,
    /// `None`: a fresh random key.
    pub key: Option<LicenseKey>,
    pub customer_email: Email,
    pub status: LicenseStatus,
    /// `None`: the policy's duration from `now` (or perpetual).
    pub expires_at: Option<OffsetDateTime>,
    pub grace_until: Option<OffsetDateTime>,
    pub metadata: Map<String, Value>,
    pub stripe: StripeLink,
    pub stripe_event_at: i64,
    pub now: OffsetDateTime,
}

impl License {
    /// A new license under `d.policy`. Fails only when the policy's
    /// duration takes the expiry past the calendar's end.
    pub fn issue(d: LicenseDraft<'_>) -> Result<License, crate::error::Error> {
        let key = d.key.unwrap_or_else(LicenseKey::generate);
        let expires_at = match (d.expires_at, d.policy.duration_days) {
            (Some(at), _) => Some(at),
            (None, Some(days)) => Some(crate::clock::add_days(d.now, days)?),
            (None, None) => None,
        };
        let mut l = License {
            id: LicenseId::derive(d.tenant, &key),
            key,
            product: d.policy.product.clone(),
            policy: d.policy.id.clone(),
            customer_email: d.customer_email,
            status: d.status,
            expires_at: None,
            expires_epoch: None,
            grace_until: None,
            grace_epoch: None,
            max_activations: d.policy.max_activations,
            seats_used: 0,
            overage_used: 0,
            terms: d.policy.terms,
            metadata: d.metadata,
            entitlement_overrides: BTreeMap::new(),
            stripe: d.stripe,
            stripe_event_at: d.stripe_event_at,
            email_unverified: false,
            commercial: None,
            organization: None,
            created_at: d.now,
            updated_at: d.now,
        };
        l.set_expiry(expires_at);
        l.grace_until = d.grace_until;
        l.grace_epoch = d.grace_until.map(|g| g.unix_timestamp());
        Ok(l)
    }
}

/// What happens to a license's grace period in a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraceChange {
    #[default]
    Keep,
    Clear,
    /// Start one ending then, unless one already runs (it runs from the
    /// first failed payment).
    StartUnlessRunning(OffsetDateTime),
}

/// What an override entry of a change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideEdit {
    /// Drop the override: the policy's entitlement applies again.
    Inherit,
    /// Grant the feature, or change its limit, for this license.
    Set(EntitlementSpec),
    /// Revoke the feature for this license.
    Revoke,
}

/// A change to a stored license, in domain terms. The store turns it into
/// one conditional write and adds the storage-only fields itself.
#[derive(Debug, Clone, Default)]
pub struct LicenseChange {
    pub status: Option<LicenseStatus>,
    pub expires_at: Option<OffsetDateTime>,
    pub grace: GraceChange,
    pub policy: Option<PolicyId>,
    pub max_activations: Option<u32>,
    /// The seat terms of a new policy.
    pub terms: Option<SeatTerms>,
    pub metadata: Option<Map<String, Value>>,
    pub overrides: Vec<(Feature, OverrideEdit)>,
    /// `created` of the Stripe event that makes the change.
    pub stripe_event_at: Option<i64>,
}

/// What must hold of a license for a change to be written.
#[derive(Debug, Clone, Default)]
pub struct LicenseGuard {
    /// Its stored status is one of these (empty: any).
    pub status_in: Vec<LicenseStatus>,
    /// It is for this product.
    pub product: Option<ProductCode>,
    /// No newer Stripe event than this was applied to it.
    pub stripe_not_after: Option<i64>,
}

/// The status as a caller sees it at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Valid(&'static str),
    Suspended(&'static str),
    Cancelled,
    Expired,
}

impl License {
    pub fn standing(&self, now: OffsetDateTime) -> Standing {
        match self.status {
            LicenseStatus::Cancelled => Standing::Cancelled,
            LicenseStatus::Suspended => Standing::Suspended("suspended"),
            LicenseStatus::PastDue if self.grace_until.is_none_or(|g| g <= now) => {
                Standing::Suspended("past_due")
            }
            _ if self.expires_at.is_some_and(|e| e <= now) => Standing::Expired,
            LicenseStatus::PastDue => Standing::Valid("past_due"),
            LicenseStatus::Active => Standing::Valid("active"),
        }
    }

    pub fn status_str(&self, now: OffsetDateTime) -> &'static str {
        match self.standing(now) {
            Standing::Valid(s) | Standing::Suspended(s) => s,
            Standing::Cancelled => "cancelled",
            Standing::Expired => "expired",
        }
    }

    pub fn set_expiry(&mut self, at: Option<OffsetDateTime>) {
        self.expires_at = at;
        self.expires_epoch = at.map(|t| t.unix_timestamp());
    }

    /// The entitlements in force: the policy's, changed by this license's overrides.
    pub fn effective_entitlements(&self, policy: &Policy) -> Entitlements {
        let mut out = policy.entitlements.clone();
        for (feature, over) in &self.entitlement_overrides {
            match over {
                Some(spec) => {
                    out.insert(feature.clone(), spec.clone());
                }
                None => {
                    out.remove(feature);
                }
            }
        }
        out
    }

    /// The usage counters a view of this license shows: each metered
    /// entitlement in force, as (metric, key of its current period).
    pub fn current_periods(&self, policy: &Policy, now: OffsetDateTime) -> Vec<(Metric, String)> {
        current_periods(&self.effective_entitlements(policy), now)
    }
}

/// Each metered entitlement of `specs` as (metric, key of its period at `now`).
pub fn current_periods(specs: &Entitlements, now: OffsetDateTime) -> Vec<(Metric, String)> {
    specs
        .iter()
        .filter_map(|(feature, spec)| match spec {
            EntitlementSpec::Metered { period, .. } => {
                let metric = Metric::parse(feature.as_str()).ok()?;
                Some((metric, period.window(now).key))
            }
            EntitlementSpec::Boolean {} => None,
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Activation {
    pub id: ActivationId,
    pub license_id: LicenseId,
    pub fingerprint: Fingerprint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// A checkout through an organization's grant: the user who holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "ts")]
    pub last_activated_at: OffsetDateTime,
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<OffsetDateTime>,
    /// Floating: when the lease lapses (epoch seconds), and how long each
    /// checkout or heartbeat holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_epoch: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_seconds: Option<u32>,
    /// Floating: a lease beyond `max_activations`.
    #[serde(default)]
    pub overage: bool,
    /// Node-locked with heartbeats: the last one.
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_at: Option<OffsetDateTime>,
}

impl Activation {
    /// A new activation of `fingerprint` on `license`, active from `now`,
    /// without a lease (a checkout sets one).
    pub fn new(
        license: &LicenseId,
        fingerprint: Fingerprint,
        name: Option<String>,
        hostname: Option<String>,
        metadata: Map<String, Value>,
        now: OffsetDateTime,
    ) -> Activation {
        Activation {
            id: ActivationId::derive(license, &fingerprint),
            license_id: license.clone(),
            fingerprint,
            name,
            hostname,
            user: None,
            metadata,
            created_at: now,
            last_activated_at: now,
            deactivated_at: None,
            lease_expires_epoch: None,
            lease_seconds: None,
            overage: false,
            last_heartbeat_at: None,
        }
    }

    /// Does it hold a seat at `now`? A deactivated activation never does; a
    /// lease only until it lapses.
    pub fn holds_seat(&self, now: OffsetDateTime) -> bool {
        self.deactivated_at.is_none()
            && self
                .lease_expires_epoch
                .is_none_or(|e| e > now.unix_timestamp())
    }

    /// When the lease lapses, as a time.
    pub fn lease_expires_at(&self) -> Option<OffsetDateTime> {
        self.lease_expires_epoch
            .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
    }

    /// Node-locked with heartbeats: has it missed one?
    pub fn heartbeat_dead(&self, heartbeat_seconds: Option<u32>, now: OffsetDateTime) -> bool {
        let Some(every) = heartbeat_seconds else {
            return false;
        };
        let last = self.last_heartbeat_at.unwrap_or(self.last_activated_at);
        now - last > time::Duration::seconds(i64::from(every))
    }
}

/// Usage of one metric of one license in one period (the counter item).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UsageCounter {
    pub metric: Metric,
    /// The period key: `YYYY-MM-DD`, `YYYY-MM` or `total`.
    pub period: String,
    #[serde(default)]
    pub used: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_id: Option<LicenseId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<Email>,
    /// The limit in force when usage was last recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resets_epoch: Option<i64>,
    /// How `used` adds up (`sum` on counters written before aggregations).
    #[serde(default, skip_serializing_if = "super::Aggregation::is_sum")]
    pub aggregation: super::Aggregation,
}

impl UsageCounter {
    pub fn overage(&self) -> u64 {
        self.limit.map(|l| self.used.saturating_sub(l)).unwrap_or(0)
    }
}

/// Usage of the license's metrics keyed by (metric, period key).
pub type UsageSnapshot = HashMap<(String, String), UsageCounter>;

/// Validation result codes, in the contract's order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValidationCode {
    NotFound,
    Suspended,
    Cancelled,
    Expired,
    ProductMismatch,
    HeartbeatDead,
    NoActivation,
    EntitlementsMissing,
    Valid,
}

impl ValidationCode {
    pub fn detail(self) -> &'static str {
        match self {
            ValidationCode::NotFound => "No license exists with this key.",
            ValidationCode::Suspended => "The license is suspended.",
            ValidationCode::Cancelled => "The license has been cancelled.",
            ValidationCode::Expired => "The license has expired.",
            ValidationCode::ProductMismatch => "The license is for another product.",
            ValidationCode::HeartbeatDead => {
                "This fingerprint's activation missed its heartbeat; send one to revive it."
            }
            ValidationCode::NoActivation => "This fingerprint is not activated on the license.",
            ValidationCode::EntitlementsMissing => "A requested entitlement is not granted.",
            ValidationCode::Valid => "The license is valid.",
        }
    }
}

/// What the client asked validate to check.
#[derive(Debug, Clone, Default)]
pub struct ValidationScope {
    pub fingerprint: Option<Fingerprint>,
    pub product: Option<ProductCode>,
    pub entitlements: Vec<Feature>,
}

/// Pure validation: the code for a license (as read), its policy, the
/// activation of the requested fingerprint (if any) and the time.
pub fn evaluate(
    license: &License,
    policy: &Policy,
    activation: Option<&Activation>,
    scope: &ValidationScope,
    now: OffsetDateTime,
) -> ValidationCode {
    match license.standing(now) {
        Standing::Suspended(_) => return ValidationCode::Suspended,
        Standing::Cancelled => return ValidationCode::Cancelled,
        Standing::Expired => return ValidationCode::Expired,
        Standing::Valid(_) => {}
    }
    if scope
        .product
        .as_ref()
        .is_some_and(|p| *p != license.product)
    {
        return ValidationCode::ProductMismatch;
    }
    if scope.fingerprint.is_some() {
        // A lapsed lease holds no seat, whatever the item says.
        let held = activation.filter(|a| a.holds_seat(now));
        match held {
            None => return ValidationCode::NoActivation,
            Some(a) if a.heartbeat_dead(license.terms.heartbeat_seconds, now) => {
                return ValidationCode::HeartbeatDead
            }
            Some(_) => {}
        }
    }
    let granted = license.effective_entitlements(policy);
    if scope.entitlements.iter().any(|f| !granted.contains_key(f)) {
        return ValidationCode::EntitlementsMissing;
    }
    ValidationCode::Valid
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn policy() -> Policy {
        let mut e = Entitlements::new();
        e.insert(
            Feature::parse("export-4k").unwrap(),
            EntitlementSpec::Boolean {},
        );
        Policy {
            id: PolicyId::generate(),
            product: ProductCode::parse("app").unwrap(),
            name: "Pro".into(),
            max_activations: 2,
            duration_days: None,
            entitlements: e,
            grace_period_days: 3,
            stripe_price_ids: vec![],
            terms: SeatTerms::default(),
            client_auth: true,
            max_file_ttl_seconds: 1_209_600,
            created_at: datetime!(2026-01-01 0:00 UTC),
            updated_at: datetime!(2026-01-01 0:00 UTC),
        }
    }

    fn license(p: &Policy) -> License {
        let key = LicenseKey::generate();
        let t = crate::ids::TenantId::parse("acme").unwrap();
        License {
            id: LicenseId::derive(&t, &key),
            key,
            product: p.product.clone(),
            policy: p.id.clone(),
            customer_email: Email::normalise("a@b.co").unwrap(),
            status: LicenseStatus::Active,
            expires_at: None,
            expires_epoch: None,
            grace_until: None,
            grace_epoch: None,
            max_activations: 2,
            seats_used: 0,
            overage_used: 0,
            terms: SeatTerms::default(),
            metadata: Map::new(),
            entitlement_overrides: BTreeMap::new(),
            stripe: StripeLink::default(),
            stripe_event_at: 0,
            email_unverified: false,
            commercial: None,
            organization: None,
            created_at: datetime!(2026-01-01 0:00 UTC),
            updated_at: datetime!(2026-01-01 0:00 UTC),
        }
    }

    #[test]
    fn precedence() {
        let p = policy();
        let now = datetime!(2026-06-01 0:00 UTC);
        let mut l = license(&p);
        let scope = ValidationScope {
            product: Some(ProductCode::parse("other").unwrap()),
            fingerprint: Some(Fingerprint::parse("fp").unwrap()),
            entitlements: vec![Feature::parse("nope").unwrap()],
        };
        assert_eq!(
            evaluate(&l, &p, None, &scope, now),
            ValidationCode::ProductMismatch
        );
        l.set_expiry(Some(datetime!(2026-05-01 0:00 UTC)));
        assert_eq!(evaluate(&l, &p, None, &scope, now), ValidationCode::Expired);
        l.status = LicenseStatus::Cancelled;
        assert_eq!(
            evaluate(&l, &p, None, &scope, now),
            ValidationCode::Cancelled
        );
        l.status = LicenseStatus::Suspended;
        assert_eq!(
            evaluate(&l, &p, None, &scope, now),
            ValidationCode::Suspended
        );
        l.status = LicenseStatus::Active;
        l.set_expiry(None);
        let scope2 = ValidationScope {
            product: None,
            ..scope.clone()
        };
        assert_eq!(
            evaluate(&l, &p, None, &scope2, now),
            ValidationCode::NoActivation
        );
        let scope3 = ValidationScope {
            fingerprint: None,
            ..scope2.clone()
        };
        assert_eq!(
            evaluate(&l, &p, None, &scope3, now),
            ValidationCode::EntitlementsMissing
        );
        let scope4 = ValidationScope {
            entitlements: vec![Feature::parse("export-4k").unwrap()],
            ..scope3
        };
        assert_eq!(evaluate(&l, &p, None, &scope4, now), ValidationCode::Valid);
    }

    #[test]
    fn past_due_grace() {
        let p = policy();
        let mut l = license(&p);
        l.status = LicenseStatus::PastDue;
        l.grace_until = Some(datetime!(2026-06-04 0:00 UTC));
        let s = ValidationScope::default();
        assert_eq!(
            evaluate(&l, &p, None, &s, datetime!(2026-06-03 23:59:59 UTC)),
            ValidationCode::Valid
        );
        assert_eq!(
            evaluate(&l, &p, None, &s, datetime!(2026-06-04 0:00 UTC)),
            ValidationCode::Suspended
        );
        assert_eq!(l.status_str(datetime!(2026-06-01 0:00 UTC)), "past_due");
    }

    #[test]
    fn overrides_change_entitlements() {
        let p = policy();
        let mut l = license(&p);
        l.entitlement_overrides
            .insert(Feature::parse("export-4k").unwrap(), None);
        l.entitlement_overrides.insert(
            Feature::parse("beta").unwrap(),
            Some(EntitlementSpec::Boolean {}),
        );
        let e = l.effective_entitlements(&p);
        assert!(!e.contains_key(&Feature::parse("export-4k").unwrap()));
        assert!(e.contains_key(&Feature::parse("beta").unwrap()));
    }
}
