//! Public keys pinned at build time.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};

use crate::error::KeyError;

/// The tenant's Ed25519 public keys, by key id (`v1`, `v2`, ...).
///
/// The vendor copies them from `GET /v1/public/tenants/{tenant_id}/signing-keys` into the app at
/// build time. Keys are never fetched at run time: a key the app does not ship cannot vouch for
/// an answer or a license file. Pin retired keys too, as long as files signed with them may
/// still be in use.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PinnedKeys {
    keys: BTreeMap<String, VerifyingKey>,
}

impl PinnedKeys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pins `public_key` (standard base64 of the 32 raw bytes, as the signing-keys endpoint
    /// lists it) under `kid`, replacing any key pinned under the same id.
    pub fn pin(&mut self, kid: impl Into<String>, public_key: &str) -> Result<(), KeyError> {
        let kid = kid.into();
        let text = public_key.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .map_err(|_| KeyError::Base64 { kid: kid.clone() })?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::Invalid { kid: kid.clone() })?;
        let key =
            VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::Invalid { kid: kid.clone() })?;
        self.keys.insert(kid, key);
        Ok(())
    }

    /// [`pin`](Self::pin), by value, for chaining.
    pub fn with(mut self, kid: impl Into<String>, public_key: &str) -> Result<Self, KeyError> {
        self.pin(kid, public_key)?;
        Ok(self)
    }

    /// Pins an already decoded key.
    pub fn pin_key(&mut self, kid: impl Into<String>, key: VerifyingKey) {
        self.keys.insert(kid.into(), key);
    }

    /// The key pinned under `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// The pinned key ids, in order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Whether no key is pinned.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many keys are pinned.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Verifies `signature` over `message` with the key pinned under `kid`.
    pub(crate) fn verify(&self, kid: &str, message: &[u8], signature: &[u8; 64]) -> Verified {
        let Some(key) = self.keys.get(kid) else {
            return Verified::UnknownKey;
        };
        // Strict verification: rejects small-order keys and non-canonical signatures.
        match key.verify_strict(message, &Signature::from_bytes(signature)) {
            Ok(()) => Verified::Yes,
            Err(_) => Verified::No,
        }
    }
}

/// The outcome of [`PinnedKeys::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verified {
    Yes,
    No,
    UnknownKey,
}

impl fmt::Debug for PinnedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self
            .keys
            .iter()
            .map(|(kid, key)| (kid, STANDARD.encode(key.as_bytes())));
        f.debug_map().entries(keys).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_standard_base64_with_or_without_padding() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
        let padded = STANDARD.encode(key.as_bytes());
        let keys = PinnedKeys::new().with("v1", &padded).unwrap();
        let keys = keys.with("v2", padded.trim_end_matches('=')).unwrap();
        assert_eq!(keys.get("v1"), Some(&key));
        assert_eq!(keys.get("v2"), Some(&key));
        assert_eq!(keys.kids().collect::<Vec<_>>(), ["v1", "v2"]);
    }

    #[test]
    fn rejects_keys_that_are_not_32_byte_points() {
        let mut keys = PinnedKeys::new();
        assert_eq!(
            keys.pin("v1", "not base64!"),
            Err(KeyError::Base64 { kid: "v1".into() })
        );
        let short = STANDARD.encode([7u8; 31]);
        assert_eq!(
            keys.pin("v1", &short),
            Err(KeyError::Invalid { kid: "v1".into() })
        );
        assert!(keys.is_empty());
    }
}
