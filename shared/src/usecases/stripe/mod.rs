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
//! - Only a paid checkout issues: `payment_status` `paid` or
//!   `no_payment_required`. An `unpaid` one (a delayed payment method) waits
//!   for `checkout.session.async_payment_succeeded`, which issues as the
//!   checkout would have; `checkout.session.async_payment_failed` issues
//!   nothing.
//! - Seats: the policy's seats per unit × the item's `quantity`
//!   ([`crate::domain::stripe::plan::seats_for`]).
//! - Order-proof: every license write is conditional on the license's
//!   `stripe_event_at` not being newer than the event and on the license not
//!   being cancelled.
//! - Events that arrive before the license exists (subscription or invoice
//!   events before `checkout.session.completed`) are kept on the subscription
//!   record and folded into the license when it is issued.
//!
//! The event arrives typed ([`Payload`]); each type's handler reads what it
//! needs, asks the domain what to do ([`crate::domain::stripe::plan`]) and
//! executes it: [`checkout`] (issuing), [`subscription`] (subscription
//! events, kept state, applying a change), [`invoice`] (payments, refunds,
//! disputes). Losing a race to another delivery re-reads ([`retry`]).

mod checkout;
mod invoice;
mod retry;
pub mod secret;
mod subscription;

use crate::cache::Policies;
use crate::clock::rfc3339;
use crate::domain::stripe::{
    parse_event, verify_signature, Event, Outcome, Payload, Receipt, StripeCharge,
    StripeEventRecord, ACTOR,
};
use crate::domain::{Actor, AuditCode, AuditEvent, License, Policy, TenantStatus};
use crate::error::Error;
use crate::ids::{LicenseId, TenantId};
use crate::store::stripe::IssueLink;
use crate::store::{Store, TenantStore};
use secret::WebhookSecrets;
use serde_json::{json, Value};
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

/// One delivery being processed: the tenant's store, the event, the actor.
struct Cx<'a> {
    policies: &'a Policies,
    ts: &'a TenantStore,
    ev: &'a Event,
    now: OffsetDateTime,
    actor: Actor,
}

impl Cx<'_> {
    async fn process(&self) -> Result<Receipt, Error> {
        if let Some(done) = self.ts.get_stripe_event(&self.ev.id).await? {
            return Ok(self.duplicate(done));
        }
        let payload = match &self.ev.payload {
            Ok(p) => p,
            Err(e) => return self.malformed(e).await,
        };
        match payload {
            // A delayed payment that arrived: what the completed checkout
            // would have done, had it been paid then.
            Payload::CheckoutCompleted { data } | Payload::CheckoutPaymentSucceeded { data } => {
                self.checkout(&data.object).await
            }
            Payload::CheckoutPaymentFailed { data } => self.checkout_failed(&data.object).await,
            Payload::SubscriptionChanged { data } => self.subscription_changed(&data.object).await,
            Payload::SubscriptionDeleted { data } => self.subscription_deleted(&data.object).await,
            Payload::InvoicePaid { data } => self.invoice_paid(&data.object).await,
            Payload::InvoicePaymentFailed { data } => self.invoice_failed(&data.object).await,
            Payload::ChargeRefunded { data } => self.refunded(&data.object).await,
            Payload::DisputeCreated { data } => self.disputed(&data.object).await,
            Payload::Other => self.ignored("event type not handled".into()).await,
        }
    }

    /// Record the event as ignored, for `why`.
    async fn ignored(&self, why: String) -> Result<Receipt, Error> {
        self.finish(Outcome::Ignored, Some(why), None, &[]).await
    }

    /// A handled type whose `data.object` has another shape: a permanent
    /// failure, recorded as ignored (the parse error is logged).
    async fn malformed(&self, error: &serde_json::Error) -> Result<Receipt, Error> {
        tracing::warn!(event_id = %self.ev.id, event_type = %self.ev.kind, %error, "stripe event object not readable");
        let reason = format!(
            "data.object is not the {} object this service reads",
            self.ev.kind
        );
        self.ignored(reason).await
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

    /// The audit events of a license this event issued: `LICENSE.CREATED`
    /// and `STRIPE.EVENT_APPLIED`, both naming the Stripe object it came from.
    fn issued_audits(&self, license: &License, link: &IssueLink<'_>) -> [AuditEvent; 2] {
        let (created_key, applied_key, id) = match link {
            IssueLink::Subscription(s) => ("stripe_subscription_id", "subscription_id", *s),
            IssueLink::CheckoutSession(s) => {
                ("stripe_checkout_session_id", "checkout_session_id", *s)
            }
        };
        let mut created = json!({
            "policy": license.policy,
            "customer_email": license.customer_email,
        });
        created[created_key] = json!(id);
        let created = self
            .actor
            .audit(
                self.ts.tenant_id(),
                AuditCode::LicenseCreated,
                license.id.as_str(),
                self.now,
            )
            .with_data(created);
        let mut applied = json!({
            "issued": true,
            "status": license.status.as_str(),
            "policy": license.policy,
            "expires_at": license.expires_at.map(rfc3339),
            "max_activations": license.max_activations,
        });
        applied[applied_key] = json!(id);
        [created, self.audit_applied(&license.id, applied)]
    }

    /// `STRIPE.EVENT_APPLIED` for `license`, with `data` (an object) added.
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
}
