//! The shapes of Stripe's events, as far as this service reads them
//! (everything else in an event is ignored), in any API version's form.

use crate::domain::LicenseStatus;
use crate::error::Error;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{Map, Value};

/// A verified event: its envelope, and its `data.object` in the shape its
/// type has.
#[derive(Debug)]
pub struct Event {
    pub id: String,
    /// The `type` as Stripe sent it (recorded and answered as is).
    pub kind: String,
    /// Epoch seconds: the order of events, as Stripe saw them.
    pub created: i64,
    /// `Err`: a handled type whose `data.object` is not the object this
    /// service reads (a permanent failure: recorded as ignored, not a 400).
    pub payload: Result<Payload, serde_json::Error>,
}

/// The envelope: what every event must have to be an event at all.
#[derive(Debug, Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    #[allow(dead_code)] // required to be there; read by [`Payload`]
    data: Data<IgnoredAny>,
}

/// An event's `data`.
#[derive(Debug, Deserialize)]
pub struct Data<T> {
    pub object: T,
}

/// The event types the service acts on, by `type`, each with its object.
/// Everything else in an event is ignored.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum Payload {
    #[serde(rename = "checkout.session.completed")]
    CheckoutCompleted { data: Data<CheckoutSession> },
    /// A checkout paid by a delayed method (a bank debit): its payment
    /// arrived. The session as `checkout.session.completed` carried it,
    /// now `paid`.
    #[serde(rename = "checkout.session.async_payment_succeeded")]
    CheckoutPaymentSucceeded { data: Data<CheckoutSession> },
    /// A checkout paid by a delayed method: its payment failed.
    #[serde(rename = "checkout.session.async_payment_failed")]
    CheckoutPaymentFailed { data: Data<CheckoutSession> },
    #[serde(
        rename = "customer.subscription.created",
        alias = "customer.subscription.updated"
    )]
    SubscriptionChanged { data: Data<Subscription> },
    #[serde(rename = "customer.subscription.deleted")]
    SubscriptionDeleted { data: Data<Subscription> },
    /// `invoice.payment_succeeded` is Stripe's older twin of `invoice.paid`.
    #[serde(rename = "invoice.paid", alias = "invoice.payment_succeeded")]
    InvoicePaid { data: Data<Invoice> },
    #[serde(rename = "invoice.payment_failed")]
    InvoicePaymentFailed { data: Data<Invoice> },
    #[serde(rename = "charge.refunded")]
    ChargeRefunded { data: Data<Charge> },
    #[serde(rename = "charge.dispute.created")]
    DisputeCreated { data: Data<Dispute> },
    /// Any other type: acknowledged and recorded as ignored.
    #[serde(other)]
    Other,
}

/// An id, or the object it names when expanded.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Expandable {
    Id(String),
    Object {
        id: String,
        /// An expanded object's `metadata` (a price's names its policy).
        #[serde(default)]
        metadata: Option<Map<String, Value>>,
    },
}

impl Expandable {
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(s) | Expandable::Object { id: s, .. } => s,
        }
    }

    /// `metadata.<key>` of an expanded object, when a non-empty string.
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        match self {
            Expandable::Object {
                metadata: Some(m), ..
            } => m.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()),
            _ => None,
        }
    }
}

pub fn id_of(e: &Option<Expandable>) -> Option<&str> {
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
    /// `paid`, `unpaid` (a delayed payment method: the money is not there
    /// yet) or `no_payment_required`.
    #[serde(default)]
    pub payment_status: Option<String>,
}

impl CheckoutSession {
    /// Whether the checkout was paid for (or needed no payment): only then
    /// does it issue a license. `unpaid` — a delayed payment method whose
    /// outcome `checkout.session.async_payment_succeeded`/`_failed` brings —
    /// and a missing status do not.
    pub fn paid(&self) -> bool {
        matches!(
            self.payment_status.as_deref(),
            Some("paid" | "no_payment_required")
        )
    }
}

#[derive(Debug, Deserialize)]
pub struct CustomerDetails {
    #[serde(default)]
    pub email: Option<String>,
}

/// A subscription item or checkout line item: what it costs, and how many.
#[derive(Debug, Deserialize)]
pub struct PricedItem {
    #[serde(default)]
    pub price: Option<Expandable>,
    #[serde(default)]
    pub plan: Option<Expandable>,
    /// Kept raw: a value out of bounds is a reason to ignore the event, not
    /// a shape error (`null` for metered prices).
    #[serde(default)]
    pub quantity: Option<Value>,
}

/// The bounds of a quantity that sets a license's seats (the policies' seat bound).
pub const MAX_QUANTITY: u64 = crate::domain::catalog::bounds::MAX_ACTIVATIONS as u64;

