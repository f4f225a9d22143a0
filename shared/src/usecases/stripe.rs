//! Stripe webhooks: signature verification, the typed event shapes the service
//! reads, and how each event maps onto a subscription's license.
//!
//! The rules (see `docs/stripe.md`):
//! - An event takes effect at most once: its dedupe record is written in the
//!   same transaction as the change it makes, so a failed attempt leaves no
//!   record and Stripe's retry still works.
//! - One license per Stripe subscription: the subscription record's
//!   `license_id`, set under `attribute_not_exists`, in the issuing transaction.
//! - Order-proof: every license write is conditional on the license's
//!   `stripe_event_at` not being newer than the event and on the license not
//!   being cancelled.
//! - Events that arrive before the license exists (subscription or invoice
//!   events before `checkout.session.completed`) are kept on the subscription
//!   record and folded into the license when it is issued.

use crate::app::App;
use crate::clock::rfc3339;
use crate::crypto::{constant_time_eq, hmac_sha256};
use crate::domain::{Actor, AuditCode, AuditEvent, License, LicenseStatus, Policy, StripeLink};
use crate::error::Error;
use crate::ids::{Email, LicenseId, LicenseKey, PolicyId, TenantId};
use crate::store::stripe::{
    ApplyOutcome, Hold, HoldOutcome, IssueOutcome, LicenseUpdate, Outcome, PendingState,
    StripeCharge, StripeEventRecord, StripeSubscription,
};
use crate::store::TenantStore;
use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Stripe's default tolerance between the signed timestamp and now.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;
/// The actor of every change a webhook makes.
pub const ACTOR: &str = "stripe";

// ------------------------------------------------------------ signatures

/// Verify `Stripe-Signature: t=...,v1=...[,v1=...]` over the raw body:
/// HMAC-SHA256(secret, "{t}.{body}"), any `v1` may match (secret rotation),
/// compared in constant time, `t` within [`SIGNATURE_TOLERANCE_SECS`] of now.
pub fn verify_signature(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now_epoch: i64,
) -> Result<(), Error> {
    let header = header.ok_or(Error::InvalidSignature)?;
    let mut timestamp: Option<&str> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        match k {
            "t" if timestamp.is_none() => timestamp = Some(v),
            "v1" => {
                if let Ok(sig) = hex::decode(v) {
                    signatures.push(sig);
                }
            }
            _ => {}
        }
    }
    let t = timestamp.ok_or(Error::InvalidSignature)?;
    let at: i64 = t.parse().map_err(|_| Error::InvalidSignature)?;
    if signatures.is_empty() || (now_epoch - at).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(Error::InvalidSignature);
    }
    let expected = hmac_sha256(secret.as_bytes(), &[t.as_bytes(), b".", body]);
    // Compare against every candidate, so timing does not reveal which matched.
    let mut ok = false;
    for sig in &signatures {
        ok |= constant_time_eq(&expected, sig);
    }
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSignature)
    }
}

/// The header Stripe would send for `body` at `t` (tests and tools).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let ts = t.to_string();
    format!(
        "t={ts},v1={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &[ts.as_bytes(), b".", body]))
    )
}

// ------------------------------------------------------------ event shapes

/// The event envelope. Only what the service reads; everything else is ignored.
#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Epoch seconds: the order of events, as Stripe saw them.
    pub created: i64,
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub object: Value,
}

/// An id, or the object it names when expanded.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(s) | Expandable::Object { id: s } => s,
        }
    }
}

fn id_of(e: &Option<Expandable>) -> Option<&str> {
    e.as_ref().map(Expandable::id).filter(|s| !s.is_empty())
}

#[derive(Debug, Deserialize)]
pub struct List<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
}

#[derive(Debug, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub subscription: Option<Expandable>,
    #[serde(default)]
    pub customer: Option<Expandable>,
    #[serde(default)]
    pub customer_details: Option<CustomerDetails>,
    #[serde(default)]
    pub customer_email: Option<String>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// Present only when the session was expanded (never in a plain webhook).
    #[serde(default)]
    pub line_items: Option<List<PricedItem>>,
}

