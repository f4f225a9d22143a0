//! Issue 13 as properties: every route of the HTTP API (from the route table,
//! so a new route is covered the day it is added), driven in process through
//! `shared::http::handle` with generated paths, query strings, headers and
//! bodies full of extreme numbers, dates at both ends of the calendar and
//! unicode edge cases. A third of the requests are clean (right credentials,
//! plausible values, extreme only where the contract allows) so they reach
//! the use cases and the store; the rest are anything.
//!
//! For every generated request:
//! - the answer is the envelope: JSON with `data` or `error` and
//!   `meta.request_id` equal to `X-Request-Id` (the CSV export's 200 excepted);
//! - the status is below 500 (a panic would be one: the edge answers it 500);
//! - input known to be bad is refused with a 4xx, and where the contract says
//!   which one (undecodable path parameter, oversized body, bad credentials or
//!   signature) with exactly that status and code; no route: 404 or 405.
//!
//! Each route gets `PROPTEST_CASES` generated requests (defaults below;
//! `PROPS_VERBOSE=1` prints every request and answer); a failure prints the
//! shrunk request and the answer. Routes on which the properties found a bug
//! are listed in [`FINDINGS`] and run in an ignored property until fixed. The
//! issue's regression cases follow as a fixed seed corpus of plain tests.

use harness::Env;
use hmac::{Hmac, Mac};
use lambda_http::http::{HeaderMap, HeaderValue, Request};
use lambda_http::{Body, RequestExt};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use sha2::Sha256;
use shared::app::App;
use shared::functions::{Function, Route, Surface, ROUTES};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

type S<T> = BoxedStrategy<T>;
/// Header names and raw values.
type Headers = Vec<(String, Vec<u8>)>;

const MAX_BODY: usize = 64 * 1024;
const MAX_WEBHOOK_BODY: usize = 512 * 1024;
/// `POST /v1/integration/usage/batch` takes up to 500 events, 1 MiB.
const MAX_BATCH_BODY: usize = 1024 * 1024;
const EXPORT: &str = "/v1/manage/usage/export";
const BILLING_EXPORT: &str = "/v1/manage/billing/overage";
const WEBHOOK_SECRET: &str = "whsec_props_5f2b8c1d9e7a4036b1c2d3e4f5a6b7c8";
const BASIC_PRICE: &str = "price_1PqQz8LkdIwHu7ixBas1cM0n";
const PRO_PRICE: &str = "price_1PqQz8LkdIwHu7ixPr0M0nth";

// ------------------------------------------------------------ values

/// Number tokens, written as is: past u32, u64, i64 and f64.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "1.5",
    "0.0",
    "1e2",
    "-1e-7",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "5e-324",
    "1e400",
    "1000000000000000",
    "1000000000000001",
    "100000000000000000000000000000000000000000",
];

/// Dates at both ends of the calendar, and some that are not dates.
const DATES: &[&str] = &[
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999999+00:00",
    "+10000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "-0001-01-01T00:00:00Z",
    "-0001-12-31T23:59:59-23:59",
    "1970-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-06-30T23:59:60Z",
    "2026-01-01T00:00:00+24:00",
    "2026-01-01T00:00:00+23:59",
    "2026-01-01T00:00:00.123456789012Z",
    "2026-01-01t00:00:00z",
    "2026-01-01 00:00:00Z",
    "2026-01-01",
    "tomorrow",
    "",
];

/// Timestamps every field refuses: outside the years 1-9999 once in UTC, or
/// not RFC 3339 at all.
const BAD_DATES: &[&str] = &[
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "+10000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "-0001-01-01T00:00:00Z",
    "-0001-12-31T23:59:59-23:59",
    "2026-02-30T00:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01",
    "tomorrow",
    "",
];

/// Unicode and injection edge cases.
const TEXTS: &[&str] = &[
    "",
    " ",
    "\t \n",
    "\u{200B}",
    "\u{FEFF}",
    "\u{202E}gnp.exe",
    "a\u{200B}b",
    "e\u{301}",
    "Z\u{336}\u{337}\u{338}\u{30d}\u{30e}\u{304}\u{305}\u{33f}\u{311}\u{306}\u{310}",
    "🦀",
    "👩‍👩‍👧‍👦",
    "🏳️‍🌈",
    "\u{0}",
    "a\u{0}b",
    "\u{7f}",
    "\u{1b}[31m",
    "\u{10FFFF}",
    "\u{FFFD}",
    "\u{FFFF}",
    "İ",
    "ß",
    "ǅ",
    "Ⅻ",
    "١٢٣",
    "\u{3000}",
    "null",
    "true",
    "-1",
    "0",
    "=cmd|'/c calc'!A0",
    "@SUM(1)",
    "../../etc/passwd",
    "%00",
    "%FF",
    "<script>alert(1)</script>",
    "'; DROP TABLE t; --",
    "${jndi:ldap://x}",
    "a@b.co",
    "A@B.CO",
    "x@y",
    "@",
    "a@b@c.co",
    "pol_",
    "lic_",
    "key_",
    "whsec_",
    "\\",
    "\"",
    "T#acme#LICENSE",
];

/// JSON text serde_json would never write: lone surrogates, escaped NULs.
const RAW_STRINGS: &[&str] = &[
    r#""\ud800""#,
    r#""\udc00""#,
    r#""\ud800\u0041""#,
    r#""\udbff\udfff""#,
    r#""\ud83e\udd80""#,
    r#""\u0000""#,
    r#""a\u0000b""#,
    r#""\uFEFF""#,
    r#""\u202e""#,
    r#""\/""#,
];

/// A JSON document as text, so it can hold what serde_json would never write
/// (numbers past u64 and f64, lone surrogate escapes).
#[derive(Clone)]
enum J {
    /// Written as is.
    Raw(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn raw(s: &str) -> J {
        J::Raw(s.to_string())
    }
    fn s(s: &str) -> J {
        J::Str(s.to_string())
    }
    fn of(v: &Value) -> J {
        match v {
            Value::String(s) => J::Str(s.clone()),
            Value::Array(a) => J::Arr(a.iter().map(J::of).collect()),
            Value::Object(o) => J::Obj(o.iter().map(|(k, v)| (k.clone(), J::of(v))).collect()),
            other => J::Raw(other.to_string()),
        }
    }
    fn is_null(&self) -> bool {
        matches!(self, J::Raw(r) if r == "null")
    }
    fn write(&self, out: &mut String) {
        match self {
            J::Raw(r) => out.push_str(r),
            J::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            J::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
    fn text(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }
}

impl fmt::Debug for J {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&clip(&self.text()))
    }
}

/// A long text shown by its ends and its length.
fn clip(s: &str) -> String {
    let n = s.chars().count();
    if n <= 700 {
        return format!("{s:?}");
    }
    let head: String = s.chars().take(500).collect();
    let tail: String = s.chars().skip(n - 80).collect();
    format!("{head:?} …[{} bytes in all]… {tail:?}", s.len())
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// One of these strings, as a JSON string.
fn js(v: Vec<String>) -> S<J> {
    select(v).prop_map(J::Str).boxed()
}

/// One of these tokens, written as is.
fn jr(v: &'static [&'static str]) -> S<J> {
    select(v).prop_map(J::raw).boxed()
}

fn either(a: S<J>, b: S<J>) -> S<J> {
    prop_oneof![a, b].boxed()
}

/// Strings at and around the usual bounds, up to ~70 KiB (over the body limit).
fn long_text() -> S<String> {
    let unit = select(vec!["a", "é", "🦀", "\u{200B}", " ", "e\u{301}", "\u{0}"]);
    let len = select(vec![
        63usize,
        64,
        65,
        128,
        129,
        199,
        200,
        201,
        255,
        256,
        257,
        1000,
        8 * 1024,
        60 * 1024,
        70 * 1024,
    ]);
    (unit, len).prop_map(|(u, n)| u.repeat(n)).boxed()
}

/// Any JSON value worth throwing at a field.
fn wild() -> S<J> {
    let leaf = prop_oneof![
        3 => select(NUMBERS).prop_map(J::raw),
        3 => select(DATES).prop_map(J::s),
        4 => select(TEXTS).prop_map(J::s),
        2 => select(RAW_STRINGS).prop_map(J::raw),
        1 => long_text().prop_map(J::Str),
        2 => "\\PC{0,24}".prop_map(J::Str),
        1 => "(?s).{0,16}".prop_map(J::Str),
        1 => select(vec!["true", "false", "null", "{}", "[]"]).prop_map(J::raw),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(J::Arr),
            prop::collection::vec(("\\PC{0,8}", inner), 0..4).prop_map(J::Obj),
        ]
    })
    .boxed()
}

fn now_plus(d: Duration) -> String {
    (OffsetDateTime::now_utc() + d).format(&Rfc3339).unwrap()
}

// ------------------------------------------------------------ percent-encoding

/// Percent-encode every byte but the unreserved ones.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(c as char);
        } else {
            let _ = write!(out, "%{c:02X}");
        }
    }
    out
}

/// Percent-decode as the edge does: a `%` not followed by two hex digits
/// stays as it is.
fn pct_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

// ------------------------------------------------------------ fixtures

/// What generated requests can name: real objects of one tenant, and
/// credentials that must fail.
struct Fx {
    tenant: String,
    admin: String,
    integration: String,
    token: String,
    /// API keys that must get 401: revoked, tampered, of an unknown tenant.
    bad_keys: Vec<Vec<u8>>,
    license_keys: Vec<String>,
    license_ids: Vec<String>,
    policy_ids: Vec<String>,
    products: Vec<String>,
    activation_ids: Vec<String>,
    fingerprints: Vec<String>,
    /// Keys the generated `DELETE /v1/manage/api-keys/{id}` may revoke.
    spare_key_ids: Vec<String>,
    /// Tenants the generated Platform API calls may suspend and close.
    victims: Vec<String>,
    /// Real cursors (products, audit, policies).
    cursors: Vec<String>,
    emails: Vec<String>,
    /// A customer organization's admin session (cookie, CSRF token, origin).
    customer_session: Headers,
    /// Its app key (every scope): refused (403) by the member-only routes.
    customer_key: String,
    /// App keys the generated `DELETE /v1/customer/api-keys/{id}` may revoke.
    customer_key_ids: Vec<String>,
    /// Members of the organization (its admin first).
    member_emails: Vec<String>,
    /// The organization's id (searched and CRM-linked by the vendor).
    customer_id: String,
}

async fn fixtures(env: &Env) -> Arc<Fx> {
    let t = env.tenant("props").await;
    let other = env.tenant("props-other").await;
    let ents = json!({
        "export-4k": {"type": "boolean"},
        "api-calls": {"type": "metered", "limit": 1000, "period": "month"},
        "storage": {"type": "metered", "limit": 10, "period": "total", "overage": "allow"},
        "logins": {"type": "metered", "limit": 100, "period": "day"},
    });
    let (pol_a, a) = env.license(&t, 3, ents).await;
    let (pol_b, b) = env
        .license(&t, 1, json!({"sso": {"type": "boolean"}}))
        .await;
    let (_, foreign) = env.license(&other, 1, json!({})).await;
    let s = |v: &Value| v.as_str().unwrap().to_string();
    let act = env
        .post(
            "/v1/integration/activations",
            &t.integration,
            json!({"license_key": a["key"], "fingerprint": "fp-one", "name": "Ann's laptop"}),
        )
        .await;
    assert_eq!(act.status, 201, "{act:?}");
    let rec = env
        .post(
            "/v1/integration/usage/record",
            &t.integration,
            json!({"license_key": a["key"], "metric": "api-calls", "quantity": 3}),
        )
        .await;
    assert_eq!(rec.status, 201, "{rec:?}");
    let mut spare = Vec::new();
    for i in 0..4 {
        let body = json!({"name": format!("spare {i}"), "scopes": ["admin", "integration"]});
        let k = env.post("/v1/manage/api-keys", &t.admin, body).await;
        assert_eq!(k.status, 201, "{k:?}");
        spare.push((s(&k.data()["id"]), s(&k.data()["key"])));
    }
    let (revoked_id, revoked_key) = spare.pop().unwrap();
    let r = env
        .delete(&format!("/v1/manage/api-keys/{revoked_id}"), &t.admin)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut cursors = Vec::new();
    for path in [
        "/v1/manage/products?limit=1",
        "/v1/manage/audit-events?limit=1",
        "/v1/manage/policies?limit=1",
    ] {
        let r = env.get(path, &t.admin).await;
        if let Some(c) = r.json["meta"]["next_cursor"].as_str() {
            cursors.push(c.to_string());
        }
    }
    assert!(!cursors.is_empty(), "no cursor to replay");
    let victims = vec![env.tenant("victim").await.id, env.tenant("victim").await.id];
    // lk_<tenant>_<key id>_<secret>
    let p: Vec<&str> = t.admin.splitn(4, '_').collect();
    let mut flipped = t.admin.clone();
    let last = if flipped.ends_with('0') { '1' } else { '0' };
    flipped.pop();
    flipped.push(last);
    let bad_keys = vec![
        revoked_key.into_bytes(),
        format!("lk_{}_{}_{}", p[1], p[2], "0".repeat(64)).into_bytes(),
        format!("lk_{}_{}_{}", other.id, p[2], p[3]).into_bytes(),
        format!("lk_nosuchtenant_{}_{}", p[2], p[3]).into_bytes(),
        flipped.into_bytes(),
        format!("{}0", t.admin).into_bytes(),
        format!("{}{}", t.admin, t.admin).into_bytes(),
        b"lk_".to_vec(),
        b"lk____".to_vec(),
        Vec::new(),
        b"   ".to_vec(),
        b"lk_\xff\xfe_\x80".to_vec(),
        "lk_🦀_01ARZ3NDEKTSV4RRFFQ69G5FAV_00".as_bytes().to_vec(),
        "a".repeat(8192).into_bytes(),
        format!("lk_{}_key_{}_{}", p[1], p[2], p[3]).into_bytes(),
    ];
    let org = env.customer_org("props-org").await;
    let mut customer_key_ids = Vec::new();
    for i in 0..3 {
        let body = json!({"app_name": format!("spare {i}"), "app_type": "desktop", "scopes": ["license:read"]});
        let k = env
            .org_send("POST", "/v1/customer/api-keys", &org.session, Some(&body))
            .await;
        assert_eq!(k.status, 201, "{k:?}");
        customer_key_ids.push(s(&k.data()["id"]));
    }
    // An app key with too little scope for every generated customer route
    // that a key may call at all (the pool's reads need license:read, a
    // checkout and its heartbeat license:checkout; the pool, issue 20 part B).
    let narrow = json!({"app_name": "narrow", "app_type": "desktop", "scopes": ["license:return"]});
    let narrow = env
        .org_send("POST", "/v1/customer/api-keys", &org.session, Some(&narrow))
        .await;
    assert_eq!(narrow.status, 201, "{narrow:?}");
    let narrow_key = s(&narrow.data()["key"]);
    let mut member_emails = vec![org.admin_email.clone()];
    for role in ["manager", "viewer"] {
        let email = format!("{role}@{}", org.domain);
        let body = json!({"email": email, "role": role});
        let m = env
            .org_send("POST", "/v1/customer/members", &org.session, Some(&body))
            .await;
        assert_eq!(m.status, 201, "{m:?}");
        member_emails.push(email);
    }
    let customer_session = org
        .session
        .headers()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_bytes()))
        .collect();
    Arc::new(Fx {
        customer_session,
        customer_key: narrow_key,
        customer_key_ids,
        member_emails,
        customer_id: org.id.clone(),
        tenant: t.id.clone(),
        admin: t.admin.clone(),
        integration: t.integration.clone(),
        token: env.operator_token().await,
        bad_keys,
        license_keys: vec![s(&a["key"]), s(&b["key"]), s(&foreign["key"])],
        license_ids: vec![s(&a["id"]), s(&b["id"]), s(&foreign["id"])],
        policy_ids: vec![pol_a, pol_b],
        products: vec![s(&a["product"]), s(&b["product"])],
        activation_ids: vec![s(&act.data()["id"])],
        fingerprints: vec!["fp-one".to_string()],
        spare_key_ids: spare.into_iter().map(|(id, _)| id).collect(),
        victims,
        cursors,
        emails: vec!["buyer@example.com".to_string()],
    })
}

