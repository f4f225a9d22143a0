//! Stripe billing meters: which recorded usage events are reported, and the
//! exact form each report posts to `POST /v1/billing/meter_events`. Pure.
//!
//! A usage event is reported when its metric's metered entitlement names a
//! meter (`stripe_meter_event_name`) and the license was sold through
//! Stripe (it has a Stripe customer id). The usage event's id is Stripe's
//! `identifier`, so a report sent twice is billed once.

use super::EntitlementSpec;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What a record adds to its `USAGE.RECORDED` audit item (`stripe_meter`)
/// for the outbox to report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterRef {
    pub event_name: String,
    pub customer_id: String,
    /// Epoch seconds of the usage (not of the record).
    pub timestamp: i64,
}

/// The meter a usage event of `spec` at `at` is reported to, if any.
pub fn meter_ref(
    spec: Option<&EntitlementSpec>,
    stripe_customer_id: Option<&str>,
    at: OffsetDateTime,
) -> Option<MeterRef> {
    let name = spec?.stripe_meter()?;
    let customer = stripe_customer_id.filter(|c| !c.is_empty())?;
    Some(MeterRef {
        event_name: name.as_str().to_string(),
        customer_id: customer.to_string(),
        timestamp: at.unix_timestamp(),
    })
}

/// The form fields of one meter event (form-encoded by the sender).
pub fn meter_event_form(
    m: &MeterRef,
    usage_event_id: &str,
    quantity: u64,
) -> Vec<(&'static str, String)> {
    vec![
        ("event_name", m.event_name.clone()),
        ("payload[stripe_customer_id]", m.customer_id.clone()),
        ("payload[value]", quantity.to_string()),
        ("identifier", usage_event_id.to_string()),
        ("timestamp", m.timestamp.to_string()),
    ]
}

/// What to do after Stripe answered `status` (`None`: no answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeterOutcome {
    /// Accepted (2xx): done.
    Sent,
    /// 5xx, 429 or no answer: send again later (same identifier).
    Retry,
    /// Any other 4xx: sending again would not help; logged and kept.
    Rejected,
}

pub fn meter_outcome(status: Option<u16>) -> MeterOutcome {
    match status {
        Some(s) if (200..300).contains(&s) => MeterOutcome::Sent,
        Some(429) | None => MeterOutcome::Retry,
        Some(s) if (400..500).contains(&s) => MeterOutcome::Rejected,
        Some(_) => MeterOutcome::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn spec(meter: Option<&str>) -> EntitlementSpec {
        let mut j = serde_json::json!({ "type": "metered", "limit": 10, "period": "month" });
        if let Some(m) = meter {
            j["stripe_meter_event_name"] = m.into();
        }
        serde_json::from_value(j).unwrap()
    }

    #[test]
    fn only_named_meters_of_stripe_customers_are_reported() {
        let at = datetime!(2026-12-06 12:00 UTC);
        let s = spec(Some("api_calls"));
        let m = meter_ref(Some(&s), Some("cus_123"), at).unwrap();
        assert_eq!(m.event_name, "api_calls");
        assert_eq!(m.customer_id, "cus_123");
        assert_eq!(m.timestamp, at.unix_timestamp());
        assert_eq!(meter_ref(Some(&s), None, at), None);
        assert_eq!(meter_ref(Some(&s), Some(""), at), None);
        assert_eq!(meter_ref(Some(&spec(None)), Some("cus_123"), at), None);
        assert_eq!(meter_ref(None, Some("cus_123"), at), None);
        let b: EntitlementSpec = serde_json::from_str(r#"{"type":"boolean"}"#).unwrap();
        assert_eq!(meter_ref(Some(&b), Some("cus_123"), at), None);
    }

    #[test]
    fn the_form_names_the_event_by_its_usage_id() {
        let m = MeterRef {
            event_name: "api_calls".into(),
            customer_id: "cus_1".into(),
            timestamp: 1_700_000_000,
        };
        let f = meter_event_form(&m, "use_01J", 7);
        let get = |k: &str| f.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("event_name"), Some("api_calls"));
        assert_eq!(get("payload[stripe_customer_id]"), Some("cus_1"));
        assert_eq!(get("payload[value]"), Some("7"));
        assert_eq!(get("identifier"), Some("use_01J"));
        assert_eq!(get("timestamp"), Some("1700000000"));
    }

    #[test]
    fn retries_on_5xx_429_and_silence_only() {
        assert_eq!(meter_outcome(Some(200)), MeterOutcome::Sent);
        assert_eq!(meter_outcome(Some(500)), MeterOutcome::Retry);
        assert_eq!(meter_outcome(Some(503)), MeterOutcome::Retry);
        assert_eq!(meter_outcome(Some(429)), MeterOutcome::Retry);
        assert_eq!(meter_outcome(None), MeterOutcome::Retry);
        assert_eq!(meter_outcome(Some(400)), MeterOutcome::Rejected);
        assert_eq!(meter_outcome(Some(401)), MeterOutcome::Rejected);
    }
}
