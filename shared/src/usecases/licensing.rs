//! Validate, activate, deactivate, and the license lifecycle.

use crate::cache::{LicenseTerms, Policies};
use crate::clock::add_days;
use crate::domain::*;
use crate::error::{license_not_found, Error};
use crate::ids::{
    ActivationId, Email, Feature, Fingerprint, FingerprintDigest, LicenseId, LicenseKey, PolicyId,
};
use crate::store::licenses::{
    ActivateOutcome, DeactivateOutcome, HeartbeatOutcome, LicenseRead, LiveLeases, UpdateOutcome,
};
use crate::store::TenantStore;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// The longest renewal by days (100 years).
pub const MAX_RENEW_DAYS: u32 = 36_500;

pub struct Validation {
    pub code: ValidationCode,
    pub license: Option<License>,
    pub policy: Option<Arc<Policy>>,
    pub usage: UsageSnapshot,
    pub leases: LiveLeases,
}

/// A license with its policy and current usage: what a view is drawn from.
pub struct LicenseState {
    pub license: License,
    pub policy: Option<Arc<Policy>>,
    pub usage: UsageSnapshot,
    /// Floating: the leases holding a seat now.
    pub leases: LiveLeases,
}

impl LicenseState {
    async fn of(
        policies: &Policies,
        ts: &TenantStore,
        license: License,
        usage: UsageSnapshot,
        leases: LiveLeases,
    ) -> Result<Self, Error> {
        let policy = policies.get(ts, &license.policy).await?;
        Ok(Self {
            license,
            policy,
            usage,
            leases,
        })
    }
}

/// One query of the license partition (plus the policy, cached).
pub async fn validate(
    policies: &Policies,
    terms: &LicenseTerms,
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
        leases,
    } = ts.read_license(&id, digest.as_ref(), now).await?;
    let Some(license) = license else {
        let code = ValidationCode::NotFound;
        return Ok(Validation {
            code,
            license: None,
            policy: None,
            usage,
            leases,
        });
    };
    terms.remember(ts.tenant_id(), &license.id, license.terms());
    let policy = policies.of_license(ts, &license.policy).await?;
    let code = evaluate(&license, &policy, activation.as_ref(), &scope, now);
    Ok(Validation {
        code,
        license: Some(license),
        policy: Some(policy),
        usage,
        leases,
    })
}

pub struct NewActivation {
    pub license_key: LicenseKey,
    pub fingerprint: Fingerprint,
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub metadata: Map<String, Value>,
}

/// Take a seat (node-locked) or check out a lease (floating): one
/// transaction when this instance knows the license's terms.
pub async fn activate(
    terms: &LicenseTerms,
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
        lease_expires_epoch: None,
        lease_seconds: None,
        overage: false,
        last_heartbeat_at: None,
    };
    let audit = actor
        .audit(
            ts.tenant_id(),
            AuditCode::ActivationCreated,
            id.as_str(),
            now,
        )
        .with_data(json!({ "license_id": license_id, "fingerprint": activation.fingerprint }));
    let assumed = terms.get(ts.tenant_id(), &license_id);
    let done = ts.activate(&activation, assumed, now, &audit).await?;
    terms.remember(ts.tenant_id(), &license_id, done.terms);
    Ok(done.outcome)
}

/// Which activation to free: by id, or by the license key and fingerprint.
pub enum ActivationRef {
    Id(ActivationId),
    Fingerprint(LicenseKey, Fingerprint),
}

/// Free a seat. An unknown activation is `ACTIVATION_NOT_FOUND`; by key and
/// fingerprint, an unknown license says so instead (one read, on that
/// failure path only).
pub async fn deactivate(
    ts: &TenantStore,
    actor: &Actor,
    which: ActivationRef,
    now: OffsetDateTime,
) -> Result<Activation, Error> {
    let (id, by_fingerprint) = match which {
        ActivationRef::Id(id) => (id, false),
        ActivationRef::Fingerprint(key, fp) => (
            ActivationId::derive(&LicenseId::derive(ts.tenant_id(), &key), &fp),
            true,
        ),
    };
    let audit = actor
        .audit(
            ts.tenant_id(),
            AuditCode::ActivationDeleted,
            id.as_str(),
            now,
        )
        .with_data(json!({ "license_id": id.license_id() }));
    match ts.deactivate(&id, now, &audit).await? {
        DeactivateOutcome::Deactivated(a) | DeactivateOutcome::AlreadyInactive(a) => Ok(a),
        DeactivateOutcome::ChurnLimit { count, resets_at } => {
            let retry_after_secs =
                resets_at.map(|r| (r - now).whole_seconds().max(1).unsigned_abs());
            Err(Error::DeactivationLimitReached {
                count,
                retry_after_secs,
            })
        }
        DeactivateOutcome::NotFound => {
            if by_fingerprint && ts.get_license(&id.license_id()).await?.is_none() {
                return Err(license_not_found());
            }
            Err(activation_not_found())
        }
    }
}

