//! DynamoDB round trips per request, counted by an SDK interceptor.

use harness::Env;
use serde_json::json;

#[tokio::test]
async fn round_trips_per_request() {
    // A manual clock: the rate-limit windows (one token claim per subject
    // per instance per minute) never roll over mid-test.
    let env = Env::with_clock(time::macros::datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("rt").await;
    let (_, lic) = env
        .license(&t, 3, json!({ "f": { "type": "boolean" } }))
        .await;
    let key = lic["key"].as_str().unwrap();

    // Cold key: one BatchGetItem (key + tenant), the last_used_at write
    // (alongside, not before, the request's own call), the key's first
    // rate-limit token claim of this minute (an API-key request spends no
    // license's budget), then the Query.
    env.calls.take();
    assert_eq!(env.validate(&t, key, json!({})).await.status, 200);
    let mut cold = env.calls.take();
    cold.sort();
    assert_eq!(cold, ["BatchGetItem", "Query", "UpdateItem", "UpdateItem"]);
    env.calls.take_rate_writes();

    // Warm: exactly one DynamoDB call before validate answers.
    for body in [
        json!({}),
        json!({ "fingerprint": "m1", "entitlements": ["f"] }),
    ] {
        assert_eq!(env.validate(&t, key, body).await.status, 200);
        assert_eq!(env.calls.take(), ["Query"]);
        assert_eq!(
            env.calls.take_rate_writes(),
            0,
            "tokens claimed this minute"
        );
    }

    // Activate: one transaction.
    let a = env.activate(&t, key, "m1").await;
    assert_eq!(a.status, 201);
    assert_eq!(env.calls.take(), ["TransactWriteItems"]);
    // Activating again (already active): the cancelled transaction names the item.
    assert_eq!(env.activate(&t, key, "m1").await.status, 200);
    assert_eq!(env.calls.take(), ["TransactWriteItems"]);

    // Deactivate: one read of the activation (live or retired: the move to
    // `R#` writes its content), one transaction that moves it.
    let id = a.data()["id"].as_str().unwrap();
    assert_eq!(
        env.delete(&format!("/v1/integration/activations/{id}"), &t.integration)
            .await
            .status,
        200
    );
    assert_eq!(env.calls.take(), ["BatchGetItem", "TransactWriteItems"]);
    assert_eq!(env.deactivate(&t, key, "m1").await.status, 200);
    assert_eq!(
        env.calls.take(),
        ["BatchGetItem"],
        "already inactive: the read finds it retired, nothing is written"
    );

    // Restore a deactivated fingerprint: the first transaction finds it, the second restores it.
    assert_eq!(env.activate(&t, key, "m1").await.status, 201);
    assert_eq!(
        env.calls.take(),
        ["TransactWriteItems", "TransactWriteItems"]
    );
}

/// A usage record: one strongly consistent BatchGetItem (license, the
/// current period's counter shards, the idempotency record) and one
/// transaction, whether the metric is hard-limited or not; the policy is
/// read once per instance.
#[tokio::test]
async fn a_usage_record_is_two_round_trips() {
    let env = Env::with_clock(time::macros::datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("rt-usage").await;
    let (_, lic) = env
        .license(
            &t,
            1,
            json!({
                "calls": { "type": "metered", "limit": 1000, "period": "month", "overage": "deny" },
                "events": { "type": "metered", "limit": 1000, "period": "month", "overage": "allow" }
            }),
        )
        .await;
    let key = lic["key"].as_str().unwrap();
    // Warm the key, the rate window and the policy.
    assert_eq!(env.record(&t, key, "calls", 1).await.status, 201);
    env.calls.take();
    env.calls.take_rate_writes();
    for metric in ["calls", "events", "calls", "events"] {
        let r = env.record(&t, key, metric, 1).await;
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(
            env.calls.take(),
            ["BatchGetItem", "TransactWriteItems"],
            "{metric}"
        );
    }
}
