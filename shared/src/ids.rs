//! Validated identifiers. Every one of these checks its input on construction,
//! so the rest of the code never sees an ill-formed id, key or name.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidId {
    pub field: &'static str,
    pub reason: &'static str,
}

fn err(field: &'static str, reason: &'static str) -> InvalidId {
    InvalidId { field, reason }
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident, $field:literal, $check:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidId> {
                let s = s.into();
                let check: fn(&str) -> Result<(), &'static str> = $check;
                check(&s).map_err(|r| err($field, r))?;
                Ok(Self(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Characters that render as nothing: zero-width spaces and joiners,
/// direction marks and overrides, the BOM, the soft hyphen. Two
/// fingerprints that look the same must be the same.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
        | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
        | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}')
}

fn slug(s: &str, min: usize, max: usize) -> Result<(), &'static str> {
    let b = s.as_bytes();
    if b.len() < min || b.len() > max {
        return Err("has the wrong length");
    }
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-';
    if !b.iter().all(|&c| ok(c)) {
        return Err("may only hold lowercase letters, digits and '-'");
    }
    if b[0] == b'-' || b[b.len() - 1] == b'-' {
        return Err("may not start or end with '-'");
    }
    Ok(())
}

fn name_like(s: &str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 64 {
        return Err("must be 1 to 64 characters");
    }
    if !(b[0].is_ascii_lowercase() || b[0].is_ascii_digit()) {
        return Err("must start with a lowercase letter or digit");
    }
    if !b
        .iter()
        .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.'))
    {
        return Err("may only hold lowercase letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

fn prefixed_hex(prefix: &'static str, len: usize) -> impl Fn(&str) -> Result<(), &'static str> {
    move |s: &str| {
        let rest = s.strip_prefix(prefix).ok_or("has the wrong prefix")?;
        if rest.len() != len
            || !rest
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            return Err("is not a well-formed id");
        }
        Ok(())
    }
}

string_newtype!(
    /// A tenant (one software vendor): 3-40 of `[a-z0-9-]`.
    TenantId, "tenant_id", |s| slug(s, 3, 40)
);
string_newtype!(
    /// A product code, unique within its tenant.
    ProductCode, "product code", name_like
);
string_newtype!(
    /// A metered metric name (`api-calls`).
    Metric, "metric", name_like
);
string_newtype!(
    /// A feature / entitlement name (`export-4k`).
    Feature, "feature", name_like
);
string_newtype!(
    /// A license key as the customer types it.
    LicenseKey, "license_key", |s| {
        if s.len() < 8 || s.len() > 128 {
            return Err("must be 8 to 128 characters");
        }
        if !s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')) {
            return Err("may only hold letters, digits, '-', '_' and '.'");
        }
        Ok(())
    }
);
/// A machine fingerprint chosen by the client app, held in its normal form
/// (see [`normalise_fingerprint`]) so that every path (activations, seats,
/// trial claims, license files) sees look-alike fingerprints as one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Refuses control and invisible characters, then normalises; the
    /// normal form must be 1 to 256 bytes and not blank.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidId> {
        let s = s.into();
        let refuse = |r| err("fingerprint", r);
        if s.is_empty() || s.len() > 256 {
            return Err(refuse("must be 1 to 256 bytes of UTF-8"));
        }
        if s.chars().any(|c| c.is_control() || invisible(c)) {
            return Err(refuse(
                "may not contain control or invisible (zero-width) characters",
            ));
        }
        let n = normalise_fingerprint(&s);
        if n.is_empty() {
            return Err(refuse("may not be blank"));
        }
        if n.len() > 256 {
            return Err(refuse("must be at most 256 bytes once normalised"));
        }
        if n.chars().any(|c| c.is_control() || invisible(c)) {
            return Err(refuse(
                "may not contain control or invisible (zero-width) characters",
            ));
        }
        Ok(Self(n))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(s).map_err(serde::de::Error::custom)
    }
}
impl AsRef<str> for Fingerprint {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Hyphens and minus signs that look like `-` (NFKC keeps them apart).
fn hyphen_like(c: char) -> bool {
    matches!(
        c,
        '\u{2010}'..='\u{2013}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}'
    )
}

/// The normal form of a fingerprint: Unicode NFKC (composed accents, full-
/// width and compatibility forms, no-break spaces become spaces), hyphen
/// look-alikes as `-`, lowercase (machine ids, GUIDs, hex digests and host
/// names are case-insensitive), then trimmed. A normal form is its own
/// normal form, so fingerprints stored in it keep their digests.
pub fn normalise_fingerprint(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mapped: String = s
        .nfkc()
        .map(|c| if hyphen_like(c) { '-' } else { c })
        .collect::<String>()
        .to_lowercase();
    // Lowercasing may decompose (U+0130 → i + U+0307): compose again.
    let composed: String = mapped.nfkc().collect();
    composed.trim().to_string()
}

string_newtype!(
    /// `pol_` + 26 lowercase ULID characters.
    PolicyId, "policy", |s| {
        let rest = s.strip_prefix("pol_").ok_or("must start with pol_")?;
        if rest.len() != 26 || !rest.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err("is not a well-formed policy id");
        }
        Ok(())
    }
);
string_newtype!(
    /// `lic_` + 32 hex: derived from the tenant and the key, so a key names
    /// its license's partition without a lookup.
    LicenseId, "license_id", |s| prefixed_hex("lic_", 32)(s)
);
string_newtype!(
    /// `act_` + 32 hex (its license) + 20 hex (its fingerprint): an activation
    /// id names the license partition and the item within it.
    ActivationId, "activation_id", |s| prefixed_hex("act_", 52)(s)
);
string_newtype!(
    /// `whe_` + 26 lowercase ULID characters: a webhook endpoint.
    WebhookEndpointId, "webhook_endpoint_id", |s| prefixed_ulid("whe_")(s)
);
string_newtype!(
    /// `dlv_` + 26 lowercase ULID characters: one delivery attempt.
    DeliveryId, "delivery_id", |s| prefixed_ulid("dlv_")(s)
);

/// `prefix` + 26 lowercase ULID characters.
fn prefixed_ulid(prefix: &'static str) -> impl Fn(&str) -> Result<(), &'static str> {
    move |s| {
        let rest = s.strip_prefix(prefix).ok_or("has the wrong prefix")?;
        let lower = rest
            .bytes()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase());
        if rest.len() != 26 || !lower || ulid::Ulid::from_string(rest).is_err() {
            return Err("is not a well-formed id");
        }
        Ok(())
    }
}

impl WebhookEndpointId {
    pub fn generate() -> Self {
        Self(format!(
            "whe_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        ))
    }
}

impl DeliveryId {
    pub fn at(at: time::OffsetDateTime) -> Self {
        let u = crate::domain::monotonic_ulid(at);
        Self(format!("dlv_{}", u.to_string().to_lowercase()))
    }
}

string_newtype!(
    /// `key_` + 26 ULID characters (uppercase Crockford).
    ApiKeyId, "api_key_id", |s| {
        let rest = s.strip_prefix("key_").ok_or("must start with key_")?;
        ulid::Ulid::from_string(rest).map_err(|_| "is not a well-formed key id")?;
        if rest.len() != 26 || rest != rest.to_ascii_uppercase() {
            return Err("is not a well-formed key id");
        }
        Ok(())
    }
);
string_newtype!(
    /// A customer e-mail address, kept lowercase.
    Email, "customer_email", |s| {
        if s.len() > 254 || s != s.to_lowercase() {
            return Err("must be a lowercase address of at most 254 characters");
        }
        let (local, domain) = s.split_once('@').ok_or("is not an e-mail address")?;
        let bad_char = s.chars().any(|c| c.is_whitespace() || c.is_control());
        if local.is_empty()
            || domain.len() < 3
            || !domain.contains('.')
            || bad_char
            || domain.contains('@')
        {
            return Err("is not an e-mail address");
        }
        Ok(())
    }
);

string_newtype!(
    /// A vendor's own id of a customer account in its CRM (`0015g00000XyZ`):
    /// 1 to 128 of `[A-Za-z0-9._:-]`.
    CrmAccountId, "crm_account_id", |s| {
        if s.is_empty() || s.len() > 128 {
            return Err("must be 1 to 128 characters");
        }
        if !s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-')) {
            return Err("may only hold letters, digits, '.', '_', ':' and '-'");
        }
        Ok(())
    }
);

string_newtype!(
    /// An internet domain a customer organization proves it holds
    /// (`mercedes-benz.com`): lowercase labels of `[a-z0-9-]` (1 to 63
    /// characters, not starting or ending with '-'), at least two of them,
    /// at most 253 characters, the last one letters only.
    Domain, "domain", |s| {
        if s.len() < 4 || s.len() > 253 {
            return Err("must be 4 to 253 characters");
        }
        let labels: Vec<&str> = s.split('.').collect();
        if labels.len() < 2 {
            return Err("must have at least two labels (example.com)");
        }
        for l in &labels {
            if l.is_empty() || l.len() > 63 {
                return Err("has an empty or over-long label");
            }
            if !l.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') {
                return Err("may only hold lowercase letters, digits, '-' and '.'");
            }
            if l.starts_with('-') || l.ends_with('-') {
                return Err("has a label that starts or ends with '-'");
            }
        }
        let tld = labels.last().copied().unwrap_or("");
        if tld.len() < 2 || !tld.bytes().all(|c| c.is_ascii_lowercase()) {
            return Err("must end in a top-level domain of letters");
        }
        Ok(())
    }
);

impl Domain {
    /// Accepts any case and one trailing dot; stores the lowercase name.
    pub fn normalise(s: &str) -> Result<Self, InvalidId> {
        let s = s.trim().to_lowercase();
        Self::parse(s.strip_suffix('.').unwrap_or(&s).to_string())
    }
    /// Whether `host` is this domain or one of its subdomains.
    pub fn covers(&self, host: &str) -> bool {
        host == self.0
            || host
                .strip_suffix(self.0.as_str())
                .is_some_and(|head| head.ends_with('.') && head.len() > 1)
    }
}

impl Email {
    /// Accepts any case, stores lowercase.
    pub fn normalise(s: &str) -> Result<Self, InvalidId> {
        Self::parse(s.trim().to_lowercase())
    }
    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl PolicyId {
    pub fn generate() -> Self {
        Self(format!(
            "pol_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        ))
    }
}

impl ApiKeyId {
    pub fn generate() -> Self {
        Self(format!("key_{}", ulid::Ulid::new()))
    }
    fn ulid_part(&self) -> &str {
        &self.0[4..]
    }
}

fn digest_hex(parts: &[&[u8]], hex_len: usize) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let mut s = hex::encode(h.finalize());
    s.truncate(hex_len);
    s
}

impl LicenseId {
    /// The license id is a digest of tenant and key (128 bits): one key names
    /// exactly one license partition and no lookup table is needed.
    pub fn derive(tenant: &TenantId, key: &LicenseKey) -> Self {
        Self(format!(
            "lic_{}",
            digest_hex(&[tenant.as_str().as_bytes(), key.as_str().as_bytes()], 32)
        ))
    }
    pub fn hex(&self) -> &str {
        &self.0[4..]
    }
}

impl ActivationId {
    pub fn derive(license: &LicenseId, fingerprint: &Fingerprint) -> Self {
        Self(format!(
            "act_{}{}",
            license.hex(),
            FingerprintDigest::of(fingerprint).0
        ))
    }
    pub fn license_id(&self) -> LicenseId {
        LicenseId(format!("lic_{}", &self.0[4..36]))
    }
    pub fn fingerprint_digest(&self) -> FingerprintDigest {
        FingerprintDigest(self.0[36..].to_string())
    }
}

/// 80-bit digest of a fingerprint: the activation item's sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerprintDigest(String);
impl FingerprintDigest {
    pub fn of(fp: &Fingerprint) -> Self {
        Self(digest_hex(&[fp.as_str().as_bytes()], 20))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl LicenseKey {
    /// 25 random Crockford base32 characters in five groups: `XXXXX-XXXXX-...`.
    pub fn generate() -> Self {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        let mut bytes = [0u8; 25];
        rand::rng().fill_bytes(&mut bytes);
        let mut out = String::with_capacity(29);
        for (i, b) in bytes.iter().enumerate() {
            if i > 0 && i % 5 == 0 {
                out.push('-');
            }
            out.push(ALPHABET[(*b & 31) as usize] as char);
        }
        Self(out)
    }
}

/// The secret an API key string carries. `lk_<tenant>_<key ulid>_<64 hex>`:
/// the string names its record, so authentication is one GetItem (no scans).
#[derive(Clone)]
pub struct ApiKeySecret {
    pub tenant: TenantId,
    pub key_id: ApiKeyId,
    secret: String,
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({}/{}/***)", self.tenant, self.key_id)
    }
}

impl ApiKeySecret {
    pub fn generate(tenant: &TenantId) -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self {
            tenant: tenant.clone(),
            key_id: ApiKeyId::generate(),
            secret: hex::encode(bytes),
        }
    }
    /// A key from its parts (the provisioning admin key is derived, not random).
    pub fn from_parts(tenant: TenantId, key_ulid: ulid::Ulid, secret_hex: String) -> Self {
        Self {
            tenant,
            key_id: ApiKeyId(format!("key_{key_ulid}")),
            secret: secret_hex,
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix("lk_")?;
        let mut parts = rest.split('_');
        let (tenant, ulid, secret) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some()
            || secret.len() != 64
            || !secret.bytes().all(|c| c.is_ascii_hexdigit())
        {
            return None;
        }
        Some(Self {
            tenant: TenantId::parse(tenant).ok()?,
            key_id: ApiKeyId::parse(format!("key_{ulid}")).ok()?,
            secret: secret.to_string(),
        })
    }
    /// The full key string, shown to its owner exactly once.
    pub fn expose(&self) -> String {
        format!(
            "lk_{}_{}_{}",
            self.tenant,
            self.key_id.ulid_part(),
            self.secret
        )
    }
    pub fn secret_bytes(&self) -> &[u8] {
        self.secret.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_invisible_fingerprints_are_refused() {
        for bad in [
            "",
            " ",
            "   ",
            "\t",
            "\u{200B}",
            "a\u{200B}b",
            "\u{FEFF}",
            "m\u{202E}1",
        ] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad:?}");
        }
        for good in ["machine-1", "Büro PC", "a b", "🖥️"] {
            assert!(Fingerprint::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn look_alike_fingerprints_are_one() {
        let one = |s: &str| Fingerprint::parse(s).unwrap();
        let base = one("büro-pc 1");
        for alike in [
            "büro-pc 1 ",          // a trailing space
            "  büro-pc 1\u{3000}", // leading spaces, an ideographic space
            "BÜRO-PC 1",           // case
            "bu\u{308}ro-pc 1",    // a combining diaeresis
            "büro\u{2011}pc 1",    // a non-breaking hyphen
            "büro\u{2010}pc 1",    // a hyphen
            "büro\u{2212}pc 1",    // a minus sign
            "büro-pc\u{a0}1",      // a no-break space
            "ｂüｒｏ-pc 1",        // full-width letters
        ] {
            assert_eq!(one(alike), base, "{alike:?}");
            assert_eq!(
                FingerprintDigest::of(&one(alike)),
                FingerprintDigest::of(&base)
            );
        }
        assert_ne!(one("büro-pc 2"), base);
        assert_ne!(one("büro pc 1"), base, "a space is not a hyphen");
        // Deserialised (a stored activation) the same way.
        let stored: Fingerprint = serde_json::from_str("\"BÜRO-PC 1 \"").unwrap();
        assert_eq!(stored, base);
    }

    #[test]
    fn a_normalised_fingerprint_is_unchanged() {
        // Stored activations keep their keys when they were already in
        // normal form: normalising is idempotent and leaves these alone.
        for s in [
            "machine-1",
            "3f2a9c0e-77d1-4b7e-9a3e-1c2b3d4e5f60",
            "büro pc",
            "i\u{307}stanbul",
            "🖥️ desk",
            "a  b",
            "ß",
        ] {
            assert_eq!(normalise_fingerprint(s), s, "{s:?}");
            assert_eq!(Fingerprint::parse(s).unwrap().as_str(), s);
        }
        for s in ["İSTANBUL", "ÅNGSTRÖM ", "ﬁle", "x\u{2011}y", "Ａ１"] {
            let once = normalise_fingerprint(s);
            assert_eq!(normalise_fingerprint(&once), once, "{s:?}");
        }
    }

    #[test]
    fn a_fingerprint_blank_once_normalised_is_refused() {
        for bad in ["\u{3000}", "\u{a0}", " \u{2007} "] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad:?}");
        }
        // NFKC may lengthen: the normal form is bounded too.
        assert!(Fingerprint::parse("\u{FDFA}".repeat(80)).is_err());
        assert!(Fingerprint::parse("a".repeat(256)).is_ok());
    }

    #[test]
    fn tenant_ids() {
        assert!(TenantId::parse("acme").is_ok());
        assert!(TenantId::parse("acme-2").is_ok());
        assert!(TenantId::parse("ac").is_err());
        assert!(TenantId::parse("Acme").is_err());
        assert!(TenantId::parse("-acme").is_err());
        assert!(TenantId::parse("ac_me").is_err());
        assert!(TenantId::parse("a".repeat(41)).is_err());
    }

    #[test]
    fn api_key_round_trip() {
        let t = TenantId::parse("acme").unwrap();
        let k = ApiKeySecret::generate(&t);
        let s = k.expose();
        let back = ApiKeySecret::parse(&s).unwrap();
        assert_eq!(back.tenant, t);
        assert_eq!(back.key_id, k.key_id);
        assert_eq!(back.secret_bytes(), k.secret_bytes());
        assert!(ApiKeySecret::parse("lk_acme_x_y").is_none());
        assert!(ApiKeySecret::parse(&format!("{s}_extra")).is_none());
        assert!(!format!("{k:?}").contains(&s[s.len() - 10..]));
    }

    #[test]
    fn license_and_activation_ids_are_derived() {
        let t = TenantId::parse("acme").unwrap();
        let t2 = TenantId::parse("other").unwrap();
        let key = LicenseKey::generate();
        assert_eq!(key.as_str().len(), 29);
        let id = LicenseId::derive(&t, &key);
        assert_ne!(id, LicenseId::derive(&t2, &key), "ids are tenant-scoped");
        LicenseId::parse(id.as_str()).unwrap();
        let fp = Fingerprint::parse("machine-1").unwrap();
        let act = ActivationId::derive(&id, &fp);
        ActivationId::parse(act.as_str()).unwrap();
        assert_eq!(act.license_id(), id);
        assert_eq!(act.fingerprint_digest(), FingerprintDigest::of(&fp));
    }

    #[test]
    fn emails_normalise() {
        assert_eq!(
            Email::normalise(" Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        assert!(Email::normalise("nope").is_err());
        assert!(Email::normalise("a@b").is_err());
    }

    #[test]
    fn names() {
        assert!(Metric::parse("api-calls").is_ok());
        assert!(Metric::parse("API").is_err());
        assert!(Metric::parse("").is_err());
        assert!(Feature::parse("export.4k_x").is_ok());
        assert!(Fingerprint::parse("a\nb").is_err());
    }
}
