//! Seats: node-locked activations and floating leases, their return, the
//! churn limit, and heartbeats. Every limit is a condition of the write that
//! takes the seat; nothing is read first to decide.
//!
//! The license item carries two counters — `seats_used` (within
//! `max_activations`) and `overage_used` (floating, within `max_overage`) —
//! and its seat terms (mode, lease length, churn limit), copied from the
//! policy. Every seat write is conditional on those terms, so a caller that
//! assumed the wrong mode is refused with the license as it is, and tries
//! again with the right terms.
//!
//! Floating leases need no scheduler: a lease item counts in its counter from
//! checkout until it is returned or reclaimed, and a checkout that finds the
//! pool full reclaims a lapsed lease in its own transaction, conditional on
//! that lease still being lapsed and held. The number of held lease items
//! therefore never exceeds `max_activations + max_overage`, and unexpired
//! leases are a subset of them (the proof is in `docs/data-model.md`).
//!
//! What to do after a refusal is not decided here: the refusal's images go
//! to [`crate::domain::seats`], and this module executes the step it returns.

use super::attrs as a;
use super::licenses::in_force;
use super::write::{get_n, s, Cancelled, PutIf, Txn, TxnError, Write};
use super::{keys, TenantStore};
use crate::clock::rfc3339;
use crate::domain::seats::{
    self, AsWas, Attempt, Beat, Missed, Pool, ReclaimNext, Return, ReturnRefused, ReturnStep, Step,
    TakeRefused,
};
use crate::domain::{Activation, ActivationMode, AuditEvent, License, SeatTerms};
use crate::error::Error;
use crate::ids::{ActivationId, LicenseId};
use time::OffsetDateTime;

pub use crate::domain::seats::ActivateOutcome;

#[derive(Debug)]
pub enum DeactivateOutcome {
    Deactivated(Activation),
    AlreadyInactive(Activation),
    /// No activation with that id.
    NotFound,
    /// The license's churn limit is reached until `resets_at` (`None`: never).
    ChurnLimit {
        count: u32,
        resets_at: Option<OffsetDateTime>,
    },
}

#[derive(Debug)]
pub enum HeartbeatOutcome {
    /// The activation (lease renewed, or heartbeat recorded).
    Beat(Box<Activation>),
    /// The lease lapsed (or was returned or reclaimed): check out again.
    LeaseExpired,
    NotFound,
}

/// What a reclaim did.
enum Reclaimed {
    Took(Box<Activation>),
    /// This fingerprint or the terms changed meanwhile.
    Raced,
    /// No lapsed lease was left to take (within its pool's cap).
    NoneLapsed,
}

/// What an activation learned about the license (for the caller's cache).
#[derive(Debug)]
pub struct Activated {
    pub outcome: ActivateOutcome,
    pub terms: SeatTerms,
}

/// A checkout through an organization's grant: what it adds to the
/// vendor's seat transaction — the organization's overage cap (a condition
/// on the license's overage counter), a `ConditionCheck` that the grant still
/// holds the cap that was read, and the organization's own audit event.
pub(crate) struct Through<'a> {
    /// The organization's store (its partition holds the grant).
    pub org: &'a TenantStore,
    /// The cap on overage seats this checkout obeys (`Some(0)`: committed
    /// seats only).
    pub cap: u32,
    /// [`TenantStore::grant_unchanged`] of the grant read.
    pub grant: Write,
    pub audit: &'a AuditEvent,
}

mod item {
    pub const GRANT: &str = "grant";
    pub const ORG_AUDIT: &str = "organization audit";
    pub const SEAT: &str = "seat";
    pub const ACTIVATION: &str = "activation";
    /// The activation's retired copy (`R#`), checked, deleted or written.
    pub const RETIRED: &str = "retired activation";
    pub const RECLAIMED: &str = "reclaimed lease";
    pub const RECLAIMED_RETIRED: &str = "reclaimed lease, retired";
    pub const USAGE: &str = "overage usage";
    pub const OVERAGE_CHECKOUT: &str = "overage checkout count";
    pub const AUDIT: &str = "audit";
}

