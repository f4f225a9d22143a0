//! The management lifecycle (suspend, resume, cancel, renew) and PATCH.

use super::{get, LicenseState};
use crate::cache::Policies;
use crate::clock::add_days;
use crate::domain::*;
use crate::error::{license_not_found, Error};
use crate::ids::{Feature, LicenseId, PolicyId};
use crate::store::licenses::UpdateOutcome;
use crate::store::TenantStore;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The longest renewal by days (100 years).
pub const MAX_RENEW_DAYS: u32 = 36_500;

/// How far a renewal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewTo {
    /// A new expiry, in the future.
    Date(OffsetDateTime),
    /// Days from the current expiry if still ahead, else from now.
    Days(u32),
}

/// Lifecycle moves of the management API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Suspend,
    Resume,
    Cancel,
    Renew(RenewTo),
}

impl Lifecycle {
    fn verb(self) -> &'static str {
        match self {
            Lifecycle::Suspend => "suspended",
            Lifecycle::Resume => "resumed",
            Lifecycle::Cancel => "cancelled",
            Lifecycle::Renew(_) => "renewed",
        }
    }
}

pub async fn lifecycle(
    policies: &Policies,
    ts: &TenantStore,
    actor: &Actor,
    id: &LicenseId,
    what: Lifecycle,
    now: OffsetDateTime,
) -> Result<LicenseState, Error> {
    use LicenseStatus::*;
    let mut change = LicenseChange::default();
    let (code, from, target): (_, &[LicenseStatus], _) = match what {
        Lifecycle::Suspend => {
            change.status = Some(Suspended);
            (
                AuditCode::LicenseSuspended,
                &[Active, PastDue],
                Some(Suspended),
            )
        }
        Lifecycle::Resume => {
            change.status = Some(Active);
            change.grace = GraceChange::Clear;
            (AuditCode::LicenseResumed, &[Suspended], Some(Active))
        }
        Lifecycle::Cancel => {
            change.status = Some(Cancelled);
            (
                AuditCode::LicenseCancelled,
                &[Active, Suspended, PastDue],
                Some(Cancelled),
            )
        }
        Lifecycle::Renew(to) => {
            change.expires_at = Some(renewal_end(ts, id, to, now).await?);
            (
                AuditCode::LicenseRenewed,
                &[Active, Suspended, PastDue],
                None,
            )
        }
    };
    let guard = LicenseGuard {
        status_in: from.to_vec(),
        ..LicenseGuard::default()
    };
    let audit = actor.audit(ts.tenant_id(), code, id.as_str(), now);
    let current = match ts.update_license(id, &change, &guard, &audit, now).await? {
        UpdateOutcome::Updated(l, usage, leases) => {
            return LicenseState::of(policies, ts, *l, usage, leases, now).await
        }
        UpdateOutcome::Refused(l) => l,
    };
    // The move was refused by the license's status: already there is a no-op,
    // anything else (cancelled is terminal) is a conflict.
    if Some(current.status) == target {
        return get(policies, ts, id, now).await;
    }
    if current.status == Cancelled {
        let msg = "the license is cancelled; cancellation is terminal";
        return Err(Error::conflict("LICENSE_CANCELLED", msg));
    }
    let msg = format!(
        "a {} license cannot be {}",
        current.status.as_str(),
        what.verb()
    );
    Err(Error::conflict("INVALID_TRANSITION", msg))
}

/// When a renewal ends. By days it runs from the current expiry if that is
/// still ahead (one read of the license), else from now.
async fn renewal_end(
    ts: &TenantStore,
    id: &LicenseId,
    to: RenewTo,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, Error> {
    match to {
        RenewTo::Date(at) if at > now => Ok(at),
        RenewTo::Date(_) => Err(Error::validation("expires_at must be in the future")),
        RenewTo::Days(d) if (1..=MAX_RENEW_DAYS).contains(&d) => {
            let current = ts.get_license(id).await?.ok_or_else(license_not_found)?;
            add_days(current.expires_at.filter(|e| *e > now).unwrap_or(now), d)
        }
        RenewTo::Days(_) => Err(Error::validation(format!(
            "days must be from 1 to {MAX_RENEW_DAYS}"
        ))),
    }
}

/// What a PATCH does to one entitlement of one license.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum OverrideChange {
    /// `"inherit"`: drop the override, the policy's entitlement applies again.
    Inherit(InheritWord),
    /// A spec: grant the feature, or change its limit, for this license.
    Set(EntitlementSpec),
    /// `null`: revoke the feature for this license.
    Revoke(()),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InheritWord {
    Inherit,
}

impl From<OverrideChange> for OverrideEdit {
    fn from(c: OverrideChange) -> Self {
        match c {
            OverrideChange::Inherit(_) => OverrideEdit::Inherit,
            OverrideChange::Set(spec) => OverrideEdit::Set(spec),
            OverrideChange::Revoke(()) => OverrideEdit::Revoke,
        }
    }
}

/// Changes a PATCH of a license may make.
#[derive(Default)]
pub struct LicensePatch {
    pub metadata: Option<Map<String, Value>>,
    pub max_activations: Option<u32>,
    pub entitlements: Option<BTreeMap<Feature, OverrideChange>>,
    pub policy: Option<PolicyId>,
}

/// One conditional write: no read of the license before it. A policy change
/// is conditional on the license's product; overrides are written entry by
/// entry, so concurrent PATCHes of different features both land.
pub async fn patch_license(
    policies: &Policies,
    ts: &TenantStore,
    actor: &Actor,
    id: &LicenseId,
    p: LicensePatch,
    now: OffsetDateTime,
) -> Result<LicenseState, Error> {
    let mut change = LicenseChange {
        metadata: p.metadata,
        max_activations: p.max_activations,
        overrides: p
            .entitlements
            .unwrap_or_default()
            .into_iter()
            .map(|(f, c)| (f, c.into()))
            .collect(),
        ..LicenseChange::default()
    };
    let mut guard = LicenseGuard::default();
    let mut code = AuditCode::LicenseUpdated;
    if let Some(pid) = &p.policy {
        let policy = policies.get(ts, pid).await?.ok_or_else(|| {
            Error::invalid("POLICY_NOT_FOUND", format!("no policy with id '{pid}'"))
        })?;
        change.policy = Some(policy.id.clone());
        change.max_activations = p.max_activations.or(Some(policy.max_activations));
        change.terms = Some(policy.terms);
        guard.product = Some(policy.product.clone());
        code = AuditCode::LicensePolicyChanged;
    }
    let audit = actor.audit(ts.tenant_id(), code, id.as_str(), now);
    match ts.update_license(id, &change, &guard, &audit, now).await? {
        UpdateOutcome::Updated(l, usage, leases) => {
            LicenseState::of(policies, ts, *l, usage, leases, now).await
        }
        // Refused: the license belongs to another product than the new policy.
        UpdateOutcome::Refused(l) if guard.product.as_ref().is_some_and(|p| *p != l.product) => {
            Err(Error::invalid(
                "PRODUCT_MISMATCH",
                "the new policy is for another product",
            ))
        }
        UpdateOutcome::Refused(_) => Err(Error::Unavailable(
            "the license changed during the update; retry".into(),
        )),
    }
}