// ------------------------------------------------------------ the request

/// How the credentials of a generated request must fare.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Auth {
    /// The right credential (anything may follow).
    Good,
    /// A valid key without the surface's scope: 403 (or 429).
    OtherScope,
    /// Missing or wrong: 401 (Stripe: 400 `INVALID_SIGNATURE`).
    Bad,
    /// A session without its CSRF token and origin: fine for GET, 403
    /// `CSRF_FAILED` otherwise.
    CsrfOnWrite,
}

/// One generated request and what must come of it.
#[derive(Clone)]
struct Case {
    function: Option<Function>,
    method: String,
    /// As sent: percent-encoded.
    path: String,
    /// Decoded, as API Gateway hands them over.
    query: Vec<(String, String)>,
    headers: Headers,
    body: Vec<u8>,
    /// The status and code the contract gives, and why.
    exact: Option<(u16, &'static str, String)>,
    /// Why it must be refused with a 4xx (empty: anything below 500).
    refuse: Vec<String>,
    /// No route takes it: 404 or 405.
    unrouted: bool,
}

impl Case {
    fn uri(&self) -> String {
        let mut uri = self.path.clone();
        if !self.query.is_empty() {
            let q: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                .collect();
            uri.push('?');
            uri.push_str(&q.join("&"));
        }
        uri
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {}  (function {:?})",
            self.method,
            clip(&self.uri()),
            self.function
        )?;
        for (k, v) in &self.query {
            writeln!(f, "  query {k:?} = {}", clip(v))?;
        }
        for (k, v) in &self.headers {
            writeln!(f, "  {k}: {}", clip(&String::from_utf8_lossy(v)))?;
        }
        match std::str::from_utf8(&self.body) {
            Ok(s) => writeln!(f, "  body ({} bytes): {}", self.body.len(), clip(s))?,
            Err(_) => writeln!(f, "  body ({} bytes, not UTF-8): {:?}", self.body.len(), {
                let n = self.body.len().min(400);
                &self.body[..n]
            })?,
        }
        if let Some((s, c, why)) = &self.exact {
            writeln!(f, "  must be: {s} {c} ({why})")?;
        }
        if !self.refuse.is_empty() {
            writeln!(f, "  must be refused: {}", self.refuse.join("; "))?;
        }
        if self.unrouted {
            writeln!(f, "  must be: 404 or 405 (no route)")?;
        }
        Ok(())
    }
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, n: &str) -> Option<&str> {
        self.headers.get(n).and_then(|v| v.to_str().ok())
    }
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.status)?;
        for (k, v) in &self.headers {
            writeln!(f, "  {k}: {}", String::from_utf8_lossy(v.as_bytes()))?;
        }
        write!(f, "  {}", clip(&self.body))
    }
}

