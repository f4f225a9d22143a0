//! Offline license files.
//!
//! ```text
//! -----BEGIN LICENSE FILE-----
//! base64url(payload JSON) "." base64url(Ed25519 signature over the first part's ASCII bytes)
//! -----END LICENSE FILE-----
//! ```
//!
//! Inside the armor all whitespace is ignored; base64url is the URL-safe alphabet without
//! padding. The payload names the signing key (`kid`), the tenant, the license, the activation
//! it is bound to (if any) and its validity window.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use crate::error::FileError;
use crate::keys::{PinnedKeys, Verified};
use crate::types::License;

/// The first line of a license file's armor.
pub const BEGIN: &str = "-----BEGIN LICENSE FILE-----";
/// The last line of a license file's armor.
pub const END: &str = "-----END LICENSE FILE-----";
/// The only payload format this client reads.
pub const FORMAT: &str = "licensing-file/v1";
/// How far in the future `issued_at` may be (clock skew between the service and the machine).
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

/// A verified license file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LicenseFile {
    /// The payload format, `licensing-file/v1`.
    pub format: String,
    /// The tenant that issued it.
    pub tenant_id: String,
    /// The id of the key that signed it.
    pub kid: String,
    /// The license as it was at checkout.
    pub license: License,
    /// The activation the file is bound to; `None` for a file usable on any machine.
    #[serde(default)]
    pub activation: Option<FileActivation>,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// When it stops being valid (never later than the license's own expiry).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The validity that was asked for, in seconds.
    #[serde(default)]
    pub ttl_seconds: Option<i64>,
    /// The armored text this was read from.
    #[serde(skip)]
    certificate: String,
}

impl LicenseFile {
    /// The armored text the file was read from, to store or show as is.
    pub fn certificate(&self) -> &str {
        &self.certificate
    }
}

/// The activation a license file is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FileActivation {
    /// The activation id.
    pub id: String,
    /// The machine fingerprint it was activated with.
    pub fingerprint: String,
}

/// Only the key id, read before the signature is checked, to pick the key.
#[derive(Deserialize)]
struct KeyId {
    kid: String,
}

/// Verifies a license file offline against the pinned keys.
///
/// In order: the armor and the `payload.signature` shape ([`FileError::Malformed`]); the
/// payload's `kid` among `keys` ([`FileError::UnknownKey`]); the Ed25519 signature over the
/// base64url payload text ([`FileError::BadSignature`]); the payload's `format`
/// ([`FileError::UnsupportedFormat`]); its `tenant_id` against `expected_tenant`
/// ([`FileError::WrongTenant`]); `now` before `expires_at` and before the license's own
/// `expires_at` ([`FileError::Expired`]); `issued_at` at most five minutes after `now`
/// ([`FileError::NotYetValid`]); and, when `fingerprint` is given, that the file is bound to an
/// activation ([`FileError::Unbound`]) of that fingerprint ([`FileError::WrongFingerprint`]).
/// Without a fingerprint any file that verifies is accepted, bound or not.
///
/// Nothing of the payload but its `kid` is read before the signature has been verified.
pub fn verify_license_file(
    text: &str,
    keys: &PinnedKeys,
    expected_tenant: &str,
    fingerprint: Option<&str>,
    now: OffsetDateTime,
) -> Result<LicenseFile, FileError> {
    let malformed = |why: &str| FileError::Malformed(why.to_owned());
    let body = unarmor(text)?;
    let (payload_b64, signature_b64) = body
        .split_once('.')
        .ok_or_else(|| malformed("no '.' between payload and signature"))?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| malformed("the payload is not unpadded base64url"))?;
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| malformed("the signature is not unpadded base64url"))?
        .try_into()
        .map_err(|_| malformed("the signature is not 64 bytes"))?;
    let KeyId { kid } = serde_json::from_slice(&payload)
        .map_err(|e| FileError::Malformed(format!("payload without a kid: {e}")))?;

    match keys.verify(&kid, payload_b64.as_bytes(), &signature) {
        Verified::Yes => {}
        Verified::UnknownKey => return Err(FileError::UnknownKey(kid)),
        Verified::No => return Err(FileError::BadSignature),
    }

    let mut file: LicenseFile = serde_json::from_slice(&payload)
        .map_err(|e| FileError::Malformed(format!("payload: {e}")))?;
    if file.format != FORMAT {
        return Err(FileError::UnsupportedFormat(file.format));
    }
    if file.tenant_id != expected_tenant {
        return Err(FileError::WrongTenant {
            expected: expected_tenant.to_owned(),
            found: file.tenant_id,
        });
    }
    let expires_at = match file.license.expires_at {
        Some(license_expiry) => file.expires_at.min(license_expiry),
        None => file.expires_at,
    };
    if now >= expires_at {
        return Err(FileError::Expired(expires_at));
    }
    if file.issued_at > now + MAX_CLOCK_SKEW {
        return Err(FileError::NotYetValid(file.issued_at));
    }
    if let Some(wanted) = fingerprint {
        match &file.activation {
            None => return Err(FileError::Unbound),
            Some(bound)
                if normalise_fingerprint(wanted) != normalise_fingerprint(&bound.fingerprint) =>
            {
                return Err(FileError::WrongFingerprint)
            }
            Some(_) => {}
        }
    }
    file.certificate = text.to_owned();
    Ok(file)
}

