//! `checkout.session.completed`: a subscription checkout issues (or keeps,
//! until its policy is known) the subscription's license; a one-off
//! (`mode: payment`) checkout issues a perpetual license for the session.
//! Only once paid: an `unpaid` checkout (a delayed payment method) issues
//! when `checkout.session.async_payment_succeeded` brings the session paid,
//! and nothing when `checkout.session.async_payment_failed` says it failed.

use super::retry::{retry_on_conflict, Attempt, ATTEMPTS};
use super::subscription::NotIssued;
use super::Cx;
use crate::domain::stripe::wire::{id_of, priced, quantity_of, CheckoutSession};
use crate::domain::stripe::{seats_for, stripe_id_ok, Change, Hold, Outcome, Receipt};
use crate::domain::{License, LicenseDraft, LicenseStatus, Policy, StripeLink};
use crate::error::Error;
use crate::ids::{Email, PolicyId};
use crate::store::stripe::{IssueLink, IssueOutcome};
use serde_json::{Map, Value};
use std::sync::Arc;

/// What the checkout brought.
pub(super) struct CheckoutInfo {
    pub(super) email: Email,
    pub(super) policy: Option<PolicyId>,
    pub(super) prices: Vec<String>,
    /// The first line-item quantity (line items are present only when expanded).
    pub(super) quantity: Option<u32>,
    pub(super) customer: Option<String>,
    pub(super) at: i64,
}

