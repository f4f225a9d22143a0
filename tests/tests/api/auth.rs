//! API keys, scopes, expiry, tenants, rate-limit headers.

use harness::Env;
use serde_json::json;
use time::macros::datetime;

#[tokio::test]
async fn api_key_authentication() {
    let env = Env::with_clock(datetime!(2026-05-01 0:00 UTC)).await;
    let t = env.tenant("keys").await;
    let path = "/v1/integration/licenses/SOME-KEY-123456/validate";
    let missing = env.send("POST", path, None, Some(&json!({}))).await;
    assert_eq!((missing.status, missing.code()), (401, "UNAUTHENTICATED"));
    assert_eq!(missing.json["error"]["type"], "authentication_error");
    let last = t.integration.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &t.integration[..t.integration.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    for bad in [
        "nope",
        "lk_keys_x_y",
        &t.integration[..t.integration.len() - 1],
        &flipped,
    ] {
        let r = env.post(path, bad, json!({})).await;
        assert_eq!((r.status, r.code()), (401, "UNAUTHENTICATED"), "{bad}");
    }
    // The right key but the wrong scope.
    let r = env.get("/v1/manage/products", &t.integration).await;
    assert_eq!(
        (r.status, r.code(), r.json["error"]["type"].as_str()),
        (403, "FORBIDDEN", Some("permission_error"))
    );
    let r = env.post(path, &t.admin, json!({})).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"));

    // Expiring keys stop working at their expiry.
    let k = env.post("/v1/manage/api-keys", &t.admin, json!({ "name": "short", "scopes": ["integration"], "expires_at": "2026-05-02T00:00:00Z" })).await;
    assert_eq!(k.status, 201, "{k:?}");
    let key = k.data()["key"].as_str().unwrap().to_string();
    assert_eq!(env.post(path, &key, json!({})).await.status, 200);
    env.clock().set(datetime!(2026-05-02 0:00 UTC));
    assert_eq!(env.post(path, &key, json!({})).await.status, 401);
    assert_eq!(
        env.post(
            "/v1/manage/api-keys",
            &t.admin,
            json!({ "name": "old", "scopes": ["admin"], "expires_at": "2026-01-01T00:00:00Z" })
        )
        .await
        .status,
        422
    );

    // last_used_at is recorded.
    let keys = env.get("/v1/manage/api-keys", &t.admin).await;
    let used: Vec<_> = keys
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["last_used_at"].is_string())
        .collect();
    assert!(used.len() >= 2, "{keys:?}");
}