/// The usage metric floating overage leases are counted under.
pub const FLOATING_OVERAGE_METRIC: &str = "floating_overage_seconds";

/// How often an activation retries after learning the license's terms or
/// losing a race, before answering 503.
const ATTEMPTS: usize = 8;

impl TenantStore {
    /// Take a seat for `new` under the license's terms (`assumed`: what the
    /// caller believes them to be). One transaction in the common case; a
    /// refusal hands back the items as they were, [`seats::next_step`]
    /// decides from them, and this executes what it decides.
    pub async fn activate(
        &self,
        new: &Activation,
        assumed: SeatTerms,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<Activated, Error> {
        self.activate_through(new, assumed, now, audit, None)
            .await?
            .ok_or_else(|| Error::internal("a seat without a grant saw a grant refuse"))
    }

    /// [`TenantStore::activate`], through an organization's grant if
    /// `through` is given. `Ok(None)`: the grant changed (its cap) or went
    /// since it was read; read it again.
    pub(crate) async fn activate_through(
        &self,
        new: &Activation,
        assumed: SeatTerms,
        now: OffsetDateTime,
        audit: &AuditEvent,
        through: Option<&Through<'_>>,
    ) -> Result<Option<Activated>, Error> {
        let cap = through.map(|t| t.cap);
        let mut attempt = Attempt::committed(assumed);
        let done = |outcome, attempt: Attempt| {
            let terms = attempt.terms;
            Ok(Some(Activated { outcome, terms }))
        };
        for _ in 0..ATTEMPTS {
            let c = match self.take(new, attempt, now, audit, through).await? {
                Ok(a) => return done(ActivateOutcome::Created(a), attempt),
                Err(c) => c,
            };
            if through.is_some() && c.failed(item::GRANT) {
                return Ok(None);
            }
            let license = c.old_as::<License>(item::SEAT)?;
            // A live one under `A#`, or else a retired one under `R#`.
            let existing = match c.old_as::<Activation>(item::ACTIVATION)? {
                Some(live) => Some(live),
                None => c.old_as::<Activation>(item::RETIRED)?,
            };
            let seen = TakeRefused {
                license: AsWas::of(c.failed(item::SEAT), license.as_ref()),
                activation: existing.as_ref(),
            };
            let restore_refused: Option<License>;
            let missed = match seats::next_step_capped(attempt, &seen, now, cap) {
                Step::Take(next) => {
                    attempt = next;
                    continue;
                }
                Step::AlreadyActive(a) => {
                    return done(ActivateOutcome::AlreadyActive(a.clone()), attempt)
                }
                Step::Renew(held) => match self.renew(held, &attempt.terms, now).await? {
                    Some(a) => return done(ActivateOutcome::Renewed(a), attempt),
                    None => Missed::LeaseGone,
                },
                Step::Restore(old) => {
                    match self.restore(new, old, &attempt.terms, now, audit).await? {
                        Ok(a) => return done(ActivateOutcome::Restored(a), attempt),
                        Err(c) => {
                            restore_refused = c.old_as::<License>(item::SEAT)?;
                            Missed::RestoreRefused {
                                license: AsWas::of(c.failed(item::SEAT), restore_refused.as_ref()),
                                // Restored meanwhile, or retired again.
                                activation_moved: c.failed(item::ACTIVATION)
                                    || c.failed(item::RETIRED),
                            }
                        }
                    }
                }
                Step::Reclaim(l) => match self
                    .reclaim(new, &attempt.terms, now, audit, through)
                    .await?
                {
                    Reclaimed::Took(a) => return done(ActivateOutcome::Created(*a), attempt),
                    Reclaimed::Raced => Missed::ReclaimRaced,
                    Reclaimed::NoneLapsed => Missed::NoneLapsed(l),
                },
                Step::Refuse(e) => return Err(e),
            };
            attempt = seats::after_miss_capped(attempt, missed, now, cap)?;
        }
        Err(Error::Unavailable("activation kept racing; retry".into()))
    }

    /// One take: the seat of the attempt's pool and the activation (for
    /// floating, the lease), with the overage time of an overage lease.
    async fn take(
        &self,
        new: &Activation,
        attempt: Attempt,
        now: OffsetDateTime,
        audit: &AuditEvent,
        through: Option<&Through<'_>>,
    ) -> Result<Result<Activation, Cancelled>, Error> {
        let a = attempt.activation(new, now);
        let terms = attempt.terms;
        let mut txn = Txn::new();
        let cap = through.map(|t| t.cap);
        txn.update(
            item::SEAT,
            &self.seat_take(&a.license_id, &terms, attempt.pool, now, cap),
        )?;
        if let Some(t) = through {
            txn.check(item::GRANT, &t.grant)?;
            t.org.push_audit(&mut txn, item::ORG_AUDIT, t.audit)?;
        }
        // A returned or reclaimed lease of this fingerprint is replaced
        // (its retired copy deleted); a deactivated node-locked activation
        // is restored, a step of its own, so a retired copy refuses the take.
        // (`NewOrAttr`: an item retired in place before retired items moved
        // to `R#` is replaced too.)
        let put_if = match terms.activation_mode {
            ActivationMode::NodeLocked => PutIf::New,
            ActivationMode::Floating => PutIf::NewOrAttr(a::DEACTIVATED_AT),
        };
        txn.put(
            item::ACTIVATION,
            &keys::activation(self.tenant_id(), &a.id),
            &a,
            put_if,
        )?;
        let retired = Write::to(keys::retired_activation(self.tenant_id(), &a.id));
        match terms.activation_mode {
            ActivationMode::NodeLocked => {
                txn.check(item::RETIRED, retired.clone().if_absent(keys::PK))?
            }
            ActivationMode::Floating => txn.delete(item::RETIRED, &retired)?,
        };
        if a.overage {
            txn.update(item::USAGE, &self.overage_usage(&a.license_id, terms, now)?)?;
            // Billing: one overage checkout, counted in the write that grants it.
            let count = self.overage_checkout_count(&a.license_id, now);
            txn.update(item::OVERAGE_CHECKOUT, &count)?;
        }
        self.push_audit(&mut txn, item::AUDIT, audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(Ok(a)),
            Err(e) => cancelled(e).map(Err),
        }
    }

    /// The seat half of an activation: the counter of `pool` rises only if
    /// the license is in force, has the assumed terms and a free seat.
    fn seat_take(
        &self,
        id: &LicenseId,
        terms: &SeatTerms,
        pool: Pool,
        now: OffsetDateTime,
        cap: Option<u32>,
    ) -> Write {
        let mut w = Write::to(keys::license(self.tenant_id(), id));
        w.if_exists().if_expr(|e| in_force(e, now));
        same_terms(&mut w, terms);
        match pool {
            Pool::Committed => {
                w.add(a::SEATS_USED, 1)
                    .if_less_than_attr(a::SEATS_USED, a::MAX_ACTIVATIONS);
            }
            Pool::Overage => {
                let room = cap.map_or(terms.max_overage, |c| c.min(terms.max_overage));
                w.add(a::OVERAGE_USED, 1)
                    .if_absent_or_below(a::OVERAGE_USED, room);
            }
        }
        w
    }

    /// Renew a held lease (a checkout by the fingerprint that holds it).
    /// `None`: it was returned or reclaimed meanwhile.
    async fn renew(
        &self,
        held: &Activation,
        terms: &SeatTerms,
        now: OffsetDateTime,
    ) -> Result<Option<Activation>, Error> {
        let lease = terms.lease_seconds();
        let expires = now.unix_timestamp() + i64::from(lease);
        let mut w = Write::to(keys::activation(self.tenant_id(), &held.id));
        w.set(a::LEASE_EXPIRES_EPOCH, &expires)
            .set(a::LEASE_SECONDS, &lease)
            .set(a::LAST_ACTIVATED_AT, &rfc3339(now))
            .if_exists()
            .if_absent(a::DEACTIVATED_AT);
        if !w.run(self.db(), self.table()).await? {
            return Ok(None);
        }
        let old_expiry = held
            .lease_expires_epoch
            .unwrap_or(0)
            .max(now.unix_timestamp());
        if held.overage && expires > old_expiry {
            self.count_overage(&held.license_id, terms, expires - old_expiry, now)
                .await;
        }
        let mut a = held.clone();
        a.lease_expires_epoch = Some(expires);
        a.lease_seconds = Some(lease);
        a.last_activated_at = now;
        Ok(Some(a))
    }

    /// A checkout that found the pool full takes the place of a lapsed lease,
    /// in one transaction conditional on that lease still being lapsed and
    /// held (so each lapsed lease goes to exactly one checkout).
    async fn reclaim(
        &self,
        new: &Activation,
        terms: &SeatTerms,
        now: OffsetDateTime,
        audit: &AuditEvent,
        through: Option<&Through<'_>>,
    ) -> Result<Reclaimed, Error> {
        let all = self.live_activations(&new.license_id).await?;
        let mut lapsed = seats::lapsed_leases(all, &new.id, now);
        // Concurrent checkouts start at different lapsed leases.
        let start = rand::random_range(0..lapsed.len().max(1));
        let n = lapsed.len();
        lapsed.rotate_left(start.min(n));
        for old in lapsed {
            // It takes that lease's place in its pool.
            let pool = Pool::of(&old);
            let a = Attempt {
                terms: *terms,
                pool,
            }
            .activation(new, now);
            let mut check = Write::to(keys::license(self.tenant_id(), &new.license_id));
            check.if_exists().if_expr(|e| in_force(e, now));
            same_terms(&mut check, terms);
            // Only a pool within its (possibly lowered) cap passes a lease on.
            match pool {
                Pool::Overage => check.if_at_most_attr(a::OVERAGE_USED, a::MAX_OVERAGE),
                Pool::Committed => check.if_at_most_attr(a::SEATS_USED, a::MAX_ACTIVATIONS),
            };
            // Through a grant, an overage lease passes on only within the
            // organization's cap.
            if let (Pool::Overage, Some(t)) = (pool, through) {
                check.if_at_most(a::OVERAGE_USED, t.cap);
            }
            // The lapsed lease moves to `R#`: deleted as read (still lapsed,
            // held, its expiry unchanged), its retired copy written.
            let mut release = Write::to(keys::activation(self.tenant_id(), &old.id));
            release
                .if_exists()
                .if_absent(a::DEACTIVATED_AT)
                .if_at_most(a::LEASE_EXPIRES_EPOCH, now.unix_timestamp());
            if let Some(was) = old.lease_expires_epoch {
                release.if_eq(a::LEASE_EXPIRES_EPOCH, &was);
            }
            let mut retired = old.clone();
            retired.deactivated_at = Some(now);
            let mut txn = Txn::new();
            txn.check(item::SEAT, &check)?;
            txn.delete(item::RECLAIMED, &release)?;
            txn.put(
                item::RECLAIMED_RETIRED,
                &keys::retired_activation(self.tenant_id(), &old.id),
                &retired,
                PutIf::Always,
            )?;
            let key = keys::activation(self.tenant_id(), &a.id);
            txn.put(
                item::ACTIVATION,
                &key,
                &a,
                PutIf::NewOrAttr(a::DEACTIVATED_AT),
            )?;
            let gone = Write::to(keys::retired_activation(self.tenant_id(), &a.id));
            txn.delete(item::RETIRED, &gone)?;
            if a.overage {
                txn.update(
                    item::USAGE,
                    &self.overage_usage(&a.license_id, *terms, now)?,
                )?;
                let count = self.overage_checkout_count(&a.license_id, now);
                txn.update(item::OVERAGE_CHECKOUT, &count)?;
            }
            self.push_audit(&mut txn, item::AUDIT, audit)?;
            if let Some(t) = through {
                txn.check(item::GRANT, &t.grant)?;
                t.org.push_audit(&mut txn, item::ORG_AUDIT, t.audit)?;
            }
            let c = match txn.run(self.db(), self.table()).await {
                Ok(()) => return Ok(Reclaimed::Took(Box::new(a))),
                Err(e) => cancelled(e)?,
            };
            if through.is_some() && c.failed(item::GRANT) {
                return Ok(Reclaimed::Raced);
            }
            let license = c.old_as::<License>(item::SEAT)?;
            let seen = AsWas::of(c.failed(item::SEAT), license.as_ref());
            match seats::after_reclaim_refused(terms, seen, c.failed(item::ACTIVATION), now)? {
                ReclaimNext::NextLapsed => {}
                ReclaimNext::LookAgain => return Ok(Reclaimed::Raced),
            }
        }
        Ok(Reclaimed::NoneLapsed)
    }

    /// Take back a deactivated node-locked activation: same id and
    /// created_at, moved back from `R#` to `A#` (its retired copy deleted on
    /// condition that it is still the one read; an activation retired in
    /// place under `A#` before the move existed is replaced there).
    /// `Err`: the refusal, for [`seats::after_miss`].
    async fn restore(
        &self,
        new: &Activation,
        old: &Activation,
        terms: &SeatTerms,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<Result<Activation, Cancelled>, Error> {
        let mut a = old.clone();
        // A node-locked seat now: no lease, no overage (an activation of
        // this fingerprint may date from when the license was floating).
        a.deactivated_at = None;
        a.overage = false;
        a.lease_expires_epoch = None;
        a.lease_seconds = None;
        a.last_activated_at = now;
        a.name = new.name.clone().or(a.name);
        a.hostname = new.hostname.clone().or(a.hostname);
        if !new.metadata.is_empty() {
            a.metadata = new.metadata.clone();
        }
        let mut gone = Write::to(keys::retired_activation(self.tenant_id(), &new.id));
        if let Some(was) = old.deactivated_at {
            gone.if_expr(|e| {
                format!(
                    "attribute_not_exists({}) OR {} = {}",
                    e.name(keys::PK),
                    e.name(a::DEACTIVATED_AT),
                    e.val(s(rfc3339(was)))
                )
            });
        }
        let mut txn = Txn::new();
        txn.update(
            item::SEAT,
            &self.seat_take(&new.license_id, terms, Pool::Committed, now, None),
        )?;
        txn.put(
            item::ACTIVATION,
            &keys::activation(self.tenant_id(), &new.id),
            &a,
            PutIf::NewOrAttr(a::DEACTIVATED_AT),
        )?;
        txn.delete(item::RETIRED, &gone)?;
        self.push_audit(&mut txn, item::AUDIT, audit)?;
        if let Err(e) = txn.run(self.db(), self.table()).await {
            return cancelled(e).map(Err);
        }
        Ok(Ok(a))
    }

    /// Free a seat (return a lease). Deactivating an inactive activation
    /// frees nothing; beyond the license's churn limit nothing changes.
    /// One read of the activation (live under `A#`, or retired under `R#`:
    /// the move writes its content), then the return; each refusal hands
    /// back the items as they are, and [`seats::next_return`] decides what
    /// to try next (the activation itself changed: read it again).
    pub async fn deactivate(
        &self,
        id: &ActivationId,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<DeactivateOutcome, Error> {
        let mut tried = Return::first();
        let mut live: Option<Activation> = None;
        for _ in 0..ATTEMPTS {
            let a = match live.take() {
                Some(a) => a,
                None => match self.activation_states(id).await? {
                    (Some(a), _) if a.deactivated_at.is_some() => {
                        // Retired in place, before retired items moved.
                        return Ok(DeactivateOutcome::AlreadyInactive(a));
                    }
                    (Some(a), _) => a,
                    (None, Some(r)) => return Ok(DeactivateOutcome::AlreadyInactive(r)),
                    (None, None) => return Ok(DeactivateOutcome::NotFound),
                },
            };
            tried.pool = Pool::of(&a);
            let c = match self.give_back(&a, tried, now, audit).await? {
                Ok(retired) => return Ok(DeactivateOutcome::Deactivated(retired)),
                Err(c) => c,
            };
            if c.failed(item::ACTIVATION) {
                // Returned, renewed or beaten meanwhile: read it again.
                continue;
            }
            let license = c.old_as::<License>(item::SEAT)?;
            let deactivations = tried
                .churn
                .and_then(|limit| {
                    let counter = a::deactivations_in(&limit.period.window(now).key);
                    c.old(item::SEAT).and_then(|i| get_n::<u32>(i, &counter))
                })
                .unwrap_or(0);
            let seen = ReturnRefused {
                activation: AsWas::Passed,
                license: AsWas::of(c.failed(item::SEAT), license.as_ref()),
                deactivations,
            };
            match seats::next_return(tried, &seen) {
                ReturnStep::Return(next) => {
                    tried = next;
                    live = Some(a);
                }
                ReturnStep::NotFound => return Ok(DeactivateOutcome::NotFound),
                ReturnStep::AlreadyInactive(a) => {
                    return Ok(DeactivateOutcome::AlreadyInactive(a.clone()))
                }
                ReturnStep::ChurnLimit(limit) => {
                    return Ok(DeactivateOutcome::ChurnLimit {
                        count: limit.count,
                        resets_at: limit.period.window(now).resets_at,
                    })
                }
                ReturnStep::Broken(why) => {
                    return Err(Error::internal(format!("{why}: {}", c.describe())))
                }
            }
        }
        Err(Error::Unavailable("deactivation kept racing; retry".into()))
    }

    /// An activation under `A#` and its retired copy under `R#`: one
    /// BatchGetItem.
    async fn activation_states(
        &self,
        id: &ActivationId,
    ) -> Result<(Option<Activation>, Option<Activation>), Error> {
        let t = self.tenant_id();
        let (live_key, retired_key) = (keys::activation(t, id), keys::retired_activation(t, id));
        let (mut live, mut retired) = (None, None);
        for item in self.batch_get(&[live_key.clone(), retired_key]).await? {
            let is_live = super::write::get_s(&item, keys::SK) == Some(live_key.sk.as_str());
            let a: Activation = super::write::from_item(item)?;
            match is_live {
                true => live = Some(a),
                false => retired = Some(a),
            }
        }
        Ok((live, retired))
    }

    /// One return: the activation moves from `A#` to `R#` with its
    /// `deactivated_at` — deleted if still as read (held in the assumed
    /// pool, not renewed, beaten or restored since), its retired copy
    /// written; that pool's counter −1; the churn counter +1 under the
    /// assumed limit (or no limit at all); audit. `Ok`: the retired copy.
    async fn give_back(
        &self,
        read: &Activation,
        tried: Return,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<Result<Activation, Cancelled>, Error> {
        let t = self.tenant_id();
        let id = &read.id;
        let mut act = Write::to(keys::activation(t, id));
        act.if_exists()
            .if_absent(a::DEACTIVATED_AT)
            .if_eq(a::LAST_ACTIVATED_AT, &rfc3339(read.last_activated_at));
        match read.lease_expires_epoch {
            Some(was) => act.if_eq(a::LEASE_EXPIRES_EPOCH, &was),
            None => act.if_absent(a::LEASE_EXPIRES_EPOCH),
        };
        match read.last_heartbeat_at {
            Some(was) => act.if_eq(a::LAST_HEARTBEAT_AT, &rfc3339(was)),
            None => act.if_absent(a::LAST_HEARTBEAT_AT),
        };
        match tried.pool {
            Pool::Committed => act.if_absent_or_eq(a::OVERAGE, &false),
            Pool::Overage => act.if_eq(a::OVERAGE, &true),
        };
        let mut retired = read.clone();
        retired.deactivated_at = Some(now);
        let mut seat = Write::to(keys::license(t, &id.license_id()));
        match tried.pool {
            Pool::Committed => seat.add(a::SEATS_USED, -1).if_greater(a::SEATS_USED, 0),
            Pool::Overage => seat.add(a::OVERAGE_USED, -1).if_greater(a::OVERAGE_USED, 0),
        };
        match &tried.churn {
            Some(c) => {
                let counter = a::deactivations_in(&c.period.window(now).key);
                seat.increment(&counter, 1)
                    .if_absent_or_below(&counter, c.count)
                    .if_eq(a::MAX_DEACTIVATIONS, c);
            }
            None => {
                seat.if_absent(a::MAX_DEACTIVATIONS);
            }
        }
        let mut txn = Txn::new();
        txn.delete(item::ACTIVATION, &act)?;
        txn.put(
            item::RETIRED,
            &keys::retired_activation(t, id),
            &retired,
            PutIf::Always,
        )?;
        txn.update(item::SEAT, &seat)?;
        self.push_audit(&mut txn, item::AUDIT, audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(Ok(retired)),
            Err(e) => cancelled(e).map(Err),
        }
    }

    /// A heartbeat: renew a floating lease by its `lease_seconds`, or record
    /// a node-locked activation's heartbeat — only while the license is in
    /// force. One read of the activation (what to write, and an overage
    /// lease's time, depend on it), then one transaction: a `ConditionCheck`
    /// that the license exists and is in force, the activation's update
    /// conditional on it being as read and, for an overage lease, its added
    /// time. A refusal hands back the license as it was:
    /// [`seats::after_heartbeat_refused`] turns it into `LICENSE_NOT_ACTIVE`,
    /// or (only the activation moved) the heartbeat reads again.
    pub async fn heartbeat(
        &self,
        id: &ActivationId,
        now: OffsetDateTime,
    ) -> Result<HeartbeatOutcome, Error> {
        let key = keys::activation(self.tenant_id(), id);
        for _ in 0..ATTEMPTS {
            let mut read: Option<Activation> = self.get_as(&key).await?;
            if read.is_none() {
                // Retired (returned, reclaimed, deactivated): what it was
                // decides between LEASE_EXPIRED and NOT_FOUND.
                let retired = keys::retired_activation(self.tenant_id(), id);
                read = self.get_as(&retired).await?;
            }
            let beat = seats::heartbeat(read.as_ref(), now);
            let mut a = match (&beat, read) {
                (Beat::LeaseExpired, _) => return Ok(HeartbeatOutcome::LeaseExpired),
                (Beat::NotFound, _) | (_, None) => return Ok(HeartbeatOutcome::NotFound),
                (_, Some(a)) => a,
            };
            let mut check = Write::to(keys::license(self.tenant_id(), &id.license_id()));
            check.if_exists().if_expr(|e| in_force(e, now));
            let mut txn = Txn::new();
            txn.check(item::SEAT, &check)?;
            let mut w = Write::to(key.clone());
            w.set(a::LAST_HEARTBEAT_AT, &rfc3339(now))
                .if_exists()
                .if_absent(a::DEACTIVATED_AT);
            match beat {
                Beat::Renew {
                    lease,
                    was,
                    expires,
                    overage_seconds,
                } => {
                    w.set(a::LEASE_EXPIRES_EPOCH, &expires)
                        .if_eq(a::LEASE_EXPIRES_EPOCH, &was)
                        .if_eq(a::LEASE_SECONDS, &lease);
                    if overage_seconds > 0 {
                        let usage = self.overage_counter(&a.license_id, overage_seconds, now)?;
                        txn.update(item::USAGE, &usage)?;
                    }
                    a.lease_expires_epoch = Some(expires);
                }
                _ => {
                    w.if_absent(a::LEASE_SECONDS);
                }
            }
            txn.update(item::ACTIVATION, &w)?;
            match txn.run(self.db(), self.table()).await {
                Ok(()) => {
                    a.last_heartbeat_at = Some(now);
                    return Ok(HeartbeatOutcome::Beat(Box::new(a)));
                }
                Err(e) => {
                    let c = cancelled(e)?;
                    let license = c.old_as::<License>(item::SEAT)?;
                    let seen = AsWas::of(c.failed(item::SEAT), license.as_ref());
                    seats::after_heartbeat_refused(seen, now)?;
                }
            }
        }
        Err(Error::Unavailable("heartbeat kept racing; retry".into()))
    }

    /// The overage usage counter's write for a new overage lease.
    fn overage_usage(
        &self,
        id: &LicenseId,
        terms: SeatTerms,
        now: OffsetDateTime,
    ) -> Result<Write, Error> {
        self.overage_counter(id, i64::from(terms.lease_seconds()), now)
    }

    /// Add overage lease time after a renewal (its own write: the renewal
    /// is one write; a failure here is logged, and costs the vendor at most
    /// one lease's worth of overage time).
    async fn count_overage(
        &self,
        id: &LicenseId,
        _terms: &SeatTerms,
        seconds: i64,
        now: OffsetDateTime,
    ) {
        let res = match self.overage_counter(id, seconds, now) {
            Ok(w) => w.run(self.db(), self.table()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            tracing::warn!(error = %e, license = %id, seconds, "could not count floating overage time");
        }
    }
}

/// Write `t` as the item's seat terms (a policy's or a license's), the
/// attributes `#[serde(flatten)]` gives them: an unset optional term is
/// removed, as a `Put` of the item would leave it out.
pub(crate) fn set_terms(w: &mut Write, t: &SeatTerms) {
    w.set(a::ACTIVATION_MODE, &t.activation_mode)
        .set(a::MAX_OVERAGE, &t.max_overage);
    for (attr, v) in [
        (a::LEASE_SECONDS, t.lease_seconds),
        (a::HEARTBEAT_SECONDS, t.heartbeat_seconds),
    ] {
        match v {
            Some(v) => w.set(attr, &v),
            None => w.remove(attr),
        };
    }
    match &t.max_deactivations {
        Some(m) => w.set(a::MAX_DEACTIVATIONS, m),
        None => w.remove(a::MAX_DEACTIVATIONS),
    };
}

/// The license still has the seat terms the caller assumed.
fn same_terms(w: &mut Write, terms: &SeatTerms) {
    match terms.activation_mode {
        ActivationMode::NodeLocked => {
            w.if_absent_or_eq(a::ACTIVATION_MODE, &ActivationMode::NodeLocked);
        }
        ActivationMode::Floating => {
            // Every term the write relies on: the mode, the lease it grants
            // and the overage cap it checks against.
            w.if_eq(a::ACTIVATION_MODE, &ActivationMode::Floating)
                .if_absent_or_eq(a::MAX_OVERAGE, &terms.max_overage);
            match terms.lease_seconds {
                Some(l) => w.if_eq(a::LEASE_SECONDS, &l),
                None => w.if_absent(a::LEASE_SECONDS),
            };
        }
    }
}

fn cancelled(e: TxnError) -> Result<Cancelled, Error> {
    match e {
        TxnError::Cancelled(c) => Ok(c),
        TxnError::Other(e) => Err(e),
    }
}