/// Straight into the handler, as a function instance gets it from API Gateway.
async fn send(app: &App, c: &Case) -> Result<Answer, String> {
    let mut b = Request::builder().method(c.method.as_str()).uri(c.uri());
    for (k, v) in &c.headers {
        let v = HeaderValue::from_bytes(v).map_err(|e| format!("harness: header {k}: {e}"))?;
        b = b.header(k.as_str(), v);
    }
    let body = if c.body.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(c.body.clone()) {
            Ok(s) => Body::Text(s),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in &c.query {
        query.entry(k.clone()).or_default().push(v.clone());
    }
    let req = b
        .body(body)
        .map_err(|e| format!("harness: cannot build the request: {e}"))?
        .with_query_string_parameters(query);
    let resp = shared::http::handle(app, c.function, req).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = match resp.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The envelope, the status class and what the case must get.
fn check(c: &Case, a: &Answer) -> Result<(), String> {
    if a.status >= 500 {
        return Err(format!("{} for a generated request", a.status));
    }
    let rid = a.header("x-request-id").ok_or("no X-Request-Id")?;
    let ct = a.header("content-type").unwrap_or("");
    let csv = (c.path == EXPORT || c.path == BILLING_EXPORT)
        && a.status == 200
        && (ct.starts_with("text/csv") || ct == "application/pdf");
    if !csv {
        if ct != "application/json" {
            return Err(format!("content-type {ct:?}"));
        }
        let v: Value =
            serde_json::from_str(&a.body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let meta = &v["meta"];
        if meta["request_id"].as_str() != Some(rid) || !rid.starts_with("req_") {
            return Err(format!(
                "meta.request_id {} vs X-Request-Id {rid}",
                meta["request_id"]
            ));
        }
        if meta["api_version"] != "v1" {
            return Err("meta.api_version is not v1".into());
        }
        let e = &v["error"];
        if a.status >= 400 {
            let ok = e["code"].as_str().is_some_and(|c| !c.is_empty())
                && e["message"].is_string()
                && e["type"].is_string()
                && e["status"] == a.status
                && v.get("data").is_none();
            if !ok {
                return Err("not an error envelope".into());
            }
        } else if v.get("data").is_none() || v.get("error").is_some() {
            return Err("not a data envelope".into());
        }
    }
    if a.status == 405 && a.header("allow").is_none() {
        return Err("405 without Allow".into());
    }
    if a.status == 429 && a.header("retry-after").is_none() {
        return Err("429 without Retry-After".into());
    }
    let code = serde_json::from_str::<Value>(&a.body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    if c.unrouted && !matches!(a.status, 404 | 405) {
        return Err(format!("no route takes this request, yet {}", a.status));
    }
    if let Some((status, want, why)) = &c.exact {
        if a.status != *status || code != *want {
            return Err(format!(
                "expected {status} {want} ({why}), got {} {code}",
                a.status
            ));
        }
    }
    if !c.refuse.is_empty() && !(400..500).contains(&a.status) {
        return Err(format!(
            "bad input answered {}: {}",
            a.status,
            c.refuse.join("; ")
        ));
    }
    Ok(())
}

/// Cases per route: `PROPTEST_CASES`, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Run `cases` generated requests against `app`; shrink and report the
/// first that breaks a rule. Returns how often each status came back.
fn run(
    app: &App,
    label: &str,
    cases: u32,
    strategy: S<Case>,
) -> Result<BTreeMap<u16, u32>, String> {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let seen = RefCell::new(BTreeMap::new());
    let handle = tokio::runtime::Handle::current();
    // PROPS_VERBOSE=1: print every request and its answer.
    let verbose = std::env::var_os("PROPS_VERBOSE").is_some();
    let result = runner.run(&strategy, |case| {
        let answer = tokio::task::block_in_place(|| handle.block_on(send(app, &case)))
            .map_err(TestCaseError::fail)?;
        *seen.borrow_mut().entry(answer.status).or_insert(0u32) += 1;
        if verbose {
            println!("{label}\n{case:?}--> {answer:?}\n");
        }
        check(&case, &answer)
            .map_err(|why| TestCaseError::fail(format!("{why}\n--- answer: {answer:?}\n")))
    });
    let seen = seen.into_inner();
    let summary: Vec<String> = seen.iter().map(|(s, n)| format!("{s}×{n}")).collect();
    println!("{label}: {}", summary.join(" "));
    match result {
        Ok(()) => Ok(seen),
        Err(e) => Err(format!("{label}: {e}")),
    }
}

// ------------------------------------------------------------ path parameters

/// Segments that are not ids: bytes that are not UTF-8 once decoded
/// (`%FF`, overlong, surrogates, past U+10FFFF, truncated), control and
/// invisible characters, dot segments, an encoded slash, stray `%`s.
const GARBAGE_SEGMENTS: &[&str] = &[
    "%FF",
    "%C3%28",
    "%ED%A0%80",
    "%F4%90%80%80",
    "%C0%AF",
    "%E2%82",
    "lic_%FF",
    "%E2%80%AE",
    "%E2%80%8B",
    "%EF%BB%BF",
    "%F0%9F%A6%80",
    "%00",
    "%0A",
    "%20",
    "%2F",
    "%2e%2e",
    "..",
    ".",
    "%",
    "%zz",
    "%%",
    "~",
    "pol_01ARZ3NDEKTSV4RRFFQ69G5FAV%00",
];

fn param(route: &Route, name: &str, fx: &Fx, clean: bool) -> S<String> {
    let p = route.path;
    let (plausible, random): (Vec<String>, S<String>) = match name {
        "key" => (
            fx.license_keys.clone(),
            "[A-Z0-9]{5}(-[A-Z0-9]{5}){4}|[A-Za-z0-9._-]{1,140}".boxed(),
        ),
        "activation_id" => {
            let lic = fx.license_ids[0][4..].to_string();
            (
                fx.activation_ids.clone(),
                prop_oneof![
                    "act_[0-9a-f]{52}",
                    "[0-9a-f]{20}".prop_map(move |h| format!("act_{lic}{h}")),
                ]
                .boxed(),
            )
        }
        "code" => (fx.products.clone(), "[a-z0-9][a-z0-9._-]{0,70}".boxed()),
        "id" if p.starts_with("/v1/manage/licenses") => {
            (fx.license_ids.clone(), "lic_[0-9a-f]{32}".boxed())
        }
        "id" if p.starts_with("/v1/manage/policies") => {
            (fx.policy_ids.clone(), "pol_[0-9a-zA-Z]{26}".boxed())
        }
        "id" if p.starts_with("/v1/manage/api-keys") => (
            fx.spare_key_ids.clone(),
            "key_[0-7][0-9A-HJKMNP-TV-Z]{25}".boxed(),
        ),
        "id" if p.starts_with("/v1/customer/api-keys") => (
            fx.customer_key_ids.clone(),
            "key_[0-7][0-9A-HJKMNP-TV-Z]{25}".boxed(),
        ),
        "email" if p.starts_with("/v1/customer/members") => (
            fx.member_emails.clone(),
            "[a-z0-9.+-]{1,20}@[a-z0-9-]{1,20}\\.example".boxed(),
        ),
        "id" if p.starts_with("/v1/platform/tenants") => {
            (fx.victims.clone(), "[a-z0-9][a-z0-9-]{1,40}".boxed())
        }
        "customer_id" => (
            vec![fx.customer_id.clone()],
            "[a-z0-9][a-z0-9-]{1,40}".boxed(),
        ),
        "tenant_id" => {
            let mut v = fx.victims.clone();
            v.push(fx.tenant.clone());
            (v, "[a-z0-9][a-z0-9-]{1,40}".boxed())
        }
        // A parameter this file does not know yet: every id it has.
        _ => {
            let mut v = fx.license_ids.clone();
            v.extend(fx.policy_ids.iter().cloned());
            v.extend(fx.products.iter().cloned());
            (v, "[A-Za-z0-9_-]{1,40}".boxed())
        }
    };
    let long = (
        select(vec!["a", "%FF", "%E2%80%8B", "%C3%A9", "-", "%25"]),
        100usize..500,
    )
        .prop_map(|(u, n)| u.repeat(n));
    if clean {
        return select(plausible).prop_map(|s| enc(&s)).boxed();
    }
    prop_oneof![
        6 => select(plausible).prop_map(|s| enc(&s)),
        2 => random.prop_map(|s| enc(&s)),
        2 => select(GARBAGE_SEGMENTS).prop_map(str::to_string),
        1 => "\\PC{1,12}".prop_map(|s| enc(&s)),
        1 => "(?s).{1,6}".prop_map(|s| enc(&s)),
        1 => select(TEXTS).prop_filter("a segment", |s| !s.is_empty()).prop_map(enc),
        1 => long,
    ]
    .boxed()
}

// ------------------------------------------------------------ query strings

fn query_value(key: &str, fx: &Fx) -> S<String> {
    let month = OffsetDateTime::now_utc()
        .format(&time::macros::format_description!("[year]-[month]"))
        .unwrap();
    let day = OffsetDateTime::now_utc()
        .format(&time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap();
    let pool: Vec<String> = match key {
        "limit" => strs(&[
            "1",
            "25",
            "100",
            "101",
            "1000",
            "1001",
            "0",
            "-1",
            "+5",
            "05",
            "x",
            "1.5",
            " 5",
            "4294967295",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "1e308",
            "١٣",
        ]),
        "cursor" => {
            let mut v = fx.cursors.clone();
            let c = &fx.cursors[0];
            let mut flipped = c.clone();
            let last = if flipped.ends_with('0') { '1' } else { '0' };
            flipped.pop();
            flipped.push(last);
            v.extend([
                flipped,
                format!("{c}="),
                c[..c.len() / 2].to_string(),
                c.replace('.', ""),
                "x".into(),
                ".".into(),
                "a.b.c".into(),
                "eyJ9.00".into(),
                "eyJQSyI6IlQjb3RoZXIjUFJPRFVDVFMiLCJTSyI6InoifQ.00".into(),
                "%FF".into(),
                "🦀".into(),
                "x".repeat(2000),
            ]);
            v
        }
        "period" => {
            let mut v = strs(BAD_PERIODS);
            v.extend(strs(&[
                "total",
                "2024-02-29",
                "0000-01",
                "9999-12",
                "9999-12-31",
                "0000-01-01",
                "2026-01-01",
            ]));
            v.push(month);
            v.push(day);
            v
        }
        "since" => {
            let mut v = strs(DATES);
            v.push(now_plus(Duration::hours(-1)));
            v
        }
        "email" => {
            let mut v = fx.emails.clone();
            v.extend(strs(BAD_EMAILS));
            v.extend(strs(&[
                "BUYER@EXAMPLE.COM",
                "é@🦀.com",
                " buyer@example.com ",
            ]));
            v
        }
        "license_id" => {
            let mut v = fx.license_ids.clone();
            v.extend(strs(&[
                "lic_00000000000000000000000000000000",
                "lic_",
                "LIC_0",
                "🦀",
            ]));
            v
        }
        "metric" => {
            let mut v = strs(&["api-calls", "storage", "logins", "export-4k", "nope"]);
            v.extend(strs(BAD_METRICS));
            v
        }
        "format" => strs(&["json", "csv", "pdf", "CSV", "xml", "json ", "🦀"]),
        "start_date" | "end_date" => {
            let mut v = strs(&[
                "2026-11-01",
                "2026-12-31",
                "2024-02-29",
                "2025-02-29",
                "2026-13-01",
                "0000-01-01",
                "9999-12-31",
                "2026-1-1",
                "2026-12-01T00:00:00Z",
            ]);
            v.push(day);
            v
        }
        "domain" => {
            let mut v = strs(&["example.com", "EXAMPLE.com.", "a", "-x.com", "🦀.com"]);
            v.push(format!("{}.example", fx.customer_id));
            v
        }
        "name" => strs(&["props", "P", " ", "Zeppelin", "🦀"]),
        "crm_account_id" => strs(&["ACC-1", "acc:1.2_3", "", "has space", "🦀"]),
        _ => strs(TEXTS),
    };
    // Long, but within what API Gateway takes in a request line (10 KiB).
    let long = (
        select(vec!["a", "é", "🦀", "\u{200B}", " ", "\u{0}"]),
        select(vec![65usize, 255, 256, 500]),
    )
        .prop_map(|(u, n)| u.repeat(n));
    prop_oneof![
        8 => select(pool),
        1 => select(TEXTS).prop_map(str::to_string),
        1 => long,
        1 => "\\PC{0,16}",
    ]
    .boxed()
}

const QUERY_KEYS: &[&str] = &[
    "limit",
    "cursor",
    "period",
    "since",
    "email",
    "license_id",
    "metric",
    "format",
    "start_date",
    "end_date",
    "domain",
    "name",
    "crm_account_id",
];

const BAD_PERIODS: &[&str] = &[
    "2026-13",
    "2026-00",
    "10000-01",
    "-0001-01",
    "+2026-01",
    "2026-02-30",
    "2026-02-29",
    "2026-11-31",
    "2026-1",
    "2026-011",
    " 2026-01",
    "TOTAL",
    "🦀",
    "1e308",
];

const BAD_EMAILS: &[&str] = &[
    "not-an-email",
    "a@b",
    "@",
    "a b@c.de",
    "a@b@c.co",
    "@b.co",
    "\u{0}@b.co",
];

const BAD_METRICS: &[&str] = &["Api-Calls", "-x", "a b", "🦀", "x\u{0}"];

fn query(route: &Route, fx: &Arc<Fx>, clean: bool) -> S<Vec<(String, String)>> {
    if clean {
        // What a well-behaved client sends (routes ignore what they do not use).
        let month = OffsetDateTime::now_utc()
            .format(&time::macros::format_description!("[year]-[month]"))
            .unwrap();
        let pairs = vec![
            (
                "limit".to_string(),
                select(strs(&["1", "2", "25", "100"])).boxed(),
            ),
            ("email".to_string(), select(fx.emails.clone()).boxed()),
            (
                "period".to_string(),
                select(vec![month, "total".to_string()]).boxed(),
            ),
            (
                "license_id".to_string(),
                select(fx.license_ids[..2].to_vec()).boxed(),
            ),
            (
                "metric".to_string(),
                select(strs(&["api-calls", "storage"])).boxed(),
            ),
            (
                "format".to_string(),
                select(strs(&["json", "csv", "pdf"])).boxed(),
            ),
            (
                "start_date".to_string(),
                select(strs(&["2026-11-01", "2026-12-01"])).boxed(),
            ),
            (
                "end_date".to_string(),
                select(strs(&["2026-12-31", "2027-01-31"])).boxed(),
            ),
            (
                "since".to_string(),
                Just(now_plus(Duration::hours(-1))).boxed(),
            ),
        ];
        let picks: Vec<S<Option<(String, String)>>> = pairs
            .into_iter()
            .map(|(k, v)| prop::option::weighted(0.5, v.prop_map(move |v| (k.clone(), v))).boxed())
            .collect();
        return picks
            .prop_map(|v| v.into_iter().flatten().collect())
            .boxed();
    }
    let fx2 = fx.clone();
    let pair = prop_oneof![
        9 => select(QUERY_KEYS).prop_flat_map(move |k| {
            query_value(k, &fx2).prop_map(move |v| (k.to_string(), v))
        }),
        1 => (
            select(vec!["", "LIMIT", "limit[]", "🦀", "__proto__", "x"]).prop_map(str::to_string),
            select(TEXTS).prop_map(str::to_string),
        ),
    ];
    let pairs = prop::collection::vec(pair, 0..5).prop_map(|v| {
        let mut seen = std::collections::HashSet::new();
        v.into_iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .collect::<Vec<_>>()
    });
    if route.method == "GET" {
        pairs.boxed()
    } else {
        prop_oneof![4 => Just(Vec::new()), 1 => pairs].boxed()
    }
}

/// What the contract says about the query of `route` (reasons to refuse).
fn query_refusals(route: &Route, q: &[(String, String)], fx: &Fx) -> Vec<String> {
    let get = |k: &str| {
        q.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let mut why = Vec::new();
    let paged = matches!(
        route.path,
        "/v1/manage/products" | "/v1/manage/policies" | "/v1/manage/audit-events"
    ) && route.method == "GET";
    let limit_in = |max: i32| {
        get("limit").is_none_or(|v| v.parse::<i32>().is_ok_and(|n| (1..=max).contains(&n)))
    };
    if paged {
        if !limit_in(100) {
            why.push("limit outside 1-100".to_string());
        }
        if let Some(c) = get("cursor") {
            if !fx.cursors.iter().any(|k| k == c) {
                why.push("a cursor never issued".to_string());
            }
        }
    }
    if route.path == "/v1/manage/audit-events" {
        if let Some(s) = get("since") {
            if BAD_DATES.contains(&s) {
                why.push("since outside the calendar".to_string());
            }
        }
    }
    if route.path == "/v1/manage/licenses" && route.method == "GET" {
        // Without `email` it is the tenant-wide search (tests/tests/api/search.rs).
        if get("email").is_some_and(|e| BAD_EMAILS.contains(&e)) {
            why.push("not an e-mail".to_string());
        }
    }
    if route.path == BILLING_EXPORT {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        let day = |k: &str| get(k).and_then(|v| time::Date::parse(v, &fmt).ok());
        match (day("start_date"), day("end_date")) {
            (Some(s), Some(e)) => {
                let months = (e.year() - s.year()) * 12 + i32::from(u8::from(e.month()))
                    - i32::from(u8::from(s.month()));
                if e < s || months >= 24 {
                    why.push("start_date..end_date is not a range of at most 24 months".into());
                }
            }
            _ => why.push("start_date and end_date (YYYY-MM-DD) are required".to_string()),
        }
        if !limit_in(1000) {
            why.push("limit outside 1-1000".to_string());
        }
        if get("format").is_some_and(|f| !["json", "csv", "pdf"].contains(&f)) {
            why.push("format is json, csv or pdf".to_string());
        }
        // Cursors of other listings never fit this one.
        if get("cursor").is_some() {
            why.push("a cursor this listing never issued".to_string());
        }
    }
    if route.path.starts_with("/v1/manage/usage") {
        let period = get("period");
        if period.is_some_and(|p| BAD_PERIODS.contains(&p)) {
            why.push("not a period".to_string());
        }
        if get("metric").is_some_and(|m| BAD_METRICS.contains(&m)) {
            why.push("not a metric name".to_string());
        }
        let license = get("license_id");
        if license.is_some_and(|l| !fx.license_ids[..2].iter().any(|k| k == l)) {
            why.push("no such license in this tenant".to_string());
        }
        let month = period.is_some_and(|p| p.len() == 7 && p != "total");
        match route.path {
            "/v1/manage/usage" if license.is_none() && period.is_none() => {
                why.push("license_id or period is required".to_string())
            }
            "/v1/manage/usage/events" => {
                if license.is_none() {
                    why.push("license_id is required".to_string());
                }
                if period.is_some() && !month {
                    why.push("period must be a month".to_string());
                }
            }
            EXPORT => {
                if !month {
                    why.push("period must be a month".to_string());
                }
                if !limit_in(1000) {
                    why.push("limit outside 1-1000".to_string());
                }
                if get("format").is_some_and(|f| f != "json" && f != "csv") {
                    why.push("format is json or csv".to_string());
                }
            }
            _ => {}
        }
    }
    why
}

// ------------------------------------------------------------ credentials and headers

fn auth(surface: Surface, fx: &Fx, clean: bool) -> S<(Auth, Headers)> {
    let h = |k: &str, v: &[u8]| vec![(k.to_string(), v.to_vec())];
    if clean {
        match surface {
            Surface::Integration => {
                return Just((Auth::Good, h("x-api-key", fx.integration.as_bytes()))).boxed()
            }
            Surface::Manage => {
                return Just((Auth::Good, h("x-api-key", fx.admin.as_bytes()))).boxed()
            }
            Surface::Platform => {
                let bearer = format!("Bearer {}", fx.token);
                return Just((Auth::Good, h("authorization", bearer.as_bytes()))).boxed();
            }
            Surface::Customer => return Just((Auth::Good, fx.customer_session.clone())).boxed(),
            Surface::Stripe | Surface::Public | Surface::Portal => {}
        }
    }
    let bad_keys =
        select(fx.bad_keys.clone()).prop_map(|k| (Auth::Bad, vec![("x-api-key".to_string(), k)]));
    let no_key = Just((Auth::Bad, Vec::new()));
    let bearer = Just((
        Auth::Bad,
        h("authorization", format!("Bearer {}", fx.token).as_bytes()),
    ));
    match surface {
        Surface::Integration | Surface::Manage => {
            let (mine, other) = if surface == Surface::Integration {
                (&fx.integration, &fx.admin)
            } else {
                (&fx.admin, &fx.integration)
            };
            prop_oneof![
                12 => Just((Auth::Good, h("x-api-key", mine.as_bytes()))),
                1 => Just((Auth::Good, h("x-api-key", format!(" {mine} ").as_bytes()))),
                1 => Just((Auth::OtherScope, h("x-api-key", other.as_bytes()))),
                3 => bad_keys,
                1 => no_key,
                1 => bearer,
            ]
            .boxed()
        }
        Surface::Platform => {
            let t = &fx.token;
            let bad: Vec<Vec<u8>> = vec![
                b"Bearer".to_vec(),
                b"Bearer ".to_vec(),
                b"Bearer wrong".to_vec(),
                format!("Basic {t}").into_bytes(),
                t.clone().into_bytes(),
                format!("Bearer {t}x").into_bytes(),
                format!("Bearer {}", &t[..t.len() - 1]).into_bytes(),
                format!("Bearer {}", "a".repeat(10_000)).into_bytes(),
                b"Bearer \xff\xfe".to_vec(),
                format!("Bearer {}", fx.admin).into_bytes(),
            ];
            prop_oneof![
                8 => Just((Auth::Good, h("authorization", format!("Bearer {t}").as_bytes()))),
                3 => select(bad).prop_map(|v| (Auth::Bad, vec![("authorization".to_string(), v)])),
                1 => Just((Auth::Bad, h("x-api-key", fx.admin.as_bytes()))),
                1 => no_key,
            ]
            .boxed()
        }
        // Unsigned: every one of these is wrong.
        Surface::Stripe => {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let sigs: Vec<Vec<u8>> = [
                "t=-9223372036854775808,v1=00".to_string(),
                "t=9223372036854775807,v1=00".to_string(),
                "t=18446744073709551616,v1=00".to_string(),
                "t=1e308,v1=00".to_string(),
                "t=,v1=".to_string(),
                "v1=00".to_string(),
                format!("t={now}"),
                format!("t={now},v1={}", "0".repeat(64)),
                format!("t={now},v0={}", "0".repeat(64)),
                format!("t={now},t=1,v1=zz"),
                "t=abc,v1=zz".to_string(),
                ",,,,".to_string(),
                "".to_string(),
                "t=0,v1=".to_string() + &"f".repeat(8000),
            ]
            .into_iter()
            .map(String::into_bytes)
            .chain([b"t=\xff,v1=\x80".to_vec()])
            .collect();
            prop_oneof![
                8 => select(sigs).prop_map(|v| (Auth::Bad, vec![("stripe-signature".to_string(), v)])),
                1 => no_key,
                1 => Just((Auth::Bad, h("x-api-key", fx.admin.as_bytes()))),
            ]
            .boxed()
        }
        Surface::Public => prop_oneof![
            Just((Auth::Good, Vec::new())),
            Just((Auth::Good, h("x-api-key", b"nonsense"))),
        ]
        .boxed(),
        // A member's session may do anything here (the admin's); an app
        // key reaches none of these member-only routes (403); a vendor's
        // key, a bad one or none is 401.
        Surface::Customer => {
            let session = fx.customer_session.clone();
            let mut no_csrf = session.clone();
            no_csrf.retain(|(k, _)| k == "cookie");
            let forged_cookie = vec![(
                "cookie".to_string(),
                format!("customer_session={}.{}", "nosuchorg", "x".repeat(43)).into_bytes(),
            )];
            prop_oneof![
                10 => Just((Auth::Good, session)),
                2 => Just((Auth::OtherScope, h("x-api-key", fx.customer_key.as_bytes()))),
                1 => Just((Auth::Bad, h("x-api-key", fx.admin.as_bytes()))),
                2 => bad_keys,
                1 => Just((Auth::Bad, forged_cookie)),
                1 => no_key,
                1 => bearer,
                1 => Just((Auth::CsrfOnWrite, no_csrf)),
            ]
            .boxed()
        }
        // No property generates portal requests (see Property::Html).
        Surface::Portal => Just((Auth::Bad, Vec::new())).boxed(),
    }
}

/// Other headers, and whether they alone make the request bad for `route`.
fn extra_headers(route: &Route, clean: bool) -> S<(Headers, Vec<String>)> {
    let record = route.path == "/v1/integration/usage/record";
    if clean {
        let idem = if record {
            prop::option::weighted(0.5, "[ -~]{1,40}".prop_map(String::into_bytes)).boxed()
        } else {
            Just(None).boxed()
        };
        return idem
            .prop_map(|idem| {
                let mut h = vec![("content-type".to_string(), b"application/json".to_vec())];
                if let Some(v) = idem {
                    h.push(("x-idempotency-key".to_string(), v));
                }
                (h, Vec::new())
            })
            .boxed();
    }
    let ct = prop::option::weighted(
        0.5,
        select(vec![
            b"application/json".to_vec(),
            b"text/plain".to_vec(),
            b"application/json; charset=utf-16".to_vec(),
            b"multipart/form-data; boundary=x".to_vec(),
            b"\xef\xbb\xbf".to_vec(),
            Vec::new(),
        ]),
    );
    let idem_ok = prop_oneof![
        Just(b"job-1".to_vec()),
        Just(b" ".to_vec()),
        Just(vec![b'k'; 255]),
        "[ -~]{1,255}".prop_map(String::into_bytes),
    ]
    .prop_map(|v| (v, false));
    let idem_bad = select(vec![
        Vec::new(),
        vec![b'k'; 256],
        b"\t".to_vec(),
        b"a\tb".to_vec(),
        "clé-1".as_bytes().to_vec(),
        b"k\xff".to_vec(),
        b"\x80".to_vec(),
        "\u{200B}".as_bytes().to_vec(),
    ])
    .prop_map(|v| (v, true));
    let idem = prop::option::weighted(
        if record { 0.6 } else { 0.1 },
        prop_oneof![3 => idem_ok, 2 => idem_bad],
    );
    let junk = prop::option::weighted(
        0.2,
        (
            select(vec![
                "x-request-id",
                "x-forwarded-for",
                "accept",
                "x-junk",
                "cookie",
            ]),
            select(vec![
                b"".to_vec(),
                b"\xff\xfe".to_vec(),
                vec![b'a'; 8000],
                "🦀".as_bytes().to_vec(),
                b"req_../../x".to_vec(),
            ]),
        ),
    );
    (ct, idem, junk)
        .prop_map(move |(ct, idem, junk)| {
            let mut h = Vec::new();
            let mut why = Vec::new();
            if let Some(ct) = ct {
                h.push(("content-type".to_string(), ct));
            }
            if let Some((v, bad)) = idem {
                if bad && record {
                    why.push("a malformed X-Idempotency-Key".to_string());
                }
                h.push(("x-idempotency-key".to_string(), v));
            }
            if let Some((k, v)) = junk {
                h.push((k.to_string(), v));
            }
            (h, why)
        })
        .boxed()
}

// ------------------------------------------------------------ bodies

/// A body field: plausible values (any answer will do) and values the
/// contract refuses.
struct Field {
    name: &'static str,
    required: bool,
    ok: S<J>,
    bad: S<J>,
}

fn field(name: &'static str, required: bool, ok: S<J>, bad: S<J>) -> Field {
    Field {
        name,
        required,
        ok,
        bad,
    }
}

#[derive(Clone, Debug)]
enum Part {
    Omit,
    Ok(J),
    Bad(J),
    Wild(J),
}

fn names_ok(max: usize) -> S<J> {
    let mut v = strs(&[
        "App",
        "Ann's laptop",
        "🦀 Ferris",
        "e\u{301}",
        "\u{202E}evil",
        "\u{200B}x",
        "\u{FEFF}",
        "👩‍👩‍👧‍👦",
        "İstanbul",
    ]);
    v.push("x".repeat(max));
    v.push("é".repeat(max));
    js(v)
}

fn names_bad(max: usize) -> S<J> {
    let mut v = strs(&["", "   ", "\t\n", "a\u{0}b", "\u{1b}[31m", "\u{7f}"]);
    v.push("x".repeat(max + 1));
    v.push("🦀".repeat(max + 1));
    either(js(v), jr(&["null", "5", "[]", "{}"]))
}

fn emails_ok() -> S<J> {
    js(strs(&[
        "buyer@example.com",
        "Ann@Example.COM",
        "=cmd|'/c calc'!A0@evil.example",
        "-x@y.co",
        "é@🦀.com",
        "a@b.co",
    ]))
}

fn emails_bad() -> S<J> {
    let mut v = strs(BAD_EMAILS);
    v.push(format!("{}@b.co", "x".repeat(250)));
    v.push(String::new());
    either(js(v), jr(&["null", "1", "[]"]))
}

fn dates_bad_or_past() -> S<J> {
    let mut v = strs(BAD_DATES);
    v.push(now_plus(Duration::days(-1)));
    either(js(v), jr(&["0", "1e308", "[]"]))
}

fn future_ok() -> S<J> {
    either(
        js(vec![
            now_plus(Duration::days(1)),
            now_plus(Duration::days(3650)),
            "9999-12-30T00:00:00Z".into(),
            "9999-12-31T23:59:59Z".into(),
            "9999-12-31T23:59:59.999999999+00:00".into(),
        ]),
        jr(&["null"]),
    )
}

fn metadata_ok() -> S<J> {
    let fifty = J::Obj((0..50).map(|i| (format!("k{i}"), J::raw("1"))).collect());
    prop_oneof![
        Just(J::raw("{}")),
        Just(J::raw("null")),
        Just(fifty),
        prop::collection::vec(("[a-z0-9_]{1,64}", valid_extreme()), 1..4).prop_map(J::Obj),
    ]
    .boxed()
}

/// Extreme values that are still valid JSON (serde_json reads them all).
fn valid_extreme() -> S<J> {
    prop_oneof![
        3 => select(NUMBERS).prop_filter("f64 overflows", |n| *n != "1e400").prop_map(J::raw),
        3 => select(TEXTS).prop_map(J::s),
        1 => select(DATES).prop_map(J::s),
        1 => select(vec![r#""\u0000""#, r#""\ud83e\udd80""#, r#""a\u0000b""#, "true", "null", "[]", "{}"])
            .prop_map(J::raw),
        1 => (select(vec!["a", "é", "🦀", "\u{200B}"]), 1usize..1500).prop_map(|(u, n)| J::Str(u.repeat(n))),
        1 => (1usize..100).prop_map(|n| J::Raw(format!("{}{}", "[".repeat(n), "]".repeat(n)))),
    ]
    .boxed()
}

fn metadata_bad() -> S<J> {
    let many = J::Obj((0..51).map(|i| (format!("k{i}"), J::raw("1"))).collect());
    let big = J::Obj(vec![("k".into(), J::Str("x".repeat(9 * 1024)))]);
    let long_key = J::Obj(vec![("k".repeat(65), J::raw("1"))]);
    let empty_key = J::Obj(vec![(String::new(), J::raw("1"))]);
    prop_oneof![
        Just(many),
        Just(big),
        Just(long_key),
        Just(empty_key),
        jr(&["\"no\"", "[]", "1", "true"]),
    ]
    .boxed()
}

fn key_names(n: usize) -> J {
    J::Arr((0..n).map(|i| J::Str(format!("f{i}"))).collect())
}

fn features_bad(allow_empty: bool) -> S<J> {
    let mut v = vec![
        key_names(101),
        J::Arr(vec![J::s("Bad Name")]),
        J::Arr(vec![J::s("")]),
        J::Arr(vec![J::s("🦀")]),
        J::Arr(vec![J::raw("1")]),
        J::raw("null"),
        J::s("export-4k"),
    ];
    if !allow_empty {
        v.push(J::raw("[]"));
    }
    select(v).boxed()
}

fn license_keys_ok(fx: &Fx) -> S<J> {
    prop_oneof![
        6 => js(fx.license_keys[..2].to_vec()),
        1 => js(fx.license_keys[2..].to_vec()),
        1 => "[A-Z0-9]{5}(-[A-Z0-9]{5}){4}|[A-Za-z0-9._-]{8,128}".prop_map(J::Str),
    ]
    .boxed()
}

fn license_keys_bad() -> S<J> {
    let mut v = strs(&[
        "bad key!",
        "short",
        "",
        "ABCDE-ÉÉÉÉÉ",
        "🦀🦀🦀🦀🦀🦀🦀🦀",
        "ABCDE\u{0}FGHIJ",
        "ABCDE FGHIJ",
    ]);
    v.push("x".repeat(129));
    either(js(v), jr(&["12345678", "null", "[]"]))
}

fn fingerprints_ok(fx: &Fx) -> S<J> {
    let mut v = fx.fingerprints.clone();
    v.extend(strs(&["🦀", "a b", "machine-2", "e\u{301}", "\u{3000}x"]));
    v.push("é".repeat(128));
    either(js(v), "fp-[a-z0-9]{1,12}".prop_map(J::Str).boxed())
}

fn fingerprints_bad() -> S<J> {
    let mut v = strs(&[
        "",
        " ",
        "\t \t",
        "\u{200B}",
        "a\u{200B}",
        "\u{FEFF}",
        "\u{202E}x",
        "a\u{0}",
        "\u{7f}x",
        "\u{00AD}",
        "\u{2060}",
        "x\u{200D}y",
    ]);
    v.push("x".repeat(257));
    v.push("é".repeat(129));
    either(js(v), jr(&["null", "1", r#""\u0000""#]))
}

fn metrics_ok() -> S<J> {
    prop_oneof![
        6 => js(strs(&["api-calls", "storage", "logins"])),
        1 => js(strs(&["export-4k", "nope"])),
    ]
    .boxed()
}

fn metrics_bad() -> S<J> {
    let mut v = strs(BAD_METRICS);
    v.push(String::new());
    v.push("x".repeat(65));
    either(js(v), jr(&["5", "null"]))
}

fn entitlements_ok(patch: bool) -> S<J> {
    let mut v = vec![
        J::raw("{}"),
        J::of(&json!({"f": {"type": "boolean"}})),
        J::of(&json!({"m": {"type": "metered", "limit": 0, "period": "day"}})),
        J::of(
            &json!({"m": {"type": "metered", "limit": 1_000_000_000_000_000u64,
                             "period": "total", "overage": "allow"}}),
        ),
        J::of(
            &json!({"m": {"type": "metered", "limit": 10, "period": "month",
                             "aggregation": "unique_count", "unique_by": "user_id"}}),
        ),
        J::of(
            &json!({"m": {"type": "metered", "period": "day", "aggregation": "max"},
                      "n": {"type": "metered", "period": "total", "aggregation": "last"},
                      "o": {"type": "metered", "limit": 3, "period": "day", "aggregation": "sum"}}),
        ),
        J::Obj(
            (0..100)
                .map(|i| (format!("f{i}"), J::of(&json!({"type": "boolean"}))))
                .collect(),
        ),
    ];
    if patch {
        v.push(J::raw("null"));
    }
    select(v).boxed()
}

fn metered(limit: &str, period: &str) -> J {
    J::Obj(vec![(
        "m".into(),
        J::Obj(vec![
            ("type".into(), J::s("metered")),
            ("limit".into(), J::raw(limit)),
            ("period".into(), J::s(period)),
        ]),
    )])
}

fn entitlements_bad(post: bool) -> S<J> {
    let mut v = vec![
        metered("18446744073709551615", "total"),
        metered("18446744073709551616", "total"),
        metered("1000000000000001", "month"),
        metered("9223372036854775808", "month"),
        metered("-1", "day"),
        metered("1e308", "day"),
        metered("1.5", "day"),
        metered("5", "week"),
        J::of(&json!({"f": {"type": "quantum"}})),
        J::of(&json!({"m": {"type": "metered", "period": "day"}})),
        J::of(
            &json!({"m": {"type": "metered", "limit": 5, "period": "day", "aggregation": "max"}}),
        ),
        J::of(
            &json!({"m": {"type": "metered", "limit": 0, "period": "day", "aggregation": "last"}}),
        ),
        J::of(
            &json!({"m": {"type": "metered", "limit": 5, "period": "day", "aggregation": "unique_count"}}),
        ),
        J::of(&json!({"m": {"type": "metered", "limit": 5, "period": "day", "unique_by": "user"}})),
        J::of(
            &json!({"m": {"type": "metered", "limit": 5, "period": "day", "aggregation": "avg"}}),
        ),
        J::of(
            &json!({"m": {"type": "metered", "limit": 5, "period": "day",
                             "aggregation": "unique_count", "unique_by": "9 bad"}}),
        ),
        J::of(&json!({"f": {"type": "boolean", "x": 1}})),
        J::of(&json!({"Bad Name": {"type": "boolean"}})),
        J::Obj(
            (0..101)
                .map(|i| (format!("f{i}"), J::of(&json!({"type": "boolean"}))))
                .collect(),
        ),
        J::raw("[]"),
    ];
    if post {
        v.push(J::raw("null"));
    }
    select(v).boxed()
}

fn price_ids_ok() -> S<J> {
    select(vec![
        J::raw("[]"),
        J::Arr(vec![J::s("price_1")]),
        J::Arr((0..20).map(|i| J::Str(format!("price_{i}"))).collect()),
        J::Arr(vec![J::Str("p".repeat(255))]),
    ])
    .boxed()
}

fn price_ids_bad(post: bool) -> S<J> {
    let mut v = vec![
        J::Arr((0..21).map(|i| J::Str(format!("price_{i}"))).collect()),
        J::Arr(vec![J::s("")]),
        J::Arr(vec![J::s(" ")]),
        J::Arr(vec![J::Str("p".repeat(256))]),
        J::Arr(vec![J::raw("1")]),
        J::s("price_1"),
    ];
    if post {
        v.push(J::raw("null"));
    }
    select(v).boxed()
}

fn policies_ok(fx: &Fx) -> S<J> {
    prop_oneof![
        4 => js(fx.policy_ids.clone()),
        1 => "pol_[0-9a-z]{26}".prop_map(J::Str),
    ]
    .boxed()
}

fn policies_bad(fx: &Fx) -> S<J> {
    let mut v = strs(&[
        "pol_",
        "",
        "pol_01ARZ3NDEKTSV4RRFFQ69G5FA",
        "pol_01arz3ndektsv4rrffq69g5fa🦀",
    ]);
    v.push(fx.license_ids[0].clone());
    v.push(fx.policy_ids[0].to_uppercase());
    either(js(v), jr(&["5", "null"]))
}

fn u32s(ok: &'static [&'static str], bad: &'static [&'static str]) -> (S<J>, S<J>) {
    (jr(ok), jr(bad))
}

/// The JSON body a route reads, field by field; `None`: it reads none.
fn schema(route: &Route, fx: &Fx) -> Option<Vec<Field>> {
    let products_ok = || {
        prop_oneof![4 => js(fx.products.clone()), 1 => js(strs(&["nope", "no-such-product"]))]
            .boxed()
    };
    let products_bad = || {
        either(
            js(strs(&["Has Spaces", "", "-x", "🦀", "UPPER"])),
            jr(&["1", "null"]),
        )
    };
    Some(match (route.method, route.path) {
        ("POST", "/v1/integration/licenses/{key}/validate") => vec![
            field(
                "fingerprint",
                false,
                either(fingerprints_ok(fx), jr(&["null"])),
                fingerprints_bad()
                    .prop_filter("null is absent", |j| !j.is_null())
                    .boxed(),
            ),
            field(
                "product",
                false,
                either(products_ok(), jr(&["null"])),
                products_bad()
                    .prop_filter("null is absent", |j| !j.is_null())
                    .boxed(),
            ),
            field(
                "entitlements",
                false,
                select(vec![
                    J::raw("[]"),
                    J::Arr(vec![J::s("export-4k"), J::s("sso")]),
                    key_names(100),
                ])
                .boxed(),
                features_bad(true),
            ),
        ],
        ("POST", "/v1/integration/activations") => vec![
            field("license_key", true, license_keys_ok(fx), license_keys_bad()),
            field("fingerprint", true, fingerprints_ok(fx), fingerprints_bad()),
            field(
                "name",
                false,
                names_ok(255),
                names_bad(255)
                    .prop_filter("null is absent", |j| !j.is_null())
                    .boxed(),
            ),
            field(
                "hostname",
                false,
                names_ok(255),
                names_bad(255)
                    .prop_filter("null is absent", |j| !j.is_null())
                    .boxed(),
            ),
            field("metadata", false, metadata_ok(), metadata_bad()),
        ],
        ("POST", "/v1/integration/activations/deactivate") => vec![
            field("license_key", true, license_keys_ok(fx), license_keys_bad()),
            field("fingerprint", true, fingerprints_ok(fx), fingerprints_bad()),
        ],
        ("POST", "/v1/integration/entitlements/check") => vec![
            field("license_key", true, license_keys_ok(fx), license_keys_bad()),
            field(
                "features",
                true,
                select(vec![
                    J::Arr(vec![J::s("export-4k")]),
                    J::Arr(vec![J::s("api-calls"), J::s("sso"), J::s("nope")]),
                    key_names(100),
                ])
                .boxed(),
                features_bad(false),
            ),
        ],
        ("POST", "/v1/integration/usage/record") => vec![
            field("license_key", true, license_keys_ok(fx), license_keys_bad()),
            field("metric", true, metrics_ok(), metrics_bad()),
            field(
                "quantity",
                true,
                jr(&["1", "2", "10", "1000000000"]),
                jr(&[
                    "0",
                    "-1",
                    "1.5",
                    "\"3\"",
                    "null",
                    "1000000001",
                    "4294967295",
                    "18446744073709551615",
                    "18446744073709551616",
                    "-9223372036854775808",
                    "1e308",
                    "true",
                ]),
            ),
            field(
                "timestamp",
                false,
                js(vec![
                    now_plus(Duration::minutes(-5)),
                    now_plus(Duration::days(-6)),
                    now_plus(Duration::seconds(30)),
                ]),
                {
                    let mut v = strs(BAD_DATES);
                    v.push(now_plus(Duration::days(-8)));
                    v.push(now_plus(Duration::hours(1)));
                    either(js(v), jr(&["0", "1e308"]))
                },
            ),
            field("metadata", false, metadata_ok(), metadata_bad()),
        ],
        ("POST", "/v1/manage/products") => vec![
            field(
                "code",
                true,
                either(
                    "[a-z0-9][a-z0-9._-]{0,20}".prop_map(J::Str).boxed(),
                    js(vec![fx.products[0].clone(), "x".repeat(64)]),
                ),
                {
                    let mut v = strs(&["", "Has Spaces", "-x", "_x", "🦀", "UPPER"]);
                    v.push("x".repeat(65));
                    either(js(v), jr(&["1", "null"]))
                },
            ),
            field("name", true, names_ok(200), names_bad(200)),
        ],
        ("PATCH", "/v1/manage/products/{code}") => vec![field(
            "name",
            false,
            either(names_ok(200), jr(&["null"])),
            names_bad(200)
                .prop_filter("null is absent", |j| !j.is_null())
                .boxed(),
        )],
        ("POST", "/v1/manage/policies") | ("PATCH", "/v1/manage/policies/{id}") => {
            let post = route.method == "POST";
            let (max_ok, max_bad) = u32s(
                &["0", "1", "5", "1000000"],
                &[
                    "-1",
                    "1000001",
                    "4294967295",
                    "4294967296",
                    "1.5",
                    "\"1\"",
                    "18446744073709551616",
                ],
            );
            let (dur_ok, dur_bad) = u32s(
                &["null", "1", "365", "36500"],
                &["0", "-1", "36501", "4294967295", "1e308"],
            );
            let (grace_ok, grace_bad) = u32s(
                &["null", "0", "3", "3650"],
                &["-1", "3651", "4294967295", "18446744073709551615"],
            );
            let mut v = Vec::new();
            if post {
                v.push(field("product", true, products_ok(), products_bad()));
            }
            let names_bad = if post {
                names_bad(200)
            } else {
                names_bad(200)
                    .prop_filter("null is absent", |j| !j.is_null())
                    .boxed()
            };
            v.extend([
                field("name", post, names_ok(200), names_bad),
                field("max_activations", post, max_ok, max_bad),
                field("duration_days", false, dur_ok, dur_bad),
                field(
                    "entitlements",
                    false,
                    entitlements_ok(!post),
                    entitlements_bad(post),
                ),
                field("grace_period_days", false, grace_ok, grace_bad),
                field(
                    "stripe_price_ids",
                    false,
                    price_ids_ok(),
                    price_ids_bad(post),
                ),
            ]);
            v
        }
        ("POST", "/v1/manage/licenses") => vec![
            field("policy", true, policies_ok(fx), policies_bad(fx)),
            field("customer_email", true, emails_ok(), emails_bad()),
            field("expires_at", false, future_ok(), dates_bad_or_past()),
            field(
                "key",
                false,
                either(
                    "[A-Z0-9]{5}(-[A-Z0-9]{5}){4}".prop_map(J::Str).boxed(),
                    jr(&["null"]),
                ),
                license_keys_bad()
                    .prop_filter("null is absent", |j| !j.is_null())
                    .boxed(),
            ),
            field("metadata", false, metadata_ok(), metadata_bad()),
        ],
        ("PATCH", "/v1/manage/licenses/{id}") => vec![
            field("metadata", false, metadata_ok(), metadata_bad()),
            field(
                "max_activations",
                false,
                jr(&["null", "0", "2", "1000000"]),
                jr(&["-1", "1000001", "4294967295", "1.5"]),
            ),
            field(
                "entitlements",
                false,
                select(vec![
                    J::raw("null"),
                    J::raw("{}"),
                    J::of(&json!({"export-4k": null})),
                    J::of(&json!({"api-calls": "inherit"})),
                    J::of(&json!({"new": {"type": "boolean"}})),
                    J::of(
                        &json!({"api-calls": {"type": "metered", "limit": 5, "period": "month"}}),
                    ),
                ])
                .boxed(),
                select(vec![
                    metered("18446744073709551615", "total"),
                    metered("9223372036854775808", "total"),
                    metered("1000000000000001", "month"),
                    J::of(&json!({"m": "nope"})),
                    J::of(&json!({"Bad": null})),
                    J::Obj(
                        (0..101)
                            .map(|i| (format!("f{i}"), J::raw("null")))
                            .collect(),
                    ),
                ])
                .boxed(),
            ),
            field(
                "policy",
                false,
                either(policies_ok(fx), jr(&["null"])),
                policies_bad(fx)
                    .prop_filter("null is absent", |j| !j.is_null())
                    .boxed(),
            ),
        ],
        ("POST", "/v1/manage/licenses/{id}/renew") => vec![
            field("expires_at", false, future_ok(), dates_bad_or_past()),
            field(
                "days",
                false,
                jr(&["null", "1", "30", "36500"]),
                jr(&[
                    "0",
                    "-1",
                    "36501",
                    "4294967295",
                    "1.5",
                    "18446744073709551616",
                ]),
            ),
        ],
        ("POST", "/v1/manage/api-keys") => vec![
            field("name", true, names_ok(200), names_bad(200)),
            field(
                "scopes",
                true,
                select(vec![
                    J::of(&json!(["admin"])),
                    J::of(&json!(["integration"])),
                    J::of(&json!(["admin", "integration", "admin"])),
                ])
                .boxed(),
                select(vec![
                    J::raw("[]"),
                    J::of(&json!(["root"])),
                    J::of(&json!(["Admin"])),
                    J::s("admin"),
                    J::raw("null"),
                    J::raw("[1]"),
                ])
                .boxed(),
            ),
            field("expires_at", false, future_ok(), dates_bad_or_past()),
        ],
        ("POST", "/v1/customer/api-keys") => vec![
            field("app_name", true, names_ok(200), names_bad(200)),
            field(
                "app_type",
                true,
                js(strs(&["desktop", "ci_cd", "cloud_service"])),
                either(js(strs(&["Desktop", "", "server"])), jr(&["1", "null"])),
            ),
            field(
                "scopes",
                true,
                select(vec![
                    J::of(&json!(["license:read"])),
                    J::of(&json!([
                        "license:checkout",
                        "license:return",
                        "license:read"
                    ])),
                    J::of(&json!(["license:read", "license:read"])),
                ])
                .boxed(),
                select(vec![
                    J::raw("[]"),
                    J::of(&json!(["admin"])),
                    J::of(&json!(["License:Read"])),
                    J::s("license:read"),
                    J::raw("null"),
                    J::raw("[1]"),
                ])
                .boxed(),
            ),
            field(
                "expires_in_days",
                false,
                jr(&["1", "30", "3650", "null"]),
                jr(&["0", "3651", "-1", "\"7\"", "1.5", "4294967296"]),
            ),
            field(
                "allowed_hostnames",
                false,
                select(vec![
                    J::of(&json!(["build-01.corp"])),
                    J::raw("[]"),
                    J::raw("null"),
                ])
                .boxed(),
                select(vec![
                    J::of(&json!(["has space"])),
                    J::of(&json!([""])),
                    J::s("build-01"),
                    J::raw("[1]"),
                ])
                .boxed(),
            ),
            field(
                "allowed_cidrs",
                false,
                select(vec![
                    J::of(&json!(["10.0.0.0/8", "2001:db8::/32"])),
                    J::of(&json!(["127.0.0.1"])),
                    J::raw("null"),
                ])
                .boxed(),
                select(vec![
                    J::of(&json!(["10.0.0.0/33"])),
                    J::of(&json!(["not-an-address"])),
                    J::s("10.0.0.0/8"),
                    J::raw("[1]"),
                ])
                .boxed(),
            ),
            field(
                "client_cert_sha256",
                false,
                select(vec![J::s(&"ab".repeat(32)), J::raw("null")]).boxed(),
                either(js(strs(&["abc", &"zz".repeat(32), ""])), jr(&["1"])),
            ),
        ],
        ("POST", "/v1/customer/members") => vec![
            field("email", true, emails_ok(), emails_bad()),
            field(
                "role",
                true,
                js(strs(&["viewer", "manager", "admin"])),
                either(js(strs(&["owner", "Admin", ""])), jr(&["1", "null"])),
            ),
        ],
        // The pool (issue 20, part B).
        ("POST", "/v1/customer/checkouts") => vec![
            field("product", true, products_ok(), products_bad()),
            field("user", true, names_ok(128), names_bad(128)),
        ],
        ("PATCH", "/v1/customer/licenses/{id}") => {
            let (ok, bad) = u32s(&["0", "1", "2"], &["-1", "1.5", "\"1\"", "4294967296"]);
            vec![field("overage_limit", true, ok, bad)]
        }
        ("PUT", "/v1/manage/customers/{customer_id}/crm") => vec![field(
            "crm_account_id",
            true,
            js(strs(&["ACC-1", "0015g00000XyZ", "a:b.c_d-e"])),
            either(
                js(strs(&["", "has space", "a#b", &"x".repeat(129)])),
                jr(&["1", "null"]),
            ),
        )],
        ("PATCH", "/v1/customer/members/{email}") => vec![field(
            "role",
            true,
            js(strs(&["viewer", "manager", "admin"])),
            either(js(strs(&["owner", "Admin", ""])), jr(&["1", "null"])),
        )],
        ("PUT", "/v1/manage/integrations/stripe") => vec![field(
            "webhook_secret",
            true,
            "whsec_[A-Za-z0-9+/=_-]{16,200}".prop_map(J::Str).boxed(),
            {
                let mut v = strs(&[
                    "whsec_short",
                    "whsec_has spaces in it 0123456789",
                    "",
                    "sk_live_0123456789abcdef",
                ]);
                v.push(format!("whsec_{}", "a".repeat(201)));
                v.push(format!("whsec_{}", "é".repeat(16)));
                either(js(v), jr(&["null", "1"]))
            },
        )],
        ("POST", "/v1/platform/tenants") => vec![
            field(
                "tenant_id",
                true,
                either(
                    "[a-z][a-z0-9-]{1,30}[a-z0-9]".prop_map(J::Str).boxed(),
                    js(fx.victims.clone()),
                ),
                {
                    let mut v =
                        strs(&["ab", "-abc", "abc-", "ABC", "a_b_c", "", "🦀🦀🦀", "a b c"]);
                    v.push("a".repeat(41));
                    either(js(v), jr(&["1", "null"]))
                },
            ),
            field("name", true, names_ok(200), names_bad(200)),
            field("admin_email", true, emails_ok(), emails_bad()),
            field(
                "plan",
                true,
                js(strs(&["free", "starter", "growth", "enterprise"])),
                either(js(strs(&["platinum", "FREE", ""])), jr(&["1", "null"])),
            ),
            field(
                "webhook_endpoints",
                false,
                select(vec![
                    J::raw("[]"),
                    J::of(&json!(["https://example.com/hook"])),
                    J::Arr(
                        (0..5)
                            .map(|i| J::Str(format!("https://example.com/h{i}")))
                            .collect(),
                    ),
                ])
                .boxed(),
                select(vec![
                    J::of(&json!(["http://example.com/hook"])),
                    J::of(&json!(["https://a.b"])),
                    J::of(&json!(["https://exa mple.com/x"])),
                    J::Arr(
                        (0..6)
                            .map(|i| J::Str(format!("https://example.com/h{i}")))
                            .collect(),
                    ),
                    J::Arr(vec![J::Str(format!("https://{}", "a".repeat(2041)))]),
                    J::raw("null"),
                ])
                .boxed(),
            ),
        ],
        ("PATCH", "/v1/platform/tenants/{id}") => {
            let setting = |k: &'static str, v: &'static [&'static str]| {
                prop::option::weighted(0.5, select(v).prop_map(move |n| (k.to_string(), J::raw(n))))
            };
            let ok = (
                setting("rate_limit_per_minute", &["1", "600", "12000", "1000000"]),
                setting("license_rate_limit_per_minute", &["1", "900", "1000000"]),
                setting("default_grace_days", &["0", "7", "3650"]),
                setting("trial_days", &["1", "14", "365"]),
            )
                .prop_map(|(a, b, c, d)| J::Obj([a, b, c, d].into_iter().flatten().collect()));
            let bad = select(vec![
                J::of(&json!({"rate_limit_per_minute": 0})),
                J::of(&json!({"rate_limit_per_minute": 1_000_001})),
                J::of(&json!({"license_rate_limit_per_minute": 4_294_967_295u64})),
                J::Obj(vec![(
                    "rate_limit_per_minute".into(),
                    J::raw("18446744073709551616"),
                )]),
                J::of(&json!({"license_rate_limit_per_minute": -1})),
                J::of(&json!({"default_grace_days": 3651})),
                J::of(&json!({"trial_days": 0})),
                J::of(&json!({"trial_days": 366})),
                J::of(&json!({"trial_days": 1.5})),
                J::of(&json!({"plan": "enterprise"})),
                J::raw("null"),
                J::raw("[]"),
                J::s("fast"),
            ]);
            vec![field("settings", true, ok.boxed(), bad.boxed())]
        }
        _ => return None,
    })
}

/// Whole bodies the JSON reader must refuse, whatever the route wants.
const NOT_OBJECTS: &[&[u8]] = &[
    b"{",
    b"{\"a\":",
    b"{\"a\":1,}",
    b"{'a':1}",
    b"\xff\xfe{}",
    b"\xef\xbb\xbf{}",
    b"{}garbage",
    b"{} {}",
    b"{\"a\":NaN}",
    b"{\"a\":1e400}",
    b"\"\\ud800\"",
    b"{\"\\ud800\":1}",
    b"[1]",
    b"[]",
    b"null",
    b"1",
    b"\"x\"",
    b"true",
    b"\x00",
];

#[derive(Clone, Debug)]
enum BodyShape {
    Fields(Vec<(&'static str, bool, Part)>, Option<(String, J)>, bool),
    Bytes(Vec<u8>, bool),
}

/// A body for `route`, and the reasons it must be refused.
fn body(route: &Route, fx: &Fx, clean: bool) -> S<(Vec<u8>, Vec<String>)> {
    let Some(fields) = schema(route, fx) else {
        if clean {
            return Just((Vec::new(), Vec::new())).boxed();
        }
        // The route reads no body: anything, even garbage, up to ~600 KiB.
        return prop_oneof![
            6 => Just(Vec::new()),
            1 => wild().prop_map(|j| j.text().into_bytes()),
            1 => select(NOT_OBJECTS).prop_map(<[u8]>::to_vec),
            1 => select(vec![70 * 1024usize, 600 * 1024, 1100 * 1024]).prop_map(|n| vec![b'{'; n]),
        ]
        .prop_map(|b| (b, Vec::new()))
        .boxed();
    };
    let required: Vec<&'static str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    let renew = route.path.ends_with("/renew");
    let parts: Vec<S<(&'static str, bool, Part)>> = fields
        .into_iter()
        .map(|f| {
            let (name, req) = (f.name, f.required);
            if clean {
                // Plausible values only: extreme where the contract allows it.
                let ok = f.ok.prop_map(Part::Ok);
                let part = if req {
                    ok.boxed()
                } else {
                    prop_oneof![1 => Just(Part::Omit), 3 => ok].boxed()
                };
                return part.prop_map(move |p| (name, req, p)).boxed();
            }
            prop_oneof![
                if req { 1 } else { 4 } => Just(Part::Omit),
                8 => f.ok.prop_map(Part::Ok),
                3 => f.bad.prop_map(Part::Bad),
                2 => wild().prop_map(Part::Wild),
            ]
            .prop_map(move |p| (name, req, p))
            .boxed()
        })
        .collect();
    let unknown = prop::option::weighted(
        0.1,
        (
            select(vec![
                "zz",
                "LICENSE_KEY",
                "__proto__",
                "",
                "🦀",
                "name ",
                "Name",
            ])
            .prop_map(str::to_string),
            wild(),
        ),
    );
    if clean {
        let shape = parts.prop_map(|p| BodyShape::Fields(p, None, false));
        return render(shape.boxed(), required, renew);
    }
    let shape = prop_oneof![
        10 => (parts, unknown, prop::bool::weighted(0.05)).prop_map(|(p, u, d)| BodyShape::Fields(p, u, d)),
        1 => select(vec![Vec::new(), b"  \n\t ".to_vec()]).prop_map(|b| BodyShape::Bytes(b, false)),
        2 => select(NOT_OBJECTS).prop_map(|b| BodyShape::Bytes(b.to_vec(), true)),
        1 => (1usize..300).prop_map(|n| BodyShape::Bytes(format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes(), true)),
        1 => (100usize..300).prop_map(|n| BodyShape::Bytes(format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n)).into_bytes(), true)),
    ];
    render(shape.boxed(), required, renew)
}

/// The bytes of a body, and the reasons it must be refused.
fn render(
    shape: S<BodyShape>,
    required: Vec<&'static str>,
    renew: bool,
) -> S<(Vec<u8>, Vec<String>)> {
    shape
        .prop_map(move |shape| {
            let mut why = Vec::new();
            match shape {
                BodyShape::Bytes(b, bad) => {
                    let blank = b.iter().all(u8::is_ascii_whitespace);
                    if bad {
                        why.push("not a JSON object".to_string());
                    } else if blank && !required.is_empty() {
                        why.push(format!("an empty body lacks {}", required.join(", ")));
                    } else if blank && renew {
                        why.push("renew needs expires_at or days".to_string());
                    }
                    (b, why)
                }
                BodyShape::Fields(parts, unknown, dup) => {
                    let mut obj: Vec<(String, J)> = Vec::new();
                    for (name, req, part) in parts {
                        match part {
                            Part::Omit if req => why.push(format!("{name} is missing")),
                            Part::Omit => {}
                            Part::Ok(j) | Part::Wild(j) => obj.push((name.to_string(), j)),
                            Part::Bad(j) => {
                                why.push(format!("{name} = {j:?}"));
                                obj.push((name.to_string(), j));
                            }
                        }
                    }
                    if renew {
                        let given = obj
                            .iter()
                            .filter(|(k, j)| (k == "expires_at" || k == "days") && !j.is_null())
                            .count();
                        if given != 1 {
                            why.push("renew takes exactly one of expires_at and days".to_string());
                        }
                    }
                    if let Some((k, v)) = unknown {
                        why.push(format!("unknown field {k:?}"));
                        obj.push((k, v));
                    }
                    if dup {
                        if let Some(first) = obj.first().cloned() {
                            why.push(format!("{} given twice", first.0));
                            obj.push(first);
                        }
                    }
                    (J::Obj(obj).text().into_bytes(), why)
                }
            }
        })
        .boxed()
}

// ------------------------------------------------------------ a route's requests

/// A third of the requests are clean (right credentials, plausible values,
/// extreme where the contract allows it) so they get past validation into
/// the use cases and the store; the rest are anything.
fn requests(route: &'static Route, fx: &Arc<Fx>) -> S<Case> {
    prop_oneof![1 => requests_of(route, fx, true), 2 => requests_of(route, fx, false)].boxed()
}

fn requests_of(route: &'static Route, fx: &Arc<Fx>, clean: bool) -> S<Case> {
    let segments: Vec<S<(String, bool)>> = route
        .path
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => param(route, name, fx, clean)
                    .prop_map(|s| (s, true))
                    .boxed(),
                None => Just((seg.to_string(), false)).boxed(),
            },
        )
        .collect();
    let fx2 = fx.clone();
    (
        segments,
        query(route, fx, clean),
        auth(route.surface(), fx, clean),
        extra_headers(route, clean),
        body(route, fx, clean),
    )
        .prop_map(
            move |(segs, query, (auth, mut headers), (extra, header_why), (body, body_why))| {
                let path = segs
                    .iter()
                    .map(|(s, _)| s.as_str())
                    .collect::<Vec<_>>()
                    .join("/");
                headers.extend(extra);
                let mut c = Case {
                    function: route.function,
                    method: route.method.to_string(),
                    path,
                    query,
                    headers,
                    body,
                    exact: None,
                    refuse: Vec::new(),
                    unrouted: false,
                };
                // Expectations, in the order the edge checks.
                let routed = shared::http::route_for(&c.method, &c.path)
                    .is_some_and(|r| r.method == route.method && r.path == route.path);
                if !routed {
                    c.unrouted = true;
                    return c;
                }
                let undecodable = segs
                    .iter()
                    .any(|(s, is_param)| *is_param && String::from_utf8(pct_decode(s)).is_err());
                let max = if route.surface() == Surface::Stripe {
                    MAX_WEBHOOK_BODY
                } else if route.path == "/v1/integration/usage/batch" {
                    MAX_BATCH_BODY
                } else {
                    MAX_BODY
                };
                c.exact = if undecodable {
                    Some((
                        422,
                        "VALIDATION_ERROR",
                        "a path parameter that is not UTF-8".into(),
                    ))
                } else if c.body.len() > max {
                    Some((
                        400,
                        "BODY_TOO_LARGE",
                        format!("a body of {} bytes", c.body.len()),
                    ))
                } else if auth == Auth::Bad {
                    match route.surface() {
                        Surface::Stripe => {
                            Some((400, "INVALID_SIGNATURE", "no valid signature".into()))
                        }
                        Surface::Public => None,
                        _ => Some((
                            401,
                            "UNAUTHENTICATED",
                            "missing or wrong credentials".into(),
                        )),
                    }
                } else {
                    None
                };
                if auth == Auth::OtherScope {
                    c.refuse.push("the key lacks the surface's scope".into());
                }
                if auth == Auth::CsrfOnWrite && c.method != "GET" && c.exact.is_none() {
                    c.exact = Some((
                        403,
                        "CSRF_FAILED",
                        "a session write without its CSRF token".into(),
                    ));
                }
                c.refuse.extend(header_why);
                c.refuse.extend(body_why);
                c.refuse.extend(query_refusals(route, &c.query, &fx2));
                c
            },
        )
        .boxed()
}

/// The properties the routes are split into; matched exhaustively on the
/// surface, so a new route or surface cannot go untested.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Property {
    Integration,
    Management,
    Edge,
    /// Routes with a finding: see [`FINDINGS`].
    Findings,
    /// The portal's HTML pages (not the JSON envelope these properties
    /// check): tested by `portal.rs` and `portal_browser.rs`.
    Html,
    /// A customer organization's own API (`/v1/customer/...`).
    Customer,
}

/// Routes on which these properties found the service answering wrongly.
/// Their generated requests run in [`routes_with_findings`], ignored until
/// fixed (with the same generators as everywhere: nothing is filtered out);
/// each finding's exact requests are a seed test below, ignored too. Drop a
/// row once its finding is fixed: the route goes back to its surface's
/// property.
const FINDINGS: &[(&str, &str, &str)] = &[
    // Fixed: metadata numbers and nesting DynamoDB cannot hold are 422
    // (POST/PATCH licenses, activations, usage records); tenant settings
    // must be an object. Their seed tests below now run.
];

fn property_of(r: &Route) -> Property {
    if FINDINGS
        .iter()
        .any(|(m, p, _)| (*m, *p) == (r.method, r.path))
    {
        return Property::Findings;
    }
    match r.surface() {
        Surface::Integration => Property::Integration,
        Surface::Manage => Property::Management,
        Surface::Platform | Surface::Stripe | Surface::Public => Property::Edge,
        Surface::Portal => Property::Html,
        Surface::Customer => Property::Customer,
    }
}

/// Every route of `property`, `per_route` generated requests each. Each
/// route gets a fresh table and fixtures: what one route's requests wrote
/// (a license poisoned by a generated PATCH, say) cannot make another
/// route fail, and a finding names the route that caused it.
async fn every_route(property: Property, per_route: u32) {
    let started = std::time::Instant::now();
    let (mut total, mut failures) = (0, Vec::new());
    for route in ROUTES.iter().filter(|r| property_of(r) == property) {
        let env = Env::start().await;
        let fx = fixtures(&env).await;
        let label = format!("{} {}", route.method, route.path);
        match run(&env.app, &label, per_route, requests(route, &fx)) {
            Ok(seen) => total += seen.values().sum::<u32>(),
            Err(e) => failures.push(e),
        }
    }
    println!(
        "{property:?}: {total} requests in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} route(s) broke a rule:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_route_is_in_a_property() {
    use Property::*;
    // Findings is empty once every finding is fixed.
    for p in [Integration, Management, Edge, Customer] {
        assert!(
            ROUTES.iter().any(|r| property_of(r) == p),
            "{p:?} has no route"
        );
    }
    for (method, path, why) in FINDINGS {
        assert!(
            ROUTES
                .iter()
                .any(|r| r.method == *method && r.path == *path),
            "{method} {path} ({why}) is no route"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_routes() {
    every_route(Property::Integration, cases(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_routes() {
    every_route(Property::Management, cases(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_routes() {
    every_route(Property::Customer, cases(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_stripe_and_public_routes() {
    every_route(Property::Edge, cases(12)).await;
}

/// The routes of [`FINDINGS`], with the same generators as the rest. Found
/// so far (on the local emulator; each has a seed test with its exact
/// requests below):
/// 1. A number in `metadata` that DynamoDB cannot hold (magnitude over ~1e126
///    or under 1e-130: `1e308`, `-1e308`, `1.7976931348623157e308`,
///    `5e-324`) is valid JSON the service accepts; the store's transaction
///    then fails and the answer is 503 SERVICE_UNAVAILABLE with
///    `Retry-After: 1`, though no retry can succeed: it must be a 422 (or be
///    stored). Shrunk to `POST /v1/manage/licenses`
///    `{"policy":"pol_…","customer_email":"-x@y.co","metadata":{"0":1e308}}`.
///    Same on activations and usage records.
/// 2. `metadata` nested 62 levels or deeper (`{"b":[[[…]]]}`) is accepted
///    (serde_json reads 128 levels) and written, but the SDK's DynamoDB
///    deserializer stops at 128 levels of its own wire format (two per
///    level), so every later read of the item fails: after
///    `POST /v1/manage/licenses` (201) or `PATCH /v1/manage/licenses/{id}`
///    (500) the license answers 500 to GET, to the Integration API's
///    validate, to activations and usage records, for good. Shrunk by the
///    management property to `PATCH /v1/manage/licenses/{id}` `{}` (the
///    license had been poisoned by an earlier generated PATCH). DynamoDB
///    itself refuses more than 32 levels, so deployed the write fails (5xx)
///    instead; the fix is to bound the nesting and answer 422.
/// 3. `PATCH /v1/platform/tenants/{id}` takes `{"settings":[]}` (serde reads a
///    struct from a sequence; `[5000]` sets `rate_limit_per_minute`) and
///    answers 200, where docs/api.md says a wrong type is 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "findings of issue 13 (see FINDINGS): run with --ignored"]
async fn routes_with_findings() {
    every_route(Property::Findings, cases(60)).await;
}

// ------------------------------------------------------------ no route

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_no_route_takes_are_404_or_405() {
    let env = Env::start().await;
    // The JSON API's routes (the portal's HTML pages answer pages, not envelopes).
    let json_routes: Vec<Route> = ROUTES
        .iter()
        .filter(|r| r.surface() != Surface::Portal)
        .copied()
        .collect();
    let template = select(json_routes).prop_map(|r| r.path.replace('{', "x").replace('}', ""));
    let path = prop_oneof![
        // A route's path, bent.
        (
            template.clone(),
            select(vec!["", "/", "//", "/extra", "/..", "%2F", "/%FF"])
        )
            .prop_map(|(p, tail)| format!("{p}{tail}")),
        template.clone().prop_map(|p| p.to_uppercase()),
        template
            .clone()
            .prop_map(|p| p.replacen("/v1/", "/v1//", 1)),
        template.prop_map(|p| p.rsplit_once('/').map(|(a, _)| a.to_string()).unwrap_or(p)),
        // Anything.
        prop::collection::vec(
            prop_oneof![
                "[a-z0-9-]{1,12}",
                select(GARBAGE_SEGMENTS).prop_map(str::to_string),
                "\\PC{1,8}".prop_map(|s| enc(&s)),
            ],
            0..6
        )
        .prop_map(|segs| format!("/{}", segs.join("/"))),
        "[a-z/]{0,30}".prop_map(|s| format!("/v1/{s}")),
    ];
    let method = select(vec![
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "FOO",
        "get",
    ]);
    let mut functions: Vec<Option<Function>> = vec![None];
    functions.extend(Function::ALL.map(Some));
    let strategy = (method, path, select(functions))
        .prop_map(|(method, path, function)| {
            // Does any route (of this function, when deployed) take it?
            let routed = ROUTES.iter().any(|r| {
                r.method == method
                    && (function.is_none() || r.function == function)
                    && shared::http::route_for(method, &path).is_some_and(|m| m.path == r.path)
            });
            Case {
                function,
                method: method.to_string(),
                path,
                query: Vec::new(),
                headers: Vec::new(),
                body: Vec::new(),
                exact: None,
                refuse: Vec::new(),
                unrouted: !routed,
            }
        })
        .boxed();
    run(&env.app, "unrouted", cases(64), strategy).unwrap_or_else(|e| panic!("{e}"));
}

// ------------------------------------------------------------ signed Stripe events

const STRIPE_FIXTURES: &[&str] = &[
    "charge.dispute.created",
    "charge.refunded",
    "checkout.session.async_payment_failed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.completed",
    "customer.created",
    "customer.subscription.created",
    "customer.subscription.deleted",
    "customer.subscription.updated",
    "invoice.paid.basil",
    "invoice.paid",
    "invoice.payment_failed",
];

/// Fields the webhook reads; mutated more often than the rest.
const STRIPE_FIELDS: &[&str] = &[
    "created",
    "current_period_end",
    "current_period_start",
    "period_end",
    "period_start",
    "amount",
    "amount_refunded",
    "amount_captured",
    "amount_paid",
    "refunded",
    "status",
    "email",
    "customer_email",
    "policy",
    "id",
    "subscription",
    "customer",
    "charge",
    "payment_intent",
    "mode",
    "payment_status",
    "cancel_at",
    "ended_at",
    "canceled_at",
    "type",
    "metadata",
    "data",
    "object",
    "items",
    "lines",
    "price",
    "plan",
    "customer_details",
];

/// A path into a JSON document.
type JPath = Vec<Step>;

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    At(usize),
}

/// Every path into `j`, leaves and containers.
fn paths(j: &J, at: &mut JPath, out: &mut Vec<JPath>) {
    match j {
        J::Obj(fields) => {
            for (k, v) in fields {
                at.push(Step::Key(k.clone()));
                out.push(at.clone());
                paths(v, at, out);
                at.pop();
            }
        }
        J::Arr(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push(Step::At(i));
                out.push(at.clone());
                paths(v, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn set(j: &mut J, path: &[Step], v: J) {
    let Some((first, rest)) = path.split_first() else {
        *j = v;
        return;
    };
    let next = match (j, first) {
        (J::Obj(fields), Step::Key(k)) => fields.iter_mut().find(|(n, _)| n == k).map(|(_, v)| v),
        (J::Arr(items), Step::At(i)) => items.get_mut(*i),
        _ => None,
    };
    if let Some(next) = next {
        set(next, rest, v);
    }
}

fn stripe_signature(t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_stripe_events_with_extreme_fields() {
    let env = Env::start().await;
    let t = env.tenant("props-stripe").await;
    let r = env
        .send(
            "PUT",
            "/v1/manage/integrations/stripe",
            Some(&t.admin),
            Some(&json!({ "webhook_secret": WEBHOOK_SECRET })),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({"code": "studio", "name": "Studio"}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let mut policies = Vec::new();
    for (name, price) in [("Basic", BASIC_PRICE), ("Pro", PRO_PRICE)] {
        let body = json!({"product": "studio", "name": name, "max_activations": 2,
                          "entitlements": {"export-4k": {"type": "boolean"}},
                          "grace_period_days": 3, "stripe_price_ids": [price]});
        let p = env.post("/v1/manage/policies", &t.admin, body).await;
        assert_eq!(p.status, 201, "{p:?}");
        policies.push(p.data()["id"].as_str().unwrap().to_string());
    }
    let fixtures: Vec<(J, Vec<JPath>, Vec<JPath>)> = STRIPE_FIXTURES
        .iter()
        .map(|name| {
            let path = format!("{}/../events/stripe/{name}.json", env!("CARGO_MANIFEST_DIR"));
            let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            if name.starts_with("checkout") {
                v["data"]["object"]["metadata"] = json!({ "policy": policies[1] });
            }
            let j = J::of(&v);
            let mut all = Vec::new();
            paths(&j, &mut Vec::new(), &mut all);
            let hot = all
                .iter()
                .filter(|p| matches!(p.last(), Some(Step::Key(k)) if STRIPE_FIELDS.contains(&k.as_str())))
                .cloned()
                .collect();
            (j, all, hot)
        })
        .collect();
    let fixtures = Arc::new(fixtures);
    let tenant = t.id.clone();
    let created = prop_oneof![
        4 => Just(None),
        1 => select(NUMBERS).prop_map(|n| Some(J::raw(n))),
        1 => Just(Some(J::s("2026-01-01T00:00:00Z"))),
    ];
    let event_id = prop_oneof![
        6 => "evt_[A-Za-z0-9]{8,24}".prop_map(|s| (J::Str(s), false)),
        1 => select(vec!["evt_1PqR7rLkdIwHu7ixHc5Jd0Qe"]).prop_map(|s| (J::s(s), false)),
        1 => select(vec!["", "evt with space", "évt_1", "evt_\u{200B}", "evt_1/2"]).prop_map(|s| (J::s(s), true)),
        1 => select(vec!["1", "null", "[]"]).prop_map(|s| (J::raw(s), true)),
    ];
    let mutations =
        prop::collection::vec((prop::bool::weighted(0.7), any::<Index>(), wild()), 0..4);
    let stale = prop::option::weighted(0.08, select(vec![-400i64, 400, -100_000]));
    let strategy = (any::<Index>(), event_id, created, mutations, stale)
        .prop_map(move |(which, (id, bad_id), created, muts, stale)| {
            let (doc, all, hot) = &fixtures[which.index(fixtures.len())];
            let mut doc = doc.clone();
            let mut refuse = Vec::new();
            set(&mut doc, &[Step::Key("id".into())], id);
            if bad_id {
                refuse.push("a malformed event id".to_string());
            }
            if let Some(c) = created {
                set(&mut doc, &[Step::Key("created".into())], c);
            }
            for (prefer_hot, at, v) in muts {
                let pool = if prefer_hot && !hot.is_empty() {
                    hot
                } else {
                    all
                };
                if pool.is_empty() {
                    continue;
                }
                let path = &pool[at.index(pool.len())];
                // A mutation may replace the id again: it is no longer known bad.
                if matches!(path.as_slice(), [Step::Key(k)] if k == "id") {
                    refuse.clear();
                }
                set(&mut doc, path, v);
            }
            let body = doc.text().into_bytes();
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let sig = stripe_signature(now + stale.unwrap_or(0), &body);
            let exact = stale.map(|s| {
                (
                    400,
                    "INVALID_SIGNATURE",
                    format!("signed {s} s away from now"),
                )
            });
            let exact = if body.len() > MAX_WEBHOOK_BODY {
                Some((
                    400,
                    "BODY_TOO_LARGE",
                    format!("a body of {} bytes", body.len()),
                ))
            } else {
                exact
            };
            Case {
                function: Some(Function::StripeWebhook),
                method: "POST".into(),
                path: format!("/v1/stripe/webhook/{tenant}"),
                query: Vec::new(),
                headers: vec![
                    ("stripe-signature".into(), sig.into_bytes()),
                    ("content-type".into(), b"application/json".to_vec()),
                ],
                body,
                exact,
                refuse,
                unrouted: false,
            }
        })
        .boxed();
    let seen = run(&env.app, "signed Stripe events", cases(48), strategy)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        seen.get(&200).copied().unwrap_or(0) > 0,
        "no generated event was accepted: {seen:?}"
    );
}

// ------------------------------------------------------------ the seed corpus

/// The regression cases of issue 13, each as it was reported.
struct Seed {
    env: Env,
    t: harness::Tenant,
    key: String,
    id: String,
    policy: String,
    product: String,
}

async fn seed() -> Seed {
    let env = Env::start().await;
    let t = env.tenant("seed").await;
    let (policy, lic) = env
        .license(
            &t,
            2,
            json!({"api-calls": {"type": "metered", "limit": 10, "period": "month"}}),
        )
        .await;
    let s = |k: &str| lic[k].as_str().unwrap().to_string();
    Seed {
        key: s("key"),
        id: s("id"),
        product: s("product"),
        policy,
        t,
        env,
    }
}

/// One request in process; asserts the envelope and returns status and code.
async fn call(
    app: &App,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &str,
) -> (u16, String) {
    let c = Case {
        function: shared::http::route_for(method, path).and_then(|r| r.function),
        method: method.into(),
        path: path.into(),
        query: Vec::new(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect(),
        body: body.as_bytes().to_vec(),
        exact: None,
        refuse: Vec::new(),
        unrouted: false,
    };
    let a = send(app, &c).await.unwrap();
    check(&c, &a).unwrap_or_else(|e| panic!("{e}\n{c:?}\n{a:?}"));
    let v: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
    (
        a.status,
        v["error"]["code"].as_str().unwrap_or("").to_string(),
    )
}

const LATE: &str = "9999-12-31T23:59:59-01:00";

#[tokio::test]
async fn seed_usage_timestamp_past_the_calendar() {
    let s = seed().await;
    let body =
        json!({"license_key": s.key, "metric": "api-calls", "quantity": 1, "timestamp": LATE});
    let k = [("x-api-key", s.t.integration.as_bytes())];
    let r = call(
        &s.env.app,
        "POST",
        "/v1/integration/usage/record",
        &k,
        &body.to_string(),
    )
    .await;
    assert_eq!(r, (422, "VALIDATION_ERROR".into()));
}

#[tokio::test]
async fn seed_expiries_past_the_calendar() {
    let s = seed().await;
    let k = [("x-api-key", s.t.admin.as_bytes())];
    let app = &s.env.app;
    let cases = [
        (
            "/v1/manage/licenses".to_string(),
            json!({"policy": s.policy, "customer_email": "a@b.co", "expires_at": LATE}),
        ),
        (
            "/v1/manage/api-keys".to_string(),
            json!({"name": "k", "scopes": ["admin"], "expires_at": LATE}),
        ),
        (
            format!("/v1/manage/licenses/{}/renew", s.id),
            json!({"expires_at": LATE}),
        ),
    ];
    for (path, body) in cases {
        let r = call(app, "POST", &path, &k, &body.to_string()).await;
        assert_eq!(r, (422, "VALIDATION_ERROR".into()), "{path}");
    }
}

#[tokio::test]
async fn seed_unbounded_policy_durations() {
    let s = seed().await;
    let k = [("x-api-key", s.t.admin.as_bytes())];
    for field in ["duration_days", "grace_period_days"] {
        let body = format!(
            r#"{{"product":"{}","name":"p","max_activations":1,"{field}":4294967295}}"#,
            s.product
        );
        let r = call(&s.env.app, "POST", "/v1/manage/policies", &k, &body).await;
        assert_eq!(r, (422, "VALIDATION_ERROR".into()), "{field}");
        let path = format!("/v1/manage/policies/{}", s.policy);
        let r = call(
            &s.env.app,
            "PATCH",
            &path,
            &k,
            &format!(r#"{{"{field}":4294967295}}"#),
        )
        .await;
        assert_eq!(r, (422, "VALIDATION_ERROR".into()), "PATCH {field}");
    }
}

#[tokio::test]
async fn seed_metered_limit_of_u64_max() {
    let s = seed().await;
    let k = [("x-api-key", s.t.admin.as_bytes())];
    let m = r#"{"m":{"type":"metered","limit":18446744073709551615,"period":"total"}}"#;
    let body = format!(
        r#"{{"product":"{}","name":"p","max_activations":1,"entitlements":{m}}}"#,
        s.product
    );
    let r = call(&s.env.app, "POST", "/v1/manage/policies", &k, &body).await;
    assert_eq!(r, (422, "VALIDATION_ERROR".into()));
    let path = format!("/v1/manage/licenses/{}", s.id);
    let r = call(
        &s.env.app,
        "PATCH",
        &path,
        &k,
        &format!(r#"{{"entitlements":{m}}}"#),
    )
    .await;
    assert_eq!(r, (422, "VALIDATION_ERROR".into()));
}

#[tokio::test]
async fn seed_stripe_signature_at_i64_min() {
    let s = seed().await;
    let path = format!("/v1/stripe/webhook/{}", s.t.id);
    let sig = b"t=-9223372036854775808,v1=00";
    let h = [("stripe-signature", &sig[..])];
    // Without a webhook secret, and with one (the timestamp is then read).
    let r = call(&s.env.app, "POST", &path, &h, "{}").await;
    assert_eq!(r, (400, "INVALID_SIGNATURE".into()));
    let k = [("x-api-key", s.t.admin.as_bytes())];
    let put = json!({"webhook_secret": WEBHOOK_SECRET}).to_string();
    let r = call(
        &s.env.app,
        "PUT",
        "/v1/manage/integrations/stripe",
        &k,
        &put,
    )
    .await;
    assert_eq!(r.0, 200);
    let r = call(&s.env.app, "POST", &path, &h, "{}").await;
    assert_eq!(r, (400, "INVALID_SIGNATURE".into()));
}

#[tokio::test]
async fn seed_idempotency_keys_and_fingerprints() {
    let s = seed().await;
    let app = &s.env.app;
    let int = s.t.integration.as_bytes();
    let body = json!({"license_key": s.key, "metric": "api-calls", "quantity": 1}).to_string();
    for idem in ["clé-1".as_bytes(), b"k\xff", "\u{200B}".as_bytes()] {
        let h = [("x-api-key", int), ("x-idempotency-key", idem)];
        let r = call(app, "POST", "/v1/integration/usage/record", &h, &body).await;
        assert_eq!(r, (422, "VALIDATION_ERROR".into()), "{idem:?}");
    }
    for fp in [
        " ",
        "\t \t",
        "\u{3000}",
        "\u{200B}",
        "\u{FEFF}",
        "a\u{200B}",
        "\u{202E}x",
    ] {
        let h = [("x-api-key", int)];
        let body = json!({"license_key": s.key, "fingerprint": fp}).to_string();
        let r = call(app, "POST", "/v1/integration/activations", &h, &body).await;
        assert_eq!(r, (422, "VALIDATION_ERROR".into()), "{fp:?}");
    }
    // Nothing was counted or activated.
    let h = [("x-api-key", s.t.admin.as_bytes())];
    let path = format!("/v1/manage/licenses/{}", s.id);
    let c = Case {
        function: Some(Function::Manage),
        method: "GET".into(),
        path,
        query: Vec::new(),
        headers: h.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect(),
        body: Vec::new(),
        exact: None,
        refuse: Vec::new(),
        unrouted: false,
    };
    let a = send(app, &c).await.unwrap();
    let v: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["data"]["seats"]["used"], 0, "{a:?}");
    assert_eq!(v["data"]["entitlements"]["api-calls"]["used"], 0, "{a:?}");
}

/// Found by the properties (issue 13), fixed: the exact requests.
#[tokio::test]
async fn seed_metadata_numbers_dynamodb_cannot_hold() {
    let s = seed().await;
    let app = &s.env.app;
    let (adm, int) = (s.t.admin.as_bytes(), s.t.integration.as_bytes());
    for n in ["1e308", "-1e308", "1.7976931348623157e308", "5e-324"] {
        let meta = format!(r#"{{"n":{n}}}"#);
        let requests = [
            (
                "/v1/manage/licenses",
                adm,
                format!(
                    r#"{{"policy":"{}","customer_email":"a@b.co","metadata":{meta}}}"#,
                    s.policy
                ),
            ),
            (
                "/v1/integration/activations",
                int,
                format!(
                    r#"{{"license_key":"{}","fingerprint":"fp-1","metadata":{meta}}}"#,
                    s.key
                ),
            ),
            (
                "/v1/integration/usage/record",
                int,
                format!(
                    r#"{{"license_key":"{}","metric":"api-calls","quantity":1,"metadata":{meta}}}"#,
                    s.key
                ),
            ),
        ];
        for (path, key, body) in requests {
            // `call` asserts the envelope and a status below 500.
            let (status, code) = call(app, "POST", path, &[("x-api-key", key)], &body).await;
            assert!(
                status < 300 || status == 422,
                "{path} {body}: {status} {code}"
            );
        }
    }
}

/// Found by the properties (issue 13), fixed: the exact requests.
#[tokio::test]
async fn seed_tenant_settings_as_an_array() {
    let s = seed().await;
    let token = s.env.operator_token().await;
    let bearer = format!("Bearer {token}");
    let h = [("authorization", bearer.as_bytes())];
    let path = format!("/v1/platform/tenants/{}", s.t.id);
    for body in [r#"{"settings":[]}"#, r#"{"settings":[5000]}"#] {
        let r = call(&s.env.app, "PATCH", &path, &h, body).await;
        assert_eq!(r, (422, "VALIDATION_ERROR".into()), "{body}");
    }
}

/// Found by the properties (issue 13), fixed: the exact requests.
#[tokio::test]
async fn seed_metadata_nested_deeper_than_the_store_reads() {
    let s = seed().await;
    let app = &s.env.app;
    let (adm, int) = (s.t.admin.as_bytes(), s.t.integration.as_bytes());
    let deep = format!(r#"{{"b":{}{}}}"#, "[".repeat(64), "]".repeat(64));
    // `call` asserts the envelope and a status below 500 for each.
    // Issued with a known key, so validate reads it back.
    let body = format!(
        r#"{{"policy":"{}","customer_email":"deep@b.co","key":"DEEP0-DEEP0-DEEP0","metadata":{deep}}}"#,
        s.policy
    );
    let (status, _) = call(
        app,
        "POST",
        "/v1/manage/licenses",
        &[("x-api-key", adm)],
        &body,
    )
    .await;
    assert!(status == 201 || status == 422, "{status}");
    let validate = "/v1/integration/licenses/DEEP0-DEEP0-DEEP0/validate";
    call(app, "POST", validate, &[("x-api-key", int)], "").await;
    let path = format!("/v1/manage/licenses/{}", s.id);
    let body = format!(r#"{{"metadata":{deep}}}"#);
    call(app, "PATCH", &path, &[("x-api-key", adm)], &body).await;
    call(app, "GET", &path, &[("x-api-key", adm)], "").await;
    let validate = format!("/v1/integration/licenses/{}/validate", s.key);
    call(app, "POST", &validate, &[("x-api-key", int)], "").await;
}
