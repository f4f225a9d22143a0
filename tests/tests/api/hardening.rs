//! Issue 13's findings, each as a regression test: inputs that used to panic
//! or corrupt data, revocation across instances, and the smaller leaks.

use harness::Env;
use serde_json::{json, Value};
use shared::app::App;
use std::sync::Arc;
use time::macros::datetime;

/// One request straight into a function instance (no HTTP server).
async fn call(app: &App, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let body = match body {
        Some(b) => lambda_http::Body::Text(b.to_string()),
        None => lambda_http::Body::Empty,
    };
    let req = lambda_http::http::Request::builder()
        .method(method)
        .uri(path)
        .header("x-api-key", key)
        .body(body)
        .unwrap();
    let resp = shared::http::handle(app, None, req).await;
    let json = match resp.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (resp.status().as_u16(), json)
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn revocation_and_suspension_reach_every_instance_within_five_seconds() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00 UTC)).await;
    let t = env.tenant("revoke").await;
    let clock = env.clock.clone().unwrap();
    // A second warm instance over the same table and clock.
    let b = App::build(env.config.clone(), env.clients.clone(), clock.clone())
        .await
        .unwrap();
    let products = "/v1/manage/products";

    // Another admin key, warm in B.
    let k = env
        .post(
            "/v1/manage/api-keys",
            &t.admin,
            json!({"name":"k","scopes":["admin"]}),
        )
        .await;
    let key = k.data()["key"].as_str().unwrap().to_string();
    let id = k.data()["id"].as_str().unwrap().to_string();
    assert_eq!(call(&b, "GET", products, &key, None).await.0, 200);

    // Warm: no DynamoDB call to authenticate (the listing is one Query).
    env.calls.take();
    assert_eq!(call(&b, "GET", products, &key, None).await.0, 200);
    assert_eq!(env.calls.take(), ["Query"]);

    // Revoked through A: A refuses at once, B within KEY_FRESHNESS.
    assert_eq!(
        env.delete(&format!("/v1/manage/api-keys/{id}"), &t.admin)
            .await
            .status,
        200
    );
    assert_eq!(env.get(products, &key).await.status, 401);
    clock.advance(time::Duration::seconds(4));
    assert_eq!(
        call(&b, "GET", products, &key, None).await.0,
        200,
        "still fresh in B"
    );
    clock.advance(time::Duration::seconds(1));
    let (status, body) = call(&b, "GET", products, &key, None).await;
    assert_eq!(
        (status, code(&body)),
        (401, "UNAUTHENTICATED"),
        "5 s later, B re-read the key"
    );

    // Suspending the tenant: the instance that served it drops the tenant's
    // keys at once; B within 5 s.
    assert_eq!(call(&b, "GET", products, &t.admin, None).await.0, 200);
    let token = env.operator_token().await;
    let path = format!("/v1/platform/tenants/{}/suspend", t.id);
    assert_eq!(env.operator("POST", &path, &token, None).await.status, 200);
    let (status, body) = call(&env.app, "GET", products, &t.admin, None).await;
    assert_eq!((status, code(&body)), (403, "TENANT_INACTIVE"));
    clock.advance(time::Duration::seconds(5));
    let (status, body) = call(&b, "GET", products, &t.admin, None).await;
    assert_eq!((status, code(&body)), (403, "TENANT_INACTIVE"));

    // An inactive tenant's key is cached too: no read per request.
    env.calls.take();
    for _ in 0..5 {
        assert_eq!(call(&b, "GET", products, &t.admin, None).await.0, 403);
    }
    assert!(env.calls.take().is_empty(), "refused from the cache");

    // The price of promptness, measured: one key used every second for a
    // minute by one instance costs 12 BatchGetItem (0.2 reads per
    // instance-second), one last_used_at write and, as the minute turns, one
    // rate-limit token claim.
    let path = format!("/v1/platform/tenants/{}/reactivate", t.id);
    assert_eq!(env.operator("POST", &path, &token, None).await.status, 200);
    clock.advance(time::Duration::seconds(5));
    env.calls.take();
    for _ in 0..60 {
        assert_eq!(call(&b, "GET", products, &t.admin, None).await.0, 200);
        clock.advance(time::Duration::seconds(1));
    }
    let calls = env.calls.take();
    let reads = calls.iter().filter(|c| *c == "BatchGetItem").count();
    let touches = calls.iter().filter(|c| *c == "UpdateItem").count();
    assert_eq!((reads, touches), (12, 2), "{calls:?}");
}