impl Cx<'_> {
    pub(super) async fn checkout(&self, cs: &CheckoutSession) -> Result<Receipt, Error> {
        let payment = match cs.mode.as_deref() {
            Some("subscription") => false,
            Some("payment") => true,
            _ => {
                let why = "the checkout session is in neither subscription nor payment mode";
                return self.ignored(why.into()).await;
            }
        };
        if !cs.paid() {
            // Nothing is kept: the event that brings the payment carries the
            // whole session again.
            let why = format!(
                "the checkout is not paid yet (payment_status {}): no license until \
                 checkout.session.async_payment_succeeded",
                cs.payment_status.as_deref().unwrap_or("missing")
            );
            return self.finish(Outcome::Pending, Some(why), None, &[]).await;
        }
        let sub_id = if payment {
            if !stripe_id_ok(&cs.id) {
                let why = "the checkout session id is not well-formed";
                return self.ignored(why.into()).await;
            }
            None
        } else {
            match id_of(&cs.subscription).filter(|s| stripe_id_ok(s)) {
                Some(s) => Some(s.to_string()),
                None => {
                    let why = "the checkout session names no subscription";
                    return self.ignored(why.into()).await;
                }
            }
        };
        let email = cs
            .customer_details
            .as_ref()
            .and_then(|d| d.email.clone())
            .or(cs.customer_email.clone());
        let Some(email) = email.and_then(|e| Email::normalise(&e).ok()) else {
            let why = "the checkout session has no usable customer e-mail";
            return self.ignored(why.into()).await;
        };
        let policy = match cs
            .metadata
            .as_ref()
            .and_then(|m| m.get("policy"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(p) => match PolicyId::parse(p) {
                Ok(p) => Some(p),
                Err(_) => {
                    let why = format!("metadata.policy '{p}' is not a policy id");
                    return self.ignored(why).await;
                }
            },
        };
        let quantity = match quantity_of(cs.line_items.as_ref()) {
            Ok(q) => q,
            Err(why) => return self.ignored(format!("line item {why}")).await,
        };
        let info = CheckoutInfo {
            email,
            policy,
            prices: priced(cs.line_items.as_ref()),
            quantity,
            customer: id_of(&cs.customer).map(str::to_string),
            at: self.ev.created,
        };
        let Some(sub_id) = sub_id else {
            return self.purchase(cs, info).await;
        };
        let (sub_id, info) = (sub_id.as_str(), &info);
        retry_on_conflict(ATTEMPTS, "the subscription kept changing; retry", || {
            self.subscription_checkout(sub_id, info)
        })
        .await
    }

    /// One attempt at a subscription's checkout: issue its license, or keep
    /// the checkout on the subscription record until it can be issued.
    async fn subscription_checkout(
        &self,
        sub_id: &str,
        info: &CheckoutInfo,
    ) -> Result<Attempt<Receipt>, Error> {
        let sub = self.ts.get_stripe_subscription(sub_id).await?;
        if let Some(lid) = sub.as_ref().and_then(|s| s.license_id.clone()) {
            let reason = format!("subscription {sub_id} already has a license");
            return self
                .finish(Outcome::Ignored, Some(reason), Some(lid), &[])
                .await
                .map(Attempt::Done);
        }
        let (outcome, reason) = match self
            .issue(sub_id, sub.as_ref(), Some(info), None, &[])
            .await?
        {
            Ok(receipt) => return Ok(Attempt::Done(receipt)),
            Err(NotIssued::Taken) => return Ok(Attempt::Conflict),
            Err(NotIssued::Pending(r)) => (Outcome::Pending, r),
            Err(NotIssued::Refused(r)) => (Outcome::Ignored, r),
        };
        // Keep the checkout: the subscription event that brings the price
        // (or follows a fixed policy) issues the license.
        let hold = Hold {
            customer_id: info.customer.clone(),
            checkout: Some((
                info.email.clone(),
                info.policy.clone(),
                info.at,
                info.quantity,
            )),
            state: None,
        };
        self.hold(sub_id, &hold, outcome, reason, &[]).await
    }

    /// A one-off purchase (`mode: payment`): a perpetual license for the
    /// session, issued at most once however many events (or deliveries) name
    /// it. The policy: `metadata.policy`, else the first line item's price
    /// (its `metadata.policy`, else the policy listing it). Nothing follows a
    /// one-off checkout, so what is missing now is a refusal, not pending.
    async fn purchase(&self, cs: &CheckoutSession, info: CheckoutInfo) -> Result<Receipt, Error> {
        let first_price = cs
            .line_items
            .as_ref()
            .and_then(|l| l.data.first())
            .and_then(|i| i.price.as_ref().or(i.plan.as_ref()));
        let named = match (
            &info.policy,
            first_price.and_then(|p| p.metadata_str("policy")),
        ) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(p)) => match PolicyId::parse(p) {
                Ok(p) => Some(p),
                Err(_) => {
                    let why = format!("the price's metadata.policy '{p}' is not a policy id");
                    return self.ignored(why).await;
                }
            },
            (None, None) => None,
        };
        let policy: Arc<Policy> = match (named, first_price.map(|p| p.id())) {
            (Some(id), _) => match self.policies.get(self.ts, &id).await? {
                Some(p) => p,
                None => {
                    let why = format!("metadata.policy names no policy of this tenant ({id})");
                    return self.ignored(why).await;
                }
            },
            (None, Some(price)) if stripe_id_ok(price) => {
                match self.policy_for_prices(&[price.to_string()]).await? {
                    Some(p) => p,
                    None => {
                        let why = format!("no policy lists price {price} in its stripe_price_ids");
                        return self.ignored(why).await;
                    }
                }
            }
            (None, _) => {
                let why = "the one-off checkout names no policy: set metadata.policy on the \
                           checkout session (webhooks carry no line items)";
                return self.ignored(why.into()).await;
            }
        };
        // The policy's seats per unit × the units bought.
        let seats = match seats_for(policy.max_activations, info.quantity) {
            Ok(n) => n,
            Err(why) => return self.ignored(format!("line item {why}")).await,
        };
        let (session, info, policy) = (cs.id.as_str(), &info, &*policy);
        retry_on_conflict(
            ATTEMPTS,
            "the checkout session kept changing; retry",
            || self.purchase_once(session, info, policy, seats),
        )
        .await
    }

    /// One attempt at issuing a one-off purchase's license, with `seats`.
    async fn purchase_once(
        &self,
        session: &str,
        info: &CheckoutInfo,
        policy: &Policy,
        seats: u32,
    ) -> Result<Attempt<Receipt>, Error> {
        if let Some(lid) = self
            .ts
            .get_stripe_checkout(session)
            .await?
            .and_then(|c| c.license_id)
        {
            let why = format!("checkout session {session} already has a license");
            return self
                .finish(Outcome::Ignored, Some(why), Some(lid), &[])
                .await
                .map(Attempt::Done);
        }
        let mut license = License::issue(LicenseDraft {
            tenant: self.ts.tenant_id(),
            policy,
            key: None,
            customer_email: info.email.clone(),
            status: LicenseStatus::Active,
            expires_at: None,
            grace_until: None,
            metadata: Map::new(),
            stripe: StripeLink {
                subscription_id: None,
                customer_id: info.customer.clone(),
                checkout_session_id: Some(session.to_string()),
            },
            stripe_event_at: self.ev.created,
            now: self.now,
        })?;
        // Perpetual: paid once, whatever the policy's duration.
        license.set_expiry(None);
        license.max_activations = seats;
        let link = IssueLink::CheckoutSession(session);
        let [created, applied] = self.issued_audits(&license, &link);
        let rec = self.record(Outcome::Applied, None, Some(license.id.clone()));
        let done = match self
            .ts
            .stripe_issue(
                &license,
                link,
                info.customer.as_deref(),
                &rec,
                [&created, &applied],
                &[],
            )
            .await?
        {
            IssueOutcome::Issued => self.receipt(Outcome::Applied, None, Some(license.id)),
            IssueOutcome::Duplicate => self.raced().await?,
            IssueOutcome::Taken => return Ok(Attempt::Conflict),
            IssueOutcome::PlanLimit(limit) => {
                let why = format!("the tenant's plan allows at most {limit} licenses");
                self.ignored(why).await?
            }
        };
        Ok(Attempt::Done(done))
    }

    /// `checkout.session.async_payment_failed`: the delayed payment of a
    /// checkout that completed unpaid failed. Nothing was issued for it and
    /// nothing is: recorded as ignored, with the reason. A one-off session
    /// that has a license nonetheless (issued before unpaid checkouts
    /// waited for their payment) has it suspended, as a refund would.
    pub(super) async fn checkout_failed(&self, cs: &CheckoutSession) -> Result<Receipt, Error> {
        let one_off = cs.mode.as_deref() == Some("payment") && stripe_id_ok(&cs.id);
        let license = match one_off {
            true => self
                .ts
                .get_stripe_checkout(&cs.id)
                .await?
                .and_then(|c| c.license_id),
            false => None,
        };
        match license {
            Some(lid) => {
                self.apply(&lid, &Change::to(LicenseStatus::Suspended), &[])
                    .await
            }
            None if one_off => {
                let why = format!(
                    "the payment of checkout session {} failed: no license is issued",
                    cs.id
                );
                self.ignored(why).await
            }
            None => {
                let why = "the checkout's payment failed: no license is issued (a \
                           subscription's own events carry its state)";
                self.ignored(why.into()).await
            }
        }
    }
}
