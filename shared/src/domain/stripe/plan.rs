//! What an event does to a license, decided without I/O: the [`Change`]
//! each event type asks for, and [`plan_change`], what applying one to an
//! existing license writes, given what the use case read.

use super::wire::{status_of, stripe_id_ok, Invoice, Subscription, MAX_QUANTITY};
use super::{Change, PendingState, StripeCharge};
use crate::clock::add_days;
use crate::domain::{AuditCode, GraceChange, License, LicenseChange, LicenseStatus, Policy};
use crate::error::Error;
use time::OffsetDateTime;

impl Change {
    /// A status change alone (deletions, failed payments, refunds, disputes).
    pub fn to(status: LicenseStatus) -> Change {
        Change {
            status: Some(status),
            ..Change::default()
        }
    }

    /// `customer.subscription.created/updated`: status, prices and seats.
    /// `Err`: the reason to ignore the event (a quantity out of bounds).
    pub fn of_subscription(sub: &Subscription) -> Result<Change, String> {
        let quantity = sub
            .quantity()
            .map_err(|why| format!("subscription item {why}"))?;
        Ok(Change {
            status: status_of(&sub.status),
            prices: sub.prices(),
            period_end: None,
            quantity,
        })
    }

    /// A paid invoice: active, until the end of the period it paid for.
    pub fn of_paid_invoice(inv: &Invoice) -> Change {
        Change {
            status: Some(LicenseStatus::Active),
            period_end: inv.period_end(),
            ..Change::default()
        }
    }
}

impl Invoice {
    /// The charges and payment intents that paid it, as records pointing at
    /// `subscription_id`: refunds and disputes name only those.
    pub fn charges(&self, subscription_id: &str) -> Vec<StripeCharge> {
        self.payment_refs()
            .into_iter()
            .filter(|c| stripe_id_ok(c))
            .map(|c| StripeCharge {
                charge_id: c,
                subscription_id: subscription_id.to_string(),
                invoice_id: Some(self.id.clone()),
            })
            .collect()
    }
}

/// The seats of a license sold through a priced item (a subscription item
/// or a checkout line item): the policy's `max_activations` per unit bought
/// × the item's `quantity`. A "5 seats" plan bought once is 5 seats; a
/// per-seat plan of 1 at quantity 20 is 20. No quantity (a metered price,
/// where Stripe sends none): the policy's seats. `Err`: the product passes
/// the seat bound of policies (the reason to ignore the event).
pub fn seats_for(per_unit: u32, quantity: Option<u32>) -> Result<u32, String> {
    let q = quantity.unwrap_or(1);
    let seats = u64::from(per_unit) * u64::from(q);
    if seats > MAX_QUANTITY {
        return Err(format!(
            "quantity {q} × {per_unit} seats of the policy is more than {MAX_QUANTITY} seats"
        ));
    }
    u32::try_from(seats).map_err(|_| format!("quantity {q} is out of range"))
}

/// What applying a [`Change`] to an existing license comes to.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Nothing to write: the event is recorded as ignored, for `reason`.
    Unchanged { reason: String },
    /// Write `update` (conditional on the status read) with the `LICENSE.*`
    /// audit `codes` it means; `reason` notes what of the event did not apply.
    Apply {
        update: LicenseChange,
        codes: Vec<AuditCode>,
        reason: Option<String>,
    },
}

/// Whether planning `change` needs the policy that lists one of its prices:
/// it names prices, and the license's current policy lists none of them.
pub fn needs_price_policy(change: &Change, current: Option<&Policy>) -> bool {
    let listed = |p: &Policy| change.prices.iter().any(|x| p.stripe_price_ids.contains(x));
    !change.prices.is_empty() && !current.is_some_and(listed)
}

