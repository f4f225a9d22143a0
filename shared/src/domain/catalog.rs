use super::aggregation::{Aggregation, PropertyName};
use crate::clock::ts;
use crate::ids::{Feature, PolicyId, ProductCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::{Date, Month, OffsetDateTime, Time};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Product {
    pub code: ProductCode,
    pub name: String,
    /// `None`: the product offers no trial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<TrialSettings>,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "ts")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Day,
    Month,
    Total,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Overage {
    #[default]
    Deny,
    Allow,
}

/// One entitlement on a policy (or a license override).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum EntitlementSpec {
    /// A struct variant so `deny_unknown_fields` applies to it too.
    Boolean {},
    Metered {
        /// Required for `sum` and `unique_count`; refused for `max` and
        /// `last` (see [`super::aggregation::check_terms`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
        period: Period,
        #[serde(default)]
        overage: Overage,
        /// How records add up over the period (`sum` unless set).
        #[serde(default, skip_serializing_if = "Aggregation::is_sum")]
        aggregation: Aggregation,
        /// `unique_count`: the record property whose distinct values count.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unique_by: Option<PropertyName>,
        /// The Stripe billing meter each recorded usage event of this
        /// metric is reported to, for licenses sold through Stripe.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stripe_meter_event_name: Option<MeterEventName>,
        /// The price of each unit beyond `limit` in a month, in minor units
        /// of the license's commercial currency (`docs/billing.md`, "Metered
        /// overage"). Only on `period: month`, `overage: allow`, `sum` or
        /// `unique_count` (see [`super::billing::check_metered_price`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        overage_unit_price_minor: Option<u64>,
    },
}

/// A Stripe billing meter's `event_name`: 1 to 100 of `[A-Za-z0-9_.:-]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MeterEventName(String);

impl MeterEventName {
    pub fn parse(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        let ok = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':');
        if (1..=100).contains(&s.len()) && s.bytes().all(ok) {
            Ok(Self(s))
        } else {
            Err(
                "stripe_meter_event_name must be 1 to 100 letters, digits, '_', '-', '.' or ':'"
                    .to_string(),
            )
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MeterEventName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl From<MeterEventName> for String {
    fn from(m: MeterEventName) -> String {
        m.0
    }
}

impl EntitlementSpec {
    /// The Stripe meter a metered entitlement reports to, if it names one.
    /// The unit price of a metered entitlement's overage, if it has one.
    pub fn overage_unit_price(&self) -> Option<u64> {
        match self {
            EntitlementSpec::Metered {
                overage_unit_price_minor,
                ..
            } => *overage_unit_price_minor,
            EntitlementSpec::Boolean {} => None,
        }
    }

    pub fn stripe_meter(&self) -> Option<&MeterEventName> {
        match self {
            EntitlementSpec::Metered {
                stripe_meter_event_name,
                ..
            } => stripe_meter_event_name.as_ref(),
            EntitlementSpec::Boolean {} => None,
        }
    }
}

pub type Entitlements = BTreeMap<Feature, EntitlementSpec>;

/// How a policy's seats are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ActivationMode {
    /// A seat per machine, held until it is deactivated.
    #[default]
    NodeLocked,
    /// A pool of seats checked out as leases that lapse unless renewed.
    Floating,
}

impl ActivationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivationMode::NodeLocked => "node_locked",
            ActivationMode::Floating => "floating",
        }
    }
}

/// At most `count` deactivations per license per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnLimit {
    pub count: u32,
    pub period: Period,
}

/// The seat terms of a policy, copied onto each license issued under it
/// (like `max_activations`): every seat write is conditional on them.
///
/// Stored flattened (`#[serde(flatten)]`) into the policy and license items:
/// five top-level attributes, as before they were one value. An absent
/// attribute reads as its default, so items written before a term existed
/// still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SeatTerms {
    #[serde(default)]
    pub activation_mode: ActivationMode,
    /// Floating: how long a checkout or heartbeat holds a seat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_seconds: Option<u32>,
    /// Floating: seats allowed beyond `max_activations`, flagged overage.
    #[serde(default)]
    pub max_overage: u32,
    /// Node-locked: an activation that misses its heartbeat validates as
    /// `HEARTBEAT_DEAD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deactivations: Option<ChurnLimit>,
}

