//! `SeatTerms` is one value in `Policy` and `License`, stored flattened
//! (`#[serde(flatten)]`): the items keep the five top-level attributes they
//! had when the terms were five fields of each type. The expected items
//! below are what `serde_dynamo` wrote before that change.

use super::*;
use crate::domain::*;
use crate::ids::*;
use crate::store::Item;
use aws_sdk_dynamodb::types::AttributeValue as V;
use time::macros::datetime;

const NOW: time::OffsetDateTime = datetime!(2026-01-02 3:04:05 UTC);
const AT: &str = "2026-01-02T03:04:05.000Z";

fn s(v: &str) -> V {
    V::S(v.into())
}
fn n(v: u32) -> V {
    V::N(v.to_string())
}

fn node_locked() -> SeatTerms {
    SeatTerms::default()
}
fn floating() -> SeatTerms {
    SeatTerms {
        activation_mode: ActivationMode::Floating,
        lease_seconds: Some(600),
        max_overage: 3,
        heartbeat_seconds: None,
        max_deactivations: Some(ChurnLimit {
            count: 2,
            period: Period::Month,
        }),
    }
}
fn heartbeats() -> SeatTerms {
    SeatTerms {
        heartbeat_seconds: Some(120),
        ..SeatTerms::default()
    }
}

fn policy(terms: SeatTerms) -> Policy {
    Policy {
        id: PolicyId::parse("pol_01JAAAAAAAAAAAAAAAAAAAAAAA").unwrap(),
        product: ProductCode::parse("app").unwrap(),
        name: "Pro".into(),
        max_activations: 5,
        duration_days: None,
        entitlements: Default::default(),
        grace_period_days: 3,
        stripe_price_ids: vec![],
        terms,
        client_auth: true,
        max_file_ttl_seconds: 1_209_600,
        created_at: NOW,
        updated_at: NOW,
    }
}

fn license(p: &Policy) -> License {
    License::issue(LicenseDraft {
        tenant: &TenantId::parse("acme").unwrap(),
        policy: p,
        key: Some(LicenseKey::parse("ABCD-EFGH").unwrap()),
        customer_email: Email::normalise("a@b.co").unwrap(),
        status: LicenseStatus::Active,
        expires_at: None,
        grace_until: None,
        metadata: Default::default(),
        stripe: StripeLink::default(),
        stripe_event_at: 0,
        now: NOW,
    })
    .unwrap()
}

/// The seat-term attributes of `t` as they were stored before the change.
fn term_attrs(t: SeatTerms) -> Vec<(&'static str, V)> {
    let mut out = vec![
        (ACTIVATION_MODE, s(t.activation_mode.as_str())),
        (MAX_OVERAGE, n(t.max_overage)),
    ];
    if let Some(l) = t.lease_seconds {
        out.push((LEASE_SECONDS, n(l)));
    }
    if let Some(h) = t.heartbeat_seconds {
        out.push((HEARTBEAT_SECONDS, n(h)));
    }
    if let Some(c) = t.max_deactivations {
        let m = [
            ("count".to_string(), n(c.count)),
            ("period".to_string(), s(c.period.as_str())),
        ];
        out.push((MAX_DEACTIVATIONS, V::M(m.into())));
    }
    out
}

