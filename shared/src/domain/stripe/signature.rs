//! Stripe's webhook signature scheme (`Stripe-Signature: t=..,v1=..`):
//! pure functions, no I/O.

use crate::crypto::{constant_time_eq, hmac_sha256};
use crate::error::Error;

/// Stripe's default tolerance between the signed timestamp and now.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// Verify `Stripe-Signature: t=...,v1=...[,v1=...]` over the raw body:
/// HMAC-SHA256(secret, "{t}.{body}"), any `v1` may match (secret rotation),
/// compared in constant time, `t` within [`SIGNATURE_TOLERANCE_SECS`] of now.
pub fn verify_signature(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now_epoch: i64,
) -> Result<(), Error> {
    let header = header.ok_or(Error::InvalidSignature)?;
    let mut timestamp: Option<&str> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        match k {
            "t" if timestamp.is_none() => timestamp = Some(v),
            "v1" => {
                if let Ok(sig) = hex::decode(v) {
                    signatures.push(sig);
                }
            }
            _ => {}
        }
    }
    let t = timestamp.ok_or(Error::InvalidSignature)?;
    let at: i64 = t.parse().map_err(|_| Error::InvalidSignature)?;
    if signatures.is_empty() || now_epoch.abs_diff(at) > SIGNATURE_TOLERANCE_SECS.unsigned_abs() {
        return Err(Error::InvalidSignature);
    }
    let expected = hmac_sha256(secret.as_bytes(), &[t.as_bytes(), b".", body]);
    // Compare against every candidate, so timing does not reveal which matched.
    let mut ok = false;
    for sig in &signatures {
        ok |= constant_time_eq(&expected, sig);
    }
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSignature)
    }
}

/// The header Stripe would send for `body` at `t` (tests and tools).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let ts = t.to_string();
    format!(
        "t={ts},v1={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &[ts.as_bytes(), b".", body]))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_per_stripes_scheme() {
        let body = br#"{"id":"evt_1","type":"x","created":1,"data":{"object":{}}}"#;
        let secret = "whsec_test_0123456789abcdef";
        let now = 1_800_000_000;
        let h = sign(secret, now, body);
        assert!(verify_signature(secret, Some(&h), body, now).is_ok());
        // Any of several v1 values; other schemes are ignored.
        let multi = format!(
            "t={now},v0=abc,v1={},v1={}",
            "00".repeat(32),
            &h[h.find("v1=").unwrap() + 3..]
        );
        assert!(verify_signature(secret, Some(&multi), body, now).is_ok());
        // Tolerance: 300 s either way.
        assert!(verify_signature(secret, Some(&h), body, now + 300).is_ok());
        assert!(verify_signature(secret, Some(&h), body, now + 301).is_err());
        assert!(verify_signature(secret, Some(&h), body, now - 301).is_err());
        // Wrong secret, changed body, missing parts, garbage.
        assert!(verify_signature("whsec_other_0123456789", Some(&h), body, now).is_err());
        assert!(verify_signature(secret, Some(&h), b"{}", now).is_err());
        assert!(verify_signature(secret, None, body, now).is_err());
        assert!(verify_signature(secret, Some(&format!("t={now}")), body, now).is_err());
        assert!(verify_signature(secret, Some(&h.replace("t=", "x=")), body, now).is_err());
        assert!(verify_signature(secret, Some("garbage"), body, now).is_err());
        assert!(verify_signature(secret, Some(&format!("t={now},v1=zz")), body, now).is_err());
    }

    #[test]
    fn extreme_timestamps_are_refused_not_overflowed() {
        let body = b"{}";
        let secret = "whsec_test_0123456789abcdef";
        for t in [i64::MIN, i64::MAX, -1] {
            let h = format!("t={t},v1=00");
            assert!(verify_signature(secret, Some(&h), body, 1_800_000_000).is_err());
            assert!(verify_signature(secret, Some(&h), body, i64::MIN).is_err());
        }
    }
}
