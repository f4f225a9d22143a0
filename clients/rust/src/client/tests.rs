//! The client against an in-process mock of the service on 127.0.0.1 that signs its answers
//! exactly as the contract says.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use super::*;
use crate::file::tests::{key, license_file, payload, TENANT};
use crate::signature::{signed_message, SentRequest};
use crate::types::ValidationCode;

const KEY: &str = "ABCDE-FGHIJ";

/// A request as the mock saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Value,
    /// The body's exact bytes.
    raw: Vec<u8>,
    /// When it arrived, by the mock's clock.
    at: OffsetDateTime,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// How the mock signs an answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sign {
    Good,
    Unsigned,
    OtherNonce,
    OtherPath,
    /// Signed over another request body: what a man in the middle who rewrote the request
    /// forwards.
    OtherRequestBody,
    OtherTenant,
    /// A retired version-1 header (no `version` parameter).
    Version1,
    TamperedBody,
    UnpinnedKey,
    UnknownKid,
}

struct Reply {
    status: u16,
    body: String,
    sign: Sign,
}

fn ok(data: Value) -> Reply {
    let body = json!({ "data": data, "meta": { "request_id": "req_1", "api_version": "v1" } });
    Reply {
        status: 200,
        body: body.to_string(),
        sign: Sign::Good,
    }
}

fn fail(status: u16, code: &str) -> Reply {
    let body = json!({
        "error": { "code": code, "message": "no", "type": "conflict_error", "status": status },
        "meta": { "request_id": "req_1", "api_version": "v1" }
    });
    Reply {
        status,
        body: body.to_string(),
        sign: Sign::Good,
    }
}

fn signed(reply: Reply, sign: Sign) -> Reply {
    Reply { sign, ..reply }
}

type Responder = Box<dyn Fn(&Seen) -> Reply + Send + Sync>;

struct Mock {
    seen: Mutex<Vec<Seen>>,
    respond: Responder,
    /// The clock the mock dates its answers with.
    clock: Clock,
}

impl Mock {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn handle(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method: method.to_string(),
        path: uri.path_and_query().unwrap().as_str().to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
        at: (mock.clock)(),
    };
    let reply = (mock.respond)(&seen);
    mock.seen.lock().unwrap().push(seen.clone());

