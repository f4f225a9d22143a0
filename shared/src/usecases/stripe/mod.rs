//! Stripe webhooks: how each verified event maps onto a subscription's
//! license. The pure parts (signatures, wire shapes, kept state) are in
//! [`crate::domain::stripe`]; the webhook secret in [`secret`].
//!
//! The rules (see `docs/stripe.md`):
//! - An event takes effect at most once: its dedupe record is written in the
//!   same transaction as the change it makes, so a failed attempt leaves no
//!   record and Stripe's retry still works.
//! - One license per Stripe subscription: the subscription record's
//!   `license_id`, set under `attribute_not_exists`, in the issuing transaction.
//!   One-off purchases (`mode: payment` checkouts) get a perpetual license,
//!   one per checkout session, guarded the same way by the session's record.
//! - Seats follow the subscription item's `quantity` when it has one.
//! - Order-proof: every license write is conditional on the license's
//!   `stripe_event_at` not being newer than the event and on the license not
//!   being cancelled.
//! - Events that arrive before the license exists (subscription or invoice
//!   events before `checkout.session.completed`) are kept on the subscription
//!   record and folded into the license when it is issued.

pub mod secret;

use crate::cache::Policies;
use crate::clock::{add_days, rfc3339};
use crate::domain::stripe::wire::{
    id_of, priced, quantity_of, Charge, CheckoutSession, Dispute, Invoice, Subscription,
};
use crate::domain::stripe::{
    parse_event, status_of, stripe_id_ok, verify_signature, Change, Event, Hold, Outcome,
    PendingState, Receipt, StripeCharge, StripeEventRecord, StripeSubscription, ACTOR,
};
use crate::domain::{
    Actor, AuditCode, AuditEvent, GraceChange, License, LicenseChange, LicenseDraft, LicenseStatus,
    Policy, StripeLink, TenantStatus,
};
use crate::error::Error;
use crate::ids::{Email, LicenseId, PolicyId, TenantId};
use crate::store::stripe::{ApplyOutcome, HoldOutcome, IssueLink, IssueOutcome};
use crate::store::{Store, TenantStore};
use secret::WebhookSecrets;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use time::OffsetDateTime;

/// What receiving a webhook needs.
pub struct Webhooks<'a> {
    pub store: &'a Store,
    pub policies: &'a Policies,
    pub secrets: &'a WebhookSecrets,
}

/// One delivery to `POST /v1/stripe/webhook/{tenant_id}`. An unknown
/// tenant and a tenant without a secret answer alike: the signature does
/// not verify (so the endpoint does not tell which tenants exist).
pub async fn receive(
    deps: Webhooks<'_>,
    tenant: &str,
    signature: Option<&str>,
    body: &[u8],
    now: OffsetDateTime,
    request_id: &str,
) -> Result<Receipt, Error> {
    // An unknown tenant cannot have signed anything: the same answer as a
    // bad signature, so the endpoint does not tell which tenants exist.
    let t = TenantId::parse(tenant).map_err(|_| Error::InvalidSignature)?;
    let record = deps
        .store
        .get_tenant(&t)
        .await?
        .ok_or(Error::InvalidSignature)?;
    tracing::Span::current().record("tenant", t.as_str());
    // No secret: nothing can verify, so nothing is accepted.
    let secret = deps.secrets.get(&t).await?.ok_or(Error::InvalidSignature)?;
    verify_signature(&secret, signature, body, now.unix_timestamp())?;
    if record.status != TenantStatus::Active {
        // Not recorded: Stripe retries, and the events apply if the tenant is reactivated in time.
        return Err(Error::TenantInactive);
    }
    let event = parse_event(body)?;
    let ts = deps.store.tenant(&t);
    let actor = Actor {
        actor: ACTOR.into(),
        request_id: request_id.to_string(),
    };
    let cx = Cx {
        policies: deps.policies,
        ts: &ts,
        ev: &event,
        now,
        actor,
    };
    let receipt = cx.process().await?;
    tracing::info!(
        event_id = %receipt.event_id,
        event_type = %receipt.kind,
        outcome = receipt.outcome_str(),
        reason = receipt.reason.as_deref().unwrap_or(""),
        "stripe event"
    );
    Ok(receipt)
}

