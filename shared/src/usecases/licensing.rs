//! Validate, activate, deactivate, and the license lifecycle.

use crate::app::App;
use crate::domain::*;
use crate::error::{license_not_found, Error};
use crate::ids::{
    ActivationId, Email, Feature, Fingerprint, FingerprintDigest, LicenseId, LicenseKey, PolicyId,
};
use crate::store::catalog::change;
use crate::store::licenses::{ActivateOutcome, DeactivateOutcome, LicenseRead, Transition};
use crate::store::TenantStore;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

pub struct Validation {
    pub code: ValidationCode,
    pub license: Option<License>,
    pub policy: Option<Arc<Policy>>,
    pub usage: UsageSnapshot,
}

/// One query of the license partition (plus the policy, cached).
pub async fn validate(
    app: &App,
    ts: &TenantStore,
    key: &LicenseKey,
    scope: ValidationScope,
    now: OffsetDateTime,
) -> Result<Validation, Error> {
    let id = LicenseId::derive(ts.tenant_id(), key);
    let digest = scope.fingerprint.as_ref().map(FingerprintDigest::of);
    let LicenseRead {
        license,
        activation,
        usage,
    } = ts.read_license(&id, digest.as_ref(), now).await?;
    let Some(license) = license else {
        return Ok(Validation {
            code: ValidationCode::NotFound,
            license: None,
            policy: None,
            usage,
        });
    };
    let policy = load_policy(app, ts, &license.policy).await?;
    let code = evaluate(&license, &policy, activation.as_ref(), &scope, now);
    Ok(Validation {
        code,
        license: Some(license),
        policy: Some(policy),
        usage,
    })
}

pub async fn load_policy(app: &App, ts: &TenantStore, id: &PolicyId) -> Result<Arc<Policy>, Error> {
    app.policy(ts, id)
        .await?
        .ok_or_else(|| Error::internal(format!("license refers to missing policy {id}")))
}

pub struct NewActivation {
    pub license_key: LicenseKey,
    pub fingerprint: Fingerprint,
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub metadata: Map<String, Value>,
}

pub async fn activate(
    ts: &TenantStore,
    actor: &Actor,
    req: NewActivation,
    now: OffsetDateTime,
) -> Result<ActivateOutcome, Error> {
    let license_id = LicenseId::derive(ts.tenant_id(), &req.license_key);
    let id = ActivationId::derive(&license_id, &req.fingerprint);
    let activation = Activation {
        id: id.clone(),
        license_id: license_id.clone(),
        fingerprint: req.fingerprint,
        name: req.name,
        hostname: req.hostname,
        metadata: req.metadata,
        created_at: now,
        last_activated_at: now,
        deactivated_at: None,
    };
    let audit = AuditEvent::new(
        ts.tenant_id(),
        AuditCode::ActivationCreated,
        &actor.actor,
        id.as_str(),
        now,
        &actor.request_id,
    )
    .with_data(
        serde_json::json!({ "license_id": license_id, "fingerprint": activation.fingerprint }),
    );
    ts.activate(&activation, now, &audit).await
}

pub async fn deactivate(
    ts: &TenantStore,
    actor: &Actor,
    id: &ActivationId,
    now: OffsetDateTime,
) -> Result<DeactivateOutcome, Error> {
    let audit = AuditEvent::new(
        ts.tenant_id(),
        AuditCode::ActivationDeleted,
        &actor.actor,
        id.as_str(),
        now,
        &actor.request_id,
    )
    .with_data(serde_json::json!({ "license_id": id.license_id() }));
    ts.deactivate(id, now, &audit).await
}

pub fn activation_id_for(ts: &TenantStore, key: &LicenseKey, fp: &Fingerprint) -> ActivationId {
    ActivationId::derive(&LicenseId::derive(ts.tenant_id(), key), fp)
}

pub struct NewLicense {
    pub policy: PolicyId,
    pub customer_email: Email,
    pub expires_at: Option<OffsetDateTime>,
    pub key: Option<LicenseKey>,
    pub metadata: Map<String, Value>,
}

