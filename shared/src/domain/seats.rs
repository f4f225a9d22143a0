//! Seat decisions: what an activation or a deactivation does next. Pure.
//!
//! The store never reads to decide: it tries a conditional write under what
//! it assumes (the license's seat terms, the pool, the churn limit), and a
//! refused write hands back the items as they were. These functions turn
//! that refusal into the next step — take again with what was learnt,
//! answer, renew, restore, reclaim, or refuse with a domain error — and the
//! store executes it. Every limit stays a condition of the write; a step
//! chosen here from a stale image is refused again, never obeyed blindly.

use super::{Activation, ActivationMode, ChurnLimit, License, SeatTerms, Standing};
use crate::error::{license_not_found, Error};
use crate::ids::ActivationId;
use time::OffsetDateTime;

/// Unexpired floating leases of a license, by pool.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LiveLeases {
    pub used: u32,
    pub overage_used: u32,
}

#[derive(Debug)]
pub enum ActivateOutcome {
    /// A new activation, or a new lease (possibly reclaiming a lapsed one).
    Created(Activation),
    /// A deactivated node-locked activation taken back: same id and `created_at`.
    Restored(Activation),
    /// Node-locked: this fingerprint already holds a seat.
    AlreadyActive(Activation),
    /// Floating: this fingerprint already held a lease; it is renewed.
    Renewed(Activation),
}

impl ActivateOutcome {
    pub fn activation(&self) -> &Activation {
        match self {
            ActivateOutcome::Created(a)
            | ActivateOutcome::Restored(a)
            | ActivateOutcome::AlreadyActive(a)
            | ActivateOutcome::Renewed(a) => a,
        }
    }
}

/// Which counter a seat is counted in: `seats_used` (within
/// `max_activations`) or, floating only, `overage_used` (within `max_overage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    Committed,
    Overage,
}

impl Pool {
    /// The pool an activation is counted in.
    pub fn of(a: &Activation) -> Pool {
        if a.overage {
            Pool::Overage
        } else {
            Pool::Committed
        }
    }
}

/// One item of a refused transaction, as the refusal showed it.
#[derive(Debug)]
pub enum AsWas<'a, T> {
    /// Its condition held (the refusal was elsewhere): nothing learnt.
    Passed,
    /// Its condition failed because there is no such item.
    Absent,
    /// Its condition failed; the item as it was.
    Was(&'a T),
}

// Not derived: a reference is `Copy` whatever `T` is.
impl<T> Clone for AsWas<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for AsWas<'_, T> {}

impl<'a, T> AsWas<'a, T> {
    /// From "did its condition fail" and the old image that came back.
    pub fn of(failed: bool, old: Option<&'a T>) -> Self {
        match (failed, old) {
            (false, _) => AsWas::Passed,
            (true, None) => AsWas::Absent,
            (true, Some(t)) => AsWas::Was(t),
        }
    }

    pub fn was(&self) -> Option<&'a T> {
        match self {
            AsWas::Was(t) => Some(t),
            _ => None,
        }
    }
}

/// What a seat-taking write assumes: the license's terms and the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub terms: SeatTerms,
    pub pool: Pool,
}

impl Attempt {
    /// A committed seat under `terms`: the first attempt (with the terms the
    /// caller assumes), and every fresh look.
    pub fn committed(terms: SeatTerms) -> Self {
        Attempt {
            terms,
            pool: Pool::Committed,
        }
    }

    /// The activation this attempt writes: floating, a lease of the terms'
    /// length in the attempt's pool.
    pub fn activation(&self, new: &Activation, now: OffsetDateTime) -> Activation {
        let mut a = new.clone();
        if let Some(lease) = self.terms.lease() {
            a.lease_seconds = Some(lease);
            a.lease_expires_epoch = Some(now.unix_timestamp() + i64::from(lease));
            a.overage = self.pool == Pool::Overage;
        }
        a
    }
}

/// What a refused take showed: the license (its condition: exists, in
/// force, the assumed terms, a free seat in the pool) and the activation
/// (its condition: absent; floating, or returned).
#[derive(Debug, Clone, Copy)]
pub struct TakeRefused<'a> {
    pub license: AsWas<'a, License>,
    pub activation: Option<&'a Activation>,
}

