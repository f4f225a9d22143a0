//! HMAC-SHA256 in the three places the service uses it: API-key hashing
//! (with the pepper), cursor signing and Stripe signatures.

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
    /// Key material for values derived from the pepper (the provisioning
    /// admin key); never used for anything else.
    pub fn derivation_key(&self) -> &[u8] {
        &self.0
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