/// What applying `change` to `license` writes, at `now`.
///
/// `current` is the license's policy (`None` if it is gone); `by_price` the
/// policy listing the first of the change's prices any policy lists, looked
/// up only when [`needs_price_policy`] (otherwise it is not consulted). The
/// policy follows the price within the license's product; the seats are the
/// (new, else current) policy's seats × the item's quantity ([`seats_for`]:
/// a product past the seat bound ignores the whole event); a past-due status
/// starts a grace period (unless one runs), any other status ends it.
pub fn plan_change(
    change: &Change,
    license: &License,
    current: Option<&Policy>,
    by_price: Option<&Policy>,
    now: OffsetDateTime,
) -> Result<Plan, Error> {
    let mut notes: Vec<String> = Vec::new();
    let mut new_policy: Option<&Policy> = None;
    if needs_price_policy(change, current) {
        match by_price {
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
        .or(current)
        .map(|p| p.grace_period_days)
        .unwrap_or(0);
    let grace = match change.status {
        Some(LicenseStatus::PastDue) => GraceChange::StartUnlessRunning(add_days(now, grace_days)?),
        Some(_) => GraceChange::Clear,
        None => GraceChange::Keep,
    };
    // Seats: the policy's seats per unit × the item's quantity; without a
    // quantity, a new policy's seats (an unchanged policy leaves them be).
    let seats = match (change.quantity, new_policy.or(current)) {
        (Some(q), Some(p)) => match seats_for(p.max_activations, Some(q)) {
            Ok(n) => Some(n),
            Err(why) => {
                let reason = format!("subscription item {why}");
                return Ok(Plan::Unchanged { reason });
            }
        },
        (Some(_), None) => {
            notes.push("the license's policy is gone: seats unchanged".into());
            None
        }
        (None, _) => new_policy.map(|p| p.max_activations),
    }
    .filter(|n| *n != license.max_activations || new_policy.is_some());
    let update = LicenseChange {
        status: change.status,
        policy: new_policy.map(|p| p.id.clone()),
        max_activations: seats,
        terms: new_policy.map(|p| p.terms),
        expires_at: change.period_end.map(epoch).transpose()?,
        grace,
        ..LicenseChange::default()
    };
    if update.status.is_none()
        && update.policy.is_none()
        && update.expires_at.is_none()
        && update.max_activations.is_none()
    {
        let reason = if notes.is_empty() {
            "nothing in this event changes the license".to_string()
        } else {
            notes.join("; ")
        };
        return Ok(Plan::Unchanged { reason });
    }
    Ok(Plan::Apply {
        codes: license_codes(license, &update),
        update,
        reason: (!notes.is_empty()).then(|| notes.join("; ")),
    })
}

/// The `LICENSE.*` audit codes of applying `upd` to `was`: the same codes
/// as the Management API's, so Stripe's changes reach the audit trail and
/// webhooks alike.
pub fn license_codes(was: &License, upd: &LicenseChange) -> Vec<AuditCode> {
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

/// An event's epoch seconds as a time.
pub fn epoch(secs: i64) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| Error::validation("a timestamp in the event is out of range"))
}

impl PendingState {
    /// What `change` says, as of `at` (an event's `created`).
    pub fn of(change: &Change, at: i64, grace_start: Option<i64>) -> PendingState {
        PendingState {
            status: change.status,
            prices: change.prices.clone(),
            period_end: change.period_end,
            quantity: change.quantity,
            grace_start,
            at,
        }
    }
}

/// The state a subscription's license is issued in: the checkout's
/// (active, as of `checkout_at`), then the `kept` state and the `trigger`
/// event's, folded by `created`, newest last.
pub fn fold_for_issue(
    checkout_at: i64,
    kept: Option<PendingState>,
    trigger: Option<PendingState>,
) -> PendingState {
    let mut states: Vec<PendingState> = vec![PendingState {
        status: Some(LicenseStatus::Active),
        at: checkout_at,
        ..PendingState::default()
    }];
    states.extend(kept);
    states.extend(trigger);
    states.sort_by_key(|s| s.at);
    states
        .into_iter()
        .fold(PendingState::default(), PendingState::then)
}

/// What a subscription's license is issued with, beyond its policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueTerms {
    pub status: LicenseStatus,
    pub expires_at: Option<OffsetDateTime>,
    pub grace_until: Option<OffsetDateTime>,
    /// The units bought (the subscription item's quantity, else the
    /// checkout's): the seats are [`seats_for`] of it. `None`: one unit.
    pub quantity: Option<u32>,
    pub stripe_event_at: i64,
}