#[derive(Debug, Deserialize)]
pub struct CustomerDetails {
    #[serde(default)]
    pub email: Option<String>,
}

/// A subscription item or checkout line item: what it costs.
#[derive(Debug, Deserialize)]
pub struct PricedItem {
    #[serde(default)]
    pub price: Option<Expandable>,
    #[serde(default)]
    pub plan: Option<Expandable>,
}

#[derive(Debug, Deserialize)]
pub struct Subscription {
    pub id: String,
    #[serde(default)]
    pub customer: Option<Expandable>,
    pub status: String,
    #[serde(default)]
    pub items: Option<List<PricedItem>>,
}

#[derive(Debug, Deserialize)]
pub struct Invoice {
    pub id: String,
    #[serde(default)]
    pub customer: Option<Expandable>,
    /// API versions before 2025-03-31.basil.
    #[serde(default)]
    pub subscription: Option<Expandable>,
    /// 2025-03-31.basil and later.
    #[serde(default)]
    pub parent: Option<InvoiceParent>,
    #[serde(default)]
    pub lines: Option<List<InvoiceLine>>,
    /// Before basil: the charge and payment intent that paid it.
    #[serde(default)]
    pub charge: Option<Expandable>,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
    /// Basil: the payments, when included.
    #[serde(default)]
    pub payments: Option<List<InvoicePayment>>,
}

#[derive(Debug, Deserialize)]
pub struct InvoiceParent {
    #[serde(default)]
    pub subscription_details: Option<SubscriptionRef>,
}

#[derive(Debug, Deserialize)]
pub struct SubscriptionRef {
    #[serde(default)]
    pub subscription: Option<Expandable>,
}

#[derive(Debug, Deserialize)]
pub struct InvoiceLine {
    #[serde(default)]
    pub period: Option<LinePeriod>,
    #[serde(default)]
    pub subscription: Option<Expandable>,
    #[serde(default)]
    pub parent: Option<LineParent>,
}

#[derive(Debug, Deserialize)]
pub struct LinePeriod {
    #[serde(default)]
    pub start: Option<i64>,
    #[serde(default)]
    pub end: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct LineParent {
    #[serde(default)]
    pub subscription_item_details: Option<SubscriptionRef>,
}

#[derive(Debug, Deserialize)]
pub struct InvoicePayment {
    #[serde(default)]
    pub payment: Option<PaymentRef>,
}

#[derive(Debug, Deserialize)]
pub struct PaymentRef {
    #[serde(default)]
    pub charge: Option<Expandable>,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
}

#[derive(Debug, Deserialize)]
pub struct Charge {
    pub id: String,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
    #[serde(default)]
    pub refunded: bool,
    #[serde(default)]
    pub amount: i64,
    #[serde(default)]
    pub amount_captured: Option<i64>,
    #[serde(default)]
    pub amount_refunded: i64,
}

impl Charge {
    /// Stripe sets `refunded` once the charge is refunded in full.
    pub fn fully_refunded(&self) -> bool {
        let captured = self.amount_captured.unwrap_or(self.amount);
        self.refunded || (captured > 0 && self.amount_refunded >= captured)
    }
}

#[derive(Debug, Deserialize)]
pub struct Dispute {
    pub id: String,
    #[serde(default)]
    pub charge: Option<Expandable>,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
}

impl Invoice {
    /// The subscription the invoice bills, in any API version's shape.
    pub fn subscription_id(&self) -> Option<&str> {
        id_of(&self.subscription)
            .or_else(|| {
                self.parent
                    .as_ref()
                    .and_then(|p| p.subscription_details.as_ref())
                    .and_then(|d| id_of(&d.subscription))
            })
            .or_else(|| {
                self.lines.as_ref()?.data.iter().find_map(|l| {
                    id_of(&l.subscription).or_else(|| {
                        l.parent
                            .as_ref()
                            .and_then(|p| p.subscription_item_details.as_ref())
                            .and_then(|d| id_of(&d.subscription))
                    })
                })
            })
    }

