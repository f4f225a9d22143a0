//! Injectable time. Functions use [`SystemClock`]; tests move a [`ManualClock`].

use std::sync::Mutex;
use time::OffsetDateTime;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        // Millisecond precision: what we store and what RFC 3339 round-trips.
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(now.millisecond() as u32 * 1_000_000)
            .unwrap_or(now)
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Mutex::new(at))
    }
    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
    pub fn advance(&self, by: time::Duration) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *g += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `t` plus `days` whole days, or a 422 when that passes the calendar's
/// end (year 9999): never a panic.
pub fn add_days(t: OffsetDateTime, days: u32) -> Result<OffsetDateTime, crate::error::Error> {
    t.checked_add(time::Duration::days(i64::from(days)))
        .filter(|end| end.year() <= MAX_YEAR)
        .ok_or_else(|| crate::error::Error::validation("the resulting date is past the year 9999"))
}

/// RFC 3339 with millisecond precision in UTC, the form every response uses.
pub fn rfc3339(t: OffsetDateTime) -> String {
    // Every time the service keeps is UTC already ([`parse_rfc3339`]); the
    // checked conversion only guards against a panic, never changes a value.
    let t = t.checked_to_offset(time::UtcOffset::UTC).unwrap_or(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The latest year a time may have, in UTC (the calendar `time` supports
/// without its large-dates feature).
pub const MAX_YEAR: i32 = 9999;

/// Parse an RFC 3339 timestamp into UTC. A time whose UTC form falls outside
/// years 1 to 9999 (e.g. `9999-12-31T23:59:59-01:00`) is refused, never
/// converted with a panic.
pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    t.checked_to_offset(time::UtcOffset::UTC)
        .filter(|t| (1..=MAX_YEAR).contains(&t.year()))
}

/// Serde adapter: RFC 3339 UTC strings with milliseconds.
pub mod ts {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_rfc3339(&s).ok_or_else(|| {
            serde::de::Error::custom("must be an RFC 3339 timestamp between years 1 and 9999 (UTC)")
        })
    }

    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::OffsetDateTime;

        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::rfc3339(*t)),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| {
                super::super::parse_rfc3339(&s).ok_or_else(|| {
                    let msg = "must be an RFC 3339 timestamp between years 1 and 9999 (UTC)";
                    serde::de::Error::custom(msg)
                })
            })
            .transpose()
        }
    }
}

/// `YYYY-MM` of a time (UTC).
pub fn month_of(at: OffsetDateTime) -> String {
    let at = at.checked_to_offset(time::UtcOffset::UTC).unwrap_or(at);
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_past_the_calendar_are_refused_not_panicked_on() {
        assert!(parse_rfc3339("9999-12-31T23:59:59-01:00").is_none());
        assert!(parse_rfc3339("0001-01-01T00:30:00+01:00").is_none());
        assert!(parse_rfc3339("9999-12-31T22:59:59-01:00").is_some());
        let t = parse_rfc3339("2026-11-30T12:00:00+02:00").unwrap();
        assert_eq!(rfc3339(t), "2026-11-30T10:00:00.000Z");
        let near_end = parse_rfc3339("9999-12-30T00:00:00Z").unwrap();
        assert!(add_days(near_end, 2).is_err());
        assert!(add_days(near_end, u32::MAX).is_err());
        assert!(add_days(near_end, 1).is_ok());
    }

    #[test]
    fn formats_utc_millis() {
        assert_eq!(
            rfc3339(datetime!(2026-11-23 18:00:01.5 UTC)),
            "2026-11-23T18:00:01.500Z"
        );
        assert_eq!(
            rfc3339(datetime!(2026-11-23 20:00:00 +02:00)),
            "2026-11-23T18:00:00.000Z"
        );
    }

    #[test]
    fn manual_clock_moves() {
        let c = ManualClock::new(datetime!(2026-01-01 0:00 UTC));
        c.advance(time::Duration::days(1));
        assert_eq!(c.now(), datetime!(2026-01-02 0:00 UTC));
    }
}