    let nonce = seen.header("x-nonce").unwrap_or("").to_owned();
    let tenant = seen.header("x-tenant-id").unwrap_or("").to_owned();
    let (mut nonce, mut path, mut kid, mut signer) = (nonce, seen.path.clone(), "v1", key(1));
    let (mut tenant, mut sent, mut version) = (tenant, seen.raw.clone(), r#"version="2", "#);
    match reply.sign {
        Sign::Good | Sign::Unsigned | Sign::TamperedBody => {}
        Sign::OtherNonce => nonce = "0".repeat(64),
        Sign::OtherPath => path = "/v1/integration/licenses/OTHER/validate".into(),
        Sign::OtherRequestBody => sent = br#"{"fingerprint":"rewritten"}"#.to_vec(),
        Sign::OtherTenant => tenant = "other".into(),
        Sign::Version1 => version = "",
        Sign::UnpinnedKey => signer = key(9),
        Sign::UnknownKid => kid = "v9",
    }
    let request = SentRequest {
        method: &seen.method,
        path_and_query: &path,
        tenant: &tenant,
        nonce: Some(&nonce),
        body: &sent,
    };
    let date = (mock.clock)().format(&Rfc3339).unwrap();
    let message = signed_message(request, &date, reply.body.as_bytes());
    let signature = STANDARD.encode(signer.sign(message.as_bytes()).to_bytes());
    let header = format!(r#"keyid="{kid}", algorithm="ed25519", {version}signature="{signature}""#);
    let mut body = reply.body;
    if reply.sign == Sign::TamperedBody {
        body.insert(1, ' ');
    }
    let status = StatusCode::from_u16(reply.status).unwrap();
    let mut response = (status, [("content-type", "application/json")], body).into_response();
    if reply.sign != Sign::Unsigned {
        let headers = response.headers_mut();
        headers.insert("x-signature", header.parse().unwrap());
        headers.insert("x-signature-date", date.parse().unwrap());
    }
    response
}

/// Serves `respond` on 127.0.0.1, dating answers by the system clock; returns the base URL
/// and the mock.
async fn serve(respond: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> (String, Arc<Mock>) {
    serve_at(Arc::new(OffsetDateTime::now_utc), respond).await
}

/// [`serve`], dating answers by `clock`.
async fn serve_at(
    clock: Clock,
    respond: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> (String, Arc<Mock>) {
    let mock = Arc::new(Mock {
        seen: Mutex::default(),
        respond: Box::new(respond),
        clock,
    });
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, mock)
}

/// A base URL where nothing listens.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let name = format!(
            "licensing-client-test-{}",
            hex::encode(rand::random::<[u8; 8]>())
        );
        Self(std::env::temp_dir().join(name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn builder(base: &str) -> ClientBuilder {
    let public = STANDARD.encode(key(1).verifying_key().as_bytes());
    Client::builder()
        .base_url(base)
        .tenant_id(TENANT)
        .license_key(KEY)
        .pin_key("v1", &public)
}

fn client(base: &str, cache: Option<&TempDir>) -> Client {
    let builder = builder(base).timeout(Duration::from_secs(5));
    let builder = match cache {
        Some(dir) => builder.cache_dir(&dir.0),
        None => builder,
    };
    builder.build().unwrap()
}

/// A license file for [`KEY`] bound to `fp-1`, issued an hour ago, valid for a day from now.
fn fresh_file() -> String {
    let now = OffsetDateTime::now_utc();
    let mut p = payload();
    p["issued_at"] = json!((now - time::Duration::hours(1)).format(&Rfc3339).unwrap());
    p["expires_at"] = json!((now + time::Duration::days(1)).format(&Rfc3339).unwrap());
    license_file(&p, &key(1))
}

fn validation(valid: bool) -> Value {
    let code = if valid { "VALID" } else { "SUSPENDED" };
    json!({ "valid": valid, "code": code, "detail": "d", "license": null })
}

#[tokio::test]
async fn validate_sends_credentials_and_a_fresh_nonce() {
    let (base, mock) = serve(|_| ok(validation(true))).await;
    let client = builder(&base).product("desktop").build().unwrap();
    let v = client.validate(Some("fp-1")).await.unwrap();
    assert!(v.valid);
    assert_eq!(v.code, ValidationCode::Valid);
    client.validate(None).await.unwrap();

    let seen = mock.seen();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(
        seen[0].path,
        "/v1/integration/licenses/ABCDE-FGHIJ/validate"
    );
    assert_eq!(seen[0].header("authorization"), Some("License ABCDE-FGHIJ"));
    assert_eq!(seen[0].header("x-tenant-id"), Some(TENANT));
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(
        seen[0].body,
        json!({ "fingerprint": "fp-1", "product": "desktop" })
    );
    assert_eq!(seen[1].body, json!({ "product": "desktop" }));
    let nonces: Vec<&str> = seen.iter().map(|s| s.header("x-nonce").unwrap()).collect();
    assert!(nonces
        .iter()
        .all(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit())));
    assert_ne!(nonces[0], nonces[1]);
}

#[tokio::test]
async fn every_call_has_its_path_and_body() {
    let activation = json!({ "id": "act 1", "license_id": "lic_1", "fingerprint": "fp-1",
                             "status": "active", "lease_expires_at": "2026-11-30T12:15:00Z" });
    let answer = activation.clone();
    let (base, mock) = serve(move |_| ok(answer.clone())).await;
    let client = client(&base, None);
    let a = client.activate("fp-1", Some("Laptop")).await.unwrap();
    assert_eq!(a.id, "act 1");
    client.deactivate("fp-1").await.unwrap();
    client.heartbeat(&a.id).await.unwrap();

    let seen = mock.seen();
    let calls: Vec<(&str, &Value)> = seen.iter().map(|s| (s.path.as_str(), &s.body)).collect();
    let activate = json!({ "license_key": KEY, "fingerprint": "fp-1", "name": "Laptop" });
    let deactivate = json!({ "license_key": KEY, "fingerprint": "fp-1" });
    assert_eq!(
        calls,
        [
            ("/v1/integration/activations", &activate),
            ("/v1/integration/activations/deactivate", &deactivate),
            ("/v1/integration/activations/act%201/heartbeat", &json!({})),
        ]
    );
}

#[tokio::test]
async fn unverified_answers_are_rejected() {
    for sign in [
        Sign::Unsigned,
        Sign::OtherNonce,
        Sign::OtherPath,
        Sign::OtherRequestBody,
        Sign::OtherTenant,
        Sign::Version1,
        Sign::TamperedBody,
        Sign::UnpinnedKey,
        Sign::UnknownKid,
    ] {
        let (base, _) = serve(move |_| signed(ok(validation(false)), sign)).await;
        let err = client(&base, None).validate(None).await.unwrap_err();
        assert!(matches!(err, Error::Unverified(_)), "{sign:?}: {err:?}");
        // Also for error answers: an unverified 4xx is not an API error.
        let (base, _) = serve(move |_| signed(fail(409, "LEASE_EXPIRED"), sign)).await;
        let err = client(&base, None).heartbeat("act_1").await.unwrap_err();
        assert!(matches!(err, Error::Unverified(_)), "{sign:?}: {err:?}");
    }
}

#[tokio::test]
async fn signed_errors_are_api_errors_and_unsigned_5xx_is_unavailable() {
    let (base, _) = serve(|_| fail(409, "LEASE_EXPIRED")).await;
    let err = client(&base, None).heartbeat("act_1").await.unwrap_err();
    assert_eq!(err.api_code(), Some("LEASE_EXPIRED"));
    assert!(matches!(err, Error::Api { status: 409, .. }), "{err:?}");

    let (base, _) = serve(|_| fail(503, "SERVICE_UNAVAILABLE")).await;
    let err = client(&base, None).validate(None).await.unwrap_err();
    assert!(matches!(err, Error::Api { status: 503, .. }), "{err:?}");

    let (base, _) = serve(|_| signed(fail(503, "X"), Sign::Unsigned)).await;
    let err = client(&base, None).validate(None).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { status: 503 }), "{err:?}");

    let err = client(&closed_port(), None)
        .validate(None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
}

#[tokio::test]
async fn a_path_prefix_in_the_base_url_is_kept_and_signed() {
    let (base, mock) = serve(|_| ok(validation(true))).await;
    let client = client(&format!("{base}/prod/"), None);
    assert!(client.validate(None).await.unwrap().valid);
    assert_eq!(
        mock.seen()[0].path,
        "/prod/v1/integration/licenses/ABCDE-FGHIJ/validate"
    );
}

#[tokio::test]
async fn checkout_verifies_and_caches_the_file_atomically() {
    let file = fresh_file();
    let certificate = file.clone();
    let answer = move |_: &Seen| ok(json!({ "certificate": certificate, "kid": "v1" }));
    let (base, mock) = serve(answer).await;
    let dir = TempDir::new();
    let client = client(&base, Some(&dir));
    assert!(matches!(
        client.offline_license(None),
        Err(Error::NoOfflineLicense)
    ));

    let checked_out = client.checkout("fp-1", Some(86400)).await.unwrap();
    assert_eq!(checked_out.certificate(), file);
    let seen = &mock.seen()[0];
    assert_eq!(seen.path, "/v1/integration/licenses/ABCDE-FGHIJ/checkout");
    assert_eq!(
        seen.body,
        json!({ "fingerprint": "fp-1", "ttl_seconds": 86400 })
    );

    let path = client.cache_path().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), file);
    let names: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        [path.file_name().unwrap()],
        "no temporary file is left behind"
    );
    assert!(
        !path.to_str().unwrap().contains(KEY),
        "the key is not in the file name"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    assert_eq!(client.offline_license(Some("fp-1")).unwrap(), checked_out);
    let err = client.offline_license(Some("fp-2")).unwrap_err();
    assert!(
        matches!(err, Error::File(FileError::WrongFingerprint)),
        "{err:?}"
    );

    // Another license in the same cache directory has its own file.
    let other = builder(&base)
        .license_key("OTHER-KEY")
        .cache_dir(&dir.0)
        .build()
        .unwrap();
    assert!(matches!(
        other.offline_license(None),
        Err(Error::NoOfflineLicense)
    ));
    // A file swapped in from another license is refused.
    write_atomically(&other.cache_path().unwrap(), file.as_bytes()).unwrap();
    let err = other.offline_license(None).unwrap_err();
    assert!(
        matches!(err, Error::File(FileError::WrongLicense)),
        "{err:?}"
    );
}