/// Why an attempt to issue did not produce a license.
enum NotIssued {
    /// Waiting for something another event will bring.
    Pending(String),
    /// A definite refusal (no such policy, plan limit).
    Refused(String),
    /// Another event issued it meanwhile: look again.
    Taken,
}

/// What the checkout brought.
struct CheckoutInfo {
    email: Email,
    policy: Option<PolicyId>,
    prices: Vec<String>,
    /// The first line-item quantity (line items are present only when expanded).
    quantity: Option<u32>,
    customer: Option<String>,
    at: i64,
}

struct Cx<'a> {
    policies: &'a Policies,
    ts: &'a TenantStore,
    ev: &'a Event,
    now: OffsetDateTime,
    actor: Actor,
}

/// How often a delivery re-reads after losing a race before giving up (503).
const ATTEMPTS: usize = 4;
/// How often an apply re-reads a license whose status moved under it: each
/// loss means another event committed in between, and once the newest one
/// has, the rest are stale rather than refused.
const APPLY_ATTEMPTS: usize = 12;

impl Cx<'_> {
    async fn process(&self) -> Result<Receipt, Error> {
        if let Some(done) = self.ts.get_stripe_event(&self.ev.id).await? {
            return Ok(self.duplicate(done));
        }
        match self.ev.kind.as_str() {
            "checkout.session.completed" => self.checkout().await,
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted" => {
                let Some(sub) = self.object::<Subscription>()? else {
                    return self.malformed().await;
                };
                let change = if self.ev.kind == "customer.subscription.deleted" {
                    // Cancels whatever its items say.
                    Change {
                        status: Some(LicenseStatus::Cancelled),
                        ..Change::default()
                    }
                } else {
                    let quantity = match sub.quantity() {
                        Ok(q) => q,
                        Err(why) => return self.ignored(format!("subscription item {why}")).await,
                    };
                    Change {
                        status: status_of(&sub.status),
                        prices: sub.prices(),
                        period_end: None,
                        quantity,
                    }
                };
                self.for_subscription(&sub.id, change, id_of(&sub.customer), &[])
                    .await
            }
            // `invoice.payment_succeeded` is Stripe's older twin of `invoice.paid`.
            "invoice.paid" | "invoice.payment_succeeded" | "invoice.payment_failed" => {
                let Some(inv) = self.object::<Invoice>()? else {
                    return self.malformed().await;
                };
                let Some(sub) = inv.subscription_id().map(str::to_string) else {
                    return self
                        .finish(
                            Outcome::Ignored,
                            Some("the invoice is not for a subscription".into()),
                            None,
                            &[],
                        )
                        .await;
                };
                let (change, extra) = if self.ev.kind != "invoice.payment_failed" {
                    // Remember which charge paid it: refunds and disputes name only the charge.
                    let charges: Vec<StripeCharge> = inv
                        .payment_refs()
                        .into_iter()
                        .filter(|c| stripe_id_ok(c))
                        .map(|c| StripeCharge {
                            charge_id: c,
                            subscription_id: sub.clone(),
                            invoice_id: Some(inv.id.clone()),
                        })
                        .collect();
                    (
                        Change {
                            status: Some(LicenseStatus::Active),
                            period_end: inv.period_end(),
                            ..Change::default()
                        },
                        charges,
                    )
                } else {
                    (
                        Change {
                            status: Some(LicenseStatus::PastDue),
                            ..Change::default()
                        },
                        Vec::new(),
                    )
                };
                self.for_subscription(&sub, change, id_of(&inv.customer), &extra)
                    .await
            }
            "charge.refunded" => {
                let Some(ch) = self.object::<Charge>()? else {
                    return self.malformed().await;
                };
                if !ch.fully_refunded() {
                    return self
                        .finish(
                            Outcome::Ignored,
                            Some("partial refund: the license is unchanged".into()),
                            None,
                            &[],
                        )
                        .await;
                }
                self.for_charge(&[Some(ch.id.as_str()), id_of(&ch.payment_intent)])
                    .await
            }
            "charge.dispute.created" => {
                let Some(d) = self.object::<Dispute>()? else {
                    return self.malformed().await;
                };
                self.for_charge(&[id_of(&d.charge), id_of(&d.payment_intent)])
                    .await
            }
            _ => {
                self.finish(
                    Outcome::Ignored,
                    Some("event type not handled".into()),
                    None,
                    &[],
                )
                .await
            }
        }
    }

    /// `data.object` as `T`; `None` when it has another shape (a permanent failure).
    fn object<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        Ok(serde_json::from_value(self.ev.data.object.clone()).ok())
    }

    /// Record the event as ignored, for `why`.
    async fn ignored(&self, why: String) -> Result<Receipt, Error> {
        self.finish(Outcome::Ignored, Some(why), None, &[]).await
    }

    async fn malformed(&self) -> Result<Receipt, Error> {
        let reason = format!(
            "data.object is not the {} object this service reads",
            self.ev.kind
        );
        self.finish(Outcome::Ignored, Some(reason), None, &[]).await
    }

    fn record(
        &self,
        outcome: Outcome,
        reason: Option<String>,
        license_id: Option<LicenseId>,
    ) -> StripeEventRecord {
        StripeEventRecord::new(
            &self.ev.id,
            &self.ev.kind,
            self.ev.created,
            outcome,
            reason,
            license_id,
            self.now,
            &self.actor.request_id,
        )
    }

    fn receipt(
        &self,
        outcome: Outcome,
        reason: Option<String>,
        license_id: Option<LicenseId>,
    ) -> Receipt {
        Receipt {
            event_id: self.ev.id.clone(),
            kind: self.ev.kind.clone(),
            outcome,
            duplicate: false,
            reason,
            license_id,
        }
    }

    fn duplicate(&self, done: StripeEventRecord) -> Receipt {
        Receipt {
            event_id: self.ev.id.clone(),
            kind: self.ev.kind.clone(),
            outcome: done.outcome,
            duplicate: true,
            reason: Some(format!("already processed ({})", done.outcome.as_str())),
            license_id: done.license_id,
        }
    }

    /// An answer after a racing delivery of the same event recorded it first.
    async fn raced(&self) -> Result<Receipt, Error> {
        match self.ts.get_stripe_event(&self.ev.id).await? {
            Some(done) => Ok(self.duplicate(done)),
            None => Err(Error::Unavailable(
                "the event's record is not visible yet".into(),
            )),
        }
    }

    /// Record an event that changes no license (with `extra` items, e.g. charges).
    async fn finish(
        &self,
        outcome: Outcome,
        reason: Option<String>,
        license_id: Option<LicenseId>,
        extra: &[StripeCharge],
    ) -> Result<Receipt, Error> {
        let rec = self.record(outcome, reason.clone(), license_id.clone());
        if self.ts.record_stripe_event(&rec, extra).await? {
            Ok(self.receipt(outcome, reason, license_id))
        } else {
            self.raced().await
        }
    }

    fn audit_applied(&self, license: &LicenseId, data: Value) -> AuditEvent {
        let mut d = json!({
            "event_id": self.ev.id,
            "type": self.ev.kind,
            "event_created": self.ev.created,
        });
        if let (Some(o), Value::Object(extra)) = (d.as_object_mut(), data) {
            o.extend(extra);
        }
        AuditEvent::new(
            self.ts.tenant_id(),
            AuditCode::StripeEventApplied,
            ACTOR,
            license.as_str(),
            self.now,
            &self.actor.request_id,
        )
        .with_data(d)
    }

    // -------------------------------------------------------- checkout

    async fn checkout(&self) -> Result<Receipt, Error> {
        let Some(cs) = self.object::<CheckoutSession>()? else {
            return self.malformed().await;
        };
        let ignore = |why: &str| Some(why.to_string());
        let payment = match cs.mode.as_deref() {
            Some("subscription") => false,
            Some("payment") => true,
            _ => {
                let why = "the checkout session is in neither subscription nor payment mode";
                return self.ignored(why.into()).await;
            }
        };
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
                    return self
                        .finish(
                            Outcome::Ignored,
                            ignore("the checkout session names no subscription"),
                            None,
                            &[],
                        )
                        .await
                }
            }
        };
        let email = cs
            .customer_details
            .as_ref()
            .and_then(|d| d.email.clone())
            .or(cs.customer_email.clone());
        let Some(email) = email.and_then(|e| Email::normalise(&e).ok()) else {
            return self
                .finish(
                    Outcome::Ignored,
                    ignore("the checkout session has no usable customer e-mail"),
                    None,
                    &[],
                )
                .await;
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
                    return self
                        .finish(
                            Outcome::Ignored,
                            Some(format!("metadata.policy '{p}' is not a policy id")),
                            None,
                            &[],
                        )
                        .await
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
            return self.purchase(&cs, info).await;
        };
        for _ in 0..ATTEMPTS {
            let sub = self.ts.get_stripe_subscription(&sub_id).await?;
            if let Some(lid) = sub.as_ref().and_then(|s| s.license_id.clone()) {
                let reason = format!("subscription {sub_id} already has a license");
                return self
                    .finish(Outcome::Ignored, Some(reason), Some(lid), &[])
                    .await;
            }
            let (outcome, reason) = match self
                .issue(&sub_id, sub.as_ref(), Some(&info), None, &[])
                .await?
            {
                Ok(receipt) => return Ok(receipt),
                Err(NotIssued::Taken) => continue,
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
            match self.hold(&sub_id, &hold, outcome, reason, &[]).await? {
                Some(r) => return Ok(r),
                None => continue,
            }
        }
        Err(Error::Unavailable(
            "the subscription kept changing; retry".into(),
        ))
    }

    /// A one-off purchase (`mode: payment`): a perpetual license for the
    /// session, issued at most once however many events (or deliveries) name
    /// it. The policy: `metadata.policy`, else the first line item's price
    /// (its `metadata.policy`, else the policy listing it). Nothing follows a
    /// one-off checkout, so what is missing now is a refusal, not pending.
    async fn purchase(&self, cs: &CheckoutSession, info: CheckoutInfo) -> Result<Receipt, Error> {
        let session = cs.id.as_str();
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
        for _ in 0..ATTEMPTS {
            if let Some(lid) = self
                .ts
                .get_stripe_checkout(session)
                .await?
                .and_then(|c| c.license_id)
            {
                let why = format!("checkout session {session} already has a license");
                return self
                    .finish(Outcome::Ignored, Some(why), Some(lid), &[])
                    .await;
            }
            let mut license = License::issue(LicenseDraft {
                tenant: self.ts.tenant_id(),
                policy: &policy,
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
            if let Some(q) = info.quantity {
                license.max_activations = q;
            }
            let created = self
                .actor
                .audit(
                    self.ts.tenant_id(),
                    AuditCode::LicenseCreated,
                    license.id.as_str(),
                    self.now,
                )
                .with_data(json!({
                    "policy": license.policy,
                    "customer_email": license.customer_email,
                    "stripe_checkout_session_id": session,
                }));
            let applied = self.audit_applied(
                &license.id,
                json!({
                    "checkout_session_id": session,
                    "issued": true,
                    "status": license.status.as_str(),
                    "policy": license.policy,
                    "expires_at": null,
                    "max_activations": license.max_activations,
                }),
            );
            let rec = self.record(Outcome::Applied, None, Some(license.id.clone()));
            match self
                .ts
                .stripe_issue(
                    &license,
                    IssueLink::CheckoutSession(session),
                    info.customer.as_deref(),
                    &rec,
                    [&created, &applied],
                    &[],
                )
                .await?
            {
                IssueOutcome::Issued => {
                    return Ok(self.receipt(Outcome::Applied, None, Some(license.id)))
                }
                IssueOutcome::Duplicate => return self.raced().await,
                IssueOutcome::Taken => continue,
                IssueOutcome::PlanLimit(limit) => {
                    let why = format!("the tenant's plan allows at most {limit} licenses");
                    return self.ignored(why).await;
                }
            }
        }
        Err(Error::Unavailable(
            "the checkout session kept changing; retry".into(),
        ))
    }

    /// Write `hold` on the subscription record with the event's record.
    /// `None`: a license appeared meanwhile (look again).
    async fn hold(
        &self,
        sub_id: &str,
        hold: &Hold,
        outcome: Outcome,
        reason: String,
        extra: &[StripeCharge],
    ) -> Result<Option<Receipt>, Error> {
        let rec = self.record(outcome, Some(reason.clone()), None);
        match self
            .ts
            .stripe_hold(sub_id, hold, &rec, extra, self.now)
            .await?
        {
            HoldOutcome::Held => Ok(Some(self.receipt(outcome, Some(reason), None))),
            HoldOutcome::Duplicate => self.raced().await.map(Some),
            HoldOutcome::Licensed => Ok(None),
            HoldOutcome::Stale => {
                let why = "a newer event for this subscription was already kept".to_string();
                self.finish(Outcome::Stale, Some(why), None, extra)
                    .await
                    .map(Some)
            }
        }
    }

    /// Issue the subscription's license if everything it needs is known: the
    /// customer's e-mail (checkout) and the policy (checkout metadata, or the
    /// subscription's price). State seen before (kept on the subscription
    /// record) and `trigger` (this event's change) are folded in, newest last.
    async fn issue(
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
        // Fold: the checkout (active), then kept state and this event, by `created`.
        let mut states: Vec<PendingState> = vec![PendingState {
            status: Some(LicenseStatus::Active),
            at: checkout_at,
            ..PendingState::default()
        }];
        if let Some(p) = sub.and_then(|s| s.pending()) {
            states.push(p);
        }
        if let Some(c) = trigger {
            states.push(PendingState {
                status: c.status,
                prices: c.prices.clone(),
                period_end: c.period_end,
                quantity: c.quantity,
                grace_start: (c.status == Some(LicenseStatus::PastDue))
                    .then(|| self.now.unix_timestamp()),
                at: self.ev.created,
            });
        }
        states.sort_by_key(|s| s.at);
        let state = states
            .into_iter()
            .fold(PendingState::default(), PendingState::then);
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

        let now = self.now;
        let status = state.status.unwrap_or(LicenseStatus::Active);
        let expires_at = state.period_end.map(epoch).transpose()?;
        let grace = match (status, state.grace_start) {
            (LicenseStatus::PastDue, start) => Some(add_days(
                epoch(start.unwrap_or(now.unix_timestamp()))?,
                policy.grace_period_days,
            )?),
            _ => None,
        };
        let customer = checkout
            .and_then(|c| c.customer.clone())
            .or_else(|| sub.and_then(|s| s.customer_id.clone()));
        // Seats: the subscription item's quantity, else the checkout's, else the policy's.
        let seats = state
            .quantity
            .or(checkout.and_then(|c| c.quantity))
            .or(sub.and_then(|s| s.checkout_quantity));
        let mut license = License::issue(LicenseDraft {
            tenant: self.ts.tenant_id(),
            policy: &policy,
            key: None,
            customer_email: email,
            status,
            expires_at,
            grace_until: grace,
            metadata: Map::new(),
            stripe: StripeLink {
                subscription_id: Some(sub_id.to_string()),
                customer_id: customer.clone(),
                checkout_session_id: None,
            },
            stripe_event_at: state.at.max(self.ev.created),
            now,
        })?;
        if let Some(q) = seats {
            license.max_activations = q;
        }
        let created = self
            .actor
            .audit(
                self.ts.tenant_id(),
                AuditCode::LicenseCreated,
                license.id.as_str(),
                now,
            )
            .with_data(json!({
                "policy": license.policy,
                "customer_email": license.customer_email,
                "stripe_subscription_id": sub_id,
            }));
        let applied = self.audit_applied(
            &license.id,
            json!({
                "subscription_id": sub_id,
                "issued": true,
                "status": status.as_str(),
                "policy": license.policy,
                "expires_at": license.expires_at.map(rfc3339),
                "max_activations": license.max_activations,
            }),
        );
        let rec = self.record(Outcome::Applied, None, Some(license.id.clone()));
        match self
            .ts
            .stripe_issue(
                &license,
                IssueLink::Subscription(sub_id),
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

    /// The first of `prices` a policy lists (one Query of the tenant's policies).
    async fn policy_for_prices(&self, prices: &[String]) -> Result<Option<Arc<Policy>>, Error> {
        let policies = self.ts.all_policies().await?;
        for price in prices {
            if let Some(p) = policies
                .iter()
                .find(|p| p.stripe_price_ids.iter().any(|x| x == price))
            {
                self.policies.remember(self.ts.tenant_id(), p.clone());
                return Ok(Some(Arc::new(p.clone())));
            }
        }
        Ok(None)
    }

    // -------------------------------------------------------- subscription events

    /// Apply `change` to the subscription's license, or keep it until the
    /// license exists (issuing it when the checkout was already seen).
    async fn for_subscription(
        &self,
        sub_id: &str,
        change: Change,
        customer: Option<&str>,
        extra: &[StripeCharge],
    ) -> Result<Receipt, Error> {
        if !stripe_id_ok(sub_id) {
            return self
                .finish(
                    Outcome::Ignored,
                    Some("the subscription id is not well-formed".into()),
                    None,
                    &[],
                )
                .await;
        }
        if change.is_empty() {
            let why = "nothing in this event changes a license (subscription status not mapped)"
                .to_string();
            return self.finish(Outcome::Ignored, Some(why), None, extra).await;
        }
        for _ in 0..ATTEMPTS {
            let sub = self.ts.get_stripe_subscription(sub_id).await?;
            if let Some(lid) = sub.as_ref().and_then(|s| s.license_id.clone()) {
                return self.apply(&lid, &change, extra).await;
            }
            let (outcome, reason) = match self
                .issue(sub_id, sub.as_ref(), None, Some(&change), extra)
                .await?
            {
                Ok(receipt) => return Ok(receipt),
                Err(NotIssued::Taken) => continue,
                Err(NotIssued::Pending(r)) => (Outcome::Pending, r),
                Err(NotIssued::Refused(r)) => (Outcome::Ignored, r),
            };
            let state = PendingState {
                status: change.status,
                prices: change.prices.clone(),
                period_end: change.period_end,
                quantity: change.quantity,
                grace_start: None,
                at: self.ev.created,
            };
            let hold = Hold {
                customer_id: customer.map(str::to_string),
                checkout: None,
                state: Some(state),
            };
            match self.hold(sub_id, &hold, outcome, reason, extra).await? {
                Some(r) => return Ok(r),
                None => continue,
            }
        }
        Err(Error::Unavailable(
            "the subscription kept changing; retry".into(),
        ))
    }

    /// Refunds and disputes: find the subscription through the charge (or
    /// payment intent) that paid one of its invoices.
    async fn for_charge(&self, refs: &[Option<&str>]) -> Result<Receipt, Error> {
        for r in refs.iter().flatten().filter(|r| stripe_id_ok(r)) {
            if let Some(ch) = self.ts.get_stripe_charge(r).await? {
                let change = Change {
                    status: Some(LicenseStatus::Suspended),
                    ..Change::default()
                };
                return self
                    .for_subscription(&ch.subscription_id, change, None, &[])
                    .await;
            }
        }
        let why =
            "unknown charge: no invoice.paid seen for it, so no license to change".to_string();
        self.finish(Outcome::Ignored, Some(why), None, &[]).await
    }

    /// Apply `change` to an existing license, conditional on order and on it not being cancelled.
    async fn apply(
        &self,
        id: &LicenseId,
        change: &Change,
        extra: &[StripeCharge],
    ) -> Result<Receipt, Error> {
        self.apply_attempt(id, change, extra, 1).await
    }

    /// One attempt of [`Self::apply`]. The write is conditional on the
    /// status it read (the audit codes are chosen from it); when another
    /// change moved the status in between, it reads again and retries.
    async fn apply_attempt(
        &self,
        id: &LicenseId,
        change: &Change,
        extra: &[StripeCharge],
        attempt: usize,
    ) -> Result<Receipt, Error> {
        let Some(license) = self.ts.get_license(id).await? else {
            return self
                .finish(
                    Outcome::Ignored,
                    Some(format!("the subscription's license {id} does not exist")),
                    None,
                    extra,
                )
                .await;
        };
        let current = self.policies.get(self.ts, &license.policy).await?;
        let mut notes: Vec<String> = Vec::new();
        let mut new_policy: Option<Arc<Policy>> = None;
        let listed = |p: &Policy| change.prices.iter().any(|x| p.stripe_price_ids.contains(x));
        if !change.prices.is_empty() && !current.as_deref().is_some_and(listed) {
            match self.policy_for_prices(&change.prices).await? {
                Some(p) if p.product == license.product => new_policy = Some(p),
                Some(p) => notes.push(format!(
                    "price maps to policy {} of another product; policy unchanged",
                    p.id
                )),
                None => notes.push(format!(
                    "no policy lists price {}; policy unchanged",
                    change.prices.join(" or ")
                )),
            }
        }
        let grace_days = new_policy
            .as_deref()
            .or(current.as_deref())
            .map(|p| p.grace_period_days)
            .unwrap_or(0);
        let grace = match change.status {
            Some(LicenseStatus::PastDue) => {
                GraceChange::StartUnlessRunning(add_days(self.now, grace_days)?)
            }
            Some(_) => GraceChange::Clear,
            None => GraceChange::Keep,
        };
        // Seats: the item's quantity wins over a new policy's seat limit.
        let seats = change
            .quantity
            .or(new_policy.as_ref().map(|p| p.max_activations))
            .filter(|n| *n != license.max_activations || new_policy.is_some());
        let upd = LicenseChange {
            status: change.status,
            policy: new_policy.as_ref().map(|p| p.id.clone()),
            max_activations: seats,
            terms: new_policy.as_ref().map(|p| p.terms()),
            expires_at: change.period_end.map(epoch).transpose()?,
            grace,
            ..LicenseChange::default()
        };
        if upd.status.is_none()
            && upd.policy.is_none()
            && upd.expires_at.is_none()
            && upd.max_activations.is_none()
        {
            let why = if notes.is_empty() {
                "nothing in this event changes the license".to_string()
            } else {
                notes.join("; ")
            };
            return self
                .finish(Outcome::Ignored, Some(why), Some(id.clone()), extra)
                .await;
        }
        let reason = (!notes.is_empty()).then(|| notes.join("; "));
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
        // The same LICENSE.* codes as the Management API (actor `stripe`),
        // so Stripe's changes reach the audit trail and webhooks alike.
        let mut audits = vec![audit];
        for code in license_codes(&license, &upd) {
            audits.push(
                self.actor
                    .audit(self.ts.tenant_id(), code, id.as_str(), self.now)
                    .with_data(json!({ "stripe_event_id": self.ev.id, "type": self.ev.kind })),
            );
        }
        match self
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
            ApplyOutcome::Applied => Ok(self.receipt(Outcome::Applied, reason, Some(id.clone()))),
            ApplyOutcome::Duplicate => self.raced().await,
            ApplyOutcome::Refused(Some(old)) if old.stripe_event_at > self.ev.created => {
                let why = format!(
                    "a newer event (created {}) was already applied to the license",
                    old.stripe_event_at
                );
                self.finish(Outcome::Stale, Some(why), Some(id.clone()), extra)
                    .await
            }
            ApplyOutcome::Refused(Some(old)) if old.status == LicenseStatus::Cancelled => {
                self.finish(
                    Outcome::Ignored,
                    Some("the license is cancelled; cancellation is terminal".into()),
                    Some(id.clone()),
                    extra,
                )
                .await
            }
            ApplyOutcome::Refused(_) if attempt < APPLY_ATTEMPTS => {
                Box::pin(self.apply_attempt(id, change, extra, attempt + 1)).await
            }
            ApplyOutcome::Refused(_) => Err(Error::Unavailable(
                "the license changed while the event was applied; retry".into(),
            )),
        }
    }
}

/// The audit codes of applying `upd` to `was`.
fn license_codes(was: &License, upd: &LicenseChange) -> Vec<AuditCode> {
    use LicenseStatus as S;
    let mut codes = Vec::new();
    match (was.status, upd.status) {
        (S::Suspended, Some(S::Suspended))
        | (S::PastDue, Some(S::PastDue))
        | (S::Active, Some(S::Active))
        | (_, None) => {}
        (_, Some(S::Suspended)) => codes.push(AuditCode::LicenseSuspended),
        (_, Some(S::Cancelled)) => codes.push(AuditCode::LicenseCancelled),
        (_, Some(S::PastDue)) => codes.push(AuditCode::LicensePastDue),
        (S::Suspended | S::PastDue, Some(S::Active)) => codes.push(AuditCode::LicenseResumed),
        (S::Cancelled, Some(S::Active)) => {}
    }
    if let Some(e) = upd.expires_at {
        if was.expires_at.is_some_and(|x| e > x) {
            codes.push(AuditCode::LicenseRenewed);
        }
    }
    if upd.policy.as_ref().is_some_and(|p| *p != was.policy) {
        codes.push(AuditCode::LicensePolicyChanged);
    } else if upd
        .max_activations
        .is_some_and(|n| n != was.max_activations)
    {
        // A seat change alone (the subscription's quantity): what a PATCH of
        // `max_activations` writes.
        codes.push(AuditCode::LicenseUpdated);
    }
    codes
}

fn epoch(secs: i64) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| Error::validation("a timestamp in the event is out of range"))
}
