//! Opaque, signed list cursors: the LastEvaluatedKey, bound to the tenant and
//! the listing it came from.

use super::Item;
use crate::crypto::Signer;
use crate::error::Error;
use crate::ids::TenantId;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::BTreeMap;

pub fn encode(signer: &Signer, tenant: &TenantId, listing: &str, lek: &Item) -> Option<String> {
    let map: BTreeMap<&str, &str> = lek
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.as_str(), s.as_str())))
        .collect();
    let json = serde_json::to_vec(&map).ok()?;
    let sig = signer.sign(&[
        tenant.as_str().as_bytes(),
        b"\n",
        listing.as_bytes(),
        b"\n",
        &json,
    ]);
    Some(format!("{}.{}", URL_SAFE_NO_PAD.encode(&json), sig))
}

pub fn decode(
    signer: &Signer,
    tenant: &TenantId,
    listing: &str,
    cursor: &str,
) -> Result<Item, Error> {
    let bad = || Error::InvalidCursor;
    let (b64, sig) = cursor.split_once('.').ok_or_else(bad)?;
    let json = URL_SAFE_NO_PAD.decode(b64).map_err(|_| bad())?;
    if !signer.verify(
        &[
            tenant.as_str().as_bytes(),
            b"\n",
            listing.as_bytes(),
            b"\n",
            &json,
        ],
        sig,
    ) {
        return Err(bad());
    }
    let map: BTreeMap<String, String> = serde_json::from_slice(&json).map_err(|_| bad())?;
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let s = Signer::new(b"k".to_vec());
        let t = TenantId::parse("acme").unwrap();
        let o = TenantId::parse("other").unwrap();
        let lek: Item = [("PK".to_string(), AttributeValue::S("T#acme#X".into()))].into();
        let c = encode(&s, &t, "products", &lek).unwrap();
        assert_eq!(decode(&s, &t, "products", &c).unwrap(), lek);
        assert!(decode(&s, &o, "products", &c).is_err());
        assert!(decode(&s, &t, "policies", &c).is_err());
        assert!(decode(&s, &t, "products", "garbage").is_err());
    }
}