    /// The end of the period the invoice paid for: the latest line period end.
    pub fn period_end(&self) -> Option<i64> {
        self.lines
            .as_ref()?
            .data
            .iter()
            .filter_map(|l| l.period.as_ref().and_then(|p| p.end))
            .max()
    }

    /// Charges and payment intents that paid the invoice.
    pub fn payment_refs(&self) -> Vec<String> {
        let mut out: Vec<String> = [id_of(&self.charge), id_of(&self.payment_intent)]
            .into_iter()
            .flatten()
            .map(str::to_string)
            .collect();
        if let Some(list) = &self.payments {
            for p in list.data.iter().filter_map(|p| p.payment.as_ref()) {
                out.extend(
                    [id_of(&p.charge), id_of(&p.payment_intent)]
                        .into_iter()
                        .flatten()
                        .map(str::to_string),
                );
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

impl Subscription {
    /// The prices of its items, in order.
    pub fn prices(&self) -> Vec<String> {
        priced(self.items.as_ref())
    }
}

fn priced(items: Option<&List<PricedItem>>) -> Vec<String> {
    items
        .map(|l| {
            l.data
                .iter()
                .filter_map(|i| {
                    id_of(&i.price)
                        .or_else(|| id_of(&i.plan))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a subscription's status means for its license. `None`: no change
/// (`incomplete`, `incomplete_expired` and anything unknown).
pub fn status_of(subscription_status: &str) -> Option<LicenseStatus> {
    match subscription_status {
        "active" | "trialing" => Some(LicenseStatus::Active),
        "past_due" => Some(LicenseStatus::PastDue),
        "unpaid" | "paused" => Some(LicenseStatus::Suspended),
        "canceled" => Some(LicenseStatus::Cancelled),
        _ => None,
    }
}

/// Stripe ids end up in keys: letters, digits and `_` only.
fn stripe_id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

// ------------------------------------------------------------ what an event asks

/// What an event asks of its subscription's license.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub status: Option<LicenseStatus>,
    /// The subscription's prices: the policy follows the first one a policy lists.
    pub prices: Vec<String>,
    /// The end of a paid period: the new `expires_at`.
    pub period_end: Option<i64>,
}

impl Change {
    fn is_empty(&self) -> bool {
        self.status.is_none() && self.prices.is_empty() && self.period_end.is_none()
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
    pub fn view(&self) -> Value {
        let mut v = json!({
            "received": true,
            "event_id": self.event_id,
            "type": self.kind,
            "outcome": if self.duplicate { "duplicate" } else { self.outcome.as_str() },
        });
        if let Some(l) = &self.license_id {
            v["license_id"] = json!(l);
        }
        if let Some(r) = &self.reason {
            v["reason"] = json!(r);
        }
        v
    }
}

// ------------------------------------------------------------ webhook secret

/// The Secrets Manager id of a tenant's webhook secret.
pub fn secret_id(app: &App, t: &TenantId) -> Result<String, Error> {
    let prefix = app
        .config
        .secrets_prefix
        .as_deref()
        .ok_or_else(|| Error::internal("this function has no SECRETS_PREFIX configured"))?;
    Ok(format!("{prefix}/{t}/stripe-webhook-secret"))
}

/// The tenant's webhook secret, cached for [`crate::app::WEBHOOK_SECRET_TTL`].
/// An absent secret is cached for [`crate::app::NO_WEBHOOK_SECRET_TTL`] only:
/// unsigned floods cost few Secrets Manager calls, and a newly set secret is
/// picked up within seconds by every instance.
pub async fn webhook_secret(app: &App, t: &TenantId) -> Result<Option<String>, Error> {
    if let Some(v) = app.webhook_secrets.get(t) {
        if v.0.is_some() || v.1.elapsed() < crate::app::NO_WEBHOOK_SECRET_TTL {
            return Ok(v.0.clone());
        }
    }
    let v = app.secrets.get(&secret_id(app, t)?).await?;
    app.webhook_secrets
        .insert(t.clone(), Arc::new((v.clone(), std::time::Instant::now())));
    Ok(v)
}

/// `whsec_` and 16 to 200 of `[A-Za-z0-9+/=_-]`.
pub fn check_secret_format(secret: &str) -> Result<(), Error> {
    let rest = secret.strip_prefix("whsec_").ok_or_else(|| {
        Error::validation(
            "webhook_secret must be the endpoint's signing secret, starting with whsec_",
        )
    })?;
    let ok_char =
        |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-');
    if !(16..=200).contains(&rest.len()) || !rest.bytes().all(ok_char) {
        return Err(Error::validation("webhook_secret is not a well-formed Stripe signing secret (whsec_ and 16 to 200 letters or digits)"));
    }
    Ok(())
}

/// Store (or replace) the tenant's webhook secret. Secrets Manager is not
/// transactional with DynamoDB: the audit event is written after the secret.
pub async fn set_webhook_secret(
    app: &App,
    ts: &TenantStore,
    actor: &Actor,
    secret: &str,
    now: OffsetDateTime,
) -> Result<(), Error> {
    check_secret_format(secret)?;
    let t = ts.tenant_id();
    app.secrets.put(&secret_id(app, t)?, secret).await?;
    app.webhook_secrets.insert(
        t.clone(),
        Arc::new((Some(secret.to_string()), std::time::Instant::now())),
    );
    let audit = AuditEvent::new(
        t,
        AuditCode::StripeIntegrationUpdated,
        &actor.actor,
        t.as_str(),
        now,
        &actor.request_id,
    )
    .with_data(json!({ "integration": "stripe", "webhook_secret": "updated" }));
    ts.put_audit(&audit).await
}

// ------------------------------------------------------------ receiving

/// One delivery to `POST /v1/stripe/webhook/{tenant_id}`.
pub async fn receive(
    app: &App,
    tenant: &str,
    signature: Option<&str>,
    body: &[u8],
    now: OffsetDateTime,
    request_id: &str,
) -> Result<Receipt, Error> {
    let not_found = || Error::not_found("TENANT_NOT_FOUND", "no tenant with that id");
    let t = TenantId::parse(tenant).map_err(|_| not_found())?;
    let record = app.store.get_tenant(&t).await?.ok_or_else(not_found)?;
    tracing::Span::current().record("tenant", t.as_str());
    // No secret: nothing can verify, so nothing is accepted.
    let secret = webhook_secret(app, &t)
        .await?
        .ok_or(Error::InvalidSignature)?;
    verify_signature(&secret, signature, body, now.unix_timestamp())?;
    if record.status != crate::domain::TenantStatus::Active {
        // Not recorded: Stripe retries, and the events apply if the tenant is reactivated in time.
        return Err(Error::TenantInactive);
    }
    let event = parse_event(body)?;
    let ts = app.store.tenant(&t);
    let cx = Cx {
        app,
        ts: &ts,
        ev: &event,
        now,
        actor: Actor {
            actor: ACTOR.into(),
            request_id: request_id.to_string(),
        },
    };
    let receipt = cx.process().await?;
    tracing::info!(event_id = %receipt.event_id, event_type = %receipt.kind, outcome = receipt.view()["outcome"].as_str().unwrap_or(""), reason = receipt.reason.as_deref().unwrap_or(""), "stripe event");
    Ok(receipt)
}

/// The envelope, from the verified bytes. Unreadable → 400.
pub fn parse_event(body: &[u8]) -> Result<Event, Error> {
    let ev: Event = serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        let code = match e.classify() {
            Category::Data => "INVALID_EVENT",
            _ => "INVALID_JSON",
        };
        Error::BadRequest {
            code,
            message: format!("the body is not a Stripe event ({e})"),
        }
    })?;
    if !stripe_id_ok(&ev.id) || ev.kind.is_empty() || ev.kind.len() > 100 {
        return Err(Error::BadRequest {
            code: "INVALID_EVENT",
            message: "the event's id or type is not well-formed".into(),
        });
    }
    Ok(ev)
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
    customer: Option<String>,
    at: i64,
}

struct Cx<'a> {
    app: &'a App,
    ts: &'a TenantStore,
    ev: &'a Event,
    now: OffsetDateTime,
    actor: Actor,
}

/// How often a delivery re-reads after losing a race before giving up (503).
const ATTEMPTS: usize = 4;

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
                    Change {
                        status: Some(LicenseStatus::Cancelled),
                        ..Change::default()
                    }
                } else {
                    Change {
                        status: status_of(&sub.status),
                        prices: sub.prices(),
                        period_end: None,
                    }
                };
                self.for_subscription(&sub.id, change, id_of(&sub.customer), vec![])
                    .await
            }
            "invoice.paid" | "invoice.payment_failed" => {
                let Some(inv) = self.object::<Invoice>()? else {
                    return self.malformed().await;
                };
                let Some(sub) = inv.subscription_id().map(str::to_string) else {
                    return self
                        .finish(
                            Outcome::Ignored,
                            Some("the invoice is not for a subscription".into()),
                            None,
                            vec![],
                        )
                        .await;
                };
                let (change, extra) = if self.ev.kind == "invoice.paid" {
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
                    let items = self.ts.stripe_charge_items(&charges)?;
                    (
                        Change {
                            status: Some(LicenseStatus::Active),
                            prices: vec![],
                            period_end: inv.period_end(),
                        },
                        items,
                    )
                } else {
                    (
                        Change {
                            status: Some(LicenseStatus::PastDue),
                            ..Change::default()
                        },
                        vec![],
                    )
                };
                self.for_subscription(&sub, change, id_of(&inv.customer), extra)
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
                            vec![],
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
                    vec![],
                )
                .await
            }
        }
    }

