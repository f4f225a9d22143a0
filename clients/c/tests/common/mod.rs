//! Shared by the tests: calling the C ABI from Rust, and an in-process mock of the service on
//! 127.0.0.1 that keeps seats and leases, issues bound license files and signs every answer
//! (signature version 2) by a clock the test controls.

#![allow(dead_code)] // each test binary uses a part

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use licensing::*;
use licensing_client::{signed_message, SentRequest};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub const TENANT: &str = "acme";
pub const KEY: &str = "ABCDE-FGHIJ-KLMNO";
/// 2026-11-30T09:00:00Z, in milliseconds.
pub const START_MS: i64 = 1_796_029_200_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

pub fn public_key() -> String {
    STANDARD.encode(signing_key().verifying_key().as_bytes())
}

pub fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// Takes a JSON string the library returned (and frees it).
pub unsafe fn take_json(p: *mut c_char) -> Value {
    assert!(!p.is_null(), "no JSON returned");
    let value = serde_json::from_str(CStr::from_ptr(p).to_str().unwrap()).unwrap();
    licensing_string_free(p);
    value
}

pub fn last_message() -> String {
    unsafe { CStr::from_ptr(licensing_last_error_message()) }
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn last_code() -> Option<String> {
    let code = licensing_last_error_code();
    (!code.is_null()).then(|| unsafe { CStr::from_ptr(code) }.to_str().unwrap().to_owned())
}

/// Calls `f` with an out pointer; `Ok(json)` on `LICENSING_OK`, else the status, code and
/// message.
pub fn out_json(
    f: impl FnOnce(*mut *mut c_char) -> licensing_status_t,
) -> Result<Value, (licensing_status_t, Option<String>, String)> {
    let mut out: *mut c_char = ptr::null_mut();
    let status = f(&mut out);
    if status == licensing_status_t::LICENSING_OK {
        Ok(unsafe { take_json(out) })
    } else {
        assert!(out.is_null(), "a failure left *out set");
        Err((status, last_code(), last_message()))
    }
}

/// A clock the test moves: `user_data` points at an `AtomicI64` of milliseconds.
pub unsafe extern "C" fn fake_now(user_data: *mut c_void) -> i64 {
    (*user_data.cast::<AtomicI64>()).load(Ordering::SeqCst)
}

/// Builds a client through the C ABI.
pub struct ClientSpec<'a> {
    pub base_url: &'a str,
    pub key: &'a str,
    pub cache_dir: Option<&'a std::path::Path>,
    pub clock: Option<&'a AtomicI64>,
    pub public_key: String,
}

impl<'a> ClientSpec<'a> {
    pub fn new(base_url: &'a str) -> Self {
        Self {
            base_url,
            key: KEY,
            cache_dir: None,
            clock: None,
            public_key: public_key(),
        }
    }

    pub fn build(&self) -> *mut licensing_client_t {
        unsafe {
            let options = licensing_options_new();
            use licensing_status_t::LICENSING_OK as OK;
            assert_eq!(
                licensing_options_set_base_url(options, c(self.base_url).as_ptr()),
                OK
            );
            assert_eq!(
                licensing_options_set_tenant_id(options, c(TENANT).as_ptr()),
                OK
            );
            assert_eq!(
                licensing_options_set_license_key(options, c(self.key).as_ptr()),
                OK
            );
            let (kid, key) = (c("v1"), c(&self.public_key));
            assert_eq!(
                licensing_options_pin_key(options, kid.as_ptr(), key.as_ptr()),
                OK
            );
            assert_eq!(licensing_options_set_timeout_ms(options, 5_000), OK);
            if let Some(dir) = self.cache_dir {
                let dir = c(dir.to_str().unwrap());
                assert_eq!(licensing_options_set_cache_dir(options, dir.as_ptr()), OK);
            }
            if let Some(clock) = self.clock {
                let data = ptr::from_ref(clock).cast_mut().cast::<c_void>();
                assert_eq!(
                    licensing_options_set_clock(options, Some(fake_now), data),
                    OK
                );
            }
            let mut client = ptr::null_mut();
            let status = licensing_client_new(options, &mut client);
            licensing_options_free(options);
            assert_eq!(status, OK, "{}", last_message());
            client
        }
    }
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let name = format!(
            "licensing-c-test-{}",
            hex::encode(rand::random::<[u8; 8]>())
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A base URL where nothing listens.
pub fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

/// A license file exactly per the format, signed by [`signing_key`].
pub fn license_file(payload: &Value) -> String {
    let body = URL_SAFE_NO_PAD.encode(payload.to_string());
    let signature = URL_SAFE_NO_PAD.encode(signing_key().sign(body.as_bytes()).to_bytes());
    let text = format!("{body}.{signature}");
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN LICENSE FILE-----\n{}\n-----END LICENSE FILE-----\n",
        lines.join("\n")
    )
}

/// How the mock signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    Good,
    /// Over another request body: what a man in the middle who rewrote the request forwards.
    OtherRequestBody,
    /// With a date 10 minutes off the clock.
    StaleDate,
    Unsigned,
}

