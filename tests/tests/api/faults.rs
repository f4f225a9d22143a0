//! Faults between the service and DynamoDB, injected by a small proxy in
//! front of the emulator (started by the test, on loopback): throttling,
//! 500s, responses lost after the write committed, and hung requests. The
//! seat and quota invariants must hold and every answer must be one a
//! client can act on: a domain answer, or 503 with `Retry-After` — never
//! SDK text, never half-applied state.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Response};
use harness::Env;
use serde_json::{json, Value};
use shared::app::App;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to one DynamoDB request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fault {
    Pass,
    /// 400 ThrottlingException, nothing forwarded.
    Throttle,
    /// 500 InternalServerError, nothing forwarded.
    Fail,
    /// Forwarded (so it takes effect), then answered 500: the commit
    /// happened but the caller never hears of it.
    LoseResponse,
    /// Held past the client's attempt timeout, then forwarded.
    Hang,
}

struct Proxy {
    upstream: String,
    on: AtomicBool,
    /// Throttle every request (retries spent: the caller must see 503).
    always_throttle: AtomicBool,
    seed: AtomicU64,
    seen: Mutex<std::collections::HashMap<Fault, u32>>,
}

impl Proxy {
    /// 35 % of requests get a fault while `on`, from a fixed-seed sequence.
    fn next(&self) -> Fault {
        if self.always_throttle.load(Ordering::SeqCst) {
            return Fault::Throttle;
        }
        if !self.on.load(Ordering::SeqCst) {
            return Fault::Pass;
        }
        // A 64-bit LCG: repeatable without a random-number crate.
        let x = self
            .seed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                Some(
                    s.wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407),
                )
            })
            .unwrap();
        let fault = match (x >> 33) % 100 {
            0..=9 => Fault::Throttle,
            10..=19 => Fault::Fail,
            20..=29 => Fault::LoseResponse,
            30..=34 => Fault::Hang,
            _ => Fault::Pass,
        };
        *self.seen.lock().unwrap().entry(fault).or_default() += 1;
        fault
    }
}

fn aws_error(status: u16, kind: &str, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Body::from(
            json!({ "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message })
                .to_string(),
        ))
        .unwrap()
}

async fn forward(p: &Proxy, headers: &HeaderMap, body: Bytes) -> Response<Body> {
    let mut req = reqwest::Client::new().post(&p.upstream).body(body);
    for (k, v) in headers {
        if k != "host" && k != "content-length" {
            req = req.header(k.as_str(), v.as_bytes());
        }
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let ct = r.headers().get("content-type").cloned();
            let bytes = r.bytes().await.unwrap_or_default();
            let mut resp = Response::builder().status(status);
            if let Some(ct) = ct {
                resp = resp.header("content-type", ct);
            }
            resp.body(Body::from(bytes)).unwrap()
        }
        Err(e) => aws_error(500, "InternalServerError", &e.to_string()),
    }
}

async fn handle(p: Arc<Proxy>, headers: HeaderMap, body: Bytes) -> Response<Body> {
    let is_dynamodb = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("DynamoDB_"));
    let fault = if is_dynamodb { p.next() } else { Fault::Pass };
    match fault {
        Fault::Pass => forward(&p, &headers, body).await,
        Fault::Throttle => aws_error(
            400,
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
        ),
        Fault::Fail => aws_error(500, "InternalServerError", "Internal server error"),
        Fault::LoseResponse => {
            let _ = forward(&p, &headers, body).await;
            aws_error(500, "InternalServerError", "Internal server error")
        }
        Fault::Hang => {
            tokio::time::sleep(Duration::from_millis(700)).await;
            forward(&p, &headers, body).await
        }
    }
}

/// Start the proxy on loopback; returns it and its URL.
async fn start_proxy(seed: u64) -> (Arc<Proxy>, String) {
    let upstream = std::env::var("AWS_ENDPOINT_URL").expect("the local stack's endpoint");
    let proxy = Arc::new(Proxy {
        upstream,
        on: AtomicBool::new(false),
        always_throttle: AtomicBool::new(false),
        seed: AtomicU64::new(seed),
        seen: Mutex::default(),
    });
    let p = proxy.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let p = p.clone();
        async move { handle(p, headers, body).await }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (proxy, url)
}