    /// `data.object` as `T`; `None` when it has another shape (a permanent failure).
    fn object<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        Ok(serde_json::from_value(self.ev.data.object.clone()).ok())
    }

    async fn malformed(&self) -> Result<Receipt, Error> {
        let reason = format!(
            "data.object is not the {} object this service reads",
            self.ev.kind
        );
        self.finish(Outcome::Ignored, Some(reason), None, vec![])
            .await
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
        extra: Vec<TransactWriteItem>,
    ) -> Result<Receipt, Error> {
        let rec = self.record(outcome, reason.clone(), license_id.clone());
        if self.ts.record_stripe_event(&rec, extra).await? {
            Ok(self.receipt(outcome, reason, license_id))
        } else {
            self.raced().await
        }
    }

    fn audit_applied(&self, license: &LicenseId, data: Value) -> AuditEvent {
        let mut d = json!({ "event_id": self.ev.id, "type": self.ev.kind, "event_created": self.ev.created });
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
        if cs.mode.as_deref() != Some("subscription") {
            return self
                .finish(
                    Outcome::Ignored,
                    ignore("the checkout session is not in subscription mode"),
                    None,
                    vec![],
                )
                .await;
        }
        let Some(sub_id) = id_of(&cs.subscription)
            .filter(|s| stripe_id_ok(s))
            .map(str::to_string)
        else {
            return self
                .finish(
                    Outcome::Ignored,
                    ignore("the checkout session names no subscription"),
                    None,
                    vec![],
                )
                .await;
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
                    vec![],
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
                            vec![],
                        )
                        .await
                }
            },
        };
        let info = CheckoutInfo {
            email,
            policy,
            prices: priced(cs.line_items.as_ref()),
            customer: id_of(&cs.customer).map(str::to_string),
            at: self.ev.created,
        };
        for _ in 0..ATTEMPTS {
            let sub = self.ts.get_stripe_subscription(&sub_id).await?;
            if let Some(lid) = sub.as_ref().and_then(|s| s.license_id.clone()) {
                let reason = format!("subscription {sub_id} already has a license");
                return self
                    .finish(Outcome::Ignored, Some(reason), Some(lid), vec![])
                    .await;
            }
            let (outcome, reason) = match self
                .issue(&sub_id, sub.as_ref(), Some(&info), None, vec![])
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
                checkout: Some((info.email.clone(), info.policy.clone(), info.at)),
                state: None,
            };
            match self.hold(&sub_id, &hold, outcome, reason, vec![]).await? {
                Some(r) => return Ok(r),
                None => continue,
            }
        }
        Err(Error::Unavailable(
            "the subscription kept changing; retry".into(),
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
        extra: Vec<TransactWriteItem>,
    ) -> Result<Option<Receipt>, Error> {
        let rec = self.record(outcome, Some(reason.clone()), None);
        match self
            .ts
            .stripe_hold(sub_id, hold, &rec, extra.clone(), self.now)
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
        extra: Vec<TransactWriteItem>,
    ) -> Result<Result<Receipt, NotIssued>, Error> {
        let email = checkout
            .map(|c| c.email.clone())
            .or_else(|| sub.and_then(|s| s.email.clone()));
        let Some(email) = email else {
            return Ok(Err(NotIssued::Pending(format!(
                "no license for subscription {sub_id} yet: its state is kept until checkout.session.completed arrives"
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
            Some(id) => match self.app.policy(self.ts, &id).await? {
                Some(p) => p,
                None => return Ok(Err(NotIssued::Refused(format!("metadata.policy names no policy of this tenant ({id})")))),
            },
            None if prices.is_empty() => {
                return Ok(Err(NotIssued::Pending(format!(
                    "the policy of subscription {sub_id} is not known yet: set metadata.policy on the checkout session, or enable customer.subscription.created so its price is seen"
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
        let key = LicenseKey::generate();
        let expires_at = match state.period_end {
            Some(end) => Some(epoch(end)?),
            None => policy.duration_days.map(|d| now + Duration::days(d as i64)),
        };
        let grace = match (status, state.grace_start) {
            (LicenseStatus::PastDue, start) => Some(
                epoch(start.unwrap_or(now.unix_timestamp()))?
                    + Duration::days(policy.grace_period_days as i64),
            ),
            _ => None,
        };
        let customer = checkout
            .and_then(|c| c.customer.clone())
            .or_else(|| sub.and_then(|s| s.customer_id.clone()));
        let mut license = License {
            id: LicenseId::derive(self.ts.tenant_id(), &key),
            key,
            product: policy.product.clone(),
            policy: policy.id.clone(),
            customer_email: email,
            status,
            expires_at: None,
            expires_epoch: None,
            grace_until: grace,
            grace_epoch: grace.map(|g| g.unix_timestamp()),
            max_activations: policy.max_activations,
            seats_used: 0,
            metadata: Map::new(),
            entitlement_overrides: BTreeMap::new(),
            stripe: StripeLink {
                subscription_id: Some(sub_id.to_string()),
                customer_id: customer.clone(),
            },
            stripe_event_at: state.at.max(self.ev.created),
            created_at: now,
            updated_at: now,
        };
        license.set_expiry(expires_at);
        let created = AuditEvent::new(self.ts.tenant_id(), AuditCode::LicenseCreated, ACTOR, license.id.as_str(), now, &self.actor.request_id)
            .with_data(json!({ "policy": license.policy, "customer_email": license.customer_email, "stripe_subscription_id": sub_id }));
        let applied = self.audit_applied(
            &license.id,
            json!({ "subscription_id": sub_id, "issued": true, "status": status.as_str(), "policy": license.policy, "expires_at": license.expires_at.map(rfc3339) }),
        );
        let rec = self.record(Outcome::Applied, None, Some(license.id.clone()));
        match self
            .ts
            .stripe_issue(
                &license,
                sub_id,
                customer.as_deref(),
                &rec,
                &[created, applied],
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
        let policies = self.ts.stripe_price_policies().await?;
        for price in prices {
            if let Some(p) = policies
                .iter()
                .find(|p| p.stripe_price_ids.iter().any(|x| x == price))
            {
                self.app.remember_policy(self.ts.tenant_id(), p.clone());
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
        extra: Vec<TransactWriteItem>,
    ) -> Result<Receipt, Error> {
        if !stripe_id_ok(sub_id) {
            return self
                .finish(
                    Outcome::Ignored,
                    Some("the subscription id is not well-formed".into()),
                    None,
                    vec![],
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
                .issue(sub_id, sub.as_ref(), None, Some(&change), extra.clone())
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
                grace_start: None,
                at: self.ev.created,
            };
            let hold = Hold {
                customer_id: customer.map(str::to_string),
                checkout: None,
                state: Some(state),
            };
            match self
                .hold(sub_id, &hold, outcome, reason, extra.clone())
                .await?
            {
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
                    .for_subscription(&ch.subscription_id, change, None, vec![])
                    .await;
            }
        }
        let why =
            "unknown charge: no invoice.paid seen for it, so no license to change".to_string();
        self.finish(Outcome::Ignored, Some(why), None, vec![]).await
    }

    /// Apply `change` to an existing license, conditional on order and on it not being cancelled.
    async fn apply(
        &self,
        id: &LicenseId,
        change: &Change,
        extra: Vec<TransactWriteItem>,
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
        let current = self.app.policy(self.ts, &license.policy).await?;
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
        let upd = LicenseUpdate {
            status: change.status,
            policy: new_policy
                .as_ref()
                .map(|p| (p.id.clone(), p.max_activations)),
            expires_at: change.period_end.map(epoch).transpose()?,
            grace_until: (change.status == Some(LicenseStatus::PastDue))
                .then(|| self.now + Duration::days(grace_days as i64)),
            event_at: self.ev.created,
            now: self.now,
        };
        if upd.status.is_none() && upd.policy.is_none() && upd.expires_at.is_none() {
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
                "policy": upd.policy.as_ref().map(|(p, _)| p),
                "expires_at": upd.expires_at.map(rfc3339),
                "grace_until": upd.grace_until.map(rfc3339),
            }),
        );
        let rec = self.record(Outcome::Applied, reason.clone(), Some(id.clone()));
        match self
            .ts
            .stripe_apply(id, &upd, &rec, &audit, extra.clone())
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
            ApplyOutcome::Refused(_) => Err(Error::Unavailable(
                "the license changed while the event was applied; retry".into(),
            )),
        }
    }
}

fn epoch(secs: i64) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| Error::validation("a timestamp in the event is out of range"))
}

impl PendingState {
    /// `self` followed by `newer`: what `newer` says wins.
    fn then(self, newer: PendingState) -> PendingState {
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
            grace_start,
            at: self.at.max(newer.at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../events/stripe/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn signatures_verify_per_stripes_scheme() {
        let body = br#"{"id":"evt_1","type":"x","created":1,"data":{"object":{}}}"#;
        let secret = "whsec_test_0123456789abcdef";
        let now = 1_800_000_000;
        let h = sign(secret, now, body);
        assert!(verify_signature(secret, Some(&h), body, now).is_ok());
        // Any of several v1 values; other schemes are ignored.
        let multi = format!(
            "t={now},v0=abc,v1={},v1={}",
            "00".repeat(32),
            &h[h.find("v1=").unwrap() + 3..]
        );
        assert!(verify_signature(secret, Some(&multi), body, now).is_ok());
        // Tolerance: 300 s either way.
        assert!(verify_signature(secret, Some(&h), body, now + 300).is_ok());
        assert!(verify_signature(secret, Some(&h), body, now + 301).is_err());
        assert!(verify_signature(secret, Some(&h), body, now - 301).is_err());
        // Wrong secret, changed body, missing parts, garbage.
        assert!(verify_signature("whsec_other_0123456789", Some(&h), body, now).is_err());
        assert!(verify_signature(secret, Some(&h), b"{}", now).is_err());
        assert!(verify_signature(secret, None, body, now).is_err());
        assert!(verify_signature(secret, Some(&format!("t={now}")), body, now).is_err());
        assert!(verify_signature(secret, Some(&h.replace("t=", "x=")), body, now).is_err());
        assert!(verify_signature(secret, Some("garbage"), body, now).is_err());
        assert!(verify_signature(secret, Some(&format!("t={now},v1=zz")), body, now).is_err());
    }

    #[test]
    fn secret_format() {
        assert!(check_secret_format("whsec_0123456789abcdefABCDEF").is_ok());
        assert!(check_secret_format("sk_live_0123456789abcdef").is_err());
        assert!(check_secret_format("whsec_short").is_err());
        assert!(check_secret_format("whsec_0123456789abcdef with space").is_err());
        assert!(check_secret_format(&format!("whsec_{}", "a".repeat(201))).is_err());
    }

    #[test]
    fn fixtures_parse_into_what_the_service_reads() {
        let ev = parse_event(&fixture("checkout.session.completed")).unwrap();
        let cs: CheckoutSession = serde_json::from_value(ev.data.object).unwrap();
        assert_eq!(cs.mode.as_deref(), Some("subscription"));
        assert!(id_of(&cs.subscription).unwrap().starts_with("sub_"));
        assert_eq!(
            cs.customer_details.unwrap().email.as_deref(),
            Some("Ann.Buyer@Example.com")
        );

        for name in [
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
        ] {
            let ev = parse_event(&fixture(name)).unwrap();
            assert_eq!(ev.kind, name);
            let s: Subscription = serde_json::from_value(ev.data.object).unwrap();
            assert_eq!(s.prices().len(), 1, "{name}");
        }

        let paid: Invoice =
            serde_json::from_value(parse_event(&fixture("invoice.paid")).unwrap().data.object)
                .unwrap();
        let basil: Invoice = serde_json::from_value(
            parse_event(&fixture("invoice.paid.basil"))
                .unwrap()
                .data
                .object,
        )
        .unwrap();
        assert_eq!(paid.subscription_id(), basil.subscription_id());
        assert!(paid.subscription_id().is_some());
        assert_eq!(paid.period_end(), Some(1726819198));
        assert_eq!(basil.period_end(), Some(1726819198));
        assert_eq!(paid.payment_refs().len(), 2);
        assert_eq!(
            basil.payment_refs().len(),
            1,
            "basil names the payment intent only"
        );

        let failed: Invoice = serde_json::from_value(
            parse_event(&fixture("invoice.payment_failed"))
                .unwrap()
                .data
                .object,
        )
        .unwrap();
        assert_eq!(failed.subscription_id(), paid.subscription_id());

        let ch: Charge = serde_json::from_value(
            parse_event(&fixture("charge.refunded"))
                .unwrap()
                .data
                .object,
        )
        .unwrap();
        assert!(ch.fully_refunded());
        let partial = Charge {
            refunded: false,
            amount_refunded: 100,
            ..ch
        };
        assert!(!partial.fully_refunded());
        let d: Dispute = serde_json::from_value(
            parse_event(&fixture("charge.dispute.created"))
                .unwrap()
                .data
                .object,
        )
        .unwrap();
        assert!(id_of(&d.charge).unwrap().starts_with("ch_"));
        assert!(id_of(&d.payment_intent).unwrap().starts_with("pi_"));
    }

    #[test]
    fn bad_envelopes_are_400() {
        assert!(matches!(
            parse_event(b"{not json"),
            Err(Error::BadRequest {
                code: "INVALID_JSON",
                ..
            })
        ));
        assert!(matches!(
            parse_event(b"{\"id\":\"evt_1\"}"),
            Err(Error::BadRequest {
                code: "INVALID_EVENT",
                ..
            })
        ));
        assert!(matches!(
            parse_event(br#"{"id":"evt#1","type":"x","created":1,"data":{"object":{}}}"#),
            Err(Error::BadRequest {
                code: "INVALID_EVENT",
                ..
            })
        ));
    }

    #[test]
    fn statuses_map() {
        assert_eq!(status_of("trialing"), Some(LicenseStatus::Active));
        assert_eq!(status_of("past_due"), Some(LicenseStatus::PastDue));
        assert_eq!(status_of("unpaid"), Some(LicenseStatus::Suspended));
        assert_eq!(status_of("canceled"), Some(LicenseStatus::Cancelled));
        assert_eq!(status_of("incomplete"), None);
        assert_eq!(status_of("incomplete_expired"), None);
    }

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
