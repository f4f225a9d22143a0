//! Reading requests: bodies, JSON, query parameters. Bad input becomes a
//! 400/422 in the envelope here, never a panic or a 500.

use crate::error::Error;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A usage batch may carry up to 1 MiB (500 events with their properties).
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
pub const BATCH_PATH: &str = "/v1/integration/usage/batch";
/// Stripe's events (an invoice with many lines) can be larger than API bodies.
pub const MAX_WEBHOOK_BYTES: usize = 512 * 1024;

/// Parse a JSON body into `T`. Syntax errors are 400 `INVALID_JSON`; a body
/// of the wrong shape (types, missing or unknown fields, unknown enum values)
/// is 422 `VALIDATION_ERROR`. An empty body reads as `{}`.
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let body: &[u8] = if body.iter().all(|b| b.is_ascii_whitespace()) {
        b"{}"
    } else {
        body
    };
    // Syntax first, so a truncated body is INVALID_JSON even when the part
    // that did arrive already holds an unknown field.
    serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|e| Error::BadRequest {
        code: "INVALID_JSON",
        message: format!("the body is not valid JSON ({e})"),
    })?;
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::validation("the body must be a JSON object"));
    }
    // The error names the field it is about (`max_deactivations.period:
    // unknown variant ...`), not only a line and column.
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        use serde_json::error::Category;
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => Error::BadRequest {
                code: "INVALID_JSON",
                message: format!("the body is not valid JSON ({inner})"),
            },
            Category::Data if path.is_empty() || path == "." => {
                Error::validation(format!("the body is not acceptable: {inner}"))
            }
            Category::Data => {
                Error::validation(format!("the body is not acceptable: {path}: {inner}"))
            }
        }
    })
}

/// Query parameters, first value of each.
#[derive(Debug, Default, Clone)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
    /// `?limit=` (1..100, default 25).
    pub fn limit(&self) -> Result<i32, Error> {
        match self.get("limit") {
            None => Ok(25),
            Some(v) => match v.parse::<i32>() {
                Ok(n) if (1..=100).contains(&n) => Ok(n),
                _ => Err(Error::validation("limit must be an integer from 1 to 100")),
            },
        }
    }
    pub fn cursor(&self) -> Option<&str> {
        self.get("cursor")
    }
    pub fn timestamp(&self, k: &str) -> Result<Option<time::OffsetDateTime>, Error> {
        self.get(k)
            .map(|v| {
                crate::clock::parse_rfc3339(v)
                    .ok_or_else(|| Error::validation(format!("{k} must be an RFC 3339 timestamp")))
            })
            .transpose()
    }
}

pub use crate::domain::bounded;

/// Free-form metadata: an object of at most 50 keys and 8 KiB of JSON.
pub fn metadata(
    v: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let v = v.unwrap_or_default();
    if v.len() > 50
        || serde_json::to_vec(&v)
            .map(|b| b.len())
            .unwrap_or(usize::MAX)
            > 8 * 1024
    {
        return Err(Error::invalid(
            "METADATA_TOO_LARGE",
            "metadata may hold at most 50 keys and 8 KiB of JSON",
        ));
    }
    if v.keys().any(|k| k.is_empty() || k.len() > 64) {
        return Err(Error::validation("metadata keys must be 1 to 64 bytes"));
    }
    for value in v.values() {
        storable(value, 1)?;
    }
    Ok(v)
}

/// How deep metadata may nest (DynamoDB allows 32 levels; each JSON level
/// costs one, and the license around it a few more).
pub const MAX_METADATA_DEPTH: usize = 16;

/// A metadata value DynamoDB can store and give back: nesting within
/// [`MAX_METADATA_DEPTH`], numbers within DynamoDB's range (magnitudes from
/// 1e-130 to below 1e126, 38 significant digits).
fn storable(v: &serde_json::Value, depth: usize) -> Result<(), Error> {
    use serde_json::Value;
    if depth > MAX_METADATA_DEPTH {
        let msg = format!("metadata may nest at most {MAX_METADATA_DEPTH} levels");
        return Err(Error::validation(msg));
    }
    match v {
        Value::Number(n) => {
            let in_range = match n.as_f64() {
                _ if n.is_i64() || n.is_u64() => true,
                Some(f) => f == 0.0 || (1e-130..1e126).contains(&f.abs()),
                None => false,
            };
            if !in_range {
                let msg = format!("metadata number {n} is out of range (1e-130 to 1e126)");
                return Err(Error::validation(msg));
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|i| storable(i, depth + 1)),
        Value::Object(map) => map.values().try_for_each(|i| storable(i, depth + 1)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct B {
        n: u32,
    }

    #[test]
    fn json_errors_are_classified() {
        assert!(matches!(
            json::<B>(b"{"),
            Err(Error::BadRequest {
                code: "INVALID_JSON",
                ..
            })
        ));
        assert!(matches!(
            json::<B>(b"{\"n\":\"x\"}"),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(json::<B>(b"{}"), Err(Error::Invalid { .. })));
        assert!(matches!(
            json::<B>(b"{\"n\":1,\"m\":2}"),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(json::<B>(b"[1]"), Err(Error::Invalid { .. })));
        assert_eq!(json::<B>(b"{\"n\":1}").unwrap().n, 1);
    }

    #[test]
    fn metadata_must_be_storable() {
        let m = |v: serde_json::Value| metadata(Some(serde_json::from_value(v).unwrap()));
        assert!(
            m(serde_json::json!({"a": 1e125, "b": -2.5e-130, "c": u64::MAX, "d": 0.0})).is_ok()
        );
        for bad in [1e308, -1e308, 5e-324, 1e126] {
            assert!(m(serde_json::json!({ "x": bad })).is_err(), "{bad}");
        }
        let mut deep = serde_json::json!(1);
        for _ in 0..MAX_METADATA_DEPTH {
            deep = serde_json::json!([deep]);
        }
        assert!(
            m(serde_json::json!({ "x": deep.clone() })).is_err(),
            "17 levels"
        );
        assert!(
            m(serde_json::json!({ "x": deep[0].clone() })).is_ok(),
            "16 levels"
        );
    }

    #[test]
    fn limits() {
        let q = |s: &str| Query([("limit".to_string(), s.to_string())].into());
        assert_eq!(q("100").limit().unwrap(), 100);
        assert!(q("0").limit().is_err());
        assert!(q("101").limit().is_err());
        assert!(q("x").limit().is_err());
        assert_eq!(Query::default().limit().unwrap(), 25);
    }
}
