//! Trials: what a started trial leaves behind so that the same customer
//! e-mail or device cannot start another within the cooldown.

use crate::clock::ts;
use crate::ids::{Email, LicenseId, ProductCode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One claim (an e-mail's or a fingerprint's) on a product's trial.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrialClaim {
    pub product: ProductCode,
    /// The trial license that took it.
    pub license_id: LicenseId,
    #[serde(with = "ts")]
    pub started_at: OffsetDateTime,
    /// Until then no other trial of the product for the same e-mail or
    /// fingerprint.
    #[serde(with = "ts")]
    pub cooldown_until: OffsetDateTime,
    /// `cooldown_until` as epoch seconds, for the claim's write condition.
    pub cooldown_epoch: i64,
}

/// Public trials a tenant takes per UTC day unless its
/// `settings.public_trials_per_day` says otherwise.
pub const DEFAULT_PUBLIC_TRIALS_PER_DAY: u32 = 100;

/// The UTC day public trials are counted in: its key (`2026-05-01`) and
/// the seconds until the next one begins (at least 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialDay {
    pub key: String,
    pub retry_after_secs: u64,
    /// When a day counter may be tidied away (a week after its day; nothing
    /// relies on it: each day has its own counter).
    pub tidy_epoch: i64,
}

impl TrialDay {
    pub fn of(now: OffsetDateTime) -> Self {
        let utc = now.to_offset(time::UtcOffset::UTC);
        let start = utc.date().midnight().assume_utc();
        let next = start + time::Duration::days(1);
        Self {
            key: utc.date().to_string(),
            retry_after_secs: (next - utc).whole_seconds().max(1) as u64,
            tidy_epoch: (next + time::Duration::days(7)).unix_timestamp(),
        }
    }
}

/// A public trial's e-mail verification link, stored under the SHA-256 of
/// its token (the token itself is only in the e-mail). Following it once,
/// before `expires_epoch`, marks the trial license's e-mail verified.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EmailVerification {
    pub license_id: LicenseId,
    pub email: Email,
    pub product: ProductCode,
    /// Epoch seconds: usable strictly before (the trial's end).
    pub expires_epoch: i64,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub used_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn public_trials_are_counted_per_utc_day() {
        let d = TrialDay::of(datetime!(2026-05-01 23:59:30 UTC));
        assert_eq!(d.key, "2026-05-01");
        assert_eq!(d.retry_after_secs, 30);
        assert_eq!(
            d.tidy_epoch,
            datetime!(2026-05-09 0:00 UTC).unix_timestamp()
        );
        // Another offset is the same instant: the UTC day counts.
        let d = TrialDay::of(datetime!(2026-05-02 01:00 +02:00));
        assert_eq!(d.key, "2026-05-01");
        assert_eq!(d.retry_after_secs, 3600);
        let d = TrialDay::of(datetime!(2026-05-02 0:00 UTC));
        assert_eq!((d.key.as_str(), d.retry_after_secs), ("2026-05-02", 86_400));
    }
}