impl SeatTerms {
    /// The lease a floating checkout gets ([`bounds::DEFAULT_LEASE_SECONDS`] when unset).
    pub fn lease_seconds(&self) -> u32 {
        self.lease_seconds.unwrap_or(bounds::DEFAULT_LEASE_SECONDS)
    }

    /// The lease a checkout under these terms holds its seat for: floating
    /// only (node-locked seats are held until deactivated).
    pub fn lease(&self) -> Option<u32> {
        match self.activation_mode {
            ActivationMode::Floating => Some(self.lease_seconds()),
            ActivationMode::NodeLocked => None,
        }
    }

    /// Floating policies show their lease explicitly (the default when unset).
    pub fn with_default_lease(mut self) -> SeatTerms {
        if self.activation_mode == ActivationMode::Floating && self.lease_seconds.is_none() {
            self.lease_seconds = Some(bounds::DEFAULT_LEASE_SECONDS);
        }
        self
    }

    /// Refuse values out of range and fields that make no sense for the
    /// mode, naming the field.
    pub fn check(&self) -> Result<(), Error> {
        let v = |msg: String| Err(Error::validation(msg));
        let (min, max) = (bounds::MIN_LEASE_SECONDS, bounds::MAX_LEASE_SECONDS);
        match self.activation_mode {
            ActivationMode::Floating => {
                if self
                    .lease_seconds
                    .is_some_and(|l| !(min..=max).contains(&l))
                {
                    return v(format!("lease_seconds must be from {min} to {max}"));
                }
                if self.heartbeat_seconds.is_some() {
                    return v(
                        "heartbeat_seconds is for node_locked policies; a floating lease \
                              is renewed by its heartbeat"
                            .into(),
                    );
                }
                if self.max_overage > bounds::MAX_ACTIVATIONS {
                    return v(format!(
                        "max_overage must be at most {}",
                        bounds::MAX_ACTIVATIONS
                    ));
                }
            }
            ActivationMode::NodeLocked => {
                if self.lease_seconds.is_some() {
                    return v("lease_seconds is for floating policies".into());
                }
                if self.max_overage != 0 {
                    return v("max_overage is for floating policies".into());
                }
                if self
                    .heartbeat_seconds
                    .is_some_and(|h| !(min..=max).contains(&h))
                {
                    return v(format!("heartbeat_seconds must be from {min} to {max}"));
                }
            }
        }
        if self
            .max_deactivations
            .is_some_and(|c| c.count > bounds::MAX_DEACTIVATIONS)
        {
            let max = bounds::MAX_DEACTIVATIONS;
            return v(format!("max_deactivations.count must be at most {max}"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Policy {
    pub id: PolicyId,
    pub product: ProductCode,
    pub name: String,
    pub max_activations: u32,
    /// `None`: perpetual licenses.
    #[serde(default)]
    pub duration_days: Option<u32>,
    #[serde(default)]
    pub entitlements: Entitlements,
    #[serde(default)]
    pub grace_period_days: u32,
    #[serde(default)]
    pub stripe_price_ids: Vec<String>,
    #[serde(flatten)]
    pub terms: SeatTerms,
    /// Client apps may authenticate with a license key of this policy.
    #[serde(default = "yes")]
    pub client_auth: bool,
    /// The longest offline license file of this policy's licenses: a longer
    /// `ttl_seconds` is cut to it ([`Policy::file_ttl`]). Policies stored
    /// before it existed read as the default.
    #[serde(default = "default_max_file_ttl")]
    pub max_file_ttl_seconds: u32,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "ts")]
    pub updated_at: OffsetDateTime,
}

fn yes() -> bool {
    true
}

fn default_max_file_ttl() -> u32 {
    bounds::DEFAULT_MAX_FILE_TTL_SECONDS
}

impl Policy {
    /// How long a license file asked to last `asked` seconds may last under
    /// this policy: at most its `max_file_ttl_seconds`.
    pub fn file_ttl(&self, asked: u32) -> u32 {
        asked.min(self.max_file_ttl_seconds)
    }
}

/// A usage period: the key its counter is stored under and when it resets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodWindow {
    pub key: String,
    pub resets_at: Option<OffsetDateTime>,
}

impl Period {
    pub fn window(self, at: OffsetDateTime) -> PeriodWindow {
        let at = at.checked_to_offset(time::UtcOffset::UTC).unwrap_or(at);
        match self {
            Period::Total => PeriodWindow {
                key: "total".into(),
                resets_at: None,
            },
            Period::Day => {
                let next = at.date().next_day().unwrap_or(Date::MAX);
                PeriodWindow {
                    key: format!(
                        "{:04}-{:02}-{:02}",
                        at.year(),
                        u8::from(at.month()),
                        at.day()
                    ),
                    resets_at: Some(next.with_time(Time::MIDNIGHT).assume_utc()),
                }
            }
            Period::Month => {
                let (y, m) = if at.month() == Month::December {
                    (at.year() + 1, Month::January)
                } else {
                    (at.year(), at.month().next())
                };
                let next = Date::from_calendar_date(y, m, 1).unwrap_or(Date::MAX);
                PeriodWindow {
                    key: format!("{:04}-{:02}", at.year(), u8::from(at.month())),
                    resets_at: Some(next.with_time(Time::MIDNIGHT).assume_utc()),
                }
            }
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
            Period::Total => "total",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    #[test]
    fn period_windows() {
        let w = Period::Month.window(datetime!(2026-12-31 23:59:59 UTC));
        assert_eq!(w.key, "2026-12");
        assert_eq!(w.resets_at, Some(datetime!(2027-01-01 0:00 UTC)));
        let d = Period::Day.window(datetime!(2026-02-28 12:00 UTC));
        assert_eq!(d.key, "2026-02-28");
        assert_eq!(d.resets_at, Some(datetime!(2026-03-01 0:00 UTC)));
        assert_eq!(
            Period::Total
                .window(datetime!(2026-02-28 12:00 UTC))
                .resets_at,
            None
        );
    }

    #[test]
    fn entitlement_specs_parse_strictly() {
        let e: EntitlementSpec =
            serde_json::from_str(r#"{"type":"metered","limit":10,"period":"day"}"#).unwrap();
        assert_eq!(
            e,
            EntitlementSpec::Metered {
                limit: Some(10),
                period: Period::Day,
                overage: Overage::Deny,
                aggregation: Aggregation::Sum,
                unique_by: None,
                stripe_meter_event_name: None,
                overage_unit_price_minor: None,
            }
        );
        // A sum spec is written exactly as before aggregations existed.
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"metered","limit":10,"period":"day","overage":"deny"}"#
        );
        let u: EntitlementSpec = serde_json::from_str(
            r#"{"type":"metered","limit":10,"period":"month","aggregation":"unique_count","unique_by":"user_id"}"#,
        )
        .unwrap();
        assert!(u.check(&Feature::parse("active-users").unwrap()).is_ok());
        let m: EntitlementSpec =
            serde_json::from_str(r#"{"type":"metered","period":"month","aggregation":"max"}"#)
                .unwrap();
        assert!(m.check(&Feature::parse("storage").unwrap()).is_ok());
        for bad in [
            r#"{"type":"metered","period":"month"}"#,
            r#"{"type":"metered","limit":1,"period":"month","aggregation":"last"}"#,
            r#"{"type":"metered","limit":1,"period":"month","aggregation":"unique_count"}"#,
            r#"{"type":"metered","limit":1,"period":"month","unique_by":"user"}"#,
        ] {
            let spec: EntitlementSpec = serde_json::from_str(bad).unwrap();
            assert!(spec.check(&Feature::parse("f").unwrap()).is_err(), "{bad}");
        }
        for bad in [
            r#"{"type":"metered","limit":1,"period":"month","aggregation":"avg"}"#,
            r#"{"type":"metered","limit":1,"period":"month","aggregation":"unique_count","unique_by":"a.b"}"#,
        ] {
            assert!(
                serde_json::from_str::<EntitlementSpec>(bad).is_err(),
                "{bad}"
            );
        }
        let e: EntitlementSpec = serde_json::from_str(
            r#"{"type":"metered","limit":10,"period":"day","stripe_meter_event_name":"api_calls.v1"}"#,
        )
        .unwrap();
        assert_eq!(e.stripe_meter().map(|m| m.as_str()), Some("api_calls.v1"));
        assert!(serde_json::to_string(&e)
            .unwrap()
            .contains("\"stripe_meter_event_name\":\"api_calls.v1\""));
        for bad in ["", "has space", "ümlaut", &"a".repeat(101)] {
            let j =
                json!({"type":"metered","limit":10,"period":"day","stripe_meter_event_name":bad});
            assert!(
                serde_json::from_value::<EntitlementSpec>(j).is_err(),
                "{bad}"
            );
        }
        assert!(MeterEventName::parse("a".repeat(100)).is_ok());
        assert!(serde_json::from_str::<EntitlementSpec>(
            r#"{"type":"metered","limit":10,"period":"week"}"#
        )
        .is_err());
        assert!(serde_json::from_str::<EntitlementSpec>(
            r#"{"type":"metered","limit":-1,"period":"day"}"#
        )
        .is_err());
        assert!(
            serde_json::from_str::<EntitlementSpec>(r#"{"type":"boolean","limit":1}"#).is_err()
        );
    }

    /// A policy as stored before `max_file_ttl_seconds` existed.
    const OLD_POLICY: &str = r#"{"id":"pol_01JAAAAAAAAAAAAAAAAAAAAAAA","product":"app",
        "name":"Pro","max_activations":5,"created_at":"2026-11-30T12:00:00.000Z",
        "updated_at":"2026-11-30T12:00:00.000Z"}"#;

    #[test]
    fn license_files_are_cut_to_the_policys_cap() {
        let mut p: Policy = serde_json::from_str(OLD_POLICY).unwrap();
        assert_eq!(p.max_file_ttl_seconds, 1_209_600, "the default: 14 days");
        assert_eq!(p.file_ttl(86_400), 86_400);
        assert_eq!(p.file_ttl(1_209_600), 1_209_600);
        assert_eq!(p.file_ttl(7_776_000), 1_209_600);
        p.max_file_ttl_seconds = 3_600;
        assert_eq!(p.file_ttl(7_200), 3_600);
        assert_eq!(p.file_ttl(3_600), 3_600);
    }

    #[test]
    fn the_cap_is_one_hour_to_ninety_days() {
        for ok in [3_600, 86_400, 1_209_600, 7_776_000] {
            assert!(check_max_file_ttl_seconds(ok).is_ok(), "{ok}");
        }
        for bad in [0, 3_599, 7_776_001, u32::MAX] {
            let e = check_max_file_ttl_seconds(bad).unwrap_err();
            assert!(
                matches!(&e, Error::Invalid { code: "VALIDATION_ERROR", message }
                    if message.starts_with("max_file_ttl_seconds must be from 3600 to 7776000")),
                "{bad}: {e:?}"
            );
        }
    }
}

/// Changes to a product; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub name: Option<String>,
    /// `Some(None)`: no trial any more.
    pub trial: Option<Option<TrialSettings>>,
}

/// A product's trial: a license on `policy` for `days`, one per customer
/// e-mail and one per fingerprint within `cooldown_days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialSettings {
    pub policy: PolicyId,
    pub days: u32,
    #[serde(default = "default_cooldown_days")]
    pub cooldown_days: u32,
    /// Client apps may start one with no credential (`X-Tenant-Id` only),
    /// rate limited per source address.
    #[serde(default)]
    pub public: bool,
}

fn default_cooldown_days() -> u32 {
    bounds::DEFAULT_TRIAL_COOLDOWN_DAYS
}

impl TrialSettings {
    /// Refuse values outside [`bounds`], naming the field.
    pub fn check(&self) -> Result<(), Error> {
        if !(1..=bounds::MAX_TRIAL_DAYS).contains(&self.days) {
            return Err(Error::validation(format!(
                "trial.days must be from 1 to {}",
                bounds::MAX_TRIAL_DAYS
            )));
        }
        if !(1..=bounds::MAX_TRIAL_COOLDOWN_DAYS).contains(&self.cooldown_days) {
            return Err(Error::validation(format!(
                "trial.cooldown_days must be from 1 to {}",
                bounds::MAX_TRIAL_COOLDOWN_DAYS
            )));
        }
        Ok(())
    }
}

/// Changes to a policy; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PolicyPatch {
    pub name: Option<String>,
    pub max_activations: Option<u32>,
    /// `Some(None)`: perpetual from now on.
    pub duration_days: Option<Option<u32>>,
    pub entitlements: Option<Entitlements>,
    pub grace_period_days: Option<u32>,
    pub stripe_price_ids: Option<Vec<String>>,
    pub activation_mode: Option<ActivationMode>,
    /// `Some(None)`: back to the default.
    pub lease_seconds: Option<Option<u32>>,
    pub max_overage: Option<u32>,
    pub heartbeat_seconds: Option<Option<u32>>,
    pub max_deactivations: Option<Option<ChurnLimit>>,
    pub client_auth: Option<bool>,
    pub max_file_ttl_seconds: Option<u32>,
}

impl PolicyPatch {
    /// Does it touch the seat terms (which are checked against the policy as a whole)?
    pub fn touches_terms(&self) -> bool {
        self.activation_mode.is_some()
            || self.lease_seconds.is_some()
            || self.max_overage.is_some()
            || self.heartbeat_seconds.is_some()
            || self.max_deactivations.is_some()
    }