/// `POST /v1/integration/activations/{id}/heartbeat`: renew a floating
/// lease (one write), or record a node-locked activation's heartbeat.
pub async fn heartbeat(
    ts: &TenantStore,
    id: &ActivationId,
    now: OffsetDateTime,
) -> Result<Activation, Error> {
    match ts.heartbeat(id, now).await? {
        HeartbeatOutcome::Beat(a) => Ok(*a),
        HeartbeatOutcome::LeaseExpired => Err(Error::LeaseExpired),
        HeartbeatOutcome::NotFound => Err(activation_not_found()),
    }
}

pub fn activation_not_found() -> Error {
    Error::not_found("ACTIVATION_NOT_FOUND", "no activation with that id")
}

pub struct NewLicense {
    pub policy: PolicyId,
    pub customer_email: Email,
    pub expires_at: Option<OffsetDateTime>,
    pub key: Option<LicenseKey>,
    pub metadata: Map<String, Value>,
}

/// Issue a license through the management API.
pub async fn issue(
    policies: &Policies,
    ts: &TenantStore,
    actor: &Actor,
    req: NewLicense,
    now: OffsetDateTime,
) -> Result<LicenseState, Error> {
    if req.expires_at.is_some_and(|e| e <= now) {
        return Err(Error::validation("expires_at must be in the future"));
    }
    let policy = policies.get(ts, &req.policy).await?.ok_or_else(|| {
        Error::invalid(
            "POLICY_NOT_FOUND",
            format!("no policy with id '{}'", req.policy),
        )
    })?;
    let license = License::issue(LicenseDraft {
        tenant: ts.tenant_id(),
        policy: &policy,
        key: req.key,
        customer_email: req.customer_email,
        status: LicenseStatus::Active,
        expires_at: req.expires_at,
        grace_until: None,
        metadata: req.metadata,
        stripe: StripeLink::default(),
        stripe_event_at: 0,
        now,
    })?;
    let audit = actor
        .audit(
            ts.tenant_id(),
            AuditCode::LicenseCreated,
            license.id.as_str(),
            now,
        )
        .with_data(json!({ "policy": license.policy, "customer_email": license.customer_email }));
    ts.issue_license(&license, &audit).await?;
    // A new license has used nothing yet.
    Ok(LicenseState {
        license,
        policy: Some(policy),
        usage: UsageSnapshot::new(),
        leases: LiveLeases::default(),
    })
}

/// One page of the tenant's licenses matching `filter`, newest first.
pub async fn search(
    ts: &TenantStore,
    signer: &crate::crypto::Signer,
    filter: &LicenseFilter,
    limit: usize,
    cursor: Option<&str>,
    now: OffsetDateTime,
) -> Result<crate::store::Page<License>, Error> {
    filter.check()?;
    ts.search_licenses(signer, filter, limit, cursor, now).await
}

/// A license with its policy and usage, or `LICENSE_NOT_FOUND`.
pub async fn get(
    policies: &Policies,
    ts: &TenantStore,
    id: &LicenseId,
    now: OffsetDateTime,
) -> Result<LicenseState, Error> {
    let read = ts.read_license(id, None, now).await?;
    let license = read.license.ok_or_else(license_not_found)?;
    LicenseState::of(policies, ts, license, read.usage, read.leases).await
}