impl PricedItem {
    /// The item's `quantity`: `Ok(None)` when absent or `null`; an `Err`
    /// with the reason when it is not a whole number from 1 to [`MAX_QUANTITY`].
    pub fn quantity(&self) -> Result<Option<u32>, String> {
        match &self.quantity {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|q| (1..=MAX_QUANTITY).contains(q))
                .and_then(|q| u32::try_from(q).ok())
                .map(Some)
                .ok_or_else(|| {
                    format!("quantity {v} is not a whole number from 1 to {MAX_QUANTITY}")
                }),
        }
    }
}

/// The seats a list of items buys: the quantity of the first item that has one.
pub fn quantity_of(items: Option<&List<PricedItem>>) -> Result<Option<u32>, String> {
    for item in items.map(|l| l.data.as_slice()).unwrap_or_default() {
        if let Some(q) = item.quantity()? {
            return Ok(Some(q));
        }
    }
    Ok(None)
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

    /// The seats it buys (see [`quantity_of`]).
    pub fn quantity(&self) -> Result<Option<u32>, String> {
        quantity_of(self.items.as_ref())
    }
}

pub fn priced(items: Option<&List<PricedItem>>) -> Vec<String> {
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
pub fn stripe_id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// The event, from the verified bytes. An unreadable envelope is a 400; an
/// object of the wrong shape is kept in [`Event::payload`].
pub fn parse_event(body: &[u8]) -> Result<Event, Error> {
    let ev: Envelope = serde_json::from_slice(body).map_err(|e| {
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
    Ok(Event {
        id: ev.id,
        kind: ev.kind,
        created: ev.created,
        payload: serde_json::from_slice(body),
    })
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

    fn payload(name: &str) -> Payload {
        let ev = parse_event(&fixture(name)).unwrap();
        assert_eq!(
            ev.kind,
            name.trim_end_matches(".payment").trim_end_matches(".basil")
        );
        ev.payload.unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn checkout(name: &str) -> CheckoutSession {
        match payload(name) {
            Payload::CheckoutCompleted { data } => data.object,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn invoice(name: &str) -> Invoice {
        match payload(name) {
            Payload::InvoicePaid { data } | Payload::InvoicePaymentFailed { data } => data.object,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn fixtures_parse_into_what_the_service_reads() {
        let cs = checkout("checkout.session.completed");
        assert_eq!(cs.mode.as_deref(), Some("subscription"));
        assert!(id_of(&cs.subscription).unwrap().starts_with("sub_"));
        assert_eq!(
            cs.customer_details.unwrap().email.as_deref(),
            Some("Ann.Buyer@Example.com")
        );

        let cs = checkout("checkout.session.completed.payment");
        assert_eq!(
            (cs.mode.as_deref(), id_of(&cs.subscription)),
            (Some("payment"), None)
        );
        assert_eq!(quantity_of(cs.line_items.as_ref()), Ok(Some(3)));
        assert_eq!(
            priced(cs.line_items.as_ref()),
            ["price_1PqS1xLkdIwHu7ixPerp3tL1"]
        );

        for name in [
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
        ] {
            let s = match payload(name) {
                Payload::SubscriptionChanged { data } => {
                    assert_ne!(name, "customer.subscription.deleted");
                    data.object
                }
                Payload::SubscriptionDeleted { data } => {
                    assert_eq!(name, "customer.subscription.deleted");
                    data.object
                }
                other => panic!("{name}: {other:?}"),
            };
            assert_eq!(s.prices().len(), 1, "{name}");
        }

        let paid = invoice("invoice.paid");
        let basil = invoice("invoice.paid.basil");
        // The older twin parses into the same variant.
        let succeeded = invoice("invoice.payment_succeeded");
        assert_eq!(succeeded.period_end(), paid.period_end());
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
        assert!(matches!(
            payload("invoice.payment_failed"),
            Payload::InvoicePaymentFailed { .. }
        ));
        let failed = invoice("invoice.payment_failed");
        assert_eq!(failed.subscription_id(), paid.subscription_id());

        let Payload::ChargeRefunded { data } = payload("charge.refunded") else {
            panic!("charge.refunded")
        };
        let ch = data.object;
        assert!(ch.fully_refunded());
        let partial = Charge {
            refunded: false,
            amount_refunded: 100,
            ..ch
        };
        assert!(!partial.fully_refunded());
        let Payload::DisputeCreated { data } = payload("charge.dispute.created") else {
            panic!("charge.dispute.created")
        };
        assert!(id_of(&data.object.charge).unwrap().starts_with("ch_"));
        assert!(id_of(&data.object.payment_intent)
            .unwrap()
            .starts_with("pi_"));

        // Delayed payments: the session again, paid or not.
        let Payload::CheckoutPaymentSucceeded { data } =
            payload("checkout.session.async_payment_succeeded")
        else {
            panic!("checkout.session.async_payment_succeeded")
        };
        assert!(data.object.paid());
        assert_eq!(data.object.mode.as_deref(), Some("payment"));
        let Payload::CheckoutPaymentFailed { data } =
            payload("checkout.session.async_payment_failed")
        else {
            panic!("checkout.session.async_payment_failed")
        };
        assert!(!data.object.paid());
        assert!(checkout("checkout.session.completed").paid());

        // Any other type is `Other`, whatever its object.
        assert!(matches!(payload("customer.created"), Payload::Other));
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
        for bad in [
            &br#"{"id":"evt_1"}"#[..],
            br#"[]"#,
            br#"{"id":"evt#1","type":"x","created":1,"data":{"object":{}}}"#,
            br#"{"id":"evt_1","type":"x","created":1}"#,
            br#"{"id":"evt_1","type":"x","created":1,"data":{}}"#,
            br#"{"id":"evt_1","type":"","created":1,"data":{"object":{}}}"#,
        ] {
            assert!(
                matches!(
                    parse_event(bad),
                    Err(Error::BadRequest {
                        code: "INVALID_EVENT",
                        ..
                    })
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn an_object_of_the_wrong_shape_is_kept_as_an_error_not_a_400() {
        let ev = parse_event(
            br#"{"id":"evt_1","type":"invoice.paid","created":1,"data":{"object":{"no":"id"}}}"#,
        )
        .unwrap();
        assert_eq!(
            (ev.id.as_str(), ev.kind.as_str(), ev.created),
            ("evt_1", "invoice.paid", 1)
        );
        let err = ev.payload.unwrap_err();
        assert!(err.to_string().contains("id"), "{err}");
        // An unhandled type's object is not read at all.
        let ev = parse_event(
            br#"{"id":"evt_2","type":"customer.created","created":1,"data":{"object":null}}"#,
        )
        .unwrap();
        assert!(matches!(ev.payload, Ok(Payload::Other)));
    }

    #[test]
    fn quantities_are_bounded_and_the_first_item_with_one_counts() {
        let items = |v: Value| -> List<PricedItem> {
            serde_json::from_value(serde_json::json!({ "data": v })).unwrap()
        };
        let q = |v: Value| quantity_of(Some(&items(v)));
        assert_eq!(q(serde_json::json!([])), Ok(None));
        assert_eq!(q(serde_json::json!([{ "quantity": null }])), Ok(None));
        assert_eq!(
            q(serde_json::json!([{ "quantity": null }, { "quantity": 3 }])),
            Ok(Some(3))
        );
        assert_eq!(
            q(serde_json::json!([{ "quantity": 1_000_000 }])),
            Ok(Some(1_000_000))
        );
        for bad in [
            serde_json::json!(0),
            serde_json::json!(-1),
            serde_json::json!(1_000_001),
            serde_json::json!(2.5),
            serde_json::json!("2"),
            serde_json::json!(u64::MAX),
        ] {
            let r = q(serde_json::json!([{ "quantity": bad }]));
            assert!(
                r.as_ref().is_err_and(|e| e.contains("1 to 1000000")),
                "{bad}: {r:?}"
            );
        }
        assert!(q(serde_json::json!([{ "quantity": 0 }, { "quantity": 2 }])).is_err());
        let Payload::SubscriptionChanged { data } = payload("customer.subscription.created") else {
            panic!("customer.subscription.created")
        };
        assert_eq!(data.object.quantity(), Ok(Some(1)));
    }

    #[test]
    fn an_expanded_price_names_its_policy_in_metadata() {
        let item: PricedItem = serde_json::from_value(serde_json::json!({
            "price": { "id": "price_1", "metadata": { "policy": "pol_x" } }, "quantity": 2
        }))
        .unwrap();
        let price = item.price.as_ref().unwrap();
        assert_eq!(price.id(), "price_1");
        assert_eq!(price.metadata_str("policy"), Some("pol_x"));
        assert_eq!(price.metadata_str("other"), None);
        assert_eq!(
            Expandable::Id("price_1".into()).metadata_str("policy"),
            None
        );
    }

    #[test]
    fn only_a_paid_or_free_checkout_counts_as_paid() {
        let cs = |status: Value| -> CheckoutSession {
            serde_json::from_value(serde_json::json!({ "id": "cs_1", "payment_status": status }))
                .unwrap()
        };
        assert!(cs(serde_json::json!("paid")).paid());
        assert!(cs(serde_json::json!("no_payment_required")).paid());
        assert!(!cs(serde_json::json!("unpaid")).paid());
        assert!(!cs(serde_json::json!("processing")).paid());
        assert!(!cs(Value::Null).paid());
        let bare: CheckoutSession =
            serde_json::from_value(serde_json::json!({ "id": "cs_1" })).unwrap();
        assert!(!bare.paid(), "no status is not a payment");
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
}
