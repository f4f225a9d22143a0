//! How a metered entitlement aggregates its records over a period: the
//! pure rules (which inputs a policy may give, what a record must carry,
//! how a counter's shards combine, when a `max` / `last` record changes
//! nothing). See `docs/data-model.md`, "Metric aggregations".
//!
//! * `sum` (default): the quantities added up; a limit applies.
//! * `unique_count`: the number of distinct values of
//!   `properties.<unique_by>` in the period (each counts 1, once); a limit
//!   applies to new distinct values.
//! * `max`: the largest quantity in the period; no limit.
//! * `last`: the quantity of the record with the latest timestamp; no limit.

use crate::crypto::sha256_hex;
use crate::error::Error;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    #[default]
    Sum,
    Max,
    UniqueCount,
    Last,
}

impl Aggregation {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Max => "max",
            Aggregation::UniqueCount => "unique_count",
            Aggregation::Last => "last",
        }
    }

    /// For `skip_serializing_if`: specs and counters written before
    /// aggregations existed read (and are written) exactly as before.
    pub fn is_sum(&self) -> bool {
        *self == Aggregation::Sum
    }

    /// Whether a limit applies (and is required): `sum` and `unique_count`.
    pub fn limited(self) -> bool {
        matches!(self, Aggregation::Sum | Aggregation::UniqueCount)
    }
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of a record property (`unique_by`): 1 to 64 characters of
/// `[A-Za-z0-9_-]`, the first a letter or `_`. A top-level key of the
/// record's `properties` (no nesting).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PropertyName(String);