/// The mock's state.
pub struct Mock {
    /// The clock (milliseconds) the mock issues files and signs answers by.
    pub now: Arc<AtomicI64>,
    /// Every request: (method, path, headers, body).
    pub seen: Mutex<Vec<(String, String, HeaderMap, Value)>>,
    pub calls: AtomicUsize,
    /// Activated fingerprints → lease expiry (ms; `None` node-locked).
    pub seats: Mutex<HashMap<String, Option<i64>>>,
    /// Floating policy: lease seconds; `None` node-locked.
    pub lease_seconds: Option<i64>,
    pub max_seats: usize,
    /// Node-locked: the policy's `heartbeat_seconds`, written into files.
    pub heartbeat_seconds: Option<i64>,
    /// Node-locked seats whose heartbeat lapsed (HEARTBEAT_DEAD): held, but checkout answers
    /// `NO_ACTIVATION` and activating again does not revive them; a heartbeat does.
    pub dead: Mutex<HashSet<String>>,
    pub signing: Mutex<Signing>,
    /// Answer every request with an unsigned 503 (a gateway), as if the service were down.
    pub down: Mutex<bool>,
    pub usage: Mutex<BTreeMap<String, u64>>,
}

impl Mock {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn paths(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.1.clone())
            .collect()
    }

    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    fn activation(&self, fp: &str, lease: Option<i64>) -> Value {
        json!({
            "id": format!("act_{fp}"), "license_id": "lic_1", "fingerprint": fp,
            "status": "active", "name": null, "hostname": null,
            "created_at": rfc3339(self.now_ms()),
            "lease_expires_at": lease.map(rfc3339),
            "overage": lease.map(|_| false),
            "metadata": {},
        })
    }

    /// Whether `fp` holds a seat now.
    fn holds(&self, seats: &HashMap<String, Option<i64>>, fp: &str) -> bool {
        match seats.get(fp) {
            Some(None) => true,
            Some(Some(expiry)) => *expiry > self.now_ms(),
            None => false,
        }
    }

    fn respond(&self, path: &str, body: &Value) -> (u16, Value) {
        let now = self.now_ms();
        let mut seats = self.seats.lock().unwrap();
        let fp = body["fingerprint"].as_str().unwrap_or("").to_owned();
        let segments: Vec<&str> = path
            .trim_start_matches("/v1/integration/")
            .split('/')
            .collect();
        match segments.as_slice() {
            ["licenses", key, "validate"] => {
                let valid = *key == KEY && (fp.is_empty() || self.holds(&seats, &fp));
                let code = if *key != KEY {
                    "NOT_FOUND"
                } else if valid {
                    "VALID"
                } else {
                    "NO_ACTIVATION"
                };
                let license = (*key == KEY).then(|| self.license());
                (
                    200,
                    json!({ "valid": valid, "code": code, "detail": "d", "license": license }),
                )
            }
            ["licenses", _, "checkout"] => {
                if !self.holds(&seats, &fp) || self.dead.lock().unwrap().contains(&fp) {
                    return error(409, "NO_ACTIVATION");
                }
                let ttl = body["ttl_seconds"].as_i64().unwrap_or(14 * 86_400);
                let payload = json!({
                    "format": "licensing-file/v1", "tenant_id": TENANT, "kid": "v1",
                    "license": self.license(),
                    "activation": { "id": format!("act_{fp}"), "fingerprint": fp },
                    "issued_at": rfc3339(now), "expires_at": rfc3339(now + ttl * 1000),
                    "ttl_seconds": ttl,
                });
                (
                    201,
                    json!({ "certificate": license_file(&payload), "kid": "v1" }),
                )
            }
            ["activations"] => {
                if self.holds(&seats, &fp) {
                    let lease = self.lease_seconds.map(|s| now + s * 1000);
                    seats.insert(fp.clone(), lease);
                    return (200, self.activation(&fp, lease));
                }
                let held = seats.keys().filter(|f| self.holds(&seats, f)).count();
                if held >= self.max_seats {
                    return error(409, "TOO_MANY_ACTIVATIONS");
                }
                let lease = self.lease_seconds.map(|s| now + s * 1000);
                seats.insert(fp.clone(), lease);
                (201, self.activation(&fp, lease))
            }
            ["activations", "deactivate"] => {
                seats.remove(&fp);
                let mut a = self.activation(&fp, None);
                a["status"] = json!("deactivated");
                (200, a)
            }
            ["activations", id, "heartbeat"] => {
                let fp = id.trim_start_matches("act_").to_owned();
                if !self.holds(&seats, &fp) {
                    return error(409, "LEASE_EXPIRED");
                }
                self.dead.lock().unwrap().remove(&fp);
                let lease = self.lease_seconds.map(|s| now + s * 1000);
                seats.insert(fp.clone(), lease);
                (200, self.activation(&fp, lease))
            }
            ["usage", "record"] => {
                let metric = body["metric"].as_str().unwrap_or("").to_owned();
                let quantity = body["quantity"].as_u64().unwrap_or(0);
                let mut usage = self.usage.lock().unwrap();
                let used = usage.entry(metric.clone()).or_default();
                if *used + quantity > 100 {
                    return error(403, "QUOTA_EXCEEDED");
                }
                *used += quantity;
                (
                    201,
                    json!({ "metric": metric, "quantity": quantity, "used": *used, "limit": 100,
                              "remaining": 100 - *used, "license_id": "lic_1" }),
                )
            }
            _ => error(404, "NOT_FOUND"),
        }
    }

    fn license(&self) -> Value {
        json!({
            "id": "lic_1", "key": KEY, "status": "active", "product": "desktop",
            "policy": "pol_1", "expires_at": null, "seats": { "limit": self.max_seats },
            "activation_mode": if self.lease_seconds.is_some() { "floating" } else { "node_locked" },
            "lease_seconds": self.lease_seconds,
            "heartbeat_seconds": self.heartbeat_seconds,
            "entitlements": {
                "export-4k": { "type": "boolean" },
                "api-calls": { "type": "metered", "limit": 100, "period": "month", "overage": "deny" },
            },
        })
    }
}