    /// `current` with this patch's seat terms applied.
    pub fn terms_over(&self, current: SeatTerms) -> SeatTerms {
        SeatTerms {
            activation_mode: self.activation_mode.unwrap_or(current.activation_mode),
            lease_seconds: self.lease_seconds.unwrap_or(current.lease_seconds),
            max_overage: self.max_overage.unwrap_or(current.max_overage),
            heartbeat_seconds: self.heartbeat_seconds.unwrap_or(current.heartbeat_seconds),
            max_deactivations: self.max_deactivations.unwrap_or(current.max_deactivations),
        }
    }
}

/// The bounds of policy and entitlement fields (also in `docs/openapi.yaml`).
/// They keep every date and counter computation far inside its type.
pub mod bounds {
    /// Seats per license.
    pub const MAX_ACTIVATIONS: u32 = 1_000_000;
    /// A policy's license duration: 100 years.
    pub const MAX_DURATION_DAYS: u32 = 36_500;
    /// A policy's grace period after a failed payment: 10 years.
    pub const MAX_GRACE_PERIOD_DAYS: u32 = 3_650;
    /// A metered entitlement's limit: 10^15, far below `i64::MAX`, which is
    /// what DynamoDB arithmetic and every client's JSON number can hold.
    pub const MAX_METERED_LIMIT: u64 = 1_000_000_000_000_000;
    /// Entitlements per policy, overrides per license.
    pub const MAX_ENTITLEMENTS: usize = 100;
    /// A floating lease, and a node-locked heartbeat interval: 1 minute to 1 day.
    pub const MIN_LEASE_SECONDS: u32 = 60;
    pub const MAX_LEASE_SECONDS: u32 = 86_400;
    pub const DEFAULT_LEASE_SECONDS: u32 = 900;
    /// A churn limit's count.
    pub const MAX_DEACTIVATIONS: u32 = 100_000;
    /// A trial's length, and how long an e-mail or fingerprint waits for
    /// another trial of the same product (from the start of the last one).
    pub const MAX_TRIAL_DAYS: u32 = 365;
    pub const MAX_TRIAL_COOLDOWN_DAYS: u32 = 3_650;
    pub const DEFAULT_TRIAL_COOLDOWN_DAYS: u32 = 365;
    /// An offline license file's `ttl_seconds`, and a policy's cap on it
    /// (`max_file_ttl_seconds`): 1 hour to 90 days; the cap is 14 days unless set.
    pub const MIN_FILE_TTL_SECONDS: u32 = 3_600;
    pub const MAX_FILE_TTL_SECONDS: u32 = 7_776_000;
    pub const DEFAULT_MAX_FILE_TTL_SECONDS: u32 = 1_209_600;
}

use crate::error::Error;

impl EntitlementSpec {
    /// Refuse values outside [`bounds`], naming the feature.
    pub fn check(&self, feature: &Feature) -> Result<(), Error> {
        match self {
            EntitlementSpec::Metered { limit: Some(l), .. } if *l > bounds::MAX_METERED_LIMIT => {
                Err(Error::validation(format!(
                    "entitlements.{feature}.limit must be at most {}",
                    bounds::MAX_METERED_LIMIT
                )))
            }
            EntitlementSpec::Metered {
                limit,
                period,
                overage,
                aggregation,
                unique_by,
                overage_unit_price_minor,
                ..
            } => {
                super::aggregation::check_terms(
                    feature.as_str(),
                    *aggregation,
                    *limit,
                    unique_by.as_ref(),
                )?;
                match overage_unit_price_minor {
                    Some(price) => super::billing::check_metered_price(
                        feature.as_str(),
                        *price,
                        *period,
                        *overage,
                        *aggregation,
                    ),
                    None => Ok(()),
                }
            }
            EntitlementSpec::Boolean {} => Ok(()),
        }
    }
}

/// A policy's entitlements: at most [`bounds::MAX_ENTITLEMENTS`], each in bounds.
pub fn check_entitlements(e: &Entitlements) -> Result<(), Error> {
    if e.len() > bounds::MAX_ENTITLEMENTS {
        let msg = format!(
            "a policy may define at most {} entitlements",
            bounds::MAX_ENTITLEMENTS
        );
        return Err(Error::validation(msg));
    }
    e.iter().try_for_each(|(f, spec)| spec.check(f))
}

pub fn check_max_activations(n: u32) -> Result<(), Error> {
    if n > bounds::MAX_ACTIVATIONS {
        let msg = format!(
            "max_activations must be at most {}",
            bounds::MAX_ACTIVATIONS
        );
        return Err(Error::validation(msg));
    }
    Ok(())
}

/// `None` is perpetual; otherwise 1 to [`bounds::MAX_DURATION_DAYS`].
pub fn check_duration_days(d: Option<u32>) -> Result<(), Error> {
    match d {
        Some(d) if d == 0 || d > bounds::MAX_DURATION_DAYS => Err(Error::validation(format!(
            "duration_days must be from 1 to {}, or null for perpetual",
            bounds::MAX_DURATION_DAYS
        ))),
        _ => Ok(()),
    }
}

/// A policy's cap on its offline license files: from
/// [`bounds::MIN_FILE_TTL_SECONDS`] to [`bounds::MAX_FILE_TTL_SECONDS`].
pub fn check_max_file_ttl_seconds(s: u32) -> Result<(), Error> {
    let (min, max) = (bounds::MIN_FILE_TTL_SECONDS, bounds::MAX_FILE_TTL_SECONDS);
    if !(min..=max).contains(&s) {
        let msg = format!("max_file_ttl_seconds must be from {min} to {max} (1 hour to 90 days)");
        return Err(Error::validation(msg));
    }
    Ok(())
}

pub fn check_grace_period_days(d: u32) -> Result<(), Error> {
    if d > bounds::MAX_GRACE_PERIOD_DAYS {
        let msg = format!(
            "grace_period_days must be at most {}",
            bounds::MAX_GRACE_PERIOD_DAYS
        );
        return Err(Error::validation(msg));
    }
    Ok(())
}