/// What an activation does after a refused take.
#[derive(Debug)]
pub enum Step<'a> {
    /// Take a seat again, under these terms and from this pool: the terms
    /// were not the assumed ones, another pool has room, or only a race was
    /// lost.
    Take(Attempt),
    /// Node-locked: this fingerprint holds a seat already; answer it.
    AlreadyActive(&'a Activation),
    /// Floating: this fingerprint holds a lease (lapsed ones too, until
    /// reclaimed); renew it.
    Renew(&'a Activation),
    /// Node-locked: take back this fingerprint's deactivated activation,
    /// with a committed seat.
    Restore(&'a Activation),
    /// Floating, every seat of both pools held: take the place of a lapsed
    /// lease. The license is as the refusal showed it, for [`Missed::NoneLapsed`].
    Reclaim(&'a License),
    Refuse(Error),
}

/// Decide the next step from a refused take.
pub fn next_step<'a>(tried: Attempt, seen: &TakeRefused<'a>, now: OffsetDateTime) -> Step<'a> {
    next_step_capped(tried, seen, now, None)
}

/// The overage seats a take may use: the license's `max_overage`, or fewer
/// under a cap (an organization's, on a checkout through its grant).
pub fn overage_room(l: &License, cap: Option<u32>) -> u32 {
    cap.map_or(l.terms.max_overage, |c| c.min(l.terms.max_overage))
}

/// [`next_step`] under an overage cap (`None`: the license's own).
pub fn next_step_capped<'a>(
    tried: Attempt,
    seen: &TakeRefused<'a>,
    now: OffsetDateTime,
    cap: Option<u32>,
) -> Step<'a> {
    let license = seen.license.was();
    if let Some(l) = license {
        if l.terms != tried.terms {
            // Assumed the wrong terms: again, with the license's.
            return Step::Take(Attempt::committed(l.terms));
        }
    }
    let floating = tried.terms.activation_mode == ActivationMode::Floating;
    if let Some(existing) = seen.activation {
        if existing.deactivated_at.is_none() {
            // This fingerprint holds a seat already (a lapsed lease still
            // holds its place until reclaimed).
            if let Some(Err(e)) = license.map(|l| in_force(l, now)) {
                return Step::Refuse(e);
            }
            return match floating {
                false => Step::AlreadyActive(existing),
                true => Step::Renew(existing),
            };
        }
        if !floating {
            if let Some(Err(e)) = license.map(|l| seat_free(l, now)) {
                return Step::Refuse(e);
            }
            return Step::Restore(existing);
        }
    }
    let l = match seen.license {
        AsWas::Was(l) => l,
        AsWas::Absent => return Step::Refuse(license_not_found()),
        // Only the activation raced: look again.
        AsWas::Passed => return Step::Take(tried),
    };
    match seat_free(l, now) {
        // A committed seat freed up meanwhile.
        Ok(()) => Step::Take(Attempt::committed(tried.terms)),
        Err(Error::TooManyActivations { .. }) if floating => {
            if tried.pool == Pool::Committed && l.overage_used < overage_room(l, cap) {
                return Step::Take(Attempt {
                    pool: Pool::Overage,
                    ..tried
                });
            }
            Step::Reclaim(l)
        }
        Err(e) => Step::Refuse(e),
    }
}

/// A step after a refused take that did not settle the activation.
#[derive(Debug, Clone, Copy)]
pub enum Missed<'a> {
    /// The lease to renew was returned or reclaimed meanwhile.
    LeaseGone,
    /// The restore was refused: the license as it was, and whether the
    /// activation had moved (no longer deactivated).
    RestoreRefused {
        license: AsWas<'a, License>,
        activation_moved: bool,
    },
    /// A reclaim found this fingerprint holding a lease, or other terms.
    ReclaimRaced,
    /// A reclaim found no lapsed lease left to take (the license as the
    /// take's refusal showed it).
    NoneLapsed(&'a License),
}

/// After a step that missed: the next take, or the refusal.
pub fn after_miss(
    tried: Attempt,
    missed: Missed<'_>,
    now: OffsetDateTime,
) -> Result<Attempt, Error> {
    after_miss_capped(tried, missed, now, None)
}