fn error(status: u16, code: &str) -> (u16, Value) {
    (
        status,
        json!({ "error": { "code": code, "message": "no", "type": "error", "status": status } }),
    )
}

async fn handle(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    mock.calls.fetch_add(1, Ordering::SeqCst);
    let path = uri.path_and_query().unwrap().as_str().to_owned();
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    mock.seen.lock().unwrap().push((
        method.to_string(),
        path.clone(),
        headers.clone(),
        body.clone(),
    ));
    if *mock.down.lock().unwrap() {
        return (StatusCode::SERVICE_UNAVAILABLE, "gateway timeout").into_response();
    }
    let (status, data) = mock.respond(uri.path(), &body);
    let envelope = if status < 300 {
        json!({ "data": data, "meta": { "request_id": "req_1", "api_version": "v1" } })
    } else {
        json!({ "error": data["error"], "meta": { "request_id": "req_1", "api_version": "v1" } })
    };
    let answer = envelope.to_string();

    let signing = *mock.signing.lock().unwrap();
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    let (tenant, nonce) = (header("x-tenant-id").unwrap_or_default(), header("x-nonce"));
    let mut date_ms = mock.now_ms();
    let mut sent = raw.to_vec();
    match signing {
        Signing::OtherRequestBody => sent = br#"{"fingerprint":"rewritten"}"#.to_vec(),
        Signing::StaleDate => date_ms -= 10 * 60 * 1000,
        Signing::Good | Signing::Unsigned => {}
    }
    let date = rfc3339(date_ms);
    let request = SentRequest {
        method: method.as_str(),
        path_and_query: &path,
        tenant: &tenant,
        nonce: nonce.as_deref(),
        body: &sent,
    };
    let message = signed_message(request, &date, answer.as_bytes());
    let signature = STANDARD.encode(signing_key().sign(message.as_bytes()).to_bytes());
    let mut response = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        answer,
    )
        .into_response();
    if signing != Signing::Unsigned {
        let value =
            format!(r#"keyid="v1", algorithm="ed25519", version="2", signature="{signature}""#);
        response
            .headers_mut()
            .insert("x-signature", value.parse().unwrap());
        response
            .headers_mut()
            .insert("x-signature-date", date.parse().unwrap());
    }
    response
}

/// A running mock: its base URL and state. The server runs on a thread of its own (the C ABI
/// blocks the test's thread).
pub struct Served {
    pub base: String,
    pub mock: Arc<Mock>,
    _runtime: tokio::runtime::Runtime,
}

pub fn serve(now: Arc<AtomicI64>, lease_seconds: Option<i64>, max_seats: usize) -> Served {
    serve_with(now, lease_seconds, max_seats, None)
}

/// [`serve`], with a node-locked policy's `heartbeat_seconds`.
pub fn serve_with(
    now: Arc<AtomicI64>,
    lease_seconds: Option<i64>,
    max_seats: usize,
    heartbeat_seconds: Option<i64>,
) -> Served {
    let mock = Arc::new(Mock {
        now,
        seen: Mutex::default(),
        calls: AtomicUsize::new(0),
        seats: Mutex::default(),
        lease_seconds,
        max_seats,
        heartbeat_seconds,
        dead: Mutex::default(),
        signing: Mutex::new(Signing::Good),
        down: Mutex::new(false),
        usage: Mutex::default(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(mock.clone());
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    Served {
        base,
        mock,
        _runtime: runtime,
    }
}
