//! Stripe, in domain terms: what the service keeps of Stripe's events and
//! subscriptions, what an event asks of a license, and the pure rules
//! (signatures, wire shapes, folding kept state, planning a change).

pub mod plan;
pub mod signature;
pub mod wire;

use crate::clock::ts;
use crate::domain::LicenseStatus;
use crate::ids::{Email, LicenseId, PolicyId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use plan::{
    fold_for_issue, issue_terms, needs_price_policy, plan_change, seats_for, IssueTerms, Plan,
};
pub use signature::{sign, verify_signature, SIGNATURE_TOLERANCE_SECS};
pub use wire::{parse_event, status_of, stripe_id_ok, Event, Payload};

/// The actor of every change a webhook makes.
pub const ACTOR: &str = "stripe";

/// How long an event's dedupe record is kept (Stripe retries for three days;
/// the dashboard can resend older events, which the order condition catches).
pub const EVENT_RECORD_DAYS: i64 = 90;

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It changed (or issued) a license.
    Applied,
    /// Nothing to do, or a permanent refusal (the reason says which).
    Ignored,
    /// Older than what the license (or the kept state) already reflects.
    Stale,
    /// Waiting for a later event: kept on the subscription record until its
    /// license exists, or an unpaid checkout waiting for its payment.
    Pending,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Ignored => "ignored",
            Outcome::Stale => "stale",
            Outcome::Pending => "pending",
        }
    }
}

/// The dedupe record of one event id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StripeEventRecord {
    pub event_id: String,
    pub event_type: String,
    pub created: i64,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_id: Option<LicenseId>,
    #[serde(with = "ts")]
    pub processed_at: OffsetDateTime,
    pub request_id: String,
    /// Epoch seconds: DynamoDB's TTL removes the record after this.
    pub ttl: i64,
}

impl StripeEventRecord {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        event_id: &str,
        event_type: &str,
        created: i64,
        outcome: Outcome,
        reason: Option<String>,
        license_id: Option<LicenseId>,
        now: OffsetDateTime,
        request_id: &str,
    ) -> Self {
        Self {
            event_id: event_id.to_string(),
            event_type: event_type.to_string(),
            created,
            outcome,
            reason,
            license_id,
            processed_at: now,
            request_id: request_id.to_string(),
            ttl: now.unix_timestamp() + EVENT_RECORD_DAYS * 86_400,
        }
    }
}

/// State of a subscription seen before its license existed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingState {
    pub status: Option<LicenseStatus>,
    pub prices: Vec<String>,
    pub period_end: Option<i64>,
    /// The subscription item's quantity (units of the policy's seats).
    pub quantity: Option<u32>,
    /// When it became past due (grace runs from here).
    pub grace_start: Option<i64>,
    /// `created` of the newest event folded in.
    pub at: i64,
}

/// A Stripe subscription: its license once issued; before that, what the
/// checkout and earlier events said.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StripeSubscription {
    pub subscription_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_id: Option<LicenseId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_at: Option<i64>,
    /// The checkout's line-item quantity (when its line items were expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_quantity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_status: Option<LicenseStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub p_prices: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_period_end: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_quantity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_grace_start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_at: Option<i64>,
}

impl StripeSubscription {
    /// The kept state, if any event left some.
    pub fn pending(&self) -> Option<PendingState> {
        let at = self.p_at?;
        Some(PendingState {
            status: self.p_status,
            prices: self.p_prices.clone(),
            period_end: self.p_period_end,
            quantity: self.p_quantity,
            grace_start: self.p_grace_start,
            at,
        })
    }
}

/// A one-off (`mode: payment`) checkout session and the license it issued:
/// `license_id` is set only if absent, in the issuing transaction, so a
/// session issues at most one license however many events name it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StripeCheckout {
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_id: Option<LicenseId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
}

/// Which subscription a charge (or payment intent) paid an invoice of.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StripeCharge {
    pub charge_id: String,
    pub subscription_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<String>,
}

/// What to keep on a subscription record that has no license yet.
#[derive(Debug, Clone, Default)]
pub struct Hold {
    pub customer_id: Option<String>,
    /// From the checkout: e-mail, named policy, `created`, line-item quantity.
    pub checkout: Option<(Email, Option<PolicyId>, i64, Option<u32>)>,
    /// From a subscription, invoice or charge event.
    pub state: Option<PendingState>,
}

/// What an event asks of its subscription's license.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub status: Option<LicenseStatus>,
    /// The subscription's prices: the policy follows the first one a policy lists.
    pub prices: Vec<String>,
    /// The end of a paid period: the new `expires_at`.
    pub period_end: Option<i64>,
    /// The subscription item's quantity: the license gets this many times
    /// its policy's seats.
    pub quantity: Option<u32>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.prices.is_empty()
            && self.period_end.is_none()
            && self.quantity.is_none()
    }
}

/// The result of one webhook delivery.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub event_id: String,
    pub kind: String,
    pub outcome: Outcome,
    pub duplicate: bool,
    pub reason: Option<String>,
    pub license_id: Option<LicenseId>,
}

impl Receipt {
    /// `duplicate` for a redelivery, else what became of the event.
    pub fn outcome_str(&self) -> &'static str {
        if self.duplicate {
            "duplicate"
        } else {
            self.outcome.as_str()
        }
    }
}

impl PendingState {
    /// `self` followed by `newer`: what `newer` says wins.
    pub fn then(self, newer: PendingState) -> PendingState {
        let status = newer.status.or(self.status);
        let grace_start = match status {
            Some(LicenseStatus::PastDue) => self
                .grace_start
                .filter(|_| self.status == Some(LicenseStatus::PastDue))
                .or(newer.grace_start),
            _ => None,
        };
        PendingState {
            status,
            prices: if newer.prices.is_empty() {
                self.prices
            } else {
                newer.prices
            },
            period_end: newer.period_end.or(self.period_end),
            quantity: newer.quantity.or(self.quantity),
            grace_start,
            at: self.at.max(newer.at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_state_folds_newest_last() {
        let a = PendingState {
            status: Some(LicenseStatus::PastDue),
            grace_start: Some(10),
            at: 10,
            ..Default::default()
        };
        let b = PendingState {
            status: Some(LicenseStatus::PastDue),
            grace_start: Some(20),
            at: 20,
            ..Default::default()
        };
        let f = a.clone().then(b.clone());
        assert_eq!(
            (f.status, f.grace_start, f.at),
            (Some(LicenseStatus::PastDue), Some(10), 20),
            "grace runs from the first failure"
        );
        let paid = PendingState {
            status: Some(LicenseStatus::Active),
            period_end: Some(99),
            at: 30,
            ..Default::default()
        };
        let f = a.then(paid);
        assert_eq!(
            (f.status, f.grace_start, f.period_end),
            (Some(LicenseStatus::Active), None, Some(99))
        );
    }
}
