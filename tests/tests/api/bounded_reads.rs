//! A license's history does not make its reads dearer, and quiet requests
//! write nothing of their own for rate limiting: items read and rate-window
//! writes counted by the SDK interceptor.

use crate::clients::as_client;
use crate::floating::license_with;
use harness::Env;
use serde_json::json;
use time::macros::datetime;

/// Items read by one validate and one entitlements check of `key` (warm: the
/// key's tokens for this minute already claimed), with the fingerprint "gone".
async fn reads_of(env: &Env, t: &harness::Tenant, key: &str) -> (u64, u64) {
    let body = json!({ "fingerprint": "gone-0", "entitlements": ["f"] });
    assert_eq!(env.validate(t, key, body.clone()).await.status, 200);
    env.calls.take();
    env.calls.take_items_read();
    let v = env.validate(t, key, body).await;
    assert_eq!(v.status, 200, "{v:?}");
    let validate = env.calls.take_items_read();
    let c = env.check(t, key, &["f", "calls"]).await;
    assert_eq!(c.status, 200, "{c:?}");
    let check = env.calls.take_items_read();
    (validate, check)
}

#[tokio::test]
async fn validate_reads_as_much_after_80_machines_came_and_went_as_on_a_fresh_license() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("bounded").await;
    let ents = json!({
        "f": { "type": "boolean" },
        "calls": { "type": "metered", "limit": 100, "period": "month" },
    });
    let (_, fresh) = env.license(&t, 2, ents.clone()).await;
    let (_, busy) = env.license(&t, 2, ents).await;
    let (fresh_key, busy_key) = (
        fresh["key"].as_str().unwrap(),
        busy["key"].as_str().unwrap(),
    );

    for i in 0..80 {
        let fp = format!("gone-{i}");
        assert_eq!(env.activate(&t, busy_key, &fp).await.status, 201);
        assert_eq!(env.deactivate(&t, busy_key, &fp).await.status, 200);
    }
    let (fresh_v, fresh_c) = reads_of(&env, &t, fresh_key).await;
    let (busy_v, busy_c) = reads_of(&env, &t, busy_key).await;
    println!("items read: validate fresh {fresh_v} / after 80 machines {busy_v}; check {fresh_c} / {busy_c}");
    assert_eq!(busy_v, fresh_v, "validate reads no retired activation");
    assert_eq!(
        busy_c, fresh_c,
        "entitlements check reads no retired activation"
    );
    // The license item, and no usage counter yet (one asked for by key).
    assert_eq!(fresh_v, 1);

    // With machines live, it reads the live ones only (seats bound them).
    assert_eq!(env.activate(&t, busy_key, "live-1").await.status, 201);
    let (v, _) = reads_of(&env, &t, busy_key).await;
    assert_eq!(v, 2, "the license and the one live activation");

    // History stays: restore brings a machine back with its first created_at;
    // the management listing shows every machine, live or not.
    let first = env.activate(&t, busy_key, "gone-0").await;
    assert_eq!(first.status, 201, "{first:?}");
    let v = env
        .validate(&t, busy_key, json!({ "fingerprint": "gone-0" }))
        .await;
    assert_eq!(v.data()["code"], "VALID", "{v:?}");
    let id = busy["id"].as_str().unwrap();
    let list = env
        .get(&format!("/v1/manage/licenses/{id}/activations"), &t.admin)
        .await;
    assert_eq!(list.status, 200, "{list:?}");
    let rows = list.data().as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 81, "{list:?}");
    let active = rows.iter().filter(|r| r["status"] == "active").count();
    assert_eq!(active, 2, "live-1 and the restored gone-0");
    // Seats still add up: both seats are taken, a third machine is refused.
    assert_eq!(env.activate(&t, busy_key, "third").await.status, 409);
}

#[tokio::test]
async fn floating_reads_stay_flat_after_leases_came_and_went() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("bounded-fl").await;
    let terms = json!({ "activation_mode": "floating", "lease_seconds": 120 });
    let fresh = license_with(&env, &t, 2, terms.clone()).await;
    let busy = license_with(&env, &t, 2, terms).await;
    for i in 0..40 {
        let fp = format!("fl-{i}");
        let key = busy["key"].as_str().unwrap();
        assert_eq!(env.activate(&t, key, &fp).await.status, 201);
        assert_eq!(env.deactivate(&t, key, &fp).await.status, 200);
    }
    let body = json!({ "fingerprint": "fl-0" });
    let mut read = Vec::new();
    for lic in [&fresh, &busy] {
        let key = lic["key"].as_str().unwrap();
        assert_eq!(env.validate(&t, key, body.clone()).await.status, 200);
        env.calls.take_items_read();
        let v = env.validate(&t, key, body.clone()).await;
        assert_eq!(v.data()["license"]["seats"]["used"], 0, "{v:?}");
        read.push(env.calls.take_items_read());
    }
    assert_eq!(read[0], read[1], "{read:?}");
}