#[tokio::test]
async fn rate_limit_headers_and_request_ids() {
    let env = Env::start().await;
    let t = env.tenant("rl").await;
    let r = env.get("/v1/manage/products", &t.admin).await;
    let limit: u32 = r.header("x-ratelimit-limit").unwrap().parse().unwrap();
    let remaining: u32 = r.header("x-ratelimit-remaining").unwrap().parse().unwrap();
    let reset: i64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert_eq!(limit, 6000, "growth plan");
    assert_eq!(remaining, limit - 1);
    assert!(reset > time::OffsetDateTime::now_utc().unix_timestamp());
    let rid = r.json["meta"]["request_id"].as_str().unwrap();
    assert_eq!(r.header("x-request-id"), Some(rid));
    let h = env.send("GET", "/v1/health", None, None).await;
    assert_eq!(h.data()["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_the_rate_limit_is_429() {
    // A manual clock: the one-minute window cannot roll over mid-test, however
    // slowly the requests go.
    let env = Env::with_clock(datetime!(2026-05-01 12:00:05 UTC)).await;
    let t = env.tenant_on_plan("rlfree", "free").await;
    // Another license each time: this test is about the key's limit (the
    // per-license limit is tested below).
    let license_key = |i: u32| format!("NO-SUCH-KEY-{i:04}");
    // Count successes per one-minute window until the first 429 (a window may
    // roll over during the loop, so count per X-RateLimit-Reset value).
    let mut per_window: std::collections::HashMap<String, u32> = Default::default();
    let mut refused = None;
    for i in 0..1300 {
        let r = env.validate(&t, &license_key(i), json!({})).await;
        let reset = r.header("x-ratelimit-reset").unwrap().to_string();
        if r.status == 429 {
            refused = Some((reset, r));
            break;
        }
        assert_eq!(r.status, 200, "{r:?}");
        *per_window.entry(reset).or_default() += 1;
    }
    let (reset, r) = refused.expect("a 429 within the window");
    assert_eq!(
        per_window.get(&reset),
        Some(&600),
        "exactly the free plan's 600 per minute before the 429"
    );
    assert_eq!(
        (r.code(), r.json["error"]["type"].as_str()),
        ("RATE_LIMITED", Some("rate_limit_error"))
    );
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // Another key of the same tenant has its own budget.
    assert_eq!(env.get("/v1/manage/products", &t.admin).await.status, 200);
}

/// `POST .../validate` of `key` as its own client app sends it.
async fn validate_as_client(env: &Env, tenant: &str, key: &str) -> harness::Resp {
    env.send_raw(
        "POST",
        &format!("/v1/integration/licenses/{key}/validate"),
        &[
            ("authorization", &format!("License {key}")),
            ("x-tenant-id", tenant),
            ("x-nonce", &ulid::Ulid::new().to_string()),
            ("content-type", "application/json"),
        ],
        b"{}".to_vec(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_license_budget_binds_its_own_key_only_and_api_keys_spend_their_own() {
    let env = Env::with_clock(time::macros::datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant_on_plan("rllic", "free").await;
    let (_, lic) = env.license(&t, 1, json!({})).await;
    let key = lic["key"].as_str().unwrap();
    let path = format!("/v1/integration/licenses/{key}/validate");
    // API-key requests naming the license spend only the key's budget (600
    // a minute on free), however many name this one license: more than the
    // license's 120 all pass, and report the key's limit.
    for i in 0..130 {
        let r = env.post(&path, &t.integration, json!({})).await;
        assert_eq!(r.status, 200, "API-key request {i}: {r:?}");
        assert_eq!(r.header("x-ratelimit-limit"), Some("600"), "{r:?}");
    }
    // The license's own key (Authorization: License) has 120 a minute.
    let mut ok = 0;
    let mut refused = None;
    for _ in 0..130 {
        let r = validate_as_client(&env, &t.id, key).await;
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("x-ratelimit-limit"), Some("120"), "{r:?}");
        ok += 1;
    }
    assert_eq!(
        ok, 120,
        "exactly the free plan's 120 per license per minute, untouched by the API-key requests"
    );
    let r = refused.expect("a 429");
    assert_eq!(r.code(), "RATE_LIMITED");
    assert_eq!(r.header("x-ratelimit-limit"), Some("120"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    assert!(r.header("retry-after").is_some());
    // The license's spent budget does not touch API-key requests for it.
    let r = env.post(&path, &t.integration, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    // The next minute the license is back.
    env.clock().advance(time::Duration::seconds(60));
    assert_eq!(validate_as_client(&env, &t.id, key).await.status, 200);
}

/// An API key that names many licenses in a quiet minute costs one shared
/// rate-limit write on this instance, not one per license it names.
#[tokio::test]
async fn a_quiet_key_naming_many_licenses_costs_one_window_write_a_minute() {
    let env = Env::with_clock(time::macros::datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("rlquiet").await;
    env.calls.take();
    for i in 0..10 {
        let r = env
            .validate(&t, &format!("QUIET-KEY-{i:04}"), json!({}))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let calls = env.calls.take();
    let writes = calls.iter().filter(|c| *c == "UpdateItem").count();
    // The key's last_used_at (once a minute) and the key's one claim.
    assert_eq!(
        writes, 2,
        "one last_used_at write and one rate-limit claim: {calls:?}"
    );
}
