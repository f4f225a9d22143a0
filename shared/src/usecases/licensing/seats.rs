//! Seats: take one (node-locked activation or floating lease), free one,
//! and heartbeats.

use crate::cache::LicenseTerms;
use crate::domain::*;
use crate::error::{license_not_found, Error};
use crate::ids::{ActivationId, Fingerprint, LicenseId, LicenseKey};
use crate::store::licenses::{ActivateOutcome, DeactivateOutcome, HeartbeatOutcome};
use crate::store::TenantStore;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

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
    let activation = Activation::new(
        &license_id,
        req.fingerprint,
        req.name,
        req.hostname,
        req.metadata,
        now,
    );
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