/// The service's normal form of a fingerprint (NFKC, hyphen look-alikes as
/// `-`, lowercase, trimmed): a file bound to `Büro-PC ` is this machine's
/// when it asks as `büro-pc`. The same rule as the service's, so a file
/// binds the machine however its fingerprint was written.
pub fn normalise_fingerprint(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let hyphen_like = |c: char| {
        matches!(
            c,
            '\u{2010}'..='\u{2013}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}'
        )
    };
    let mapped: String = s
        .nfkc()
        .map(|c| if hyphen_like(c) { '-' } else { c })
        .collect::<String>()
        .to_lowercase();
    let composed: String = mapped.nfkc().collect();
    composed.trim().to_string()
}

/// The text between the armor lines, with every whitespace character removed.
fn unarmor(text: &str) -> Result<String, FileError> {
    let mut lines = text.lines().map(str::trim);
    if !lines.by_ref().any(|line| line == BEGIN) {
        return Err(FileError::Malformed(format!("no {BEGIN} line")));
    }
    let mut body = String::new();
    for line in lines {
        if line == END {
            return Ok(body);
        }
        body.extend(line.chars().filter(|c| !c.is_whitespace()));
    }
    Err(FileError::Malformed(format!("no {END} line")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};
    use serde_json::json;
    use time::macros::datetime;

    pub(crate) const TENANT: &str = "acme";
    pub(crate) const NOW: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

    pub(crate) fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    pub(crate) fn pinned(kid: &str, key: &SigningKey) -> PinnedKeys {
        let mut keys = PinnedKeys::new();
        keys.pin_key(kid, key.verifying_key());
        keys
    }

    /// A payload exactly per the format: issued an hour before [`NOW`], valid for a day,
    /// bound to fingerprint `fp-1`.
    pub(crate) fn payload() -> serde_json::Value {
        json!({
            "format": "licensing-file/v1",
            "tenant_id": TENANT,
            "kid": "v1",
            "license": {
                "id": "lic_1", "key": "ABCDE-FGHIJ", "status": "active", "product": "desktop",
                "policy": "pol_1", "expires_at": null, "seats": { "limit": 3 },
                "entitlements": { "export-4k": { "type": "boolean" } }
            },
            "activation": { "id": "act_1", "fingerprint": "fp-1" },
            "issued_at": "2026-11-30T11:00:00.000Z",
            "expires_at": "2026-12-01T11:00:00.000Z",
            "ttl_seconds": 86400
        })
    }

    /// Signs `payload` with `key` and armors it, wrapping the body at 64 columns.
    pub(crate) fn license_file(payload: &serde_json::Value, key: &SigningKey) -> String {
        let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
        let signature = URL_SAFE_NO_PAD.encode(key.sign(payload.as_bytes()).to_bytes());
        armor(&format!("{payload}.{signature}"))
    }

    fn armor(body: &str) -> String {
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|chunk| std::str::from_utf8(chunk).unwrap())
            .collect();
        format!("{BEGIN}\n{}\n{END}\n", lines.join("\n"))
    }

    fn verify(
        text: &str,
        keys: &PinnedKeys,
        fingerprint: Option<&str>,
    ) -> Result<LicenseFile, FileError> {
        verify_license_file(text, keys, TENANT, fingerprint, NOW)
    }

    #[test]
    fn a_good_file_verifies() {
        let text = license_file(&payload(), &key(1));
        let file = verify(&text, &pinned("v1", &key(1)), Some("fp-1")).unwrap();
        assert_eq!(file.tenant_id, TENANT);
        assert_eq!(file.license.key, "ABCDE-FGHIJ");
        assert_eq!(file.license.seats.limit, Some(3));
        assert!(file.license.has_entitlement("export-4k"));
        assert_eq!(file.activation.as_ref().unwrap().id, "act_1");
        assert_eq!(file.expires_at, datetime!(2026-12-01 11:00 UTC));
        assert_eq!(file.ttl_seconds, Some(86400));
        assert_eq!(file.certificate(), text);
        // No fingerprint to compare: a bound file still verifies.
        assert!(verify(&text, &pinned("v1", &key(1)), None).is_ok());
    }

    #[test]
    fn whitespace_and_surrounding_text_are_ignored() {
        let text = license_file(&payload(), &key(1));
        // CRLF line ends, indented lines, blanks inside a line, text around the armor.
        let mut spaced = text.replace('\n', "\r\n \t");
        spaced.insert_str(BEGIN.len() + 20, " \t ");
        let spaced = format!("Your license:\r\n\r\n  {spaced}\r\n-- thanks\r\n");
        assert!(
            verify(&spaced, &pinned("v1", &key(1)), Some("fp-1")).is_ok(),
            "{spaced}"
        );
    }

    #[test]
    fn an_unbound_file_is_refused_for_a_machine() {
        let mut p = payload();
        p["activation"] = serde_json::Value::Null;
        let text = license_file(&p, &key(1));
        let keys = pinned("v1", &key(1));
        for fingerprint in ["fp-1", "any"] {
            let err = verify(&text, &keys, Some(fingerprint)).unwrap_err();
            assert_eq!(err, FileError::Unbound, "{fingerprint}");
        }
        // Without a fingerprint to compare, it verifies (the operator's CLI reads such files).
        let file = verify(&text, &keys, None).unwrap();
        assert_eq!(file.activation, None);
        // A payload without the field at all is unbound too.
        p.as_object_mut().unwrap().remove("activation");
        let text = license_file(&p, &key(1));
        assert_eq!(
            verify(&text, &keys, Some("fp-1")).unwrap_err(),
            FileError::Unbound
        );
    }

    #[test]
    fn a_bound_file_is_this_machines_however_its_fingerprint_is_written() {
        let mut p = payload();
        p["activation"]["fingerprint"] = json!("büro-pc 1");
        let text = license_file(&p, &key(1));
        let keys = pinned("v1", &key(1));
        for alike in ["BÜRO-PC 1 ", "bu\u{308}ro\u{2011}pc\u{a0}1", "büro-pc 1"] {
            assert!(verify(&text, &keys, Some(alike)).is_ok(), "{alike:?}");
        }
        assert_eq!(
            verify(&text, &keys, Some("büro-pc 2")),
            Err(FileError::WrongFingerprint)
        );
        // An older file bound to a fingerprint as the app first wrote it.
        p["activation"]["fingerprint"] = json!("Büro-PC 1 ");
        let text = license_file(&p, &key(1));
        assert!(verify(&text, &keys, Some("büro-pc 1")).is_ok());
    }

    #[test]
    fn unknown_kid() {
        let text = license_file(&payload(), &key(1));
        let err = verify(&text, &pinned("v2", &key(1)), None).unwrap_err();
        assert_eq!(err, FileError::UnknownKey("v1".into()));
    }

    #[test]
    fn wrong_key() {
        let text = license_file(&payload(), &key(2));
        assert_eq!(
            verify(&text, &pinned("v1", &key(1)), None),
            Err(FileError::BadSignature)
        );
    }

    #[test]
    fn tampered_payload() {
        let text = license_file(&payload(), &key(1));
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let (_, signature) = body.split_once('.').unwrap();
        let mut forged = payload();
        forged["license"]["seats"]["limit"] = json!(1000);
        let forged_payload = URL_SAFE_NO_PAD.encode(forged.to_string());
        let forged = armor(&format!("{forged_payload}.{signature}"));
        assert_eq!(
            verify(&forged, &pinned("v1", &key(1)), None),
            Err(FileError::BadSignature)
        );

        // One flipped character of the armored payload.
        let i = BEGIN.len() + 10;
        let mut bytes = text.into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        let err = verify(&flipped, &pinned("v1", &key(1)), None).unwrap_err();
        assert!(
            matches!(err, FileError::BadSignature | FileError::Malformed(_)),
            "{err:?}"
        );
    }

    #[test]
    fn expired() {
        let text = license_file(&payload(), &key(1));
        let keys = pinned("v1", &key(1));
        let at = datetime!(2026-12-01 11:00 UTC);
        let err = verify_license_file(&text, &keys, TENANT, None, at).unwrap_err();
        assert_eq!(err, FileError::Expired(at));
        let just_before = at - Duration::milliseconds(1);
        assert!(verify_license_file(&text, &keys, TENANT, None, just_before).is_ok());
    }

    #[test]
    fn expired_license_inside_a_valid_file() {
        let mut p = payload();
        p["license"]["expires_at"] = json!("2026-11-30T11:30:00Z");
        let text = license_file(&p, &key(1));
        let err = verify(&text, &pinned("v1", &key(1)), None).unwrap_err();
        assert_eq!(err, FileError::Expired(datetime!(2026-11-30 11:30 UTC)));
    }

    #[test]
    fn issued_in_the_future() {
        let mut p = payload();
        p["issued_at"] = json!("2026-11-30T12:05:01Z");
        let text = license_file(&p, &key(1));
        let err = verify(&text, &pinned("v1", &key(1)), None).unwrap_err();
        assert_eq!(
            err,
            FileError::NotYetValid(datetime!(2026-11-30 12:05:01 UTC))
        );
        // Within the five minutes of tolerated skew.
        p["issued_at"] = json!("2026-11-30T12:05:00Z");
        let text = license_file(&p, &key(1));
        assert!(verify(&text, &pinned("v1", &key(1)), None).is_ok());
    }

    #[test]
    fn wrong_fingerprint() {
        let text = license_file(&payload(), &key(1));
        let err = verify(&text, &pinned("v1", &key(1)), Some("fp-2")).unwrap_err();
        assert_eq!(err, FileError::WrongFingerprint);
    }

    #[test]
    fn wrong_tenant() {
        let text = license_file(&payload(), &key(1));
        let err = verify_license_file(&text, &pinned("v1", &key(1)), "other", None, NOW);
        let expected = FileError::WrongTenant {
            expected: "other".into(),
            found: TENANT.into(),
        };
        assert_eq!(err.unwrap_err(), expected);
    }

    #[test]
    fn unsupported_format() {
        let mut p = payload();
        p["format"] = json!("licensing-file/v2");
        let text = license_file(&p, &key(1));
        let err = verify(&text, &pinned("v1", &key(1)), None).unwrap_err();
        assert_eq!(
            err,
            FileError::UnsupportedFormat("licensing-file/v2".into())
        );
    }

    #[test]
    fn malformed() {
        let keys = pinned("v1", &key(1));
        let good = license_file(&payload(), &key(1));
        let body: String = good.lines().filter(|l| !l.starts_with("-----")).collect();
        let (payload_b64, signature_b64) = body.split_once('.').unwrap();
        let padded = URL_SAFE_NO_PAD.encode([0u8; 64]) + "==";
        let not_json = URL_SAFE_NO_PAD.encode("not json");
        let cases = [
            body.clone(),
            good.replace(END, ""),
            armor(payload_b64),
            armor(&format!("{payload_b64}.{signature_b64}.x")),
            armor(&format!("{payload_b64}.{padded}")),
            armor(&format!(
                "{payload_b64}.{}",
                URL_SAFE_NO_PAD.encode([0u8; 63])
            )),
            armor(&format!("+{payload_b64}.{signature_b64}")),
            armor(&format!("{not_json}.{signature_b64}")),
        ];
        for text in cases {
            let err = verify(&text, &keys, None).unwrap_err();
            assert!(matches!(err, FileError::Malformed(_)), "{text}: {err:?}");
        }
    }

    #[test]
    fn a_signed_payload_missing_fields_is_malformed() {
        let mut p = payload();
        p.as_object_mut().unwrap().remove("expires_at");
        let text = license_file(&p, &key(1));
        let err = verify(&text, &pinned("v1", &key(1)), None).unwrap_err();
        assert!(
            matches!(err, FileError::Malformed(ref m) if m.contains("expires_at")),
            "{err:?}"
        );
    }
}
