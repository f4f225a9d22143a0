//! Every step the seat decisions can choose, from the refusals that lead to it.

use super::*;
use crate::domain::{LicenseStatus, Period, StripeLink};
use crate::ids::{Email, Fingerprint, LicenseId, LicenseKey, PolicyId, ProductCode, TenantId};
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

/// An active license with 2 committed seats, both held.
fn license() -> License {
    let key = LicenseKey::generate();
    let t = TenantId::parse("acme").unwrap();
    License {
        id: LicenseId::derive(&t, &key),
        key,
        product: ProductCode::parse("app").unwrap(),
        policy: PolicyId::generate(),
        customer_email: Email::normalise("a@b.co").unwrap(),
        status: LicenseStatus::Active,
        expires_at: None,
        expires_epoch: None,
        grace_until: None,
        grace_epoch: None,
        max_activations: 2,
        seats_used: 2,
        overage_used: 0,
        terms: SeatTerms::default(),
        metadata: Default::default(),
        entitlement_overrides: Default::default(),
        stripe: StripeLink::default(),
        stripe_event_at: 0,
        email_unverified: false,
        commercial: None,
        organization: None,
        created_at: datetime!(2026-01-01 0:00 UTC),
        updated_at: datetime!(2026-01-01 0:00 UTC),
    }
}

/// The same, floating: 2 committed seats and 3 overage seats, leases of 600 s.
fn floating() -> License {
    License {
        terms: SeatTerms {
            activation_mode: ActivationMode::Floating,
            lease_seconds: Some(600),
            max_overage: 3,
            ..SeatTerms::default()
        },
        ..license()
    }
}

fn activation(l: &License, fp: &str) -> Activation {
    let fingerprint = Fingerprint::parse(fp).unwrap();
    Activation {
        id: ActivationId::derive(&l.id, &fingerprint),
        license_id: l.id.clone(),
        fingerprint,
        name: None,
        hostname: None,
        user: None,
        metadata: Default::default(),
        created_at: datetime!(2026-05-01 0:00 UTC),
        last_activated_at: datetime!(2026-05-01 0:00 UTC),
        deactivated_at: None,
        lease_expires_epoch: None,
        lease_seconds: None,
        overage: false,
        last_heartbeat_at: None,
    }
}

fn lease(l: &License, fp: &str, expires: OffsetDateTime, overage: bool) -> Activation {
    Activation {
        lease_expires_epoch: Some(expires.unix_timestamp()),
        lease_seconds: l.terms.lease_seconds,
        overage,
        ..activation(l, fp)
    }
}

fn deactivated(a: Activation) -> Activation {
    Activation {
        deactivated_at: Some(datetime!(2026-05-02 0:00 UTC)),
        ..a
    }
}

fn seat_refused(l: &License) -> TakeRefused<'_> {
    TakeRefused {
        license: AsWas::Was(l),
        activation: None,
    }
}

fn overage(terms: SeatTerms) -> Attempt {
    Attempt {
        terms,
        pool: Pool::Overage,
    }
}

fn is_take(step: Step<'_>) -> Attempt {
    match step {
        Step::Take(a) => a,
        other => panic!("expected a take, got {other:?}"),
    }
}

