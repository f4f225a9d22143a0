//! `POST /v1/integration/trials`: a trial license of a product, activated on
//! the requesting device, once per customer e-mail and per device within the
//! product's cooldown.

use crate::cache::Policies;
use crate::clock::{add_days, rfc3339};
use crate::domain::*;
use crate::error::{trial_not_available, Error};
use crate::ids::{Email, Fingerprint, FingerprintDigest, ProductCode};
use crate::store::trials::TrialStart;
use crate::store::TenantStore;
use serde_json::{json, Map};
use time::OffsetDateTime;

pub struct TrialRequest {
    pub product: ProductCode,
    pub customer_email: Email,
    pub fingerprint: Fingerprint,
}

/// Who asks for the trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialCaller {
    /// An integration API key.
    Key,
    /// No credential (`X-Tenant-Id` only): only for public trials.
    Public,
}

/// The new trial license and its activation.
pub struct Trial {
    pub license: License,
    pub policy: std::sync::Arc<Policy>,
    pub activation: Activation,
}

pub async fn start(
    policies: &Policies,
    ts: &TenantStore,
    actor: &Actor,
    caller: TrialCaller,
    req: TrialRequest,
    now: OffsetDateTime,
) -> Result<Trial, Error> {
    let settings = ts.get_product(&req.product).await?.and_then(|p| p.trial);
    let settings = match (caller, settings) {
        (TrialCaller::Public, Some(s)) if s.public => s,
        // Without a credential only a public trial answers: anything else is
        // the same 401, so it tells nothing about the tenant's products.
        (TrialCaller::Public, _) => return Err(Error::Unauthenticated),
        (TrialCaller::Key, Some(s)) => s,
        (TrialCaller::Key, None) => return Err(trial_not_available()),
    };
    // Trial policies belong to the product (checked when set) and are never
    // deleted; a missing one is a broken reference, not the caller's fault.
    let policy = policies
        .get(ts, &settings.policy)
        .await?
        .ok_or_else(trial_not_available)?;
    if policy.max_activations == 0 {
        return Err(Error::TooManyActivations { limit: 0 });
    }
    let mut metadata = Map::new();
    metadata.insert("trial".into(), json!(true));
    let mut license = License::issue(LicenseDraft {
        tenant: ts.tenant_id(),
        policy: &policy,
        key: None,
        customer_email: req.customer_email.clone(),
        status: LicenseStatus::Active,
        expires_at: Some(add_days(now, settings.days)?),
        grace_until: None,
        metadata,
        stripe: StripeLink::default(),
        stripe_event_at: 0,
        now,
    })?;
    // The activation below holds the license's first seat.
    license.seats_used = 1;
    let mut activation = Activation::new(
        &license.id,
        req.fingerprint.clone(),
        None,
        None,
        Map::new(),
        now,
    );
    if let Some(lease) = license.terms.lease() {
        activation.lease_seconds = Some(lease);
        activation.lease_expires_epoch = Some(now.unix_timestamp() + i64::from(lease));
    }
    let cooldown_until = add_days(now, settings.cooldown_days)?;
    let claim = TrialClaim {
        product: req.product.clone(),
        license_id: license.id.clone(),
        started_at: now,
        cooldown_until,
        cooldown_epoch: cooldown_until.unix_timestamp(),
    };
    let t = ts.tenant_id();
    let trial_audit = actor
        .audit(t, AuditCode::TrialStarted, license.id.as_str(), now)
        .with_data(json!({
            "product": req.product,
            "policy": license.policy,
            "customer_email": license.customer_email,
            "activation_id": activation.id,
            "expires_at": license.expires_at.map(rfc3339),
            "public": caller == TrialCaller::Public,
        }));
    let license_audit = actor
        .audit(t, AuditCode::LicenseCreated, license.id.as_str(), now)
        .with_data(json!({
            "policy": license.policy,
            "customer_email": license.customer_email,
            "trial": true,
        }));
    let activation_audit = actor
        .audit(t, AuditCode::ActivationCreated, activation.id.as_str(), now)
        .with_data(json!({ "license_id": license.id, "fingerprint": activation.fingerprint }));
    let fingerprint = FingerprintDigest::of(&req.fingerprint);
    ts.start_trial(
        &TrialStart {
            email: &req.customer_email,
            fingerprint: &fingerprint,
            claim: &claim,
            license: &license,
            activation: &activation,
            audits: [&trial_audit, &license_audit, &activation_audit],
        },
        now,
    )
    .await?;
    Ok(Trial {
        license,
        policy,
        activation,
    })
}