/// [`after_miss`] under an overage cap: when the cap, not the license, is
/// what left no overage seat, the refusal is `OVERAGE_MAX_EXCEEDED`.
pub fn after_miss_capped(
    tried: Attempt,
    missed: Missed<'_>,
    now: OffsetDateTime,
    cap: Option<u32>,
) -> Result<Attempt, Error> {
    match missed {
        Missed::LeaseGone => Ok(tried),
        Missed::RestoreRefused {
            license: AsWas::Was(l),
            activation_moved: false,
        } => seat_free(l, now).map(|()| tried),
        Missed::RestoreRefused { .. } => Ok(tried),
        Missed::ReclaimRaced => Ok(Attempt::committed(tried.terms)),
        Missed::NoneLapsed(l) => {
            if l.overage_used < overage_room(l, cap) || l.seats_used < l.max_activations {
                return Ok(Attempt::committed(tried.terms)); // returned meanwhile
            }
            if l.overage_used < l.terms.max_overage {
                return Err(super::grants::overage_max_exceeded());
            }
            Err(Error::TooManyActivations {
                limit: l.max_activations + l.terms.max_overage,
            })
        }
    }
}

/// The leases a checkout by `taker` may reclaim: held (not returned) but
/// lapsed, and not its own.
pub fn lapsed_leases(
    all: Vec<Activation>,
    taker: &ActivationId,
    now: OffsetDateTime,
) -> Vec<Activation> {
    all.into_iter()
        .filter(|a| a.deactivated_at.is_none() && !a.holds_seat(now) && a.id != *taker)
        .collect()
}

/// What a reclaim does after the transaction on one lapsed lease was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ReclaimNext {
    /// Another checkout took that lease, it was renewed, or its pool is
    /// over its (lowered) cap: try the next one.
    NextLapsed,
    /// This fingerprint holds a lease now, or the terms changed: look again.
    LookAgain,
}

/// Judge a refused reclaim of one lapsed lease: the license as it was (its
/// condition: exists, in force, the terms, the pool within its cap) and
/// whether this fingerprint's activation had moved (it holds a lease).
pub fn after_reclaim_refused(
    terms: &SeatTerms,
    license: AsWas<'_, License>,
    activation_moved: bool,
    now: OffsetDateTime,
) -> Result<ReclaimNext, Error> {
    if activation_moved {
        return Ok(ReclaimNext::LookAgain);
    }
    match license {
        AsWas::Passed => Ok(ReclaimNext::NextLapsed),
        AsWas::Absent => Err(license_not_found()),
        AsWas::Was(l) if l.terms != *terms => Ok(ReclaimNext::LookAgain),
        AsWas::Was(l) => in_force(l, now).map(|()| ReclaimNext::NextLapsed),
    }
}

/// What a return (deactivation) assumes: the activation's pool and the
/// license's churn limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Return {
    pub pool: Pool,
    pub churn: Option<ChurnLimit>,
}

impl Return {
    /// The common case: a committed seat, no churn limit.
    pub fn first() -> Self {
        Return {
            pool: Pool::Committed,
            churn: None,
        }
    }
}

/// What a refused return showed: the activation (its condition: exists, not
/// deactivated, in the assumed pool) and the license (its condition: the
/// pool's counter above 0, the assumed churn limit and, with one, its
/// counter below the limit), with that counter of the tried period.
#[derive(Debug, Clone, Copy)]
pub struct ReturnRefused<'a> {
    pub activation: AsWas<'a, Activation>,
    pub license: AsWas<'a, License>,
    /// The license's deactivation counter of the tried period (0: absent).
    pub deactivations: u32,
}