fn refusal(step: Step<'_>) -> Error {
    match step {
        Step::Refuse(e) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_take_writes_a_lease_in_its_pool_when_floating() {
    let l = floating();
    let new = activation(&l, "fp-new");
    let first = Attempt::committed(l.terms);
    assert_eq!(first.pool, Pool::Committed);
    let a = first.activation(&new, NOW);
    assert_eq!(a.lease_seconds, Some(600));
    assert_eq!(a.lease_expires_epoch, Some(NOW.unix_timestamp() + 600));
    assert!(!a.overage);
    assert!(overage(l.terms).activation(&new, NOW).overage);

    // Node-locked: the activation as it is, no lease.
    let n = license();
    let a = Attempt::committed(n.terms).activation(&activation(&n, "fp"), NOW);
    assert_eq!((a.lease_seconds, a.lease_expires_epoch), (None, None));
    assert!(!a.overage);
}

#[test]
fn wrong_terms_take_again_with_the_license_terms() {
    let l = floating();
    let held = lease(&l, "fp", NOW + time::Duration::minutes(5), false);
    // Assumed node-locked (an instance that never saw the license); even
    // with the fingerprint's lease in view, the terms come first.
    let seen = TakeRefused {
        license: AsWas::Was(&l),
        activation: Some(&held),
    };
    let next = is_take(next_step(Attempt::committed(license().terms), &seen, NOW));
    assert_eq!(next, Attempt::committed(l.terms));
    // A changed lease length, from the overage pool: a committed seat first.
    let shorter = SeatTerms {
        lease_seconds: Some(60),
        ..l.terms
    };
    let next = is_take(next_step(overage(shorter), &seat_refused(&l), NOW));
    assert_eq!(next, Attempt::committed(l.terms));
}

#[test]
fn a_held_node_locked_seat_is_answered() {
    let l = license();
    let held = activation(&l, "fp");
    let tried = Attempt::committed(l.terms);
    for license in [AsWas::Was(&l), AsWas::Passed] {
        let seen = TakeRefused {
            license,
            activation: Some(&held),
        };
        assert!(matches!(next_step(tried, &seen, NOW), Step::AlreadyActive(a) if a.id == held.id));
    }
}

#[test]
fn a_held_lease_is_renewed_even_lapsed() {
    let l = floating();
    let tried = Attempt::committed(l.terms);
    for expires in [
        NOW + time::Duration::minutes(5),
        NOW - time::Duration::minutes(5),
    ] {
        let held = lease(&l, "fp", expires, true);
        let seen = TakeRefused {
            license: AsWas::Passed,
            activation: Some(&held),
        };
        assert!(matches!(next_step(tried, &seen, NOW), Step::Renew(a) if a.id == held.id));
    }
}

#[test]
fn a_held_seat_of_a_license_not_in_force_is_refused() {
    let held = activation(&license(), "fp");
    let cases = [
        (LicenseStatus::Suspended, None, None, "suspended"),
        (LicenseStatus::Cancelled, None, None, "cancelled"),
        (LicenseStatus::Active, Some(NOW), None, "expired"),
        // Past due with its grace over: refused as suspended.
        (LicenseStatus::PastDue, None, Some(NOW), "suspended"),
    ];
    for (status, expires_at, grace_until, why) in cases {
        let l = License {
            status,
            expires_at,
            grace_until,
            ..license()
        };
        let seen = TakeRefused {
            license: AsWas::Was(&l),
            activation: Some(&held),
        };
        let e = refusal(next_step(Attempt::committed(l.terms), &seen, NOW));
        assert!(
            matches!(e, Error::LicenseNotActive(w) if w == why),
            "{why}: {e:?}"
        );
    }
    // Past due within its grace: still in force.
    let l = License {
        status: LicenseStatus::PastDue,
        grace_until: Some(NOW + time::Duration::days(1)),
        ..license()
    };
    let seen = TakeRefused {
        license: AsWas::Was(&l),
        activation: Some(&held),
    };
    let step = next_step(Attempt::committed(l.terms), &seen, NOW);
    assert!(matches!(step, Step::AlreadyActive(_)));
}

#[test]
fn a_deactivated_node_locked_activation_is_restored_if_a_seat_is_free() {
    let free = License {
        seats_used: 1,
        ..license()
    };
    let old = deactivated(activation(&free, "fp"));
    let tried = Attempt::committed(free.terms);
    // Only the activation's condition failed, or the seat's too.
    for license in [AsWas::Passed, AsWas::Was(&free)] {
        let seen = TakeRefused {
            license,
            activation: Some(&old),
        };
        assert!(matches!(next_step(tried, &seen, NOW), Step::Restore(a) if a.id == old.id));
    }
    // Every seat held: refused with the committed limit.
    let full = license();
    let seen = TakeRefused {
        license: AsWas::Was(&full),
        activation: Some(&old),
    };
    let e = refusal(next_step(tried, &seen, NOW));
    assert!(matches!(e, Error::TooManyActivations { limit: 2 }), "{e:?}");
    // Suspended: not active, whatever the seats.
    let suspended = License {
        status: LicenseStatus::Suspended,
        ..free
    };
    let seen = TakeRefused {
        license: AsWas::Was(&suspended),
        activation: Some(&old),
    };
    let e = refusal(next_step(tried, &seen, NOW));
    assert!(matches!(e, Error::LicenseNotActive("suspended")), "{e:?}");
}

#[test]
fn no_license_is_license_not_found() {
    let seen = TakeRefused {
        license: AsWas::Absent,
        activation: None,
    };
    let e = refusal(next_step(
        Attempt::committed(SeatTerms::default()),
        &seen,
        NOW,
    ));
    assert_eq!(e.parts().1, "LICENSE_NOT_FOUND");
}

#[test]
fn a_lost_race_on_the_activation_alone_tries_the_same_again() {
    let l = floating();
    let tried = overage(l.terms);
    // A returned lease of this fingerprint (the floating put replaces it).
    let returned = deactivated(lease(&l, "fp", NOW, false));
    for activation in [None, Some(&returned)] {
        let seen = TakeRefused {
            license: AsWas::Passed,
            activation,
        };
        assert_eq!(is_take(next_step(tried, &seen, NOW)), tried);
    }
}

#[test]
fn a_seat_freed_meanwhile_is_taken_committed() {
    for l in [
        License {
            seats_used: 1,
            ..license()
        },
        License {
            seats_used: 1,
            ..floating()
        },
    ] {
        let next = is_take(next_step(overage(l.terms), &seat_refused(&l), NOW));
        assert_eq!(next, Attempt::committed(l.terms));
    }
}

#[test]
fn a_full_node_locked_license_refuses() {
    let l = license();
    let e = refusal(next_step(
        Attempt::committed(l.terms),
        &seat_refused(&l),
        NOW,
    ));
    assert!(matches!(e, Error::TooManyActivations { limit: 2 }), "{e:?}");
    assert_eq!(e.parts(), (409, "TOO_MANY_ACTIVATIONS", "conflict_error"));
}

#[test]
fn a_full_floating_pool_takes_an_overage_seat_when_allowed() {
    let l = License {
        overage_used: 2,
        ..floating()
    };
    let next = is_take(next_step(
        Attempt::committed(l.terms),
        &seat_refused(&l),
        NOW,
    ));
    assert_eq!(next, overage(l.terms));
}

#[test]
fn a_full_floating_license_reclaims() {
    // Overage full, or none allowed, or the overage take itself refused.
    let full = License {
        overage_used: 3,
        ..floating()
    };
    let mut none = floating();
    none.terms.max_overage = 0;
    let room = floating();
    for (l, tried) in [
        (&full, Attempt::committed(full.terms)),
        (&none, Attempt::committed(none.terms)),
        (&room, overage(room.terms)),
    ] {
        assert!(matches!(
            next_step(tried, &seat_refused(l), NOW),
            Step::Reclaim(_)
        ));
    }
    // Not in force: refused, no reclaim.
    let expired = License {
        expires_at: Some(NOW - time::Duration::days(1)),
        ..full
    };
    let tried = Attempt::committed(expired.terms);
    let e = refusal(next_step(tried, &seat_refused(&expired), NOW));
    assert!(matches!(e, Error::LicenseNotActive("expired")), "{e:?}");
}

#[test]
fn after_a_miss() {
    let l = floating();
    let tried = overage(l.terms);
    assert_eq!(after_miss(tried, Missed::LeaseGone, NOW).unwrap(), tried);
    assert_eq!(
        after_miss(tried, Missed::ReclaimRaced, NOW).unwrap(),
        Attempt::committed(l.terms)
    );
    // No lapsed lease: refused with both pools' seats...
    let full = License {
        overage_used: 3,
        ..floating()
    };
    let e = after_miss(tried, Missed::NoneLapsed(&full), NOW).unwrap_err();
    assert!(matches!(e, Error::TooManyActivations { limit: 5 }), "{e:?}");
    // ...unless one was returned meanwhile.
    for room in [
        License {
            seats_used: 1,
            ..full.clone()
        },
        License {
            overage_used: 2,
            ..full.clone()
        },
    ] {
        let next = after_miss(tried, Missed::NoneLapsed(&room), NOW).unwrap();
        assert_eq!(next, Attempt::committed(l.terms));
    }
}

#[test]
fn after_a_refused_restore() {
    let tried = Attempt::committed(SeatTerms::default());
    let full = license();
    let restore = |license, activation_moved| Missed::RestoreRefused {
        license,
        activation_moved,
    };
    let e = after_miss(tried, restore(AsWas::Was(&full), false), NOW).unwrap_err();
    assert!(matches!(e, Error::TooManyActivations { limit: 2 }), "{e:?}");
    // The activation moved (activated meanwhile), or only it failed,
    // or a seat is free now: look again.
    let free = License {
        seats_used: 0,
        ..license()
    };
    for missed in [
        restore(AsWas::Was(&full), true),
        restore(AsWas::Passed, true),
        restore(AsWas::Was(&free), false),
    ] {
        assert_eq!(after_miss(tried, missed, NOW).unwrap(), tried);
    }
}

#[test]
fn lapsed_leases_are_held_expired_and_not_the_takers() {
    let l = floating();
    let later = NOW + time::Duration::minutes(1);
    let lapsed = lease(&l, "lapsed", NOW, true); // expires at now: lapsed
    let own = lease(&l, "own", NOW - time::Duration::minutes(1), false);
    let all = vec![
        lapsed.clone(),
        own.clone(),
        lease(&l, "live", later, false),
        deactivated(lease(&l, "returned", NOW, false)),
        activation(&l, "node-locked"),
    ];
    let found = lapsed_leases(all, &own.id, NOW);
    let ids: Vec<_> = found.iter().map(|a| &a.id).collect();
    assert_eq!(ids, vec![&lapsed.id]);
}

#[test]
fn after_a_refused_reclaim() {
    let l = floating();
    let terms = l.terms;
    let next = |license, moved| after_reclaim_refused(&terms, license, moved, NOW);
    assert_eq!(next(AsWas::Passed, true).unwrap(), ReclaimNext::LookAgain);
    // Only the lapsed lease's condition: taken or renewed meanwhile.
    assert_eq!(next(AsWas::Passed, false).unwrap(), ReclaimNext::NextLapsed);
    // The pool is over its (lowered) cap: the next one.
    assert_eq!(
        next(AsWas::Was(&l), false).unwrap(),
        ReclaimNext::NextLapsed
    );
    let mut other = floating();
    other.terms.lease_seconds = Some(60);
    assert_eq!(
        next(AsWas::Was(&other), false).unwrap(),
        ReclaimNext::LookAgain
    );
    let cancelled = License {
        status: LicenseStatus::Cancelled,
        ..floating()
    };
    let e = next(AsWas::Was(&cancelled), false).unwrap_err();
    assert!(matches!(e, Error::LicenseNotActive("cancelled")), "{e:?}");
    let e = next(AsWas::Absent, false).unwrap_err();
    assert_eq!(e.parts().1, "LICENSE_NOT_FOUND");
}

fn returned<'a>(a: AsWas<'a, Activation>, l: AsWas<'a, License>, n: u32) -> ReturnRefused<'a> {
    ReturnRefused {
        activation: a,
        license: l,
        deactivations: n,
    }
}

#[test]
fn a_return_of_an_unknown_or_inactive_activation_writes_nothing() {
    let l = license();
    let seen = returned(AsWas::Absent, AsWas::Passed, 0);
    assert!(matches!(
        next_return(Return::first(), &seen),
        ReturnStep::NotFound
    ));
    let old = deactivated(activation(&l, "fp"));
    let seen = returned(AsWas::Was(&old), AsWas::Was(&l), 0);
    let step = next_return(Return::first(), &seen);
    assert!(matches!(step, ReturnStep::AlreadyInactive(a) if a.id == old.id));
}

#[test]
fn a_return_learns_the_pool_and_the_churn_limit() {
    let l = floating();
    let held = lease(&l, "fp", NOW, true);
    let seen = returned(AsWas::Was(&held), AsWas::Passed, 0);
    let step = next_return(Return::first(), &seen);
    let want = Return {
        pool: Pool::Overage,
        churn: None,
    };
    assert!(
        matches!(step, ReturnStep::Return(r) if r == want),
        "{step:?}"
    );

    let limit = ChurnLimit {
        count: 3,
        period: Period::Month,
    };
    let mut churned = license();
    churned.terms.max_deactivations = Some(limit);
    let seen = returned(AsWas::Passed, AsWas::Was(&churned), 0);
    let step = next_return(Return::first(), &seen);
    let want = Return {
        pool: Pool::Committed,
        churn: Some(limit),
    };
    assert!(
        matches!(step, ReturnStep::Return(r) if r == want),
        "{step:?}"
    );
    // A limit removed meanwhile is learnt the same way.
    let seen = returned(AsWas::Passed, AsWas::Was(&l), 0);
    let step = next_return(want, &seen);
    assert!(
        matches!(step, ReturnStep::Return(r) if r == Return::first()),
        "{step:?}"
    );
}

#[test]
fn the_churn_limit_refuses_at_its_count() {
    let limit = ChurnLimit {
        count: 3,
        period: Period::Day,
    };
    let mut l = license();
    l.terms.max_deactivations = Some(limit);
    let tried = Return {
        pool: Pool::Committed,
        churn: Some(limit),
    };
    for used in [3, 4] {
        let seen = returned(AsWas::Passed, AsWas::Was(&l), used);
        let step = next_return(tried, &seen);
        assert!(
            matches!(step, ReturnStep::ChurnLimit(c) if c == limit),
            "{step:?}"
        );
    }
    // Below it, the refusal was a lost race: the same again.
    let seen = returned(AsWas::Passed, AsWas::Was(&l), 2);
    assert!(matches!(next_return(tried, &seen), ReturnStep::Return(r) if r == tried));
}

#[test]
fn a_return_against_the_invariant_is_a_bug() {
    let seen = returned(AsWas::Passed, AsWas::Absent, 0);
    assert!(matches!(
        next_return(Return::first(), &seen),
        ReturnStep::Broken(_)
    ));
    let empty = License {
        seats_used: 0,
        ..license()
    };
    let seen = returned(AsWas::Passed, AsWas::Was(&empty), 0);
    assert!(matches!(
        next_return(Return::first(), &seen),
        ReturnStep::Broken(_)
    ));
    let no_overage = floating();
    let tried = Return {
        pool: Pool::Overage,
        churn: None,
    };
    let seen = returned(AsWas::Passed, AsWas::Was(&no_overage), 0);
    assert!(matches!(next_return(tried, &seen), ReturnStep::Broken(_)));
}

#[test]
fn as_was_reads_a_refusal() {
    let l = license();
    assert!(matches!(AsWas::of(false, Some(&l)), AsWas::Passed));
    assert!(matches!(AsWas::<License>::of(true, None), AsWas::Absent));
    assert!(AsWas::of(true, Some(&l)).was().is_some());
}

#[test]
fn a_heartbeat_renews_a_held_unexpired_lease_from_now() {
    let l = floating();
    let soon = NOW + time::Duration::seconds(100);
    let a = lease(&l, "m1", soon, false);
    assert_eq!(
        heartbeat(Some(&a), NOW),
        Beat::Renew {
            lease: 600,
            was: soon.unix_timestamp(),
            expires: NOW.unix_timestamp() + 600,
            overage_seconds: 0,
        }
    );
    // An overage lease counts what the heartbeat adds beyond its expiry.
    let o = lease(&l, "m2", soon, true);
    match heartbeat(Some(&o), NOW) {
        Beat::Renew {
            overage_seconds, ..
        } => assert_eq!(overage_seconds, 500),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_lapsed_returned_or_missing_lease_is_not_renewed() {
    let l = floating();
    let lapsed = lease(&l, "m1", NOW, false);
    assert_eq!(heartbeat(Some(&lapsed), NOW), Beat::LeaseExpired);
    let returned = deactivated(lease(&l, "m1", NOW + time::Duration::hours(1), false));
    assert_eq!(heartbeat(Some(&returned), NOW), Beat::LeaseExpired);
    assert_eq!(heartbeat(None, NOW), Beat::NotFound);
    // Node-locked: recorded while held, not found once deactivated.
    let nl = license();
    assert_eq!(heartbeat(Some(&activation(&nl, "pc")), NOW), Beat::Record);
    let gone = deactivated(activation(&nl, "pc"));
    assert_eq!(heartbeat(Some(&gone), NOW), Beat::NotFound);
}

#[test]
fn a_heartbeat_refused_by_the_license_says_why_and_one_refused_by_a_race_looks_again() {
    let suspended = License {
        status: LicenseStatus::Suspended,
        ..floating()
    };
    assert!(matches!(
        after_heartbeat_refused(AsWas::Was(&suspended), NOW),
        Err(Error::LicenseNotActive("suspended"))
    ));
    let cancelled = License {
        status: LicenseStatus::Cancelled,
        ..floating()
    };
    assert!(matches!(
        after_heartbeat_refused(AsWas::Was(&cancelled), NOW),
        Err(Error::LicenseNotActive("cancelled"))
    ));
    let expired = License {
        expires_at: Some(NOW),
        expires_epoch: Some(NOW.unix_timestamp()),
        ..floating()
    };
    assert!(matches!(
        after_heartbeat_refused(AsWas::Was(&expired), NOW),
        Err(Error::LicenseNotActive("expired"))
    ));
    assert!(matches!(
        after_heartbeat_refused(AsWas::Absent, NOW),
        Err(Error::LicenseNotFound)
    ));
    // Only the activation moved: look again.
    assert!(after_heartbeat_refused(AsWas::Passed, NOW).is_ok());
    assert!(after_heartbeat_refused(AsWas::Was(&floating()), NOW).is_ok());
}