fn item(attrs: impl IntoIterator<Item = (&'static str, V)>) -> Item {
    attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn old_policy_item(t: SeatTerms) -> Item {
    let rest = [
        (CLIENT_AUTH, V::Bool(true)),
        ("created_at", s(AT)),
        (DURATION_DAYS, V::Null(true)),
        (ENTITLEMENTS, V::M(Default::default())),
        (GRACE_PERIOD_DAYS, n(3)),
        (ID, s("pol_01JAAAAAAAAAAAAAAAAAAAAAAA")),
        (MAX_ACTIVATIONS, n(5)),
        (NAME, s("Pro")),
        (PRODUCT, s("app")),
        (STRIPE_PRICE_IDS, V::L(vec![])),
        (UPDATED_AT, s(AT)),
    ];
    item(rest.into_iter().chain(term_attrs(t)))
}

/// A policy item as written now: as before, plus `max_file_ttl_seconds`
/// (an item without it reads as the default, 14 days).
fn policy_item(t: SeatTerms) -> Item {
    let mut i = old_policy_item(t);
    i.insert(MAX_FILE_TTL_SECONDS.into(), n(1_209_600));
    i
}

fn old_license_item(t: SeatTerms) -> Item {
    let rest = [
        ("created_at", s(AT)),
        (CUSTOMER_EMAIL, s("a@b.co")),
        (ENTITLEMENT_OVERRIDES, V::M(Default::default())),
        (ID, s("lic_da715565c24e6da00fa904adbd04d070")),
        (KEY, s("ABCD-EFGH")),
        (MAX_ACTIVATIONS, n(5)),
        (METADATA, V::M(Default::default())),
        (OVERAGE_USED, n(0)),
        (POLICY, s("pol_01JAAAAAAAAAAAAAAAAAAAAAAA")),
        (PRODUCT, s("app")),
        (SEATS_USED, n(0)),
        (STATUS, s("active")),
        ("stripe", V::M(Default::default())),
        (STRIPE_EVENT_AT, n(0)),
        (UPDATED_AT, s(AT)),
    ];
    item(rest.into_iter().chain(term_attrs(t)))
}

fn to_item<T: serde::Serialize>(v: &T) -> Item {
    serde_dynamo::to_item(v).unwrap()
}

fn from_item<T: serde::de::DeserializeOwned>(i: Item) -> T {
    serde_dynamo::from_item(i).unwrap()
}

#[test]
fn policies_and_licenses_store_their_terms_as_before() {
    for t in [node_locked(), floating(), heartbeats()] {
        let p = policy(t);
        assert_eq!(to_item(&p), policy_item(t), "{t:?}");
        let l = license(&p);
        assert_eq!(l.terms, t);
        assert_eq!(to_item(&l), old_license_item(t), "{t:?}");

        let p: Policy = from_item(old_policy_item(t));
        assert_eq!(p.terms, t);
        assert_eq!(p.max_file_ttl_seconds, 1_209_600);
        assert_eq!(to_item(&p), policy_item(t));
        let p: Policy = from_item(policy_item(t));
        assert_eq!(to_item(&p), policy_item(t));
        let l: License = from_item(old_license_item(t));
        assert_eq!(l.terms, t);
        assert_eq!(to_item(&l), old_license_item(t));
    }
}

#[test]
fn items_written_before_a_term_existed_read_with_its_default() {
    // A license and a policy from before floating seats: no term at all.
    let mut li = old_license_item(node_locked());
    let mut pi = old_policy_item(node_locked());
    for attr in [ACTIVATION_MODE, MAX_OVERAGE] {
        li.remove(attr);
        pi.remove(attr);
    }
    assert_eq!(from_item::<License>(li).terms, SeatTerms::default());
    assert_eq!(from_item::<Policy>(pi).terms, SeatTerms::default());
}

#[test]
fn storage_only_attributes_beside_the_terms_still_read() {
    // What the store adds to a license item (keys, index keys, epochs,
    // churn counters) reaches the flattened terms as unknown attributes.
    let t = floating();
    let mut li = old_license_item(t);
    for (k, v) in [
        ("PK", s("T#acme#L#lic_da715565c24e6da00fa904adbd04d070")),
        ("SK", s("L")),
        ("GSI1PK", s("T#acme#EMAIL#a@b.co")),
        ("GSI2SK", s("2026-01-02T03:04:05.000Z#lic_1")),
        (&deactivations_in("2026-11"), n(1)),
        ("deactivations_total", V::N("-1".into())),
        ("floating_overage_seconds", V::N("1.5".into())),
        (TTL, V::Null(true)),
    ] {
        li.insert(k.to_string(), v);
    }
    let l: License = from_item(li);
    assert_eq!(l.terms, t);
}

#[test]
fn null_terms_written_by_an_older_policy_patch_read_as_unset() {
    // The policy PATCH used to SET an unset optional term to NULL.
    let mut pi = old_policy_item(node_locked());
    for attr in [LEASE_SECONDS, HEARTBEAT_SECONDS, MAX_DEACTIVATIONS] {
        pi.insert(attr.into(), V::Null(true));
    }
    let p: Policy = from_item(pi);
    assert_eq!(p.terms, node_locked());
    assert_eq!(to_item(&p), policy_item(node_locked()));
}

#[test]
fn a_wrong_term_is_still_refused() {
    // Flattening buffers the terms' attributes; a bad value must still fail.
    let mut li = old_license_item(floating());
    li.insert(ACTIVATION_MODE.into(), s("sometimes"));
    assert!(serde_dynamo::from_item::<_, License>(li).is_err());
    let mut pi = old_policy_item(floating());
    pi.insert(LEASE_SECONDS.into(), V::N("-5".into()));
    assert!(serde_dynamo::from_item::<_, Policy>(pi).is_err());
}
