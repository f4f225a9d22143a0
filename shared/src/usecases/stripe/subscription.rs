//! A subscription's license: subscription events, and what every event
//! that names a subscription goes through — keeping its state until the
//! license exists, issuing it, and applying a change to it.

use super::checkout::CheckoutInfo;
use super::retry::{retry_on_conflict, Attempt, APPLY_ATTEMPTS, ATTEMPTS};
use super::Cx;
use crate::clock::rfc3339;
use crate::domain::stripe::plan::{
    fold_for_issue, issue_terms, needs_price_policy, plan_change, seats_for,
};
use crate::domain::stripe::wire::{id_of, Subscription};
use crate::domain::stripe::{
    stripe_id_ok, Change, Hold, Outcome, PendingState, Plan, Receipt, StripeCharge,
    StripeSubscription,
};
use crate::domain::{GraceChange, License, LicenseDraft, LicenseStatus, Policy, StripeLink};
use crate::error::Error;
use crate::ids::LicenseId;
use crate::store::stripe::{ApplyOutcome, HoldOutcome, IssueLink, IssueOutcome};
use serde_json::{json, Map};
use std::sync::Arc;

/// Why an attempt to issue did not produce a license.
pub(super) enum NotIssued {
    /// Waiting for something another event will bring.
    Pending(String),
    /// A definite refusal (no such policy, plan limit).
    Refused(String),
    /// Another event issued it meanwhile: look again.
    Taken,
}