#[tokio::test]
async fn quiet_validates_write_one_rate_window_per_key_and_minute() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("quiet").await;
    let (policy, first) = env.license(&t, 1, json!({})).await;
    let mut keys = vec![first["key"].as_str().unwrap().to_string()];
    for _ in 1..100 {
        let body = json!({ "policy": policy, "customer_email": "q@example.com" });
        let l = env.post("/v1/manage/licenses", &t.admin, body).await;
        assert_eq!(l.status, 201, "{l:?}");
        keys.push(l.data()["key"].as_str().unwrap().to_string());
    }
    // One API key, 100 licenses: the key's budget only, one claim.
    env.calls.take_rate_writes();
    for k in &keys {
        assert_eq!(env.validate(&t, k, json!({})).await.status, 200);
    }
    assert_eq!(env.calls.take_rate_writes(), 1, "one claim of the API key");
    // 100 license keys, each its own budget: one claim each, then none.
    for round in 0..2 {
        for (i, k) in keys.iter().enumerate() {
            let path = format!("/v1/integration/licenses/{k}/validate");
            let nonce = format!("quiet-nonce-{round}-{i:04}");
            let r = as_client(&env, &t.id, k, "POST", &path, json!({}), &nonce).await;
            assert_eq!(r.status, 200, "{r:?}");
        }
        let writes = env.calls.take_rate_writes();
        let want = if round == 0 { 100 } else { 0 };
        assert_eq!(
            writes, want,
            "round {round}: one claim per license key and minute"
        );
    }
    // The next minute: one claim per key again, sized from this minute's traffic.
    env.clock().advance(time::Duration::seconds(60));
    for k in keys.iter().take(10) {
        assert_eq!(env.validate(&t, k, json!({})).await.status, 200);
    }
    assert_eq!(env.calls.take_rate_writes(), 1);
}

#[tokio::test]
async fn activations_retired_in_place_before_the_move_are_migrated() {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    use shared::ids::{ActivationId, TenantId};
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("legacy").await;
    let (_, lic) = env
        .license(&t, 1, json!({ "f": { "type": "boolean" } }))
        .await;
    let key = lic["key"].as_str().unwrap();
    let a = env.activate(&t, key, "old").await;
    assert_eq!(a.status, 201);
    assert_eq!(env.deactivate(&t, key, "old").await.status, 200);
    // Make it look like one deactivated before the move: back under A#.
    let tenant = TenantId::parse(t.id.as_str()).unwrap();
    let id = ActivationId::parse(a.data()["id"].as_str().unwrap()).unwrap();
    let (live, retired) = (
        shared::store::keys::activation(&tenant, &id),
        shared::store::keys::retired_activation(&tenant, &id),
    );
    let db = &env.clients.dynamodb;
    let table = &env.config.table_name;
    let got = db
        .get_item()
        .table_name(table)
        .key("PK", V::S(retired.pk.clone()))
        .key("SK", V::S(retired.sk.clone()))
        .send()
        .await
        .unwrap();
    let mut item = got.item.expect("retired under R#");
    item.insert("SK".into(), V::S(live.sk.clone()));
    db.put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    db.delete_item()
        .table_name(table)
        .key("PK", V::S(retired.pk.clone()))
        .key("SK", V::S(retired.sk.clone()))
        .send()
        .await
        .unwrap();
    // Still read as retired, but still in the live range.
    let (before, _) = reads_of(&env, &t, key).await;
    assert_eq!(before, 2);
    let done = env.app.store.retire_activations_in_place().await.unwrap();
    assert_eq!(done.moved, 1, "{done:?}");
    let (after, _) = reads_of(&env, &t, key).await;
    assert_eq!(after, 1);
    let again = env.app.store.retire_activations_in_place().await.unwrap();
    assert_eq!(again.moved, 0, "{again:?}");
    // And it restores as any retired activation does.
    assert_eq!(env.activate(&t, key, "old").await.status, 201);
    let v = env.validate(&t, key, json!({ "fingerprint": "old" })).await;
    assert_eq!(v.data()["code"], "VALID", "{v:?}");
}