/// The terms of a license issued in `state` under a policy granting
/// `grace_period_days`: the quantity is the subscription item's, else the
/// checkout's; a past-due license's grace runs from when it became past due
/// (else from `now`). `event_created`: the issuing event's `created`.
pub fn issue_terms(
    state: &PendingState,
    grace_period_days: u32,
    checkout_quantity: Option<u32>,
    event_created: i64,
    now: OffsetDateTime,
) -> Result<IssueTerms, Error> {
    let status = state.status.unwrap_or(LicenseStatus::Active);
    let expires_at = state.period_end.map(epoch).transpose()?;
    let grace_until = match (status, state.grace_start) {
        (LicenseStatus::PastDue, start) => Some(add_days(
            epoch(start.unwrap_or(now.unix_timestamp()))?,
            grace_period_days,
        )?),
        _ => None,
    };
    Ok(IssueTerms {
        status,
        expires_at,
        grace_until,
        quantity: state.quantity.or(checkout_quantity),
        stripe_event_at: state.at.max(event_created),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LicenseDraft, SeatTerms, StripeLink};
    use crate::ids::{Email, PolicyId, ProductCode, TenantId};
    use serde_json::{json, Map};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn policy(product: &str, prices: &[&str], seats: u32, grace_days: u32) -> Policy {
        Policy {
            id: PolicyId::generate(),
            product: ProductCode::parse(product).unwrap(),
            name: "Plan".into(),
            max_activations: seats,
            duration_days: None,
            entitlements: Default::default(),
            grace_period_days: grace_days,
            stripe_price_ids: prices.iter().map(|p| p.to_string()).collect(),
            terms: SeatTerms::default(),
            client_auth: true,
            max_file_ttl_seconds: 1_209_600,
            created_at: NOW,
            updated_at: NOW,
        }
    }

    fn license(p: &Policy, status: LicenseStatus, expires_at: Option<OffsetDateTime>) -> License {
        License::issue(LicenseDraft {
            tenant: &TenantId::parse("acme").unwrap(),
            policy: p,
            key: None,
            customer_email: Email::normalise("ann@example.com").unwrap(),
            status,
            expires_at,
            grace_until: None,
            metadata: Map::new(),
            stripe: StripeLink::default(),
            stripe_event_at: 0,
            now: NOW,
        })
        .unwrap()
    }

    fn change(status: Option<LicenseStatus>, prices: &[&str], quantity: Option<u32>) -> Change {
        Change {
            status,
            prices: prices.iter().map(|p| p.to_string()).collect(),
            period_end: None,
            quantity,
        }
    }

    fn apply(plan: Plan) -> (LicenseChange, Vec<AuditCode>, Option<String>) {
        match plan {
            Plan::Apply {
                update,
                codes,
                reason,
            } => (update, codes, reason),
            Plan::Unchanged { reason } => panic!("unchanged: {reason}"),
        }
    }

    fn unchanged(plan: Plan) -> String {
        match plan {
            Plan::Unchanged { reason } => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn seats_are_the_policys_seats_times_the_quantity() {
        assert_eq!(seats_for(5, Some(1)), Ok(5), "a 5-seat plan bought once");
        assert_eq!(seats_for(1, Some(20)), Ok(20), "a per-seat plan, 20 units");
        assert_eq!(seats_for(5, Some(3)), Ok(15));
        assert_eq!(seats_for(5, None), Ok(5), "no quantity: the policy's seats");
        assert_eq!(seats_for(0, Some(7)), Ok(0));
        assert_eq!(
            seats_for(1, Some(1_000_000)),
            Ok(1_000_000),
            "the bound itself"
        );
        assert_eq!(seats_for(1_000_000, Some(1)), Ok(1_000_000));
        assert_eq!(
            seats_for(2, Some(500_001)),
            Err("quantity 500001 × 2 seats of the policy is more than 1000000 seats".into())
        );
        assert!(seats_for(u32::MAX, Some(u32::MAX)).is_err(), "no overflow");
    }

    #[test]
    fn a_price_of_another_policy_of_the_product_switches_it_and_the_quantity_buys_its_seats() {
        let basic = policy("app", &["price_basic"], 1, 3);
        let pro = policy("app", &["price_pro"], 10, 7);
        let lic = license(&basic, LicenseStatus::Active, None);
        let c = change(Some(LicenseStatus::Active), &["price_pro"], Some(4));
        assert!(needs_price_policy(&c, Some(&basic)));
        let (u, codes, reason) =
            apply(plan_change(&c, &lic, Some(&basic), Some(&pro), NOW).unwrap());
        assert_eq!(u.policy.as_ref(), Some(&pro.id));
        assert_eq!(u.terms, Some(pro.terms));
        assert_eq!(
            u.max_activations,
            Some(40),
            "four of the new policy's 10 seats"
        );
        assert_eq!(u.grace, GraceChange::Clear);
        assert_eq!(codes, [AuditCode::LicensePolicyChanged]);
        assert_eq!(reason, None);

        // Without a quantity (metered), the new policy's seats apply.
        let c = change(None, &["price_pro"], None);
        let (u, _, _) = apply(plan_change(&c, &lic, Some(&basic), Some(&pro), NOW).unwrap());
        assert_eq!(
            (u.max_activations, u.status, u.grace),
            (Some(10), None, GraceChange::Keep)
        );
    }

    #[test]
    fn a_quantity_past_the_seat_bound_changes_nothing() {
        let five = policy("app", &["price_five"], 5, 3);
        let lic = license(&five, LicenseStatus::Active, None);
        let c = change(
            Some(LicenseStatus::Suspended),
            &["price_five"],
            Some(200_001),
        );
        assert_eq!(
            unchanged(plan_change(&c, &lic, Some(&five), None, NOW).unwrap()),
            "subscription item quantity 200001 × 5 seats of the policy is more than 1000000 seats"
        );
        // Without its policy the quantity cannot be turned into seats; the rest applies.
        let c = change(Some(LicenseStatus::Suspended), &[], Some(2));
        let (u, _, reason) = apply(plan_change(&c, &lic, None, None, NOW).unwrap());
        assert_eq!(
            (u.status, u.max_activations),
            (Some(LicenseStatus::Suspended), None)
        );
        assert_eq!(
            reason.unwrap(),
            "the license's policy is gone: seats unchanged"
        );
    }

    #[test]
    fn a_price_the_current_policy_lists_needs_no_lookup_and_a_quantity_alone_updates_seats() {
        let basic = policy("app", &["price_basic"], 1, 3);
        let lic = license(&basic, LicenseStatus::Active, None);
        let c = change(None, &["price_basic"], Some(5));
        assert!(!needs_price_policy(&c, Some(&basic)));
        // A lookup result is not consulted when none is needed.
        let other = policy("app", &["price_basic"], 9, 0);
        let (u, codes, _) = apply(plan_change(&c, &lic, Some(&basic), Some(&other), NOW).unwrap());
        assert_eq!((u.policy, u.max_activations), (None, Some(5)));
        assert_eq!(codes, [AuditCode::LicenseUpdated]);

        // The same quantity and no status: nothing to write.
        let c = change(None, &["price_basic"], Some(1));
        assert_eq!(
            unchanged(plan_change(&c, &lic, Some(&basic), None, NOW).unwrap()),
            "nothing in this event changes the license"
        );
    }

    #[test]
    fn prices_no_policy_of_the_product_lists_leave_the_policy_with_a_reason() {
        let basic = policy("app", &["price_basic"], 1, 3);
        let lic = license(&basic, LicenseStatus::Active, None);
        let c = change(None, &["price_x", "price_y"], None);
        assert_eq!(
            unchanged(plan_change(&c, &lic, Some(&basic), None, NOW).unwrap()),
            "no policy lists price price_x or price_y; policy unchanged"
        );
        let foreign = policy("other", &["price_x"], 3, 0);
        let c = change(Some(LicenseStatus::Suspended), &["price_x"], None);
        let (u, codes, reason) =
            apply(plan_change(&c, &lic, Some(&basic), Some(&foreign), NOW).unwrap());
        assert_eq!(u.policy, None);
        assert_eq!(u.status, Some(LicenseStatus::Suspended));
        assert_eq!(codes, [AuditCode::LicenseSuspended]);
        assert_eq!(
            reason.unwrap(),
            format!(
                "price maps to policy {} of another product; policy unchanged",
                foreign.id
            )
        );
    }

    #[test]
    fn past_due_starts_grace_and_payment_resumes_and_renews() {
        let basic = policy("app", &[], 1, 3);
        let lic = license(&basic, LicenseStatus::Active, Some(NOW));
        let c = Change::to(LicenseStatus::PastDue);
        let (u, codes, _) = apply(plan_change(&c, &lic, Some(&basic), None, NOW).unwrap());
        assert_eq!(
            u.grace,
            GraceChange::StartUnlessRunning(datetime!(2026-03-04 12:00 UTC))
        );
        assert_eq!(codes, [AuditCode::LicensePastDue]);

        let late = license(&basic, LicenseStatus::PastDue, Some(NOW));
        let end = NOW.unix_timestamp() + 86_400 * 30;
        let c = Change {
            status: Some(LicenseStatus::Active),
            period_end: Some(end),
            ..Change::default()
        };
        let (u, codes, _) = apply(plan_change(&c, &late, Some(&basic), None, NOW).unwrap());
        assert_eq!(u.expires_at, Some(epoch(end).unwrap()));
        assert_eq!(u.grace, GraceChange::Clear);
        assert_eq!(
            codes,
            [AuditCode::LicenseResumed, AuditCode::LicenseRenewed]
        );

        // A policy gone from the catalog: no grace days, still planned.
        let (u, _, _) =
            apply(plan_change(&Change::to(LicenseStatus::PastDue), &lic, None, None, NOW).unwrap());
        assert_eq!(u.grace, GraceChange::StartUnlessRunning(NOW));

        let c = Change {
            period_end: Some(i64::MAX),
            ..Change::default()
        };
        assert!(plan_change(&c, &lic, Some(&basic), None, NOW).is_err());
    }

    #[test]
    fn each_event_asks_its_change() {
        let sub: Subscription = serde_json::from_value(json!({
            "id": "sub_1", "status": "past_due",
            "items": { "data": [{ "price": "price_a", "quantity": 3 }] }
        }))
        .unwrap();
        assert_eq!(
            Change::of_subscription(&sub),
            Ok(change(Some(LicenseStatus::PastDue), &["price_a"], Some(3)))
        );
        let sub: Subscription = serde_json::from_value(json!({
            "id": "sub_1", "status": "active",
            "items": { "data": [{ "price": "price_a", "quantity": 0 }] }
        }))
        .unwrap();
        assert!(Change::of_subscription(&sub)
            .unwrap_err()
            .starts_with("subscription item quantity 0 is not a whole number"));

        let inv: Invoice = serde_json::from_value(json!({
            "id": "in_1", "charge": "ch_1", "payment_intent": "pi#bad",
            "lines": { "data": [{ "period": { "end": 20 } }, { "period": { "end": 30 } }] }
        }))
        .unwrap();
        assert_eq!(
            Change::of_paid_invoice(&inv),
            Change {
                status: Some(LicenseStatus::Active),
                period_end: Some(30),
                ..Change::default()
            }
        );
        assert_eq!(
            inv.charges("sub_1"),
            [StripeCharge {
                charge_id: "ch_1".into(),
                subscription_id: "sub_1".into(),
                invoice_id: Some("in_1".into()),
            }],
            "ids that cannot be keys are dropped"
        );
    }

    #[test]
    fn a_license_is_issued_in_the_newest_state_seen() {
        let failed = PendingState {
            status: Some(LicenseStatus::PastDue),
            grace_start: Some(100),
            at: 100,
            ..PendingState::default()
        };
        // A checkout after the failure: active wins (it is newer).
        let s = fold_for_issue(200, Some(failed.clone()), None);
        assert_eq!(
            (s.status, s.grace_start, s.at),
            (Some(LicenseStatus::Active), None, 200)
        );
        // A checkout before it: past due, grace from the first failure.
        let again = PendingState::of(&Change::to(LicenseStatus::PastDue), 300, Some(300));
        let s = fold_for_issue(50, Some(failed), Some(again));
        assert_eq!(
            (s.status, s.grace_start, s.at),
            (Some(LicenseStatus::PastDue), Some(100), 300)
        );

        let t = issue_terms(&s, 3, Some(7), 400, NOW).unwrap();
        assert_eq!(
            t,
            IssueTerms {
                status: LicenseStatus::PastDue,
                expires_at: None,
                grace_until: Some(epoch(100 + 3 * 86_400).unwrap()),
                quantity: Some(7),
                stripe_event_at: 400,
            }
        );
        // Nothing seen but the checkout: active, the policy's terms.
        let t = issue_terms(&fold_for_issue(10, None, None), 3, None, 5, NOW).unwrap();
        assert_eq!(
            (t.status, t.grace_until, t.quantity, t.stripe_event_at),
            (LicenseStatus::Active, None, None, 10)
        );
        // The subscription item's quantity wins over the checkout's.
        let s = PendingState {
            quantity: Some(2),
            ..PendingState::default()
        };
        assert_eq!(
            issue_terms(&s, 0, Some(7), 0, NOW).unwrap().quantity,
            Some(2)
        );
    }
}
