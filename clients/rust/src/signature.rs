//! Signed answers (version 2): every `/v1/integration/...` answer carries
//!
//! ```text
//! X-Signature: keyid="<kid>", algorithm="ed25519", version="2", signature="<base64>"
//! X-Signature-Date: <RFC 3339 time>
//! ```
//!
//! over the message built by [`signed_message`]: the request as sent (method, path and query,
//! tenant, nonce, body) and the answer (date, body). A man in the middle who rewrites the
//! request body and passes the genuine answer on is caught, because the answer no longer
//! verifies against the body the client sent.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::keys::{PinnedKeys, Verified};

/// The name of the signature header.
pub const SIGNATURE_HEADER: &str = "x-signature";
/// The name of the header holding the time the answer was signed.
pub const SIGNATURE_DATE_HEADER: &str = "x-signature-date";
/// The name of the request header carrying the client's nonce.
pub const NONCE_HEADER: &str = "x-nonce";
/// The only signature version this client accepts (`version="2"`); version 1 is retired.
pub const SIGNATURE_VERSION: &str = "2";
/// The first line of a version-2 signed message.
pub const SIGNATURE_CONTEXT: &str = "licensing-signature-v2";
/// How far an answer's `X-Signature-Date` may be from the client's clock, either way
/// (inclusive): an answer dated further off is refused as stale (or from a clock set wrong).
pub const MAX_ANSWER_SKEW: Duration = Duration::minutes(5);

/// The text the service signs for one answer, seven lines joined by `\n` (no trailing newline):
///
/// ```text
/// licensing-signature-v2
/// {METHOD} {path?query}
/// {tenant id}
/// {X-Signature-Date}
/// {X-Nonce, or empty}
/// {hex SHA-256 of the request body as sent (of the empty string when none)}
/// {hex SHA-256 of the response body}
/// ```
///
/// The method is upper-cased; the hashes are lowercase hex.
pub fn signed_message(request: SentRequest<'_>, date: &str, response_body: &[u8]) -> String {
    let method = request.method.to_ascii_uppercase();
    let hash = |bytes: &[u8]| hex::encode(Sha256::digest(bytes));
    format!(
        "{SIGNATURE_CONTEXT}\n{method} {}\n{}\n{date}\n{}\n{}\n{}",
        request.path_and_query,
        request.tenant,
        request.nonce.unwrap_or(""),
        hash(request.body),
        hash(response_body)
    )
}

/// The parameters of an `X-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The id of the key that signed.
    pub kid: String,
    /// The 64-byte Ed25519 signature.
    pub signature: [u8; 64],
}

impl SignatureHeader {
    /// Parses `keyid="v1", algorithm="ed25519", version="2", signature="<base64>"`:
    /// comma-separated `name="value"` pairs in any order; unknown names are ignored, a repeated
    /// name is an error, the algorithm must be `ed25519` and the version `2` (a header without
    /// a version is a retired version-1 signature, refused).
    pub fn parse(header: &str) -> Result<Self, String> {
        let (mut kid, mut algorithm, mut version, mut signature) = (None, None, None, None);
        for part in header.split(',') {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("X-Signature parameter without a value: {part:?}"))?;
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| format!("X-Signature parameter {name} is not quoted"))?;
            let slot = match name.as_str() {
                "keyid" => &mut kid,
                "algorithm" => &mut algorithm,
                "version" => &mut version,
                "signature" => &mut signature,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(format!("X-Signature repeats {name}"));
            }
        }
        let kid = kid.ok_or("X-Signature has no keyid")?;
        let algorithm = algorithm.ok_or("X-Signature has no algorithm")?;
        let version = version.ok_or("X-Signature has no version (version 1 is retired)")?;
        let signature = signature.ok_or("X-Signature has no signature")?;
        if !algorithm.eq_ignore_ascii_case("ed25519") {
            return Err(format!(
                "X-Signature algorithm {algorithm:?} is not ed25519"
            ));
        }
        if version != SIGNATURE_VERSION {
            return Err(format!(
                "X-Signature version {version:?} is not {SIGNATURE_VERSION:?}"
            ));
        }
        if kid.is_empty() {
            return Err("X-Signature has an empty keyid".into());
        }
        let signature = STANDARD
            .decode(signature)
            .ok()
            .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
            .ok_or("X-Signature signature is not the base64 of 64 bytes")?;
        Ok(Self {
            kid: kid.to_owned(),
            signature,
        })
    }
}

