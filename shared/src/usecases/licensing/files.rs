//! Offline license files: signed, time-limited, no longer than the policy
//! allows, and bound to an activation (always, for a client app).

use super::{client_allowed, validate};
use crate::cache::{LicenseTerms, Policies};
use crate::domain::*;
use crate::error::{license_not_found, Error};
use crate::ids::{ActivationId, Fingerprint, LicenseKey};
use crate::store::TenantStore;
use serde_json::json;
use time::OffsetDateTime;

/// The shortest and longest offline license file that may be asked for, and
/// the default (each policy caps it further: `max_file_ttl_seconds`).
pub const MIN_FILE_TTL: u32 = bounds::MIN_FILE_TTL_SECONDS;
pub const MAX_FILE_TTL: u32 = bounds::MAX_FILE_TTL_SECONDS;
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
/// it must be activated), expiring after `ttl_seconds` cut to the policy's
/// `max_file_ttl_seconds`, and never after the license itself.
/// `client_only`: the caller is a client app (its key must exist and its
/// policy allow client authentication), which may check out only a file
/// bound to an activated machine: without a fingerprint,
/// [`Error::FingerprintRequired`] (an unbound file would run on any machine).
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
    if client_only && fingerprint.is_none() {
        return Err(Error::FingerprintRequired);
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
    let ttl_seconds = policy.file_ttl(ttl_seconds);
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
            // The seat terms, so that an app knows from the file alone
            // whether it must heartbeat (node-locked with heartbeat_seconds)
            // or hold a lease (floating, renewed within lease_seconds).
            "activation_mode": license.terms.activation_mode,
            "lease_seconds": license.terms.lease_seconds,
            "heartbeat_seconds": license.terms.heartbeat_seconds,
        },
        "activation": activation,
        "issued_at": crate::clock::rfc3339(now),
        "expires_at": crate::clock::rfc3339(expires_at),
        "ttl_seconds": (expires_at - now).whole_seconds(),
    });
    let certificate = sign_license_file(signer.keys, tenant.as_str(), signer.version, &payload);
    Ok(LicenseFile {
        certificate,
        issued_at: now,
        expires_at,
        kid,
    })
}

/// The armored license file of `payload`, signed by tenant `tenant`'s key
/// `version`: `base64url(payload JSON) "." base64url(signature)`, unpadded,
/// the signature over the first part's ASCII text, wrapped at 64 characters
/// between the BEGIN and END lines, each line ending in `\n`.
pub fn sign_license_file(
    keys: &crate::crypto::SigningKeys,
    tenant: &str,
    version: u32,
    payload: &serde_json::Value,
) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let body = URL_SAFE_NO_PAD.encode(payload.to_string());
    let signature = keys.sign(tenant, version, body.as_bytes());
    let text = format!("{body}.{}", URL_SAFE_NO_PAD.encode(signature));
    let mut certificate = String::from("-----BEGIN LICENSE FILE-----\n");
    for line in text.as_bytes().chunks(64) {
        certificate.push_str(&String::from_utf8_lossy(line));
        certificate.push('\n');
    }
    certificate.push_str("-----END LICENSE FILE-----\n");
    certificate
}