#[tokio::test]
async fn dates_past_the_calendar_are_refused_not_panicked_on() {
    let env = Env::start().await;
    let t = env.tenant("dates").await;
    let (_, lic) = env
        .license(
            &t,
            2,
            json!({"api-calls": {"type":"metered","limit":10,"period":"month"}}),
        )
        .await;
    let key = lic["key"].as_str().unwrap();
    let id = lic["id"].as_str().unwrap();
    let late = "9999-12-31T23:59:59-01:00";

    let r = env
        .record_with(&t, key, "api-calls", 1, json!({"timestamp": late}))
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");
    let policy = lic["policy"].as_str().unwrap();
    let body = json!({"policy": policy, "customer_email": "a@b.co", "expires_at": late});
    let r = env.post("/v1/manage/licenses", &t.admin, body).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");
    let body = json!({"name": "k", "scopes": ["admin"], "expires_at": late});
    let r = env.post("/v1/manage/api-keys", &t.admin, body).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");
    let renew = format!("/v1/manage/licenses/{id}/renew");
    let r = env
        .post(&renew, &t.admin, json!({"expires_at": late}))
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");
    let r = env
        .get(
            "/v1/manage/audit-events?since=9999-12-31T23:59:59-01:00",
            &t.admin,
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");

    // Renewing a license that already expires near the end of the calendar.
    let r = env
        .post(
            &renew,
            &t.admin,
            json!({"expires_at": "9999-12-30T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = env.post(&renew, &t.admin, json!({"days": 36500})).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");

    // Unbounded durations and grace periods are refused on the policy.
    let product = lic["product"].as_str().unwrap();
    for (field, v) in [
        ("duration_days", 4294967295u64),
        ("grace_period_days", 4294967295),
    ] {
        let mut body = json!({"product": product, "name": "p", "max_activations": 1});
        body[field] = json!(v);
        let r = env.post("/v1/manage/policies", &t.admin, body).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "VALIDATION_ERROR"),
            "{field}: {r:?}"
        );
        assert!(
            r.text.contains(field),
            "the error names {field}: {}",
            r.text
        );
        let r = env
            .patch(
                &format!("/v1/manage/policies/{policy}"),
                &t.admin,
                json!({ field: v }),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (422, "VALIDATION_ERROR"),
            "{field}: {r:?}"
        );
    }
    // The longest allowed duration and grace still work end to end.
    let body = json!({"product": product, "name": "long", "max_activations": 1,
                      "duration_days": 36500, "grace_period_days": 3650});
    let p = env.post("/v1/manage/policies", &t.admin, body).await;
    assert_eq!(p.status, 201, "{p:?}");
    let body = json!({"policy": p.data()["id"], "customer_email": "long@b.co"});
    assert_eq!(
        env.post("/v1/manage/licenses", &t.admin, body).await.status,
        201
    );

    // Stripe's signature timestamp at the ends of i64.
    for t_ in [i64::MIN, i64::MAX] {
        let sig = format!("t={t_},v1=00");
        let r = env
            .send_raw(
                "POST",
                &format!("/v1/stripe/webhook/{}", t.id),
                &[
                    ("stripe-signature", &sig),
                    ("content-type", "application/json"),
                ],
                b"{}".to_vec(),
            )
            .await;
        assert_eq!((r.status, r.code()), (400, "INVALID_SIGNATURE"), "{r:?}");
    }
}

#[tokio::test]
async fn metered_limits_stay_in_range() {
    let env = Env::start().await;
    let t = env.tenant("limits").await;
    let (_, lic) = env.license(&t, 1, json!({"f": {"type":"boolean"}})).await;
    let product = lic["product"].as_str().unwrap();
    let huge = json!({"m": {"type":"metered","limit": 18446744073709551615u64,"period":"total"}});
    let body = json!({"product": product, "name": "p", "max_activations": 1, "entitlements": huge});
    let r = env.post("/v1/manage/policies", &t.admin, body).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");
    assert!(r.text.contains("entitlements.m.limit"), "{}", r.text);
    let id = lic["id"].as_str().unwrap();
    let patch =
        json!({"entitlements": {"m": {"type":"metered","limit": 1u64 << 63,"period":"total"}}});
    let r = env
        .patch(&format!("/v1/manage/licenses/{id}"), &t.admin, patch)
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");
    let r = env
        .patch(
            &format!("/v1/manage/licenses/{id}"),
            &t.admin,
            json!({"max_activations": 4294967295u64}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");

    // The largest allowed limit is stored and read back exactly.
    let max = 1_000_000_000_000_000u64;
    let patch = json!({"entitlements": {"m": {"type":"metered","limit": max,"period":"total"}}});
    let r = env
        .patch(&format!("/v1/manage/licenses/{id}"), &t.admin, patch)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let key = lic["key"].as_str().unwrap();
    let rec = env.record(&t, key, "m", 5).await;
    assert_eq!(
        (rec.status, rec.data()["limit"].as_u64()),
        (201, Some(max)),
        "{rec:?}"
    );
    let usage = env
        .get(&format!("/v1/manage/usage?license_id={id}"), &t.admin)
        .await;
    assert_eq!(usage.status, 200, "{usage:?}");
    assert_eq!(usage.data()[0]["limit"].as_u64(), Some(max));
    let report = env.get("/v1/manage/usage?period=total", &t.admin).await;
    assert_eq!(report.status, 200, "{report:?}");
}

#[tokio::test]
async fn smaller_findings() {
    let env = Env::start().await;
    let t = env.tenant("small").await;
    let (_, lic) = env
        .license(
            &t,
            3,
            json!({"api-calls": {"type":"metered","limit":100,"period":"month"}}),
        )
        .await;
    let key = lic["key"].as_str().unwrap();

    // Blank and invisible fingerprints.
    for fp in [
        " ",
        "\t \t",
        "\u{200B}",
        "a\u{200B}",
        "\u{FEFF}",
        "\u{202E}x",
    ] {
        let r = env.activate(&t, key, fp).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "VALIDATION_ERROR"),
            "{fp:?}: {r:?}"
        );
    }

    // A non-ASCII idempotency key is refused, not ignored.
    let body = json!({"license_key": key, "metric": "api-calls", "quantity": 1}).to_string();
    for header in ["clé-1".as_bytes(), b"k\xff"] {
        let req = reqwest::Client::new()
            .post(format!("{}/v1/integration/usage/record", env.base))
            .header("x-api-key", &t.integration)
            .header(
                "x-idempotency-key",
                reqwest::header::HeaderValue::from_bytes(header).unwrap(),
            )
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = req.status().as_u16();
        let v: Value = req.json().await.unwrap();
        assert_eq!((status, code(&v)), (422, "VALIDATION_ERROR"), "{v}");
    }
    let usage = env
        .get(
            &format!(
                "/v1/manage/usage?license_id={}",
                lic["id"].as_str().unwrap()
            ),
            &t.admin,
        )
        .await;
    assert!(
        usage.data().as_array().unwrap().is_empty(),
        "nothing was recorded: {usage:?}"
    );

    // The CSV export escapes cells a spreadsheet would run as formulas.
    let policy = lic["policy"].as_str().unwrap();
    let body = json!({"policy": policy, "customer_email": "=cmd|'/c_calc'!A0@evil.example"});
    let l = env.post("/v1/manage/licenses", &t.admin, body).await;
    assert_eq!(l.status, 201, "{l:?}");
    let csv_key = l.data()["key"].as_str().unwrap();
    assert_eq!(env.record(&t, csv_key, "api-calls", 1).await.status, 201);
    let month = {
        let now = time::OffsetDateTime::now_utc();
        format!("{:04}-{:02}", now.year(), u8::from(now.month()))
    };
    let csv = env
        .get(
            &format!("/v1/manage/usage/export?period={month}&format=csv"),
            &t.admin,
        )
        .await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.text.contains(",'=cmd|'/c_calc'!a0@evil.example,"),
        "{}",
        csv.text
    );
    assert!(!csv.text.contains(",=cmd"), "{}", csv.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rate_limit_holds_across_instances() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant_on_plan("global-rl", "free").await; // 600 per key per minute
    let clock = env.clock.clone().unwrap();
    let mut apps = vec![env.app.clone()];
    for _ in 0..3 {
        let app = App::build(env.config.clone(), env.clients.clone(), clock.clone()).await;
        apps.push(Arc::new(app.unwrap()));
    }
    env.calls.take();
    env.calls.take_rate_writes();
    // 1,000 requests, 8 at a time, spread over the four instances; the first
    // minute (nothing to size a block from), then the next.
    for minute in 0..2 {
        let mut statuses = Vec::new();
        for round in 0..125 {
            let batch = (0..8).map(|i| {
                let app = apps[(round * 8 + i) % apps.len()].clone();
                let key = t.admin.clone();
                async move { call(&app, "GET", "/v1/manage/products", &key, None).await.0 }
            });
            statuses.extend(futures::future::join_all(batch).await);
        }
        let admitted = statuses.iter().filter(|s| **s == 200).count();
        let refused = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!(admitted + refused, 1000, "{statuses:?}");
        assert!(admitted <= 600, "never more than the limit: {admitted}");
        assert!(admitted >= 540, "within 10 % of it: {admitted}");
        let claims = env.calls.take_rate_writes();
        let writes = env
            .calls
            .take()
            .iter()
            .filter(|c| *c == "UpdateItem")
            .count();
        println!("minute {minute}: 600/min over 4 instances: admitted {admitted}, {claims} claims, {writes} writes");
        if minute == 0 {
            // Each instance: a chunk of 30, then doubling (30, 60, 120, ...)
            // until a claim gets nothing: at most 6 claims, 24 in all, plus
            // each instance's first last_used_at write.
            assert!(claims <= 24, "{claims} claims for 1,000 requests");
            assert!(writes <= 28, "{writes} writes for 1,000 requests");
        } else {
            // Sized from the minute before: one claim per instance, plus at
            // most one that gets nothing per instance.
            assert!(claims <= 8, "{claims} claims in a steady minute");
        }
        clock.advance(time::Duration::seconds(60));
    }

    // The next minute: a fresh budget.
    assert_eq!(
        call(&apps[3], "GET", "/v1/manage/products", &t.admin, None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn limits_are_tenant_settings_the_operator_can_change() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant_on_plan("settings", "free").await;
    let token = env.operator_token().await;
    let path = format!("/v1/platform/tenants/{}", t.id);
    let body =
        json!({"settings": {"rate_limit_per_minute": 3, "license_rate_limit_per_minute": 50}});
    let r = env.operator("PATCH", &path, &token, Some(&body)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data()["settings"]["rate_limit_per_minute"], 3);
    assert_eq!(r.data()["settings"]["license_rate_limit_per_minute"], 50);
    assert_eq!(
        r.data()["settings"]["default_grace_days"],
        7,
        "other settings are kept"
    );
    for _ in 0..3 {
        assert_eq!(env.get("/v1/manage/products", &t.admin).await.status, 200);
    }
    let r = env.get("/v1/manage/products", &t.admin).await;
    assert_eq!(
        (r.status, r.header("x-ratelimit-limit")),
        (429, Some("3")),
        "{r:?}"
    );
    let audit = env.operator("GET", &path, &token, None).await;
    assert_eq!(audit.status, 200);

    for bad in [
        json!({"settings": {"rate_limit_per_minute": 0}}),
        json!({"settings": {"rate_limit_per_minute": 4294967295u64}}),
        json!({"settings": {"trial_days": 0}}),
        json!({"settings": {"colour": "red"}}),
        json!({"plan": "enterprise"}),
    ] {
        let r = env.operator("PATCH", &path, &token, Some(&bad)).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "VALIDATION_ERROR"),
            "{bad}: {r:?}"
        );
    }
    let r = env
        .operator("PATCH", "/v1/platform/tenants/nobody", &token, Some(&body))
        .await;
    assert_eq!((r.status, r.code()), (404, "TENANT_NOT_FOUND"));
}