#[tokio::test]
async fn checkout_refuses_a_bad_file_and_caches_nothing() {
    let forged = license_file(&payload(), &key(2));
    let (base, _) = serve(move |_| ok(json!({ "certificate": forged }))).await;
    let dir = TempDir::new();
    let client = client(&base, Some(&dir));
    let err = client.checkout("fp-1", None).await.unwrap_err();
    assert!(
        matches!(err, Error::File(FileError::BadSignature)),
        "{err:?}"
    );
    assert!(!client.cache_path().unwrap().exists());
}

#[tokio::test]
async fn checkout_refuses_a_file_not_bound_to_this_machine() {
    let now = OffsetDateTime::now_utc();
    let fresh = |activation: Value| {
        let mut p = payload();
        p["issued_at"] = json!((now - time::Duration::hours(1)).format(&Rfc3339).unwrap());
        p["expires_at"] = json!((now + time::Duration::days(1)).format(&Rfc3339).unwrap());
        p["activation"] = activation;
        license_file(&p, &key(1))
    };
    let dir = TempDir::new();
    for (activation, expected) in [
        (Value::Null, FileError::Unbound),
        (
            json!({ "id": "act_2", "fingerprint": "fp-2" }),
            FileError::WrongFingerprint,
        ),
    ] {
        let file = fresh(activation);
        let (base, _) = serve(move |_| ok(json!({ "certificate": file }))).await;
        let client = client(&base, Some(&dir));
        let err = client.checkout("fp-1", None).await.unwrap_err();
        assert!(
            matches!(&err, Error::File(e) if *e == expected),
            "{expected:?}: {err:?}"
        );
        assert!(!client.cache_path().unwrap().exists(), "nothing cached");
    }

    // An unbound file in the cache: refused for a machine, read without one.
    let offline = client(&closed_port(), Some(&dir));
    write_atomically(
        &offline.cache_path().unwrap(),
        fresh(Value::Null).as_bytes(),
    )
    .unwrap();
    let err = offline.offline_license(Some("fp-1")).unwrap_err();
    assert!(matches!(err, Error::File(FileError::Unbound)), "{err:?}");
    let err = offline.validate_or_offline(Some("fp-1")).await.unwrap_err();
    assert!(matches!(err, Error::File(FileError::Unbound)), "{err:?}");
    assert!(offline.offline_license(None).is_ok());
}