impl PropertyName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        let first_ok = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let rest_ok = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if first_ok && rest_ok && s.len() <= Self::MAX_LEN {
            Ok(PropertyName(s))
        } else {
            Err(format!(
                "a property name is 1 to {} characters of A-Z a-z 0-9 _ -, starting with a letter or _",
                Self::MAX_LEN
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PropertyName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl From<PropertyName> for String {
    fn from(p: PropertyName) -> String {
        p.0
    }
}

impl fmt::Display for PropertyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A policy's (or an override's) metered entitlement terms that depend on
/// the aggregation: a limit for `sum` / `unique_count` and none for `max` /
/// `last`; `unique_by` for `unique_count` and for nothing else.
pub fn check_terms(
    feature: &str,
    aggregation: Aggregation,
    limit: Option<u64>,
    unique_by: Option<&PropertyName>,
) -> Result<(), Error> {
    match (aggregation.limited(), limit) {
        (true, None) => {
            return Err(Error::validation(format!(
                "entitlements.{feature}.limit is required for aggregation '{aggregation}'"
            )))
        }
        (false, Some(_)) => {
            return Err(Error::validation(format!(
                "entitlements.{feature}.limit is not allowed for aggregation '{aggregation}': \
                 limits apply to 'sum' and 'unique_count' only"
            )))
        }
        _ => {}
    }
    match (aggregation == Aggregation::UniqueCount, unique_by) {
        (true, None) => Err(Error::validation(format!(
            "entitlements.{feature}.unique_by is required for aggregation 'unique_count'"
        ))),
        (false, Some(_)) => Err(Error::validation(format!(
            "entitlements.{feature}.unique_by is allowed only with aggregation 'unique_count'"
        ))),
        _ => Ok(()),
    }
}

/// The longest string value a `unique_by` property may hold.
pub const MAX_DISTINCT_VALUE_LEN: usize = 256;

/// The digest that identifies a record's distinct value: the SHA-256 of the
/// value's JSON text, so the string `"42"` and the number `42` differ. The
/// value must be a non-empty string (≤ [`MAX_DISTINCT_VALUE_LEN`]
/// characters) or an integer; anything else (absent, null, a fraction, a
/// boolean, an object, an array) is `UNIQUE_BY_REQUIRED`.
pub fn distinct_value(props: &Map<String, Value>, by: &PropertyName) -> Result<String, Error> {
    let refuse = || {
        Error::invalid(
            "UNIQUE_BY_REQUIRED",
            format!(
                "this metric counts distinct values of properties.{by}: each record must carry \
                 it as a non-empty string (at most {MAX_DISTINCT_VALUE_LEN} characters) or an integer"
            ),
        )
    };
    let v = props.get(by.as_str()).ok_or_else(refuse)?;
    let ok = match v {
        Value::String(s) => !s.is_empty() && s.chars().count() <= MAX_DISTINCT_VALUE_LEN,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    };
    if !ok {
        return Err(refuse());
    }
    Ok(sha256_hex(v.to_string().as_bytes()))
}

/// What one shard of a counter holds for combining: `used`, and for `last`
/// the timestamp (epoch milliseconds) of the record `used` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    pub used: u64,
    pub at: Option<i64>,
}

/// A counter's value from its shards: `sum` and `unique_count` add them
/// up; `max` takes the largest; `last` the value of the latest timestamp
/// (on a tie, the later shard: the choice is arbitrary but stable).
pub fn combine(aggregation: Aggregation, shards: &[Reading]) -> u64 {
    match aggregation {
        Aggregation::Sum | Aggregation::UniqueCount => shards.iter().map(|s| s.used).sum(),
        Aggregation::Max => shards.iter().map(|s| s.used).max().unwrap_or(0),
        Aggregation::Last => shards
            .iter()
            .filter_map(|s| s.at.map(|at| (at, s.used)))
            .max_by_key(|(at, _)| *at)
            .map(|(_, used)| used)
            .unwrap_or(0),
    }
}

/// Whether a `max` / `last` record of `quantity` at `at_ms` leaves the
/// counter as it is, given shards as read: some shard already holds a
/// larger-or-equal value (`max`), or a strictly later record (`last`).
/// Values only ever move that way, so what a read shows dominated stays
/// dominated: such a record writes no shard. Never for `sum`/`unique_count`.
pub fn dominated(aggregation: Aggregation, shards: &[Reading], quantity: u64, at_ms: i64) -> bool {
    match aggregation {
        Aggregation::Max => shards.iter().any(|s| s.at.is_some() && s.used >= quantity),
        Aggregation::Last => shards.iter().any(|s| s.at.is_some_and(|at| at > at_ms)),
        Aggregation::Sum | Aggregation::UniqueCount => false,
    }
}

/// What a `max` / `last` record answers as `used`: the counter as read with
/// this record applied.
pub fn applied(aggregation: Aggregation, shards: &[Reading], quantity: u64, at_ms: i64) -> u64 {
    let mut all = shards.to_vec();
    all.push(Reading {
        used: quantity,
        at: Some(at_ms),
    });
    match aggregation {
        Aggregation::Sum | Aggregation::UniqueCount => {
            combine(aggregation, shards).saturating_add(quantity)
        }
        Aggregation::Max | Aggregation::Last => {
            if dominated(aggregation, shards, quantity, at_ms) {
                combine(aggregation, shards)
            } else {
                quantity
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(used: u64, at: Option<i64>) -> Reading {
        Reading { used, at }
    }

    #[test]
    fn aggregation_names() {
        for (a, s) in [
            (Aggregation::Sum, "\"sum\""),
            (Aggregation::Max, "\"max\""),
            (Aggregation::UniqueCount, "\"unique_count\""),
            (Aggregation::Last, "\"last\""),
        ] {
            assert_eq!(serde_json::to_string(&a).unwrap(), s);
            assert_eq!(serde_json::from_str::<Aggregation>(s).unwrap(), a);
        }
        assert!(serde_json::from_str::<Aggregation>("\"avg\"").is_err());
        assert!(Aggregation::Sum.limited() && Aggregation::UniqueCount.limited());
        assert!(!Aggregation::Max.limited() && !Aggregation::Last.limited());
    }

    #[test]
    fn property_names() {
        for ok in ["user_id", "_x", "U", "a-b_9", &"p".repeat(64)] {
            assert!(PropertyName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "9lives", "-a", "a.b", "a b", "é", &"p".repeat(65)] {
            assert!(PropertyName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn terms_per_aggregation() {
        let by = PropertyName::parse("user_id").unwrap();
        assert!(check_terms("f", Aggregation::Sum, Some(10), None).is_ok());
        assert!(check_terms("f", Aggregation::UniqueCount, Some(10), Some(&by)).is_ok());
        assert!(check_terms("f", Aggregation::Max, None, None).is_ok());
        assert!(check_terms("f", Aggregation::Last, None, None).is_ok());
        let msg = |r: Result<(), Error>| match r {
            Err(Error::Invalid { code, message }) => {
                assert_eq!(code, "VALIDATION_ERROR");
                message
            }
            other => panic!("{other:?}"),
        };
        assert!(msg(check_terms("f", Aggregation::Sum, None, None)).contains("f.limit is required"));
        assert!(msg(check_terms("f", Aggregation::Max, Some(5), None))
            .contains("f.limit is not allowed for aggregation 'max'"));
        assert!(msg(check_terms("f", Aggregation::Last, Some(0), None))
            .contains("f.limit is not allowed for aggregation 'last'"));
        assert!(
            msg(check_terms("f", Aggregation::UniqueCount, Some(5), None))
                .contains("f.unique_by is required")
        );
        assert!(msg(check_terms("f", Aggregation::Sum, Some(5), Some(&by)))
            .contains("f.unique_by is allowed only with aggregation 'unique_count'"));
    }

    #[test]
    fn distinct_values_are_strings_or_integers() {
        let by = PropertyName::parse("user").unwrap();
        let props = |v: Value| json!({ "user": v }).as_object().unwrap().clone();
        let a = distinct_value(&props(json!("alice")), &by).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(a, distinct_value(&props(json!("alice")), &by).unwrap());
        assert_ne!(a, distinct_value(&props(json!("bob")), &by).unwrap());
        let n = distinct_value(&props(json!(42)), &by).unwrap();
        assert_ne!(n, distinct_value(&props(json!("42")), &by).unwrap());
        assert!(distinct_value(&props(json!(-7)), &by).is_ok());
        for bad in [
            json!(null),
            json!(""),
            json!(1.5),
            json!(true),
            json!({}),
            json!([1]),
            json!("x".repeat(257)),
        ] {
            let e = distinct_value(&props(bad.clone()), &by).unwrap_err();
            assert_eq!(e.parts().1, "UNIQUE_BY_REQUIRED", "{bad}");
        }
        let e = distinct_value(&Map::new(), &by).unwrap_err();
        assert_eq!(e.parts().1, "UNIQUE_BY_REQUIRED");
    }

    #[test]
    fn shards_combine_per_aggregation() {
        let s = [r(3, Some(10)), r(0, None), r(7, Some(5)), r(2, Some(20))];
        assert_eq!(combine(Aggregation::Sum, &s), 12);
        assert_eq!(combine(Aggregation::UniqueCount, &s), 12);
        assert_eq!(combine(Aggregation::Max, &s), 7);
        assert_eq!(
            combine(Aggregation::Last, &s),
            2,
            "the latest timestamp wins"
        );
        assert_eq!(combine(Aggregation::Last, &[r(0, None); 8]), 0);
        assert_eq!(combine(Aggregation::Max, &[]), 0);
    }

    #[test]
    fn max_and_last_records_that_change_nothing() {
        let s = [r(7, Some(100)), r(0, None), r(3, Some(50))];
        assert!(dominated(Aggregation::Max, &s, 7, 0));
        assert!(dominated(Aggregation::Max, &s, 1, 0));
        assert!(!dominated(Aggregation::Max, &s, 8, 0));
        assert!(dominated(Aggregation::Last, &s, 1, 99));
        assert!(!dominated(Aggregation::Last, &s, 1, 100), "a tie writes");
        assert!(!dominated(Aggregation::Last, &s, 1, 101));
        assert!(!dominated(Aggregation::Sum, &s, 1, 0));
        assert!(!dominated(Aggregation::Max, &[r(0, None)], 0, 0));
        assert_eq!(applied(Aggregation::Max, &s, 9, 0), 9);
        assert_eq!(applied(Aggregation::Max, &s, 2, 0), 7);
        assert_eq!(applied(Aggregation::Last, &s, 2, 101), 2);
        assert_eq!(applied(Aggregation::Last, &s, 2, 60), 7);
        assert_eq!(applied(Aggregation::Sum, &s, 2, 0), 12);
    }

    /// Out-of-order records applied one by one, each as the store would
    /// (skip when dominated as read, else the conditional write of one
    /// shard), end with the true max and the latest timestamp's value.
    #[test]
    fn out_of_order_records_end_right() {
        let records = [(5u64, 30i64), (9, 10), (2, 50), (4, 40), (8, 20)];
        for agg in [Aggregation::Max, Aggregation::Last] {
            let mut shards = vec![Reading::default(); 3];
            for (k, &(q, at)) in records.iter().enumerate() {
                if dominated(agg, &shards, q, at) {
                    continue;
                }
                let s = &mut shards[k % 3];
                let write = match agg {
                    Aggregation::Max => s.at.is_none() || s.used < q,
                    _ => s.at.is_none_or(|a| a <= at),
                };
                if write {
                    *s = r(q, Some(at));
                }
            }
            let want = if agg == Aggregation::Max { 9 } else { 2 };
            assert_eq!(combine(agg, &shards), want, "{agg}");
        }
    }
}
