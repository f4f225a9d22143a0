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
        .filter(|end| end.year() <= 9999)
        .ok_or_else(|| crate::error::Error::validation("the resulting date is past the year 9999"))
}

/// RFC 3339 with millisecond precision in UTC, the form every response uses.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
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

/// Serde adapter: RFC 3339 UTC strings with milliseconds.
pub mod ts {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
            .map(|t| t.to_offset(time::UtcOffset::UTC))
            .map_err(|_| serde::de::Error::custom("must be an RFC 3339 timestamp"))
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
                OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                    .map(|t| t.to_offset(time::UtcOffset::UTC))
                    .map_err(|_| serde::de::Error::custom("must be an RFC 3339 timestamp"))
            })
            .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

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
