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

    /// The public half of tenant `tenant`'s key `version`.
    pub fn public_key(&self, tenant: &str, version: u32) -> [u8; 32] {
        self.key(tenant, version).verifying_key().to_bytes()
    }
}

/// The key id of a tenant's signing key version: `v1`, `v2`, …
pub fn kid(version: u32) -> String {
    format!("v{version}")
}

/// The message a signed answer's signature covers: method and path as sent
/// (with the query string), the answer's date, the request's nonce (or
/// empty) and the lowercase hex SHA-256 of the answer's body.
pub fn answer_message(method: &str, path: &str, date: &str, nonce: &str, body: &[u8]) -> String {
    format!("{method} {path}\n{date}\n{nonce}\n{}", sha256_hex(body))
}

#[cfg(test)]
mod signing_tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn keys_derive_per_tenant_and_version_and_verify() {
        let k = SigningKeys::new(b"master".to_vec());
        let msg = answer_message("POST", "/v1/x?a=1", "2026-11-30T12:00:00.000Z", "n1", b"{}");
        assert_eq!(
            msg,
            "POST /v1/x?a=1\n2026-11-30T12:00:00.000Z\nn1\n\
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
}