/// A license's activations (`LICENSE_NOT_FOUND` when there is no license).
pub async fn activations(ts: &TenantStore, id: &LicenseId) -> Result<Vec<Activation>, Error> {
    if ts.get_license(id).await?.is_none() {
        return Err(license_not_found());
    }
    ts.list_activations(id).await
}

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
            return LicenseState::of(policies, ts, *l, usage, leases).await
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
        change.terms = Some(policy.terms());
        guard.product = Some(policy.product.clone());
        code = AuditCode::LicensePolicyChanged;
    }
    let audit = actor.audit(ts.tenant_id(), code, id.as_str(), now);
    match ts.update_license(id, &change, &guard, &audit, now).await? {
        UpdateOutcome::Updated(l, usage, leases) => {
            LicenseState::of(policies, ts, *l, usage, leases).await
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

/// The shortest and longest offline license file, and the default.
pub const MIN_FILE_TTL: u32 = 3_600;
pub const MAX_FILE_TTL: u32 = 7_776_000;
pub const DEFAULT_FILE_TTL: u32 = 86_400;
/// What a license file says it is.
pub const FILE_FORMAT: &str = "licensing-file/v1";

/// An offline license file: signed, time-limited, optionally bound to an
/// activation (`docs/signing.md` has the format).
pub struct LicenseFile {
    pub certificate: String,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub kid: String,
}

/// Who signs: the tenant's key of this version.
pub struct FileSigner<'a> {
    pub keys: &'a crate::crypto::SigningKeys,
    pub version: u32,
}

/// `POST /v1/integration/licenses/{key}/checkout`: a license file for a
/// license that validates as `VALID` (with the fingerprint, if one is given:
/// it must be activated), expiring after `ttl_seconds` but never after the
/// license itself. `client_only`: the caller is a client app (its key must
/// exist and its policy allow client authentication).
#[allow(clippy::too_many_arguments)]
pub async fn checkout(
    policies: &Policies,
    terms: &LicenseTerms,
    ts: &TenantStore,
    key: &LicenseKey,
    fingerprint: Option<Fingerprint>,
    ttl_seconds: u32,
    signer: FileSigner<'_>,
    client_only: bool,
    now: OffsetDateTime,
) -> Result<LicenseFile, Error> {
    if !(MIN_FILE_TTL..=MAX_FILE_TTL).contains(&ttl_seconds) {
        let msg = format!("ttl_seconds must be from {MIN_FILE_TTL} to {MAX_FILE_TTL}");
        return Err(Error::validation(msg));
    }
    let scope = ValidationScope {
        fingerprint: fingerprint.clone(),
        ..ValidationScope::default()
    };
    let v = validate(policies, terms, ts, key, scope, now).await?;
    let (Some(license), Some(policy)) = (v.license, v.policy) else {
        return Err(if client_only {
            Error::Unauthenticated
        } else {
            license_not_found()
        });
    };
    if client_only {
        client_allowed(&policy)?;
    }
    match v.code {
        ValidationCode::Valid => {}
        ValidationCode::NoActivation | ValidationCode::HeartbeatDead => {
            let msg = "the fingerprint is not activated on the license";
            return Err(Error::conflict("NO_ACTIVATION", msg));
        }
        _ => return Err(Error::LicenseNotActive(license.status_str(now))),
    }
    let latest = now
        .checked_add(time::Duration::seconds(i64::from(ttl_seconds)))
        .unwrap_or(now);
    let expires_at = license.expires_at.map_or(latest, |e| e.min(latest));
    let tenant = ts.tenant_id();
    let kid = crate::crypto::kid(signer.version);
    let activation = fingerprint
        .map(|fp| json!({ "id": ActivationId::derive(&license.id, &fp), "fingerprint": fp }));
    let payload = json!({
        "format": FILE_FORMAT,
        "tenant_id": tenant,
        "kid": kid,
        "license": {
            "id": license.id,
            "key": license.key,
            "status": license.status_str(now),
            "product": license.product,
            "policy": license.policy,
            "expires_at": license.expires_at.map(crate::clock::rfc3339),
            "seats": { "limit": license.max_activations },
            "entitlements": license.effective_entitlements(&policy),
        },
        "activation": activation,
        "issued_at": crate::clock::rfc3339(now),
        "expires_at": crate::clock::rfc3339(expires_at),
        "ttl_seconds": (expires_at - now).whole_seconds(),
    });
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let body = URL_SAFE_NO_PAD.encode(payload.to_string());
    let signature = signer
        .keys
        .sign(tenant.as_str(), signer.version, body.as_bytes());
    let text = format!("{body}.{}", URL_SAFE_NO_PAD.encode(signature));
    let mut certificate = String::from("-----BEGIN LICENSE FILE-----\n");
    for line in text.as_bytes().chunks(64) {
        certificate.push_str(&String::from_utf8_lossy(line));
        certificate.push('\n');
    }
    certificate.push_str("-----END LICENSE FILE-----\n");
    Ok(LicenseFile {
        certificate,
        issued_at: now,
        expires_at,
        kid,
    })
}

/// A client app's policy must allow client authentication.
pub fn client_allowed(policy: &Policy) -> Result<(), Error> {
    if policy.client_auth {
        Ok(())
    } else {
        let msg = "this license's policy does not allow client apps to authenticate with it";
        Err(Error::denied("CLIENT_AUTH_DISABLED", msg))
    }
}

/// A client app's license key exists and its policy allows client
/// authentication (one read of the license, the policy from the cache).
/// An unknown key is the same 401 as an unknown tenant.
pub async fn client_gate(
    policies: &Policies,
    ts: &TenantStore,
    id: &LicenseId,
) -> Result<(), Error> {
    let license = ts.get_license(id).await?.ok_or(Error::Unauthenticated)?;
    client_allowed(&*policies.of_license(ts, &license.policy).await?)
}