#[tokio::test]
async fn validate_or_offline_falls_back_only_when_unreachable() {
    let dir = TempDir::new();
    let offline = client(&closed_port(), Some(&dir));

    // Unreachable, nothing cached: the transport error.
    let err = offline.validate_or_offline(Some("fp-1")).await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");

    write_atomically(&offline.cache_path().unwrap(), fresh_file().as_bytes()).unwrap();
    let verdict = offline.validate_or_offline(Some("fp-1")).await.unwrap();
    assert!(
        matches!(verdict, Verdict::Offline(_)) && verdict.is_valid(),
        "{verdict:?}"
    );
    assert_eq!(verdict.license().unwrap().key, KEY);
    let err = offline.validate_or_offline(Some("fp-2")).await.unwrap_err();
    assert!(
        matches!(err, Error::File(FileError::WrongFingerprint)),
        "{err:?}"
    );

    // An unsigned 503 from a gateway counts as unreachable.
    let (base, _) = serve(|_| signed(fail(503, "X"), Sign::Unsigned)).await;
    let verdict = client(&base, Some(&dir))
        .validate_or_offline(Some("fp-1"))
        .await
        .unwrap();
    assert!(matches!(verdict, Verdict::Offline(_)), "{verdict:?}");

    // Online answers win, valid or not.
    let (base, _) = serve(|_| ok(validation(false))).await;
    let verdict = client(&base, Some(&dir))
        .validate_or_offline(Some("fp-1"))
        .await
        .unwrap();
    assert!(
        matches!(verdict, Verdict::Online(_)) && !verdict.is_valid(),
        "{verdict:?}"
    );

    // API errors and unverified answers are returned, never replaced by the file.
    let (base, _) = serve(|_| fail(401, "UNAUTHENTICATED")).await;
    let err = client(&base, Some(&dir))
        .validate_or_offline(Some("fp-1"))
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("UNAUTHENTICATED"));
    let (base, _) = serve(|_| signed(ok(validation(false)), Sign::TamperedBody)).await;
    let err = client(&base, Some(&dir))
        .validate_or_offline(Some("fp-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unverified(_)), "{err:?}");
}

#[tokio::test]
async fn heartbeat_task_reports_each_outcome_and_stops_on_drop() {
    let count = Arc::new(Mutex::new(0));
    let counter = count.clone();
    let (base, _) = serve(move |_| {
        let mut n = counter.lock().unwrap();
        *n += 1;
        if *n <= 2 {
            ok(json!({ "id": "act_1", "license_id": "lic_1", "fingerprint": "fp-1" }))
        } else {
            fail(409, "LEASE_EXPIRED")
        }
    })
    .await;
    let client = Arc::new(client(&base, None));
    let handle = client.spawn_heartbeat("act_1", Duration::from_millis(20));
    assert!(handle.last_result().is_none());

    let mut results = handle.subscribe();
    let wait = Duration::from_secs(5);
    tokio::time::timeout(wait, results.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(handle.last_result().unwrap().unwrap().id, "act_1");
    let expired = tokio::time::timeout(wait, async {
        loop {
            results.changed().await.unwrap();
            if let Some(Err(e)) = results.borrow_and_update().clone() {
                return e;
            }
        }
    });
    assert_eq!(expired.await.unwrap().api_code(), Some("LEASE_EXPIRED"));

    handle.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopped_at = *count.lock().unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(*count.lock().unwrap(), stopped_at);
}

#[test]
fn the_builder_checks_its_settings() {
    let public = STANDARD.encode(key(1).verifying_key().as_bytes());
    let full = || builder("https://licensing.example.com");
    assert!(full().build().is_ok());
    for base in [
        "http://localhost:3000",
        "http://127.0.0.1:3000/",
        "http://[::1]:3000",
    ] {
        assert!(builder(base).build().is_ok(), "{base}");
    }
    let config_error = |b: ClientBuilder| matches!(b.build(), Err(Error::Config(_)));
    for base in [
        "http://licensing.example.com",
        "http://10.0.0.1",
        "ftp://127.0.0.1",
        "not a url",
        "https://licensing.example.com/?x=1",
        "mailto:a@b.c",
    ] {
        assert!(config_error(builder(base)), "{base}");
    }
    let no_keys = Client::builder()
        .base_url("https://x.example")
        .tenant_id("t")
        .license_key("k");
    assert!(config_error(no_keys.clone()));
    assert!(config_error(
        no_keys.clone().pin_key("v1", &public).pin_key("v2", "bad")
    ));
    assert!(config_error(
        Client::builder()
            .tenant_id("t")
            .license_key("k")
            .pin_key("v1", &public)
    ));
    assert!(config_error(full().tenant_id("")));
    assert!(config_error(full().license_key("")));
    assert!(config_error(full().license_key("bad\nkey")));
}

#[test]
fn debug_output_hides_the_license_key() {
    let client = builder("https://licensing.example.com").build().unwrap();
    let debug = format!("{client:?}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(
        debug.contains("<redacted>") && debug.contains(TENANT),
        "{debug}"
    );
}

#[tokio::test]
async fn answers_dated_more_than_five_minutes_off_the_clock_are_refused() {
    for off in [-6, 6] {
        let clock: Clock =
            Arc::new(move || OffsetDateTime::now_utc() + time::Duration::minutes(off));
        let (base, _) = serve_at(clock, |_| ok(validation(true))).await;
        let err = client(&base, None).validate(None).await.unwrap_err();
        assert!(
            matches!(&err, Error::Unverified(why) if why.contains("more than 5 minutes")),
            "{off}: {err:?}"
        );
    }
    // Within the skew, and with the client's own clock set to match: accepted.
    let clock: Clock = Arc::new(|| OffsetDateTime::now_utc() - time::Duration::minutes(4));
    let (base, _) = serve_at(clock, |_| ok(validation(true))).await;
    assert!(client(&base, None).validate(None).await.unwrap().valid);
    let late = OffsetDateTime::now_utc() - time::Duration::hours(3);
    let clock: Clock = Arc::new(move || late);
    let (base, _) = serve_at(clock.clone(), |_| ok(validation(true))).await;
    let shifted = builder(&base).clock(move || late).build().unwrap();
    assert!(shifted.validate(None).await.unwrap().valid);
}

#[path = "session_tests.rs"]
mod session_tests;
