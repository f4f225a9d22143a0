//! HMAC-SHA256 where the service uses it (API-key hashing with the pepper,
//! cursor signing, Stripe signatures) and the tenants' Ed25519 answer and
//! license-file signing keys.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The API-key pepper, read from Secrets Manager once per cold start.
#[derive(Clone)]
pub struct Pepper(Vec<u8>);

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(***)")
    }
}

impl Pepper {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }
    /// hex(HMAC-SHA256(pepper, secret)): what an API key record stores.
    pub fn hash(&self, secret: &[u8]) -> String {
        hex::encode(hmac_sha256(&self.0, &[secret]))
    }
    /// Constant-time comparison of a presented secret with a stored hash.
    pub fn verify(&self, secret: &[u8], stored_hex: &str) -> bool {
        let Ok(stored) = hex::decode(stored_hex) else {
            return false;
        };
        constant_time_eq(&hmac_sha256(&self.0, &[secret]), &stored)
    }
}

/// Signs opaque tokens (list cursors) so a client can neither forge nor
/// carry one across tenants or listings.
#[derive(Clone)]
pub struct Signer(Vec<u8>);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(***)")
    }
}

impl Signer {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self(key.into())
    }
    pub fn sign(&self, parts: &[&[u8]]) -> String {
        hex::encode(&hmac_sha256(&self.0, parts)[..16])
    }
    pub fn verify(&self, parts: &[&[u8]], sig_hex: &str) -> bool {
        constant_time_eq(self.sign(parts).as_bytes(), sig_hex.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pepper_hash_verifies() {
        let p = Pepper::new(b"pepper".to_vec());
        let h = p.hash(b"secret");
        assert!(p.verify(b"secret", &h));
        assert!(!p.verify(b"secret2", &h));
        assert!(!Pepper::new(b"other".to_vec()).verify(b"secret", &h));
        assert!(!p.verify(b"secret", "zz"));
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

/// The master secret every tenant's Ed25519 signing keys derive from:
/// version `v` of tenant `t`'s key is the Ed25519 key whose 32-byte seed is
/// HMAC-SHA256(master, "licensing/ed25519" ‖ 0 ‖ t ‖ 0 ‖ v). The same in
/// every instance, never stored, never logged; rotating a tenant's key moves
/// it to the next version (`docs/signing.md`).
pub struct SigningKeys {
    master: Vec<u8>,
    derived: moka::sync::Cache<(String, u32), std::sync::Arc<ed25519_dalek::SigningKey>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeys(***)")
    }
}

impl SigningKeys {
    pub fn new(master: impl Into<Vec<u8>>) -> Self {
        Self {
            master: master.into(),
            derived: moka::sync::Cache::new(10_000),
        }
    }

    fn key(&self, tenant: &str, version: u32) -> std::sync::Arc<ed25519_dalek::SigningKey> {
        self.derived.get_with((tenant.to_string(), version), || {
            let seed = hmac_sha256(
                &self.master,
                &[
                    b"licensing/ed25519",
                    b"\0",
                    tenant.as_bytes(),
                    b"\0",
                    &version.to_be_bytes(),
                ],
            );
            std::sync::Arc::new(ed25519_dalek::SigningKey::from_bytes(&seed))
        })
    }

    /// The Ed25519 signature of `message` by tenant `tenant`'s key `version`.
    pub fn sign(&self, tenant: &str, version: u32, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.key(tenant, version).sign(message).to_bytes()
    }

    /// The `X-Signature` header value of an answer to `exchange`, signed by
    /// tenant `tenant`'s key `version` (signature version 2): `keyid`,
    /// `algorithm`, `version` and `signature`, in that order.
    pub fn answer_signature(&self, tenant: &str, version: u32, exchange: &Exchange<'_>) -> String {
        use base64::Engine as _;
        let message = answer_message(exchange);
        let signature = self.sign(tenant, version, message.as_bytes());
        format!(
            "keyid=\"{}\", algorithm=\"ed25519\", version=\"{}\", signature=\"{}\"",
            kid(version),
            SIGNATURE_VERSION,
            base64::engine::general_purpose::STANDARD.encode(signature)
        )
    }

    /// The public half of tenant `tenant`'s key `version`.
    pub fn public_key(&self, tenant: &str, version: u32) -> [u8; 32] {
        self.key(tenant, version).verifying_key().to_bytes()
    }
}

/// The key id of a tenant's signing key version: `v1`, `v2`, …
pub fn kid(version: u32) -> String {
    format!("v{version}")
}

/// The version of the signed-answer format the service writes (the
/// `version` parameter of `X-Signature`). Version 1 is retired.
pub const SIGNATURE_VERSION: &str = "2";

/// The first line of every version-2 signed message.
pub const SIGNATURE_CONTEXT: &str = "licensing-signature-v2";

/// One request and its answer, as a signed answer's signature covers them.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The request method, upper case.
    pub method: &'a str,
    /// The path as sent, with `?` and the query string when there is one.
    pub path: &'a str,
    /// The tenant the request was made for (whose key signs).
    pub tenant: &'a str,
    /// The answer's `X-Signature-Date`.
    pub date: &'a str,
    /// The request's `X-Nonce`, or empty.
    pub nonce: &'a str,
    /// The request body as received (empty when none).
    pub request_body: &'a [u8],
    /// The answer's body as sent.
    pub response_body: &'a [u8],
}

/// The message a signed answer's signature covers (version 2): seven lines
/// joined by `\n`, no trailing newline — [`SIGNATURE_CONTEXT`], method and
/// path as sent (with the query string), the tenant, the answer's date, the
/// request's nonce (or empty), and the lowercase hex SHA-256 of the request
/// body and of the answer's body. The request body is covered so that a man
/// in the middle cannot rewrite what was asked (drop a fingerprint, a
/// product) and pass the genuine answer on.
pub fn answer_message(e: &Exchange<'_>) -> String {
    format!(
        "{SIGNATURE_CONTEXT}\n{} {}\n{}\n{}\n{}\n{}\n{}",
        e.method,
        e.path,
        e.tenant,
        e.date,
        e.nonce,
        sha256_hex(e.request_body),
        sha256_hex(e.response_body)
    )
}

#[cfg(test)]
mod signing_tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn keys_derive_per_tenant_and_version_and_verify() {
        let k = SigningKeys::new(b"master".to_vec());
        let msg = answer_message(&Exchange {
            method: "POST",
            path: "/v1/x?a=1",
            tenant: "acme",
            date: "2026-11-30T12:00:00.000Z",
            nonce: "n1",
            request_body: b"",
            response_body: b"{}",
        });
        assert_eq!(
            msg,
            "licensing-signature-v2\nPOST /v1/x?a=1\nacme\n2026-11-30T12:00:00.000Z\nn1\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let sig = Signature::from_bytes(&k.sign("acme", 1, msg.as_bytes()));
        let public = VerifyingKey::from_bytes(&k.public_key("acme", 1)).unwrap();
        assert!(public.verify(msg.as_bytes(), &sig).is_ok());
        assert!(public.verify(b"other", &sig).is_err());
        assert_ne!(
            k.public_key("acme", 1),
            k.public_key("acme", 2),
            "versions differ"
        );
        assert_ne!(
            k.public_key("acme", 1),
            k.public_key("acme2", 1),
            "tenants differ"
        );
        let again = SigningKeys::new(b"master".to_vec());
        assert_eq!(
            again.public_key("acme", 1),
            k.public_key("acme", 1),
            "same in every instance"
        );
    }

    /// The worked example of docs/signing.md § 3 (test-vector master, `acme`,
    /// `v1`), computed independently with Python's `cryptography`.
    #[test]
    fn the_documented_worked_example() {
        use base64::Engine as _;
        let k = SigningKeys::new(b"example-master-secret-do-not-use".to_vec());
        let public = base64::engine::general_purpose::STANDARD.encode(k.public_key("acme", 1));
        assert_eq!(public, "cA2/b97JDlhwYg+C6BEKhY4kD7xZO6FQ32s7CxhvIV0=");
        let answer = br#"{"data":{"code":"NOT_FOUND","detail":"No license exists with this key.","license":null,"valid":false},"meta":{"api_version":"v1","request_id":"req_01M8P9E266J9WQ7Z4N2B8C5D6E"}}"#;
        assert_eq!(answer.len(), 176);
        let msg = answer_message(&Exchange {
            method: "POST",
            path: "/v1/integration/licenses/CE0HC-V1MS2-213PG-NXN5R-KSZPX/validate?trace=1",
            tenant: "acme",
            date: "2026-11-30T12:00:00.000Z",
            nonce: "9b1c3f0e7a2d4c8e",
            request_body: br#"{"fingerprint":"8c1f-ann-laptop"}"#,
            response_body: answer,
        });
        assert_eq!(
            msg,
            "licensing-signature-v2\n\
             POST /v1/integration/licenses/CE0HC-V1MS2-213PG-NXN5R-KSZPX/validate?trace=1\n\
             acme\n\
             2026-11-30T12:00:00.000Z\n\
             9b1c3f0e7a2d4c8e\n\
             b961922a9bc09042c3d0a810cfc3cff2a86abe15e58554d26a167ec166860e29\n\
             e1731b5dcb41f01142b2552454a7ac2de949dc539c8b387f41c1fcde01b3e1c8"
        );
        let signature =
            base64::engine::general_purpose::STANDARD.encode(k.sign("acme", 1, msg.as_bytes()));
        assert_eq!(
            signature,
            "J/Y0AqkBK7pWIgQc4tVzL+6Plk/TywqhA8mIe4OqHW+V1pytXhdUe06tSRzY2YOVPCb5+tdE5brkMLG/Jx3cDQ=="
        );
    }
}