impl Cx<'_> {
    /// `customer.subscription.created/updated`: status, price and seats.
    pub(super) async fn subscription_changed(&self, sub: &Subscription) -> Result<Receipt, Error> {
        match Change::of_subscription(sub) {
            Ok(change) => {
                self.for_subscription(&sub.id, change, id_of(&sub.customer), &[])
                    .await
            }
            Err(why) => self.ignored(why).await,
        }
    }

    /// `customer.subscription.deleted` cancels whatever its items say.
    pub(super) async fn subscription_deleted(&self, sub: &Subscription) -> Result<Receipt, Error> {
        let change = Change::to(LicenseStatus::Cancelled);
        self.for_subscription(&sub.id, change, id_of(&sub.customer), &[])
            .await
    }

    /// Apply `change` to the subscription's license, or keep it until the
    /// license exists (issuing it when the checkout was already seen).
    pub(super) async fn for_subscription(
        &self,
        sub_id: &str,
        change: Change,
        customer: Option<&str>,
        extra: &[StripeCharge],
    ) -> Result<Receipt, Error> {
        if !stripe_id_ok(sub_id) {
            return self
                .ignored("the subscription id is not well-formed".into())
                .await;
        }
        if change.is_empty() {
            let why = "nothing in this event changes a license (subscription status not mapped)"
                .to_string();
            return self.finish(Outcome::Ignored, Some(why), None, extra).await;
        }
        let change = &change;
        retry_on_conflict(ATTEMPTS, "the subscription kept changing; retry", || {
            self.for_subscription_once(sub_id, change, customer, extra)
        })
        .await
    }

    async fn for_subscription_once(
        &self,
        sub_id: &str,
        change: &Change,
        customer: Option<&str>,
        extra: &[StripeCharge],
    ) -> Result<Attempt<Receipt>, Error> {
        let sub = self.ts.get_stripe_subscription(sub_id).await?;
        if let Some(lid) = sub.as_ref().and_then(|s| s.license_id.clone()) {
            return self.apply(&lid, change, extra).await.map(Attempt::Done);
        }
        let (outcome, reason) = match self
            .issue(sub_id, sub.as_ref(), None, Some(change), extra)
            .await?
        {
            Ok(receipt) => return Ok(Attempt::Done(receipt)),
            Err(NotIssued::Taken) => return Ok(Attempt::Conflict),
            Err(NotIssued::Pending(r)) => (Outcome::Pending, r),
            Err(NotIssued::Refused(r)) => (Outcome::Ignored, r),
        };
        let hold = Hold {
            customer_id: customer.map(str::to_string),
            checkout: None,
            state: Some(PendingState::of(change, self.ev.created, None)),
        };
        self.hold(sub_id, &hold, outcome, reason, extra).await
    }

    /// Write `hold` on the subscription record with the event's record.
    /// A conflict: a license appeared meanwhile (look again).
    pub(super) async fn hold(
        &self,
        sub_id: &str,
        hold: &Hold,
        outcome: Outcome,
        reason: String,
        extra: &[StripeCharge],
    ) -> Result<Attempt<Receipt>, Error> {
        let rec = self.record(outcome, Some(reason.clone()), None);
        let done = match self
            .ts
            .stripe_hold(sub_id, hold, &rec, extra, self.now)
            .await?
        {
            HoldOutcome::Held => self.receipt(outcome, Some(reason), None),
            HoldOutcome::Duplicate => self.raced().await?,
            HoldOutcome::Licensed => return Ok(Attempt::Conflict),
            HoldOutcome::Stale => {
                let why = "a newer event for this subscription was already kept".to_string();
                self.finish(Outcome::Stale, Some(why), None, extra).await?
            }
        };
        Ok(Attempt::Done(done))
    }

    /// Issue the subscription's license if everything it needs is known: the
    /// customer's e-mail (checkout) and the policy (checkout metadata, or the
    /// subscription's price). State seen before (kept on the subscription
    /// record) and `trigger` (this event's change) are folded in, newest last.
    pub(super) async fn issue(
        &self,
        sub_id: &str,
        sub: Option<&StripeSubscription>,
        checkout: Option<&CheckoutInfo>,
        trigger: Option<&Change>,
        extra: &[StripeCharge],
    ) -> Result<Result<Receipt, NotIssued>, Error> {
        let email = checkout
            .map(|c| c.email.clone())
            .or_else(|| sub.and_then(|s| s.email.clone()));
        let Some(email) = email else {
            return Ok(Err(NotIssued::Pending(format!(
                "no license for subscription {sub_id} yet: its state is kept until \
                 checkout.session.completed arrives"
            ))));
        };
        let checkout_at = checkout
            .map(|c| c.at)
            .or_else(|| sub.and_then(|s| s.checkout_at))
            .unwrap_or(0);
        let grace_start = |c: &Change| {
            (c.status == Some(LicenseStatus::PastDue)).then(|| self.now.unix_timestamp())
        };
        let state = fold_for_issue(
            checkout_at,
            sub.and_then(|s| s.pending()),
            trigger.map(|c| PendingState::of(c, self.ev.created, grace_start(c))),
        );
        let mut prices = state.prices.clone();
        if let Some(c) = checkout {
            prices.extend(c.prices.iter().cloned());
        }

        // The policy: named on the checkout, else the one listing the subscription's price.
        let named = checkout
            .and_then(|c| c.policy.clone())
            .or_else(|| sub.and_then(|s| s.policy.clone()));
        let policy: Arc<Policy> = match named {
            Some(id) => match self.policies.get(self.ts, &id).await? {
                Some(p) => p,
                None => {
                    let why = format!("metadata.policy names no policy of this tenant ({id})");
                    return Ok(Err(NotIssued::Refused(why)));
                }
            },
            None if prices.is_empty() => {
                return Ok(Err(NotIssued::Pending(format!(
                    "the policy of subscription {sub_id} is not known yet: set metadata.policy \
                     on the checkout session, or enable customer.subscription.created so its \
                     price is seen"
                ))))
            }
            None => match self.policy_for_prices(&prices).await? {
                Some(p) => p,
                None => {
                    return Ok(Err(NotIssued::Refused(format!(
                        "no policy lists price {} in its stripe_price_ids",
                        prices.join(" or ")
                    ))))
                }
            },
        };

        let terms = issue_terms(
            &state,
            policy.grace_period_days,
            checkout
                .and_then(|c| c.quantity)
                .or(sub.and_then(|s| s.checkout_quantity)),
            self.ev.created,
            self.now,
        )?;
        // The policy's seats per unit × the units bought.
        let seats = match seats_for(policy.max_activations, terms.quantity) {
            Ok(n) => n,
            Err(why) => return Ok(Err(NotIssued::Refused(format!("item {why}")))),
        };
        let customer = checkout
            .and_then(|c| c.customer.clone())
            .or_else(|| sub.and_then(|s| s.customer_id.clone()));
        let mut license = License::issue(LicenseDraft {
            tenant: self.ts.tenant_id(),
            policy: &policy,
            key: None,
            customer_email: email,
            status: terms.status,
            expires_at: terms.expires_at,
            grace_until: terms.grace_until,
            metadata: Map::new(),
            stripe: StripeLink {
                subscription_id: Some(sub_id.to_string()),
                customer_id: customer.clone(),
                checkout_session_id: None,
            },
            stripe_event_at: terms.stripe_event_at,
            now: self.now,
        })?;
        license.max_activations = seats;
        let link = IssueLink::Subscription(sub_id);
        let [created, applied] = self.issued_audits(&license, &link);
        let rec = self.record(Outcome::Applied, None, Some(license.id.clone()));
        match self
            .ts
            .stripe_issue(
                &license,
                link,
                customer.as_deref(),
                &rec,
                [&created, &applied],
                extra,
            )
            .await?
        {
            IssueOutcome::Issued => Ok(Ok(self.receipt(Outcome::Applied, None, Some(license.id)))),
            IssueOutcome::Duplicate => self.raced().await.map(Ok),
            IssueOutcome::Taken => Ok(Err(NotIssued::Taken)),
            IssueOutcome::PlanLimit(limit) => Ok(Err(NotIssued::Refused(format!(
                "the tenant's plan allows at most {limit} licenses"
            )))),
        }
    }

    /// Apply `change` to an existing license, conditional on order and on it
    /// not being cancelled. The write is also conditional on the status it
    /// read (the audit codes are chosen from it); when another change moved
    /// the status in between, it reads again.
    pub(super) async fn apply(
        &self,
        id: &LicenseId,
        change: &Change,
        extra: &[StripeCharge],
    ) -> Result<Receipt, Error> {
        retry_on_conflict(
            APPLY_ATTEMPTS,
            "the license changed while the event was applied; retry",
            || self.apply_once(id, change, extra),
        )
        .await
    }

    /// One attempt of [`Self::apply`]: read, plan, write.
    async fn apply_once(
        &self,
        id: &LicenseId,
        change: &Change,
        extra: &[StripeCharge],
    ) -> Result<Attempt<Receipt>, Error> {
        let Some(license) = self.ts.get_license(id).await? else {
            let why = format!("the subscription's license {id} does not exist");
            return self
                .finish(Outcome::Ignored, Some(why), None, extra)
                .await
                .map(Attempt::Done);
        };
        let current = self.policies.get(self.ts, &license.policy).await?;
        let by_price = if needs_price_policy(change, current.as_deref()) {
            self.policy_for_prices(&change.prices).await?
        } else {
            None
        };
        let plan = plan_change(
            change,
            &license,
            current.as_deref(),
            by_price.as_deref(),
            self.now,
        )?;
        let (upd, codes, reason) = match plan {
            Plan::Unchanged { reason } => {
                return self
                    .finish(Outcome::Ignored, Some(reason), Some(id.clone()), extra)
                    .await
                    .map(Attempt::Done)
            }
            Plan::Apply {
                update,
                codes,
                reason,
            } => (update, codes, reason),
        };
        let audit = self.audit_applied(
            id,
            json!({
                "status": upd.status.map(LicenseStatus::as_str),
                "policy": upd.policy,
                "max_activations": upd.max_activations,
                "expires_at": upd.expires_at.map(rfc3339),
                "grace_until": match upd.grace {
                    GraceChange::StartUnlessRunning(g) => Some(rfc3339(g)),
                    _ => None,
                },
            }),
        );
        let rec = self.record(Outcome::Applied, reason.clone(), Some(id.clone()));
        let mut audits = vec![audit];
        for code in codes {
            audits.push(
                self.actor
                    .audit(self.ts.tenant_id(), code, id.as_str(), self.now)
                    .with_data(json!({ "stripe_event_id": self.ev.id, "type": self.ev.kind })),
            );
        }
        let done = match self
            .ts
            .stripe_apply(
                id,
                &upd,
                Some(license.status),
                &rec,
                &audits,
                extra,
                self.now,
            )
            .await?
        {
            ApplyOutcome::Applied => self.receipt(Outcome::Applied, reason, Some(id.clone())),
            ApplyOutcome::Duplicate => self.raced().await?,
            ApplyOutcome::Refused(Some(old)) if old.stripe_event_at > self.ev.created => {
                let why = format!(
                    "a newer event (created {}) was already applied to the license",
                    old.stripe_event_at
                );
                self.finish(Outcome::Stale, Some(why), Some(id.clone()), extra)
                    .await?
            }
            ApplyOutcome::Refused(Some(old)) if old.status == LicenseStatus::Cancelled => {
                let why = "the license is cancelled; cancellation is terminal".to_string();
                self.finish(Outcome::Ignored, Some(why), Some(id.clone()), extra)
                    .await?
            }
            ApplyOutcome::Refused(_) => return Ok(Attempt::Conflict),
        };
        Ok(Attempt::Done(done))
    }
}