/// What was sent, to check an answer against.
#[derive(Debug, Clone, Copy)]
pub struct SentRequest<'a> {
    /// The method, such as `POST`.
    pub method: &'a str,
    /// The path as sent, with `?query` if any.
    pub path_and_query: &'a str,
    /// The tenant the request was made for (`X-Tenant-Id`).
    pub tenant: &'a str,
    /// The `X-Nonce` sent, if any.
    pub nonce: Option<&'a str>,
    /// The exact bytes of the request body sent (empty when none).
    pub body: &'a [u8],
}

/// Checks an answer's signature headers against the request that was sent, and its date
/// against `now`.
///
/// `signature` and `date` are the values of `X-Signature` and `X-Signature-Date` (`None` when
/// absent). The signature must verify (version 2, a pinned key, over the request as sent and
/// the body received), and the date must be RFC 3339 within [`MAX_ANSWER_SKEW`] of `now`,
/// before or after. On failure the reason is returned; the caller must then not use the body.
pub fn verify_answer(
    keys: &PinnedKeys,
    request: SentRequest<'_>,
    signature: Option<&str>,
    date: Option<&str>,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<(), String> {
    let header = signature.ok_or("the answer has no X-Signature")?;
    let date = date.ok_or("the answer has no X-Signature-Date")?;
    let header = SignatureHeader::parse(header)?;
    let message = signed_message(request, date, body);
    match keys.verify(&header.kid, message.as_bytes(), &header.signature) {
        Verified::Yes => fresh(date, now),
        Verified::UnknownKey => Err(format!(
            "the answer is signed by unknown key {:?}",
            header.kid
        )),
        Verified::No => Err(format!(
            "the signature by key {:?} does not verify for {} {} as sent",
            header.kid, request.method, request.path_and_query
        )),
    }
}

/// `date` (an answer's `X-Signature-Date`) within [`MAX_ANSWER_SKEW`] of `now`.
fn fresh(date: &str, now: OffsetDateTime) -> Result<(), String> {
    let signed_at = OffsetDateTime::parse(date, &Rfc3339)
        .map_err(|_| format!("X-Signature-Date {date:?} is not an RFC 3339 time"))?;
    if (now - signed_at).abs() > MAX_ANSWER_SKEW {
        return Err(format!(
            "the answer is dated {date}, more than {} minutes from this machine's clock ({}): \
             a replayed answer, or a clock set wrong",
            MAX_ANSWER_SKEW.whole_minutes(),
            now.format(&Rfc3339).unwrap_or_default()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};
    use time::macros::datetime;

    const DATE: &str = "2026-11-30T12:00:00.000Z";
    const NOW: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

    /// [`super::verify_answer`] at [`NOW`], the answers' date.
    fn verify_answer(
        keys: &PinnedKeys,
        request: SentRequest<'_>,
        signature: Option<&str>,
        date: Option<&str>,
        body: &[u8],
    ) -> Result<(), String> {
        super::verify_answer(keys, request, signature, date, body, NOW)
    }
    const PATH: &str = "/v1/integration/licenses/ABCDE-FGHIJ/validate";
    const TENANT: &str = "acme";
    const NONCE: &str = "6e6f6e63652d6e6f6e6365";
    const SENT: &[u8] = br#"{"fingerprint":"fp-1","product":"desktop"}"#;
    const BODY: &[u8] = br#"{"data":{"valid":true}}"#;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn pinned(kid: &str, key: &SigningKey) -> PinnedKeys {
        let mut keys = PinnedKeys::new();
        keys.pin_key(kid, key.verifying_key());
        keys
    }

    fn header(kid: &str, key: &SigningKey, message: &str) -> String {
        let signature = STANDARD.encode(key.sign(message.as_bytes()).to_bytes());
        format!(r#"keyid="{kid}", algorithm="ed25519", version="2", signature="{signature}""#)
    }

    fn sent<'a>(method: &'a str, path: &'a str, nonce: Option<&'a str>) -> SentRequest<'a> {
        SentRequest {
            method,
            path_and_query: path,
            tenant: TENANT,
            nonce,
            body: SENT,
        }
    }

    /// A header signed for (POST, PATH, TENANT, DATE, NONCE, SENT, BODY) by `key(1)` under `v1`.
    fn good_header() -> String {
        let message = signed_message(sent("POST", PATH, Some(NONCE)), DATE, BODY);
        header("v1", &key(1), &message)
    }

    #[test]
    fn message_format_fixed_vector() {
        // SHA-256 of `{}`, of the empty string and of SENT, written out by hand.
        let expected = "licensing-signature-v2\n\
                        POST /v1/integration/licenses/ABCDE-FGHIJ/validate?x=1\n\
                        acme\n\
                        2026-11-30T12:00:00.000Z\n\
                        abc123\n\
                        e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
                        44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        let path = "/v1/integration/licenses/ABCDE-FGHIJ/validate?x=1";
        let request = SentRequest {
            body: b"",
            ..sent("post", path, Some("abc123"))
        };
        assert_eq!(signed_message(request, DATE, b"{}"), expected);

        let expected = "licensing-signature-v2\n\
                        GET /v1/integration/x\n\
                        acme\n\
                        2026-11-30T12:00:00.000Z\n\
                        \n\
                        44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\n\
                        e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let request = SentRequest {
            body: b"{}",
            ..sent("GET", "/v1/integration/x", None)
        };
        assert_eq!(signed_message(request, DATE, b""), expected);
    }

    /// The worked example of docs/signing.md § 3 (the test-vector key of `acme`, `v1`).
    #[test]
    fn the_documented_worked_example_verifies() {
        let mut keys = PinnedKeys::new();
        keys.pin("v1", "cA2/b97JDlhwYg+C6BEKhY4kD7xZO6FQ32s7CxhvIV0=")
            .unwrap();
        let answer = br#"{"data":{"code":"NOT_FOUND","detail":"No license exists with this key.","license":null,"valid":false},"meta":{"api_version":"v1","request_id":"req_01M8P9E266J9WQ7Z4N2B8C5D6E"}}"#;
        let request = SentRequest {
            method: "POST",
            path_and_query:
                "/v1/integration/licenses/CE0HC-V1MS2-213PG-NXN5R-KSZPX/validate?trace=1",
            tenant: "acme",
            nonce: Some("9b1c3f0e7a2d4c8e"),
            body: br#"{"fingerprint":"8c1f-ann-laptop"}"#,
        };
        let header = r#"keyid="v1", algorithm="ed25519", version="2", signature="J/Y0AqkBK7pWIgQc4tVzL+6Plk/TywqhA8mIe4OqHW+V1pytXhdUe06tSRzY2YOVPCb5+tdE5brkMLG/Jx3cDQ==""#;
        let date = Some("2026-11-30T12:00:00.000Z");
        assert_eq!(
            verify_answer(&keys, request, Some(header), date, answer),
            Ok(())
        );
        let rewritten = SentRequest {
            body: b"{}",
            ..request
        };
        assert!(verify_answer(&keys, rewritten, Some(header), date, answer).is_err());
    }

    #[test]
    fn a_good_signature_verifies() {
        let keys = pinned("v1", &key(1));
        let request = sent("POST", PATH, Some(NONCE));
        assert_eq!(
            verify_answer(&keys, request, Some(&good_header()), Some(DATE), BODY),
            Ok(())
        );
        // The method is compared upper-cased.
        let request = sent("post", PATH, Some(NONCE));
        assert_eq!(
            verify_answer(&keys, request, Some(&good_header()), Some(DATE), BODY),
            Ok(())
        );
    }

    #[test]
    fn any_changed_byte_fails() {
        let keys = pinned("v1", &key(1));
        let header = good_header();
        let check = |request: SentRequest<'_>, date: &str, body: &[u8]| {
            verify_answer(&keys, request, Some(&header), Some(date), body)
        };
        let ok = sent("POST", PATH, Some(NONCE));
        let mut body = BODY.to_vec();
        body[10] ^= 1;
        assert!(check(ok, DATE, &body)
            .unwrap_err()
            .contains("does not verify"));
        assert!(check(ok, "2026-11-30T12:00:01.000Z", BODY).is_err());
        let other_path = PATH.replace("ABCDE", "ABCDF");
        assert!(check(sent("POST", &other_path, Some(NONCE)), DATE, BODY).is_err());
        assert!(check(
            sent("POST", &format!("{PATH}?a=1"), Some(NONCE)),
            DATE,
            BODY
        )
        .is_err());
        assert!(check(sent("POST", PATH, Some("6e6f6e6366")), DATE, BODY).is_err());
        assert!(check(sent("POST", PATH, None), DATE, BODY).is_err());
        assert!(check(sent("PUT", PATH, Some(NONCE)), DATE, BODY).is_err());
        // The request body as sent: a field dropped, or any other body.
        for other in [
            &br#"{"product":"desktop"}"#[..],
            br#"{"fingerprint":"fp-1"}"#,
            br#"{"fingerprint":"fp-2","product":"desktop"}"#,
            br#"{"fingerprint":"fp-1", "product":"desktop"}"#,
            b"",
        ] {
            let rewritten = SentRequest { body: other, ..ok };
            assert!(check(rewritten, DATE, BODY).is_err(), "{other:?}");
        }
        // Another tenant.
        let elsewhere = SentRequest {
            tenant: "acme2",
            ..ok
        };
        assert!(check(elsewhere, DATE, BODY).is_err());
        assert_eq!(check(ok, DATE, BODY), Ok(()));
    }

    #[test]
    fn unknown_kid_and_wrong_key_fail() {
        let request = sent("POST", PATH, Some(NONCE));
        let header = good_header();
        let other_kid = pinned("v2", &key(1));
        let err = verify_answer(&other_kid, request, Some(&header), Some(DATE), BODY);
        assert!(err.unwrap_err().contains("unknown key \"v1\""));
        let wrong_key = pinned("v1", &key(2));
        let err = verify_answer(&wrong_key, request, Some(&header), Some(DATE), BODY);
        assert!(err.unwrap_err().contains("does not verify"));
    }

    #[test]
    fn missing_or_malformed_headers_fail() {
        let keys = pinned("v1", &key(1));
        let request = sent("POST", PATH, Some(NONCE));
        let verify = |sig: Option<&str>, date: Option<&str>| {
            verify_answer(&keys, request, sig, date, BODY).unwrap_err()
        };
        let good = good_header();
        assert!(verify(None, Some(DATE)).contains("no X-Signature"));
        assert!(verify(Some(&good), None).contains("no X-Signature-Date"));
        for bad in [
            "",
            "garbage",
            &good.replace("ed25519", "rsa"),
            &good.replace("keyid=\"v1\", ", ""),
            &good.replace("keyid=\"v1\"", "keyid=v1"),
            &format!("{good}, keyid=\"v1\""),
            &format!("{good}, version=\"2\""),
            r#"keyid="v1", algorithm="ed25519", version="2", signature="AAAA""#,
            r#"keyid="v1", algorithm="ed25519", version="2", signature="!!notbase64!!""#,
        ] {
            assert!(
                verify(Some(bad), Some(DATE)).starts_with("X-Signature"),
                "{bad}"
            );
        }
    }

    #[test]
    fn version_1_and_unknown_versions_are_refused() {
        let keys = pinned("v1", &key(1));
        let request = sent("POST", PATH, Some(NONCE));
        let good = good_header();
        let verify =
            |sig: &str| verify_answer(&keys, request, Some(sig), Some(DATE), BODY).unwrap_err();
        // A version-1 header has no version parameter at all.
        let v1 = good.replace("version=\"2\", ", "");
        assert!(verify(&v1).contains("no version"), "{}", verify(&v1));
        for other in ["1", "3", "", "02"] {
            let header = good.replace("version=\"2\"", &format!("version=\"{other}\""));
            assert!(verify(&header).contains("version"), "{other}");
        }
    }

    #[test]
    fn the_date_must_be_within_five_minutes_of_the_clock() {
        let keys = pinned("v1", &key(1));
        let request = sent("POST", PATH, Some(NONCE));
        let good = good_header();
        let at = |now: OffsetDateTime| {
            super::verify_answer(&keys, request, Some(&good), Some(DATE), BODY, now)
        };
        let five = Duration::minutes(5);
        let ms = Duration::milliseconds(1);
        for now in [NOW, NOW + five, NOW - five] {
            assert_eq!(at(now), Ok(()), "{now}");
        }
        for now in [NOW + five + ms, NOW - five - ms, NOW + Duration::days(1)] {
            assert!(
                at(now).unwrap_err().contains("more than 5 minutes"),
                "{now}"
            );
        }
        // A date that is not RFC 3339 (signed as such) is refused.
        let odd = "Mon, 30 Nov 2026 12:00:00 GMT";
        let message = signed_message(request, odd, BODY);
        let odd_header = header("v1", &key(1), &message);
        let err = super::verify_answer(&keys, request, Some(&odd_header), Some(odd), BODY, NOW);
        assert!(err.unwrap_err().contains("not an RFC 3339"));
    }

    #[test]
    fn header_parameters_in_any_order_with_extras() {
        let good = SignatureHeader::parse(&good_header()).unwrap();
        let signature = STANDARD.encode(good.signature);
        let reordered = format!(
            r#"signature="{signature}",version="2",algorithm="Ed25519" , extra="x",keyid="v1""#
        );
        assert_eq!(SignatureHeader::parse(&reordered), Ok(good));
    }
}
