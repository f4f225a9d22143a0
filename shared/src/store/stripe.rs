//! Stripe webhook records and the transactions that apply events.
//!
//! Every transaction here carries the event's dedupe record
//! (`attribute_not_exists`), so an event takes effect at most once and an
//! event whose transaction failed leaves nothing behind. License writes are
//! conditional on `stripe_event_at <= created` and `status <> cancelled`; the
//! subscription record's `license_id` (set under `attribute_not_exists`) is
//! the one-license-per-subscription guard; a one-off checkout session's
//! record (`STRIPE_CS#`) is the same guard for `mode: payment` purchases.

use super::attrs as a;
use super::licenses::{plan_refusal, AUDIT_ITEM, LICENSE_ITEM};
use super::write::{get_s, PutIf, Txn, TxnError, Write};
use super::{keys, TenantStore};
use crate::clock::rfc3339;
use crate::domain::stripe::{
    Hold, StripeCharge, StripeCheckout, StripeEventRecord, StripeSubscription,
};
use crate::domain::{AuditEvent, License, LicenseChange, LicenseGuard, LicenseStatus};
use crate::error::Error;
use crate::ids::LicenseId;
use time::OffsetDateTime;

/// What a Stripe-issued license is the one license of: the record whose
/// `license_id` is set (only if absent) in the issuing transaction.
#[derive(Debug, Clone, Copy)]
pub enum IssueLink<'a> {
    Subscription(&'a str),
    /// A one-off (`mode: payment`) checkout session.
    CheckoutSession(&'a str),
}

#[derive(Debug)]
pub enum IssueOutcome {
    Issued,
    /// This event was recorded by another delivery.
    Duplicate,
    /// The subscription (or checkout session) got a license from another event meanwhile.
    Taken,
    PlanLimit(u64),
}

#[derive(Debug)]
pub enum ApplyOutcome {
    Applied,
    Duplicate,
    /// The order or status condition refused it: the license as it was.
    Refused(Option<Box<License>>),
}

#[derive(Debug)]
pub enum HoldOutcome {
    Held,
    Duplicate,
    /// A license exists now: apply to it instead.
    Licensed,
    /// Newer kept state exists.
    Stale,
}

/// Names of transaction items.
const EVENT: &str = "event record";
const SUBSCRIPTION: &str = "subscription";
const CHARGES: [&str; 8] = [
    "charge 1", "charge 2", "charge 3", "charge 4", "charge 5", "charge 6", "charge 7", "charge 8",
];

impl TenantStore {
    pub async fn get_stripe_event(
        &self,
        event_id: &str,
    ) -> Result<Option<StripeEventRecord>, Error> {
        self.get_as(&keys::stripe_event(self.tenant_id(), event_id))
            .await
    }

    pub async fn get_stripe_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Option<StripeSubscription>, Error> {
        self.get_as(&keys::stripe_subscription(
            self.tenant_id(),
            subscription_id,
        ))
        .await
    }

    pub async fn get_stripe_checkout(
        &self,
        session_id: &str,
    ) -> Result<Option<StripeCheckout>, Error> {
        self.get_as(&keys::stripe_checkout(self.tenant_id(), session_id))
            .await
    }

    pub async fn get_stripe_charge(
        &self,
        charge_or_intent: &str,
    ) -> Result<Option<StripeCharge>, Error> {
        self.get_as(&keys::stripe_charge(self.tenant_id(), charge_or_intent))
            .await
    }

    /// The event's dedupe record (new only) and charge → subscription links
    /// (idempotent: the same content each time), pushed onto `txn`.
    fn push_event(
        &self,
        txn: &mut Txn,
        rec: &StripeEventRecord,
        charges: &[StripeCharge],
    ) -> Result<(), Error> {
        let t = self.tenant_id();
        txn.put(
            EVENT,
            &keys::stripe_event(t, &rec.event_id),
            rec,
            PutIf::New,
        )?;
        if charges.len() > CHARGES.len() {
            return Err(Error::validation("an invoice paid by more than 8 charges"));
        }
        for (c, name) in charges.iter().zip(CHARGES) {
            txn.put(
                name,
                &keys::stripe_charge(t, &c.charge_id),
                c,
                PutIf::Always,
            )?;
        }
        Ok(())
    }

    /// Record an event that changes no license (with the charges it links).
    /// `Ok(false)`: the event was already recorded.
    pub async fn record_stripe_event(
        &self,
        rec: &StripeEventRecord,
        charges: &[StripeCharge],
    ) -> Result<bool, Error> {
        let mut txn = Txn::new();
        self.push_event(&mut txn, rec, charges)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(true),
            Err(TxnError::Cancelled(c)) if c.failed(EVENT) => Ok(false),
            Err(TxnError::Cancelled(c)) => Err(Error::internal(format!(
                "stripe event record refused: {}",
                c.describe()
            ))),
            Err(TxnError::Other(e)) => Err(e),
        }
    }

    /// Issue a subscription's (or one-off checkout session's) license: the
    /// plan counter, the license, the subscription's (session's) `license_id`
    /// (only if it has none), the event record and the audit events, in one
    /// transaction.
    pub async fn stripe_issue(
        &self,
        l: &License,
        on: IssueLink<'_>,
        customer_id: Option<&str>,
        rec: &StripeEventRecord,
        audit: [&AuditEvent; 2],
        charges: &[StripeCharge],
    ) -> Result<IssueOutcome, Error> {
        let t = self.tenant_id();
        let mut link = match on {
            IssueLink::Subscription(id) => {
                let mut w = Write::to(keys::stripe_subscription(t, id));
                w.set(a::SUBSCRIPTION_ID, id);
                w
            }
            IssueLink::CheckoutSession(id) => {
                let mut w = Write::to(keys::stripe_checkout(t, id));
                w.set(a::SESSION_ID, id);
                w
            }
        };
        link.set(a::LICENSE_ID, &l.id)
            .set(a::UPDATED_AT, &rfc3339(l.created_at))
            .set_some(a::CUSTOMER_ID, customer_id.as_ref())
            .if_absent(a::LICENSE_ID);
        let mut txn = Txn::new();
        self.push_issue(&mut txn, l)?;
        txn.update(SUBSCRIPTION, &link)?;
        self.push_event(&mut txn, rec, charges)?;
        self.push_audit(&mut txn, AUDIT_ITEM, audit[0])?;
        self.push_audit(&mut txn, "audit 2", audit[1])?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(IssueOutcome::Issued),
            Err(TxnError::Other(e)) => Err(e),
            Err(TxnError::Cancelled(c)) => {
                if c.failed(EVENT) {
                    Ok(IssueOutcome::Duplicate)
                } else if c.failed(SUBSCRIPTION) {
                    Ok(IssueOutcome::Taken)
                } else {
                    match plan_refusal(&c) {
                        Some(Error::PlanLimitReached { limit }) => {
                            Ok(IssueOutcome::PlanLimit(limit))
                        }
                        Some(e) => Err(e),
                        None => {
                            let why = format!("stripe license issue refused: {}", c.describe());
                            Err(Error::internal(why))
                        }
                    }
                }
            }
        }
    }

    /// Apply a change to a license if the event is not older than the newest
    /// applied, the license is not cancelled and (when given) its status is
    /// still `status_was` (the audit codes were chosen from it), with the
    /// event record and audit events, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn stripe_apply(
        &self,
        id: &LicenseId,
        change: &LicenseChange,
        status_was: Option<LicenseStatus>,
        rec: &StripeEventRecord,
        audit: &[AuditEvent],
        charges: &[StripeCharge],
        now: OffsetDateTime,
    ) -> Result<ApplyOutcome, Error> {
        const AUDIT_ITEMS: [&str; 5] = ["audit", "audit 2", "audit 3", "audit 4", "audit 5"];
        if audit.len() > AUDIT_ITEMS.len() {
            return Err(Error::internal(
                "too many audit events for one Stripe change",
            ));
        }
        let live = [
            LicenseStatus::Active,
            LicenseStatus::Suspended,
            LicenseStatus::PastDue,
        ];
        let guard = LicenseGuard {
            status_in: match status_was {
                Some(s) if live.contains(&s) => vec![s],
                _ => live.to_vec(),
            },
            product: None,
            stripe_not_after: Some(rec.created),
        };
        let mut change = change.clone();
        change.stripe_event_at = Some(rec.created);
        let mut txn = Txn::new();
        txn.update(LICENSE_ITEM, &self.license_write(id, &change, &guard, now))?;
        self.push_event(&mut txn, rec, charges)?;
        for (a, name) in audit.iter().zip(AUDIT_ITEMS) {
            self.push_audit(&mut txn, name, a)?;
        }
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(ApplyOutcome::Applied),
            Err(TxnError::Other(e)) => Err(e),
            Err(TxnError::Cancelled(c)) if c.failed(EVENT) => Ok(ApplyOutcome::Duplicate),
            Err(TxnError::Cancelled(c)) if c.failed(LICENSE_ITEM) => Ok(ApplyOutcome::Refused(
                c.old_as::<License>(LICENSE_ITEM)?.map(Box::new),
            )),
            Err(TxnError::Cancelled(c)) => Err(Error::internal(format!(
                "stripe license update refused: {}",
                c.describe()
            ))),
        }
    }

    /// Keep checkout details or event state on a subscription that has no
    /// license yet, with the event record, in one transaction. Kept state is
    /// only replaced by a newer (or same-second) event.
    pub async fn stripe_hold(
        &self,
        subscription_id: &str,
        h: &Hold,
        rec: &StripeEventRecord,
        charges: &[StripeCharge],
        now: OffsetDateTime,
    ) -> Result<HoldOutcome, Error> {
        let mut w = Write::to(keys::stripe_subscription(self.tenant_id(), subscription_id));
        w.set(a::SUBSCRIPTION_ID, subscription_id)
            .set(a::UPDATED_AT, &rfc3339(now))
            .set_some(a::CUSTOMER_ID, h.customer_id.as_ref())
            .if_absent(a::LICENSE_ID);
        if let Some((email, policy, at, quantity)) = &h.checkout {
            w.set(a::EMAIL, email)
                .set(a::CHECKOUT_AT, at)
                .set_some(a::POLICY, policy.as_ref())
                .set_some(a::CHECKOUT_QUANTITY, quantity.as_ref());
        }
        if let Some(st) = &h.state {
            w.set(a::P_AT, &st.at).if_absent_or_at_most(a::P_AT, st.at);
            if let Some(status) = st.status {
                w.set(a::P_STATUS, &status);
                if status == LicenseStatus::PastDue {
                    w.set_if_absent(a::P_GRACE_START, &now.unix_timestamp());
                } else {
                    w.remove(a::P_GRACE_START);
                }
            }
            if !st.prices.is_empty() {
                w.set(a::P_PRICES, &st.prices);
            }
            w.set_some(a::P_PERIOD_END, st.period_end.as_ref())
                .set_some(a::P_QUANTITY, st.quantity.as_ref());
        }
        let mut txn = Txn::new();
        txn.update(SUBSCRIPTION, &w)?;
        self.push_event(&mut txn, rec, charges)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(HoldOutcome::Held),
            Err(TxnError::Other(e)) => Err(e),
            Err(TxnError::Cancelled(c)) if c.failed(EVENT) => Ok(HoldOutcome::Duplicate),
            Err(TxnError::Cancelled(c)) if c.failed(SUBSCRIPTION) => {
                let licensed = c
                    .old(SUBSCRIPTION)
                    .is_some_and(|i| get_s(i, a::LICENSE_ID).is_some());
                Ok(if licensed {
                    HoldOutcome::Licensed
                } else {
                    HoldOutcome::Stale
                })
            }
            Err(TxnError::Cancelled(c)) => Err(Error::internal(format!(
                "stripe subscription hold refused: {}",
                c.describe()
            ))),
        }
    }
}