/// A function instance whose DynamoDB client goes through the proxy, with
/// short timeouts so a hung request is abandoned (and retried) quickly.
async fn faulty_app(env: &Env, proxy_url: &str) -> Arc<App> {
    let sdk = shared::aws::sdk_config().await;
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_millis(400))
        .operation_timeout(Duration::from_secs(3))
        .build();
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .endpoint_url(proxy_url)
        .timeout_config(timeouts)
        .build();
    let mut clients = env.clients.clone();
    clients.dynamodb = aws_sdk_dynamodb::Client::from_conf(dynamodb);
    let clock = Arc::new(shared::clock::SystemClock);
    Arc::new(
        App::build(env.config.clone(), clients, clock)
            .await
            .unwrap(),
    )
}

async fn call(
    app: &App,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, HeaderMap, Value) {
    let mut req = lambda_http::http::Request::builder()
        .method(method)
        .uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(lambda_http::Body::Text(body.to_string())).unwrap();
    let resp = shared::http::handle(app, None, req).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = match resp.body() {
        lambda_http::Body::Text(t) => t.clone(),
        _ => String::new(),
    };
    for leak in [
        "amazonaws",
        "Throttling",
        "InternalServerError",
        "dispatch",
        "timeout",
        "DynamoDB",
    ] {
        assert!(!text.contains(leak), "SDK text leaked ({leak}): {text}");
    }
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// A client that honours 503 + Retry-After (without sleeping the full
/// second: the point is the answer, not the pause), up to `tries` times.
async fn with_retries(
    app: &App,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
    tries: u32,
) -> (u16, Value, u32) {
    let mut unavailable = 0;
    loop {
        let (status, h, v) = call(app, method, path, headers, body.clone()).await;
        if status != 503 || unavailable + 1 >= tries {
            return (status, v, unavailable);
        }
        assert_eq!(v["error"]["code"], "SERVICE_UNAVAILABLE", "{v}");
        assert_eq!(
            h.get("retry-after").map(|v| v.to_str().unwrap()),
            Some("1"),
            "{v}"
        );
        unavailable += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seats_hold_under_dynamodb_faults() {
    let env = Env::start().await;
    let t = env.tenant("faults-seats").await;
    let (_, lic) = env.license(&t, 5, json!({})).await;
    let key = lic["key"].as_str().unwrap().to_string();
    let id = lic["id"].as_str().unwrap().to_string();
    let (proxy, url) = start_proxy(42).await;
    let app = faulty_app(&env, &url).await;
    // Warm the key and policy caches before the faults start.
    let h = [("x-api-key", t.integration.as_str())];
    let warm = call(
        &app,
        "POST",
        &format!("/v1/integration/licenses/{key}/validate"),
        &h,
        json!({}),
    )
    .await;
    assert_eq!(warm.0, 200);
    proxy.on.store(true, Ordering::SeqCst);

    let attempts = (0..30).map(|i| {
        let (app, key, h0) = (app.clone(), key.clone(), t.integration.clone());
        async move {
            let body = json!({ "license_key": key, "fingerprint": format!("machine-{i}") });
            let h = [("x-api-key", h0.as_str())];
            with_retries(&app, "POST", "/v1/integration/activations", &h, body, 8).await
        }
    });
    let results = futures::future::join_all(attempts).await;
    proxy.on.store(false, Ordering::SeqCst);
    let seen = proxy.seen.lock().unwrap().clone();
    assert!(
        seen.values().sum::<u32>() > 0 && seen.len() >= 4,
        "faults were injected: {seen:?}"
    );

    for (status, v, _) in &results {
        assert!([200, 201, 409, 503].contains(status), "{status}: {v}");
        if *status == 409 {
            assert_eq!(v["error"]["code"], "TOO_MANY_ACTIVATIONS", "{v}");
        }
    }
    let granted = results
        .iter()
        .filter(|(s, _, _)| *s == 200 || *s == 201)
        .count();
    // The invariant, read without faults: the seat counter is exactly the
    // number of active activations, never above the limit, and every
    // fingerprint told it has a seat holds one.
    let l = env
        .get(&format!("/v1/manage/licenses/{id}"), &t.admin)
        .await;
    let used = l.data()["seats"]["used"].as_u64().unwrap();
    let acts = env
        .get(&format!("/v1/manage/licenses/{id}/activations"), &t.admin)
        .await;
    let active = acts
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "active")
        .count();
    assert_eq!(used as usize, active, "seat counter = active activations");
    assert!(used <= 5, "{used} seats used of 5");
    assert!(
        granted <= active,
        "every granted answer holds a seat: {granted} vs {active}"
    );
    let retried: u32 = results.iter().map(|(_, _, n)| n).sum();
    println!(
        "faults injected {seen:?}; 503s retried {retried}; granted {granted}, seats used {used}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quotas_hold_under_dynamodb_faults() {
    let env = Env::start().await;
    let t = env.tenant("faults-quota").await;
    let spec = json!({ "api-calls": { "type": "metered", "limit": 60, "period": "total", "overage": "deny" } });
    let (_, lic) = env.license(&t, 1, spec).await;
    let key = lic["key"].as_str().unwrap().to_string();
    let id = lic["id"].as_str().unwrap().to_string();
    let (proxy, url) = start_proxy(7).await;
    let app = faulty_app(&env, &url).await;
    let h = [("x-api-key", t.integration.as_str())];
    let warm = call(
        &app,
        "POST",
        &format!("/v1/integration/licenses/{key}/validate"),
        &h,
        json!({}),
    )
    .await;
    assert_eq!(warm.0, 200);
    proxy.on.store(true, Ordering::SeqCst);

    // 30 records of 3 against a hard limit of 60, each retried with its own
    // idempotency key (a lost response must not count twice).
    let attempts = (0..30).map(|i| {
        let (app, key, k) = (app.clone(), key.clone(), t.integration.clone());
        async move {
            let body = json!({ "license_key": key, "metric": "api-calls", "quantity": 3 });
            let idem = format!("rec-{i}");
            let h = [
                ("x-api-key", k.as_str()),
                ("x-idempotency-key", idem.as_str()),
            ];
            with_retries(&app, "POST", "/v1/integration/usage/record", &h, body, 8).await
        }
    });
    let results = futures::future::join_all(attempts).await;
    proxy.on.store(false, Ordering::SeqCst);
    for (status, v, _) in &results {
        assert!([201, 403, 503].contains(status), "{status}: {v}");
        if *status == 403 {
            assert_eq!(v["error"]["code"], "QUOTA_EXCEEDED", "{v}");
        }
    }
    let recorded = results.iter().filter(|(s, _, _)| *s == 201).count() as u64;

    // Atomicity: the counter is exactly the sum of the usage events, never
    // past the limit, and at least what the clients were told was recorded.
    let usage = env
        .get(&format!("/v1/manage/usage?license_id={id}"), &t.admin)
        .await;
    let used = usage.data()[0]["used"].as_u64().unwrap_or(0);
    let events = env
        .get(
            &format!("/v1/manage/usage/events?license_id={id}&limit=100"),
            &t.admin,
        )
        .await;
    let summed: u64 = events
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["quantity"].as_u64().unwrap())
        .sum();
    assert_eq!(used, summed, "counter = sum of its events");
    assert!(used <= 60, "{used} of 60");
    assert!(
        used >= recorded * 3,
        "every 201 is counted: {used} vs {recorded} records"
    );
    let seen = proxy.seen.lock().unwrap().clone();
    let retried: u32 = results.iter().map(|(_, _, n)| n).sum();
    println!("faults injected {seen:?}; 503s retried {retried}; 201s {recorded}, used {used}");
}
