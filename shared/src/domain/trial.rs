//! Trials: what a started trial leaves behind so that the same customer
//! e-mail or device cannot start another within the cooldown.

use crate::clock::ts;
use crate::ids::{LicenseId, ProductCode};
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