pub async fn issue(
    app: &App,
    ts: &TenantStore,
    actor: &Actor,
    req: NewLicense,
    now: OffsetDateTime,
) -> Result<License, Error> {
    let policy = app.policy(ts, &req.policy).await?.ok_or_else(|| {
        Error::invalid(
            "POLICY_NOT_FOUND",
            format!("no policy with id '{}'", req.policy),
        )
    })?;
    issue_under(ts, &policy, actor, req, now, LicenseStatus::Active, None, 0).await
}

/// Issue a license under a known policy (management API and Stripe).
#[allow(clippy::too_many_arguments)]
pub async fn issue_under(
    ts: &TenantStore,
    policy: &Policy,
    actor: &Actor,
    req: NewLicense,
    now: OffsetDateTime,
    status: LicenseStatus,
    stripe: Option<StripeLink>,
    stripe_event_at: i64,
) -> Result<License, Error> {
    if req.expires_at.is_some_and(|e| e <= now) {
        return Err(Error::validation("expires_at must be in the future"));
    }
    let key = req.key.unwrap_or_else(LicenseKey::generate);
    let expires_at = req
        .expires_at
        .or_else(|| policy.duration_days.map(|d| now + Duration::days(d as i64)));
    let mut license = License {
        id: LicenseId::derive(ts.tenant_id(), &key),
        key,
        product: policy.product.clone(),
        policy: policy.id.clone(),
        customer_email: req.customer_email,
        status,
        expires_at: None,
        expires_epoch: None,
        grace_until: None,
        grace_epoch: None,
        max_activations: policy.max_activations,
        seats_used: 0,
        metadata: req.metadata,
        entitlement_overrides: BTreeMap::new(),
        stripe: stripe.unwrap_or_default(),
        stripe_event_at,
        created_at: now,
        updated_at: now,
    };
    license.set_expiry(expires_at);
    let audit = AuditEvent::new(
        ts.tenant_id(),
        AuditCode::LicenseCreated,
        &actor.actor,
        license.id.as_str(),
        now,
        &actor.request_id,
    )
    .with_data(
        serde_json::json!({ "policy": license.policy, "customer_email": license.customer_email }),
    );
    ts.issue_license(&license, &audit).await?;
    Ok(license)
}

/// Lifecycle moves of the management API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Suspend,
    Resume,
    Cancel,
    Renew { until: OffsetDateTime },
}

pub async fn lifecycle(
    ts: &TenantStore,
    actor: &Actor,
    id: &LicenseId,
    what: Lifecycle,
    now: OffsetDateTime,
) -> Result<(License, UsageSnapshot), Error> {
    use LicenseStatus::*;
    let stamp = change("updated_at", &crate::clock::rfc3339(now))?;
    let (code, tr, target) = match what {
        Lifecycle::Suspend => (
            AuditCode::LicenseSuspended,
            Transition {
                from: &[Active, PastDue],
                changes: vec![change("status", &Suspended)?, stamp],
                remove: vec![],
                ..Transition::default()
            },
            Some(Suspended),
        ),
        Lifecycle::Resume => (
            AuditCode::LicenseResumed,
            Transition {
                from: &[Suspended],
                changes: vec![change("status", &Active)?, stamp],
                remove: vec!["grace_until", "grace_epoch"],
                ..Transition::default()
            },
            Some(Active),
        ),
        Lifecycle::Cancel => (
            AuditCode::LicenseCancelled,
            Transition {
                from: &[Active, Suspended, PastDue],
                changes: vec![change("status", &Cancelled)?, stamp],
                remove: vec![],
                ..Transition::default()
            },
            Some(Cancelled),
        ),
        Lifecycle::Renew { until } => (
            AuditCode::LicenseRenewed,
            Transition {
                from: &[Active, Suspended, PastDue],
                changes: vec![
                    change("expires_at", &crate::clock::rfc3339(until))?,
                    change("expires_epoch", &until.unix_timestamp())?,
                    stamp,
                ],
                ..Transition::default()
            },
            None,
        ),
    };
    let audit = AuditEvent::new(
        ts.tenant_id(),
        code,
        &actor.actor,
        id.as_str(),
        now,
        &actor.request_id,
    );
    if let Some(done) = ts.transition(id, tr, &audit, now).await? {
        return Ok(done);
    }
    // The move was refused by the license's status: already there is a no-op,
    // anything else (cancelled is terminal) is a conflict.
    let read = ts.read_license(id, None, now).await?;
    let current = read.license.ok_or_else(license_not_found)?;
    if Some(current.status) == target {
        return Ok((current, read.usage));
    }
    if current.status == Cancelled {
        return Err(Error::conflict(
            "LICENSE_CANCELLED",
            "the license is cancelled; cancellation is terminal",
        ));
    }
    Err(Error::conflict(
        "INVALID_TRANSITION",
        format!(
            "a {} license cannot be {}",
            current.status.as_str(),
            match what {
                Lifecycle::Suspend => "suspended",
                Lifecycle::Resume => "resumed",
                Lifecycle::Cancel => "cancelled",
                Lifecycle::Renew { .. } => "renewed",
            }
        ),
    ))
}

