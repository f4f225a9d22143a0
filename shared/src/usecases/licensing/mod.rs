//! Licenses: validation and the client gate here; seats (activate,
//! deactivate, heartbeat), issuing and reading, the lifecycle and PATCH, and
//! offline license files in their own modules, re-exported here.

mod files;
mod issue;
mod lifecycle;
mod seats;

pub use files::{
    checkout, sign_license_file, FileSigner, LicenseFile, DEFAULT_FILE_TTL, FILE_FORMAT,
    MAX_FILE_TTL, MIN_FILE_TTL,
};
pub use issue::{activations, by_email, get, issue, search, GrantTo, NewLicense};
pub use lifecycle::{
    lifecycle, patch_license, InheritWord, LicensePatch, Lifecycle, OverrideChange, RenewTo,
    MAX_RENEW_DAYS,
};
pub use seats::{
    activate, activation_not_found, deactivate, heartbeat, ActivationRef, NewActivation,
};

use crate::cache::{LicenseTerms, Policies};
use crate::domain::seats::LiveLeases;
use crate::domain::*;
use crate::error::Error;
use crate::ids::{FingerprintDigest, LicenseId, LicenseKey};
use crate::store::licenses::LicenseRead;
use crate::store::TenantStore;
use std::sync::Arc;
use time::OffsetDateTime;

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
    /// With its policy (cached) and the counters of its metered
    /// entitlements' current periods (read by key, none when it has none).
    async fn of(
        policies: &Policies,
        ts: &TenantStore,
        license: License,
        leases: LiveLeases,
        now: OffsetDateTime,
    ) -> Result<Self, Error> {
        let policy = policies.get(ts, &license.policy).await?;
        // The current periods' counters (one more read, only for licenses
        // with metered entitlements).
        let usage = match &policy {
            Some(p) => {
                let specs = license.effective_entitlements(p);
                ts.current_usage(&license.id, &specs, now).await?
            }
            None => Default::default(),
        };
        Ok(Self {
            license,
            policy,
            usage,
            leases,
        })
    }
}

/// One query of the license partition's live range (plus the policy,
/// cached, and, for a license with metered entitlements, one read of their
/// current counters).
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
        leases,
    } = ts.read_license(&id, digest.as_ref(), now).await?;
    let Some(license) = license else {
        let code = ValidationCode::NotFound;
        return Ok(Validation {
            code,
            license: None,
            policy: None,
            usage: UsageSnapshot::new(),
            leases,
        });
    };
    terms.remember(ts.tenant_id(), &license.id, license.terms);
    let policy = policies.of_license(ts, &license.policy).await?;
    let code = evaluate(&license, &policy, activation.as_ref(), &scope, now);
    let specs = license.effective_entitlements(&policy);
    let usage = ts.current_usage(&license.id, &specs, now).await?;
    Ok(Validation {
        code,
        license: Some(license),
        policy: Some(policy),
        usage,
        leases,
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

/// May a client app, authenticated by the license key of `own`, act on the
/// license `named`? (`None`: the request names nothing its key could be —
/// a path key that cannot be a license key, or a trial.)
///
/// Its own license: yes, once its key is proven to exist and its policy
/// allows client apps — by one read here or, with `proven_later`, by the
/// operation's own read of the license. Anything else is 403
/// `LICENSE_SCOPE_MISMATCH`, but only for a key proven first to exist: an
/// unknown key, or another tenant's, is the same 401 whatever the request
/// names, so a 403 never tells a caller that a key it made up is taken.
pub async fn client_scope(
    policies: &Policies,
    ts: &TenantStore,
    own: &LicenseId,
    named: Option<&LicenseId>,
    proven_later: bool,
) -> Result<(), Error> {
    match named {
        Some(n) if n == own && proven_later => Ok(()),
        Some(n) if n == own => client_gate(policies, ts, own).await,
        _ => {
            client_gate(policies, ts, own).await?;
            Err(Error::denied(
                "LICENSE_SCOPE_MISMATCH",
                "this license key may act only on its own license",
            ))
        }
    }
}