/// What a deactivation does after a refused return.
#[derive(Debug)]
pub enum ReturnStep<'a> {
    /// Return it again, assuming this.
    Return(Return),
    NotFound,
    AlreadyInactive(&'a Activation),
    /// The churn limit is reached: nothing is written.
    ChurnLimit(ChurnLimit),
    /// The items contradict the invariant (a bug, never a race).
    Broken(&'static str),
}

/// Decide the next step from a refused return.
pub fn next_return<'a>(tried: Return, seen: &ReturnRefused<'a>) -> ReturnStep<'a> {
    match seen.activation {
        AsWas::Absent => return ReturnStep::NotFound,
        AsWas::Was(a) if a.deactivated_at.is_some() => return ReturnStep::AlreadyInactive(a),
        // Assumed the wrong pool.
        AsWas::Was(a) => {
            return ReturnStep::Return(Return {
                pool: Pool::of(a),
                ..tried
            })
        }
        AsWas::Passed => {}
    }
    let Some(l) = seen.license.was() else {
        return ReturnStep::Broken("an activation without its license");
    };
    if l.terms.max_deactivations != tried.churn {
        return ReturnStep::Return(Return {
            churn: l.terms.max_deactivations,
            ..tried
        });
    }
    if let Some(limit) = tried.churn {
        if seen.deactivations >= limit.count {
            return ReturnStep::ChurnLimit(limit);
        }
    }
    let counter = match tried.pool {
        Pool::Committed => l.seats_used,
        Pool::Overage => l.overage_used,
    };
    if counter == 0 {
        return ReturnStep::Broken("seat counter out of step with activations");
    }
    ReturnStep::Return(tried) // only a race was lost
}

/// What a heartbeat writes, decided from the activation as read. The write
/// is conditional on the license being in force and on the activation
/// still being as read, so a decision from a stale read is refused, never
/// obeyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beat {
    /// No such activation (or a deactivated node-locked one).
    NotFound,
    /// A floating lease that lapsed, was returned or was reclaimed.
    LeaseExpired,
    /// Renew the lease to `expires` (now + its `lease_seconds`), if it
    /// still expires at `was` with that `lease`; an overage lease adds the
    /// `overage_seconds` it extends the lease by to the overage time, in
    /// the same write.
    Renew {
        lease: u32,
        was: i64,
        expires: i64,
        overage_seconds: i64,
    },
    /// Node-locked: record the heartbeat, if still not deactivated.
    Record,
}

/// What a heartbeat of `activation` (as read) does at `now`.
pub fn heartbeat(activation: Option<&Activation>, now: OffsetDateTime) -> Beat {
    let Some(a) = activation else {
        return Beat::NotFound;
    };
    let now = now.unix_timestamp();
    let Some(lease) = a.lease_seconds else {
        return match a.deactivated_at {
            Some(_) => Beat::NotFound,
            None => Beat::Record,
        };
    };
    match a.lease_expires_epoch {
        Some(was) if was > now && a.deactivated_at.is_none() => {
            let expires = now + i64::from(lease);
            Beat::Renew {
                lease,
                was,
                expires,
                // The time this heartbeat adds beyond the lease it extends.
                overage_seconds: if a.overage { (expires - was).max(0) } else { 0 },
            }
        }
        _ => Beat::LeaseExpired,
    }
}

/// Judge a refused heartbeat: the license as it was (its condition: exists
/// and in force). A license not in force refuses the heartbeat with why
/// (`LICENSE_NOT_ACTIVE`, as for an activation); otherwise only the
/// activation had moved since it was read, and the heartbeat looks again.
pub fn after_heartbeat_refused(
    license: AsWas<'_, License>,
    now: OffsetDateTime,
) -> Result<(), Error> {
    match license {
        AsWas::Passed => Ok(()),
        AsWas::Absent => Err(license_not_found()),
        AsWas::Was(l) => in_force(l, now),
    }
}

/// The license is in force at `now`, or why not.
fn in_force(l: &License, now: OffsetDateTime) -> Result<(), Error> {
    match l.standing(now) {
        Standing::Valid(_) => Ok(()),
        Standing::Suspended(_) => Err(Error::LicenseNotActive("suspended")),
        Standing::Cancelled => Err(Error::LicenseNotActive("cancelled")),
        Standing::Expired => Err(Error::LicenseNotActive("expired")),
    }
}

/// The license is in force with a committed seat free, or why not.
fn seat_free(l: &License, now: OffsetDateTime) -> Result<(), Error> {
    in_force(l, now)?;
    if l.seats_used >= l.max_activations {
        return Err(Error::TooManyActivations {
            limit: l.max_activations,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