/// When a renewal by `days` ends: from the current expiry if still ahead, else from now.
pub fn renewal_end(
    current: Option<OffsetDateTime>,
    days: u32,
    now: OffsetDateTime,
) -> OffsetDateTime {
    let base = current.filter(|e| *e > now).unwrap_or(now);
    base + Duration::days(days as i64)
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
    app: &App,
    ts: &TenantStore,
    actor: &Actor,
    id: &LicenseId,
    p: LicensePatch,
    now: OffsetDateTime,
) -> Result<(License, UsageSnapshot), Error> {
    let mut tr = Transition {
        from: &[
            LicenseStatus::Active,
            LicenseStatus::Suspended,
            LicenseStatus::PastDue,
            LicenseStatus::Cancelled,
        ],
        changes: vec![change("updated_at", &crate::clock::rfc3339(now))?],
        ..Transition::default()
    };
    let mut code = AuditCode::LicenseUpdated;
    if let Some(m) = &p.metadata {
        tr.changes.push(change("metadata", m)?);
    }
    let mut product = None;
    if let Some(pid) = &p.policy {
        let policy = app.policy(ts, pid).await?.ok_or_else(|| {
            Error::invalid("POLICY_NOT_FOUND", format!("no policy with id '{pid}'"))
        })?;
        tr.changes.push(change("policy", &policy.id)?);
        if p.max_activations.is_none() {
            tr.changes
                .push(change("max_activations", &policy.max_activations)?);
        }
        tr.require.push(change("product", &policy.product)?);
        product = Some(policy.product.clone());
        code = AuditCode::LicensePolicyChanged;
    }
    if let Some(n) = p.max_activations {
        tr.changes.push(change("max_activations", &n)?);
    }
    for (feature, what) in p.entitlements.unwrap_or_default() {
        match what {
            OverrideChange::Inherit(_) => tr
                .map_removes
                .push(("entitlement_overrides", feature.to_string())),
            OverrideChange::Set(spec) => tr.map_sets.push((
                "entitlement_overrides",
                feature.to_string(),
                crate::store::av(&Some(spec))?,
            )),
            OverrideChange::Revoke(()) => tr.map_sets.push((
                "entitlement_overrides",
                feature.to_string(),
                crate::store::av(&None::<EntitlementSpec>)?,
            )),
        }
    }
    let audit = AuditEvent::new(
        ts.tenant_id(),
        code,
        &actor.actor,
        id.as_str(),
        now,
        &actor.request_id,
    );
    if let Some(done) = ts.transition(id, tr, &audit, now).await? {
        return Ok(done);
    }
    // Refused: the license is missing, or belongs to another product than the new policy.
    match ts.get_license(id).await? {
        None => Err(license_not_found()),
        Some(l) if product.is_some_and(|p| p != l.product) => Err(Error::invalid(
            "PRODUCT_MISMATCH",
            "the new policy is for another product",
        )),
        Some(_) => Err(Error::Unavailable(
            "the license changed during the update; retry".into(),
        )),
    }
}
