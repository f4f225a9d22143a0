//! Entitlement checks and usage metering against the local stack.

use harness::{Env, Tenant};
use serde_json::{json, Value};
use time::macros::datetime;

async fn setup(env: &Env, t: &Tenant, ents: Value) -> (String, String, String) {
    let (pol, lic) = env.license(t, 3, ents).await;
    (
        pol,
        lic["key"].as_str().unwrap().to_string(),
        lic["id"].as_str().unwrap().to_string(),
    )
}

fn metered(limit: u64, period: &str, overage: &str) -> Value {
    json!({ "type": "metered", "limit": limit, "period": period, "overage": overage })
}

async fn record(
    env: &Env,
    t: &Tenant,
    key: &str,
    metric: &str,
    q: Value,
    idem: Option<&str>,
) -> harness::Resp {
    let body = json!({ "license_key": key, "metric": metric, "quantity": q });
    let mut headers = vec![
        ("x-api-key", t.integration.as_str()),
        ("content-type", "application/json"),
    ];
    if let Some(k) = idem {
        headers.push(("x-idempotency-key", k));
    }
    env.send_raw(
        "POST",
        "/v1/integration/usage/record",
        &headers,
        body.to_string().into_bytes(),
    )
    .await
}

async fn used(env: &Env, t: &Tenant, key: &str, metric: &str) -> Value {
    let r = env.check(t, key, &[metric]).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.data()["results"][metric].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_concurrent_records_never_pass_a_hard_limit() {
    let env = Env::start().await;
    let t = env.tenant("quota").await;
    let (_, key, _) = setup(
        &env,
        &t,
        json!({ "api-calls": metered(100, "month", "deny") }),
    )
    .await;
    let results = futures::future::join_all(
        (0..60).map(|_| record(&env, &t, &key, "api-calls", json!(2), None)),
    )
    .await;
    let ok = results.iter().filter(|r| r.status == 201).count();
    let refused = results
        .iter()
        .filter(|r| r.status == 403 && r.code() == "QUOTA_EXCEEDED")
        .count();
    assert_eq!(
        (ok, refused),
        (50, 10),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let u = used(&env, &t, &key, "api-calls").await;
    assert_eq!(
        (
            u["used"].as_u64(),
            u["remaining"].as_u64(),
            u["granted"].as_bool()
        ),
        (Some(100), Some(0), Some(false)),
        "{u}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotency_key_counts_once() {
    let env = Env::start().await;
    let t = env.tenant("idem").await;
    let (_, key, _) = setup(
        &env,
        &t,
        json!({ "api-calls": metered(1000, "month", "deny") }),
    )
    .await;
    let results = futures::future::join_all(
        (0..20).map(|_| record(&env, &t, &key, "api-calls", json!(7), Some("job-42"))),
    )
    .await;
    assert!(results.iter().all(|r| r.status == 201), "{results:?}");
    let first = results
        .iter()
        .find(|r| r.header("idempotent-replayed").is_none())
        .expect("one original");
    assert_eq!(
        results
            .iter()
            .filter(|r| r.header("idempotent-replayed") == Some("true"))
            .count(),
        19
    );
    assert!(
        results.iter().all(|r| r.data() == first.data()),
        "every replay is the first body"
    );
    assert_eq!(used(&env, &t, &key, "api-calls").await["used"], 7);

    // Later replays, sequentially: same body; a different body is a conflict.
    let again = record(&env, &t, &key, "api-calls", json!(7), Some("job-42")).await;
    assert_eq!((again.status, again.data()), (201, first.data()));
    let other = record(&env, &t, &key, "api-calls", json!(8), Some("job-42")).await;
    assert_eq!(
        (other.status, other.code()),
        (409, "IDEMPOTENCY_KEY_REUSED")
    );
    assert_eq!(used(&env, &t, &key, "api-calls").await["used"], 7);
    let long = "k".repeat(256);
    assert_eq!(
        record(&env, &t, &key, "api-calls", json!(1), Some(&long))
            .await
            .status,
        422
    );
}

/// Idempotency keys belong to one license: the same key on two licenses is
/// two keys, so one end user's client can neither block another license's
/// records nor learn which keys others used.
#[tokio::test]
async fn idempotency_keys_are_scoped_to_their_license() {
    let env = Env::start().await;
    let t = env.tenant("idem-lic").await;
    let ents = json!({ "api-calls": metered(1000, "month", "deny") });
    let (policy, a) = env.license(&t, 3, ents).await;
    let b = env
        .post(
            "/v1/manage/licenses",
            &t.admin,
            json!({ "policy": policy, "customer_email": "b@example.com" }),
        )
        .await;
    assert_eq!(b.status, 201, "{b:?}");
    let (ka, kb) = (
        a["key"].as_str().unwrap(),
        b.data()["key"].as_str().unwrap(),
    );

    let first = record(&env, &t, ka, "api-calls", json!(5), Some("batch-1")).await;
    assert_eq!(first.status, 201, "{first:?}");
    // The same key on another license: a new record there, not a conflict
    // (which would tell that license's client the key was used).
    let other = record(&env, &t, kb, "api-calls", json!(5), Some("batch-1")).await;
    assert_eq!(other.status, 201, "{other:?}");
    assert_eq!(other.header("idempotent-replayed"), None, "{other:?}");
    assert_eq!(other.data()["license_id"], b.data()["id"]);
    assert_eq!(used(&env, &t, kb, "api-calls").await["used"], 5);
    // And with another body too: still B's own key.
    let b2 = record(&env, &t, kb, "api-calls", json!(7), Some("batch-2")).await;
    assert_eq!(b2.status, 201, "{b2:?}");
    let a2 = record(&env, &t, ka, "api-calls", json!(1), Some("batch-2")).await;
    assert_eq!(a2.status, 201, "{a2:?}");
    assert_eq!(a2.header("idempotent-replayed"), None);

    // Each license still replays its own.
    let again = record(&env, &t, ka, "api-calls", json!(5), Some("batch-1")).await;
    assert_eq!(
        (
            again.status,
            again.header("idempotent-replayed"),
            again.data()
        ),
        (201, Some("true"), first.data())
    );
    let again = record(&env, &t, kb, "api-calls", json!(5), Some("batch-1")).await;
    assert_eq!(
        (
            again.status,
            again.header("idempotent-replayed"),
            again.data()
        ),
        (201, Some("true"), other.data())
    );
    assert_eq!(used(&env, &t, ka, "api-calls").await["used"], 6);
    assert_eq!(used(&env, &t, kb, "api-calls").await["used"], 12);
}

#[tokio::test]
async fn periods_roll_over_and_backdated_records_land_in_their_period() {
    let env = Env::with_clock(datetime!(2026-11-30 23:00 UTC)).await;
    let t = env.tenant("period").await;
    let (_, key, lid) = setup(&env, &t, json!({ "api-calls": metered(10, "month", "deny"), "exports": metered(3, "day", "deny"), "seats-synced": metered(5, "total", "deny") })).await;
    let r = record(&env, &t, &key, "api-calls", json!(4), None).await;
    assert_eq!(
        (
            r.status,
            r.data()["period"].as_str(),
            r.data()["used"].as_u64()
        ),
        (201, Some("2026-11"), Some(4)),
        "{r:?}"
    );
    assert_eq!(r.data()["resets_at"], "2026-12-01T00:00:00.000Z");
    assert_eq!(
        record(&env, &t, &key, "exports", json!(3), None)
            .await
            .status,
        201
    );
    assert_eq!(
        record(&env, &t, &key, "exports", json!(1), None)
            .await
            .code(),
        "QUOTA_EXCEEDED"
    );
    assert_eq!(
        record(&env, &t, &key, "seats-synced", json!(5), None)
            .await
            .status,
        201
    );

    env.clock().set(datetime!(2026-12-01 00:30 UTC));
    assert_eq!(
        used(&env, &t, &key, "api-calls").await["used"],
        0,
        "a new month starts at zero"
    );
    assert_eq!(
        used(&env, &t, &key, "exports").await["used"],
        0,
        "a new day starts at zero"
    );
    assert_eq!(
        used(&env, &t, &key, "seats-synced").await["used"],
        5,
        "total never resets"
    );
    assert_eq!(
        record(&env, &t, &key, "exports", json!(1), None)
            .await
            .status,
        201
    );

    // A late record for November lands in November.
    let late = env
        .record_with(
            &t,
            &key,
            "api-calls",
            6,
            json!({ "timestamp": "2026-11-30T22:00:00Z" }),
        )
        .await;
    assert_eq!(
        (
            late.status,
            late.data()["period"].as_str(),
            late.data()["used"].as_u64()
        ),
        (201, Some("2026-11"), Some(10)),
        "{late:?}"
    );
    let over = env
        .record_with(
            &t,
            &key,
            "api-calls",
            1,
            json!({ "timestamp": "2026-11-30T22:00:00Z" }),
        )
        .await;
    assert_eq!(over.code(), "QUOTA_EXCEEDED", "November is full");
    assert_eq!(
        used(&env, &t, &key, "api-calls").await["used"],
        0,
        "December untouched"
    );
    for ts in ["2026-11-23T00:00:00Z", "2026-12-01T00:32:00Z"] {
        let r = env
            .record_with(&t, &key, "api-calls", 1, json!({ "timestamp": ts }))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (422, "TIMESTAMP_OUT_OF_RANGE"),
            "{ts}"
        );
    }

    // Reports: per license, per period, and the export.
    let u = env
        .get(
            &format!("/v1/manage/usage?license_id={lid}&period=2026-11"),
            &t.admin,
        )
        .await;
    let rows = u.data().as_array().unwrap();
    assert_eq!(
        rows.len(),
        2,
        "api-calls for the month and exports for Nov 30: {u:?}"
    );
    let u = env
        .get(
            &format!("/v1/manage/usage?license_id={lid}&metric=api-calls"),
            &t.admin,
        )
        .await;
    let periods: Vec<_> = u
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["period"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(periods, ["2026-11"]);
    let by_day = env
        .get("/v1/manage/usage?period=2026-12-01", &t.admin)
        .await;
    assert_eq!(by_day.data().as_array().unwrap().len(), 1, "{by_day:?}");

    // The usage events (each record's audit entry), by month of their timestamp, newest first.
    let ev = env
        .get(
            &format!("/v1/manage/usage/events?license_id={lid}&period=2026-11&limit=2"),
            &t.admin,
        )
        .await;
    let evs = ev.data().as_array().unwrap();
    assert_eq!(evs.len(), 2, "{ev:?}");
    assert!(evs
        .iter()
        .all(|e| e["code"] == "USAGE.RECORDED" && e["severity"] == "info"));
    assert!(
        evs[0]["actor"].as_str().unwrap().starts_with("key_")
            && evs[0]["request_id"].as_str().unwrap().starts_with("req_")
    );
    let next = ev.json["meta"]["next_cursor"].as_str().unwrap().to_string();
    let rest = env
        .get(
            &format!("/v1/manage/usage/events?license_id={lid}&period=2026-11&cursor={next}"),
            &t.admin,
        )
        .await;
    let rest = rest.data().as_array().unwrap();
    assert_eq!(
        rest.len(),
        2,
        "4 records were written in November (refused ones are not): {rest:?}"
    );
    let oldest = &rest[1];
    assert_eq!(
        (
            oldest["metric"].as_str(),
            oldest["quantity"].as_u64(),
            oldest["timestamp"].as_str()
        ),
        (Some("api-calls"), Some(6), Some("2026-11-30T22:00:00.000Z")),
        "the late record is the oldest by its timestamp"
    );
    let dec = env
        .get(
            &format!("/v1/manage/usage/events?license_id={lid}"),
            &t.admin,
        )
        .await;
    assert_eq!(
        dec.data().as_array().unwrap().len(),
        1,
        "the current month by default"
    );
    assert_eq!(
        env.get("/v1/manage/usage/events?period=2026-11", &t.admin)
            .await
            .status,
        422
    );
}

#[tokio::test]
async fn overage_allow_overrides_and_export() {
    let env = Env::with_clock(datetime!(2026-11-10 12:00 UTC)).await;
    let t = env.tenant("overage").await;
    let (_, key, lid) = setup(&env, &t, json!({ "api-calls": metered(5, "month", "allow"), "renders": metered(10, "month", "deny"), "sso": { "type": "boolean" } })).await;
    let r = record(&env, &t, &key, "api-calls", json!(7), None).await;
    assert_eq!(
        (
            r.status,
            r.data()["used"].as_u64(),
            r.data()["overage"].as_u64(),
            r.data()["remaining"].as_u64()
        ),
        (201, Some(7), Some(2), Some(0)),
        "{r:?}"
    );
    let u = used(&env, &t, &key, "api-calls").await;
    assert_eq!(
        (u["granted"].as_bool(), u["overage"].as_u64()),
        (Some(true), Some(2)),
        "overage allowed stays granted: {u}"
    );

    // A per-license override beats the policy.
    let p = env
        .patch(
            &format!("/v1/manage/licenses/{lid}"),
            &t.admin,
            json!({ "entitlements": { "renders": metered(3, "month", "deny") } }),
        )
        .await;
    assert_eq!(p.status, 200, "{p:?}");
    assert_eq!(
        record(&env, &t, &key, "renders", json!(4), None)
            .await
            .code(),
        "QUOTA_EXCEEDED"
    );
    assert_eq!(
        record(&env, &t, &key, "renders", json!(3), None)
            .await
            .status,
        201
    );
    // Validate's entitlements block and the check agree.
    let v = env.validate(&t, &key, json!({})).await;
    assert_eq!(
        v.data()["license"]["entitlements"]["renders"],
        json!({ "limit": 3, "used": 3, "period": "month", "aggregation": "sum" })
    );
    assert_eq!(v.data()["license"]["entitlements"]["sso"], true);
    let c = env.check(&t, &key, &["renders", "sso", "nope"]).await;
    assert_eq!(c.data()["license_valid"], true);
    assert_eq!(c.data()["results"]["renders"]["limit"], 3);
    assert_eq!(c.data()["results"]["renders"]["used"], 3);
    assert_eq!(
        c.data()["results"]["renders"]["resets_at"],
        "2026-12-01T00:00:00.000Z"
    );
    assert_eq!(
        c.data()["results"]["sso"],
        json!({ "granted": true, "type": "boolean" })
    );
    assert_eq!(c.data()["results"]["nope"]["granted"], false);
    // "inherit" drops the override: the policy's limit applies again.
    let p = env
        .patch(
            &format!("/v1/manage/licenses/{lid}"),
            &t.admin,
            json!({ "entitlements": { "renders": "inherit" } }),
        )
        .await;
    assert_eq!(
        p.data()["entitlements"]["renders"],
        json!({ "limit": 10, "used": 3, "period": "month", "aggregation": "sum" }),
        "{p:?}"
    );
    assert_eq!(
        env.patch(
            &format!("/v1/manage/licenses/{lid}"),
            &t.admin,
            json!({ "entitlements": { "renders": "maybe" } })
        )
        .await
        .status,
        422
    );

    // Export: CSV with a header row, and JSON.
    let csv = env
        .send(
            "GET",
            "/v1/manage/usage/export?period=2026-11&format=csv",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(
        lines[0],
        "license_id,customer_email,metric,period,limit,used,overage,aggregation"
    );
    assert!(
        lines.contains(&format!("{lid},buyer@example.com,api-calls,2026-11,5,7,2,sum").as_str()),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 3);
    let j = env
        .get(
            "/v1/manage/usage/export?period=2026-11&format=json&limit=1",
            &t.admin,
        )
        .await;
    assert_eq!(j.data().as_array().unwrap().len(), 1);
    let next = j.json["meta"]["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let j2 = env
        .get(
            &format!("/v1/manage/usage/export?period=2026-11&format=json&limit=1&cursor={next}"),
            &t.admin,
        )
        .await;
    assert_eq!(j2.data().as_array().unwrap().len(), 1);
    assert_eq!(
        env.get("/v1/manage/usage/export?period=2026-11-01", &t.admin)
            .await
            .status,
        422
    );
    assert_eq!(
        env.get(
            "/v1/manage/usage/export?period=2026-11&format=xml",
            &t.admin
        )
        .await
        .status,
        422
    );

    // An invalid license: every feature refused.
    env.post(
        &format!("/v1/manage/licenses/{lid}/suspend"),
        &t.admin,
        json!({}),
    )
    .await;
    let c = env.check(&t, &key, &["sso", "api-calls"]).await;
    assert_eq!(
        (
            c.data()["license_valid"].as_bool(),
            c.data()["code"].as_str()
        ),
        (Some(false), Some("SUSPENDED"))
    );
    assert_eq!(c.data()["results"]["sso"]["granted"], false);
    assert_eq!(c.data()["results"]["api-calls"]["granted"], false);
    assert_eq!(
        record(&env, &t, &key, "api-calls", json!(1), None)
            .await
            .code(),
        "LICENSE_NOT_ACTIVE"
    );
    let c = env.check(&t, "NO-SUCH-LICENSE", &["sso"]).await;
    assert_eq!(
        (
            c.data()["license_valid"].as_bool(),
            c.data()["code"].as_str()
        ),
        (Some(false), Some("NOT_FOUND"))
    );
}

#[tokio::test]
async fn bad_usage_input_and_isolation() {
    let env = Env::start().await;
    let t = env.tenant("badusage").await;
    let other = env.tenant("otherusage").await;
    let (_, key, lid) = setup(
        &env,
        &t,
        json!({ "api-calls": metered(10, "month", "deny"), "sso": { "type": "boolean" } }),
    )
    .await;
    for q in [
        json!(0),
        json!(-1),
        json!(1.5),
        json!("3"),
        json!(null),
        json!(1_000_000_001u64),
        json!(u64::MAX),
    ] {
        let r = record(&env, &t, &key, "api-calls", q.clone(), None).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "VALIDATION_ERROR"),
            "quantity {q}: {r:?}"
        );
    }
    for m in ["unknown-metric", "sso"] {
        let r = record(&env, &t, &key, m, json!(1), None).await;
        assert_eq!((r.status, r.code()), (422, "UNKNOWN_METRIC"), "{m}");
    }
    let r = env
        .record_with(
            &t,
            &key,
            "api-calls",
            1,
            json!({ "metadata": { "blob": "x".repeat(9000) } }),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "METADATA_TOO_LARGE"));
    assert_eq!(env.check(&t, &key, &[]).await.status, 422);
    assert_eq!(
        env.post(
            "/v1/integration/entitlements/check",
            &t.integration,
            json!({ "license_key": key })
        )
        .await
        .status,
        422
    );
    assert_eq!(
        record(&env, &t, &key, "api-calls", json!(11), None)
            .await
            .code(),
        "QUOTA_EXCEEDED"
    );
    assert_eq!(
        record(&env, &t, &key, "api-calls", json!(2), None)
            .await
            .status,
        201
    );

    // Another tenant can neither record against nor read this usage.
    let r = env
        .post(
            "/v1/integration/usage/record",
            &other.integration,
            json!({ "license_key": key, "metric": "api-calls", "quantity": 1 }),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "LICENSE_NOT_FOUND"));
    let r = env
        .post(
            "/v1/integration/entitlements/check",
            &other.integration,
            json!({ "license_key": key, "features": ["api-calls"] }),
        )
        .await;
    assert_eq!(r.data()["license_valid"], false);
    assert_eq!(
        env.get(&format!("/v1/manage/usage?license_id={lid}"), &other.admin)
            .await
            .code(),
        "LICENSE_NOT_FOUND"
    );
    let month = time::OffsetDateTime::now_utc();
    let period = format!("{:04}-{:02}", month.year(), u8::from(month.month()));
    assert_eq!(
        env.get(&format!("/v1/manage/usage?period={period}"), &other.admin)
            .await
            .data()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        env.get(&format!("/v1/manage/usage?period={period}"), &t.admin)
            .await
            .data()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A reused idempotency key in another tenant is another key.
    assert_eq!(
        record(&env, &t, &key, "api-calls", json!(1), Some("shared-key"))
            .await
            .status,
        201
    );
    let r = env
        .send_raw(
            "POST",
            "/v1/integration/usage/record",
            &[
                ("x-api-key", &other.integration),
                ("x-idempotency-key", "shared-key"),
            ],
            json!({ "license_key": key, "metric": "api-calls", "quantity": 1 })
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(
        r.code(),
        "LICENSE_NOT_FOUND",
        "no replay of another tenant's response"
    );
}

#[tokio::test]
async fn metering_round_trips() {
    // A manual clock: the rate-limit window (one token claim per subject per
    // instance per minute, an UpdateItem) never rolls over mid-test.
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("rtusage").await;
    let (_, key, _) = setup(
        &env,
        &t,
        json!({ "api-calls": metered(10, "month", "deny") }),
    )
    .await;
    // Warm the key and policy caches.
    used(&env, &t, &key, "api-calls").await;
    env.calls.take();
    env.calls.take_rate_writes();
    used(&env, &t, &key, "api-calls").await;
    assert_eq!(
        env.calls.take(),
        ["Query", "BatchGetItem"],
        "check: the license partition, then the current period's counter shards"
    );
    assert_eq!(
        record(&env, &t, &key, "api-calls", json!(1), None)
            .await
            .status,
        201
    );
    assert_eq!(
        env.calls.take(),
        ["BatchGetItem", "TransactWriteItems"],
        "the period's first record: one read, one transaction (an untouched shard opens with its share)"
    );
    assert_eq!(
        record(&env, &t, &key, "api-calls", json!(1), Some("rt-1"))
            .await
            .status,
        201
    );
    assert_eq!(
        env.calls.take(),
        ["BatchGetItem", "TransactWriteItems"],
        "record: one read, one transaction"
    );
    assert_eq!(
        record(&env, &t, &key, "api-calls", json!(1), Some("rt-1"))
            .await
            .status,
        201
    );
    assert_eq!(
        env.calls.take(),
        ["BatchGetItem"],
        "a replay is answered from the read"
    );
}
