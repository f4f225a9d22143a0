//! Floating licenses (leases, heartbeats, overage), heartbeats on
//! node-locked seats, and the activation churn limit — on the local stack,
//! with a manual clock so leases lapse on demand.

use harness::{Env, Tenant};
use serde_json::{json, Value};
use time::macros::datetime;

/// A product, a policy with `terms` and a license under it.
pub(crate) async fn license_with(env: &Env, t: &Tenant, seats: u32, terms: Value) -> Value {
    let product = format!("fl{}", ulid::Ulid::new().to_string().to_lowercase());
    let r = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": product, "name": "App" }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let mut body = json!({ "product": product, "name": "Pool", "max_activations": seats });
    for (k, v) in terms.as_object().unwrap() {
        body[k] = v.clone();
    }
    let p = env.post("/v1/manage/policies", &t.admin, body).await;
    assert_eq!(p.status, 201, "{p:?}");
    let l = env
        .post(
            "/v1/manage/licenses",
            &t.admin,
            json!({ "policy": p.data()["id"], "customer_email": "pool@example.com" }),
        )
        .await;
    assert_eq!(l.status, 201, "{l:?}");
    l.data().clone()
}

async fn checkout_many(
    env: &Env,
    t: &Tenant,
    key: &str,
    prefix: &str,
    n: usize,
) -> Vec<harness::Resp> {
    let reqs = (0..n).map(|i| {
        let fp = format!("{prefix}-{i}");
        async move { env.activate(t, key, &fp).await }
    });
    futures::future::join_all(reqs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_of_5_plus_15_grants_exactly_20_and_reclaims_lapsed_leases() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("floating").await;
    let terms = json!({ "activation_mode": "floating", "lease_seconds": 120, "max_overage": 15 });
    let lic = license_with(&env, &t, 5, terms).await;
    let (key, id) = (lic["key"].as_str().unwrap(), lic["id"].as_str().unwrap());
    assert_eq!(lic["activation_mode"], "floating");
    assert_eq!(lic["lease_seconds"], 120);
    assert_eq!(
        lic["seats"],
        json!({ "limit": 5, "used": 0, "overage_limit": 15, "overage_used": 0 })
    );

    // 40 concurrent checkouts: exactly 20 leases, exactly 15 of them overage.
    let r = checkout_many(&env, &t, key, "first", 40).await;
    let granted: Vec<_> = r.iter().filter(|r| r.status == 201).collect();
    let refused = r
        .iter()
        .filter(|r| r.status == 409 && r.code() == "TOO_MANY_ACTIVATIONS")
        .count();
    assert_eq!(
        (granted.len(), refused),
        (20, 20),
        "{:?}",
        r.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let overage = granted
        .iter()
        .filter(|r| r.data()["overage"] == true)
        .count();
    assert_eq!(overage, 15);
    assert!(granted
        .iter()
        .all(|r| r.data()["lease_expires_at"] == "2026-11-02T10:02:05.000Z"));
    let l = env
        .get(&format!("/v1/manage/licenses/{id}"), &t.admin)
        .await;
    assert_eq!(
        l.data()["seats"],
        json!({ "limit": 5, "used": 5, "overage_limit": 15, "overage_used": 15 })
    );

    // The same fingerprint again renews its lease (200), taking no new seat.
    env.clock().advance(time::Duration::seconds(30));
    let again = env.activate(&t, key, "first-0").await;
    let first0 = r
        .iter()
        .find(|x| x.status == 201 && x.data()["fingerprint"] == "first-0");
    if first0.is_some() {
        assert_eq!(again.status, 200, "{again:?}");
        assert_eq!(again.data()["lease_expires_at"], "2026-11-02T10:02:35.000Z");
    }

    // Every lease lapses without heartbeats: none counts any more.
    env.clock().advance(time::Duration::seconds(200));
    let l = env
        .get(&format!("/v1/manage/licenses/{id}"), &t.admin)
        .await;
    assert_eq!(l.data()["seats"]["used"], 0, "{l:?}");
    assert_eq!(l.data()["seats"]["overage_used"], 0);
    let v = env
        .validate(&t, key, json!({ "fingerprint": "first-1" }))
        .await;
    assert_eq!(
        v.data()["code"],
        "NO_ACTIVATION",
        "a lapsed lease validates as no activation"
    );

    // 40 new checkouts again grant exactly 20, each taking one lapsed lease.
    let r = checkout_many(&env, &t, key, "second", 40).await;
    let granted = r.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        granted,
        20,
        "{:?}",
        r.iter()
            .map(|r| (r.status, r.code().to_string()))
            .collect::<Vec<_>>()
    );
    let acts = env
        .get(&format!("/v1/manage/licenses/{id}/activations"), &t.admin)
        .await;
    let acts = acts.data().as_array().unwrap();
    let status = |prefix: &str, s: &str| {
        acts.iter()
            .filter(|a| a["fingerprint"].as_str().unwrap().starts_with(prefix) && a["status"] == s)
            .count()
    };
    assert_eq!(status("second", "active"), 20);
    assert_eq!(
        status("first", "deactivated"),
        20,
        "each lapsed lease reclaimed exactly once"
    );
    let l = env
        .get(&format!("/v1/manage/licenses/{id}"), &t.admin)
        .await;
    assert_eq!(
        l.data()["seats"],
        json!({ "limit": 5, "used": 5, "overage_limit": 15, "overage_used": 15 })
    );

    // Overage lease time is in the usage report: 15 leases of 120 s, plus
    // the renewal above if first-0 was an overage lease.
    let usage = env
        .get(&format!("/v1/manage/usage?license_id={id}"), &t.admin)
        .await;
    let row = usage
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "floating_overage_seconds")
        .cloned();
    let used = row.expect("an overage row")["used"].as_u64().unwrap();
    assert!(
        used >= 30 * 120,
        "30 overage leases of 120 s were granted: {used}"
    );
}

#[tokio::test]
async fn heartbeats_renew_leases_and_revive_node_locked_seats() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("heartbeat").await;
    let lic = license_with(
        &env,
        &t,
        2,
        json!({ "activation_mode": "floating", "lease_seconds": 60 }),
    )
    .await;
    let key = lic["key"].as_str().unwrap();
    let a = env.activate(&t, key, "m1").await;
    assert_eq!(a.status, 201, "{a:?}");
    let hb = format!(
        "/v1/integration/activations/{}/heartbeat",
        a.data()["id"].as_str().unwrap()
    );

    // Before it lapses: one read of the lease and one write (conditional on
    // the license being in force), the lease runs lease_seconds from now.
    env.clock().advance(time::Duration::seconds(50));
    env.calls.take();
    let r = env.post(&hb, &t.integration, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    // (The API key is re-read too: the clock moved past its 5 s freshness.)
    let calls: Vec<String> = env
        .calls
        .take()
        .into_iter()
        .filter(|c| c != "BatchGetItem")
        .collect();
    assert_eq!(
        calls,
        ["GetItem", "TransactWriteItems"],
        "a heartbeat is one read and one write"
    );
    assert_eq!(r.data()["lease_expires_at"], "2026-11-02T10:01:55.000Z");
    // After it lapses: 409 LEASE_EXPIRED; check out again.
    env.clock().advance(time::Duration::seconds(61));
    let r = env.post(&hb, &t.integration, json!({})).await;
    assert_eq!((r.status, r.code()), (409, "LEASE_EXPIRED"), "{r:?}");
    // Unknown, malformed, and another tenant's activation: 404.
    let other = env.tenant("heartbeat-other").await;
    let r = env.post(&hb, &other.integration, json!({})).await;
    assert_eq!((r.status, r.code()), (404, "ACTIVATION_NOT_FOUND"), "{r:?}");
    let r = env
        .post(
            "/v1/integration/activations/act_nonsense/heartbeat",
            &t.integration,
            json!({}),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "ACTIVATION_NOT_FOUND"));

    // Node-locked with heartbeats: a missed one validates as HEARTBEAT_DEAD.
    let nl = license_with(&env, &t, 2, json!({ "heartbeat_seconds": 60 })).await;
    let nkey = nl["key"].as_str().unwrap();
    let a = env.activate(&t, nkey, "pc").await;
    assert_eq!(a.status, 201);
    let v = env.validate(&t, nkey, json!({ "fingerprint": "pc" })).await;
    assert_eq!(v.data()["code"], "VALID");
    env.clock().advance(time::Duration::seconds(61));
    let v = env.validate(&t, nkey, json!({ "fingerprint": "pc" })).await;
    assert_eq!(
        (v.data()["valid"].as_bool(), v.data()["code"].as_str()),
        (Some(false), Some("HEARTBEAT_DEAD"))
    );
    let hb = format!(
        "/v1/integration/activations/{}/heartbeat",
        a.data()["id"].as_str().unwrap()
    );
    let r = env.post(&hb, &t.integration, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data()["last_heartbeat_at"], "2026-11-02T10:02:57.000Z");
    let v = env.validate(&t, nkey, json!({ "fingerprint": "pc" })).await;
    assert_eq!(v.data()["code"], "VALID");
}

/// The overage lease time counted for license `id` so far.
async fn overage_seconds(env: &Env, t: &Tenant, id: &str) -> u64 {
    let usage = env
        .get(&format!("/v1/manage/usage?license_id={id}"), &t.admin)
        .await;
    assert_eq!(usage.status, 200, "{usage:?}");
    usage
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "floating_overage_seconds")
        .map_or(0, |r| r["used"].as_u64().unwrap())
}

/// A heartbeat is refused while the license is not in force (suspended,
/// cancelled, expired): its lease is not renewed and an overage lease's
/// time is not counted. Decided in the heartbeat's own write.
#[tokio::test]
async fn heartbeats_follow_the_licenses_standing() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("hb-standing").await;
    let terms = json!({ "activation_mode": "floating", "lease_seconds": 120, "max_overage": 1 });
    let lic = license_with(&env, &t, 1, terms).await;
    let (key, id) = (lic["key"].as_str().unwrap(), lic["id"].as_str().unwrap());
    let committed = env.activate(&t, key, "m1").await;
    let overage = env.activate(&t, key, "m2").await;
    assert_eq!((committed.status, overage.status), (201, 201));
    assert_eq!(overage.data()["overage"], true, "{overage:?}");
    let hb = |r: &harness::Resp| {
        format!(
            "/v1/integration/activations/{}/heartbeat",
            r.data()["id"].as_str().unwrap()
        )
    };
    let (hb_committed, hb_overage) = (hb(&committed), hb(&overage));
    assert_eq!(overage_seconds(&env, &t, id).await, 120);

    let lifecycle = |action: &'static str| {
        let path = format!("/v1/manage/licenses/{id}/{action}");
        let env = &env;
        let t = &t;
        async move {
            let r = env.post(&path, &t.admin, json!({})).await;
            assert_eq!(r.status, 200, "{action}: {r:?}");
        }
    };
    lifecycle("suspend").await;
    env.clock().advance(time::Duration::seconds(30));
    for path in [&hb_committed, &hb_overage] {
        let r = env.post(path, &t.integration, json!({})).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "LICENSE_NOT_ACTIVE"),
            "{path}: {r:?}"
        );
        assert!(r.text.contains("suspended"), "{r:?}");
    }
    assert_eq!(
        overage_seconds(&env, &t, id).await,
        120,
        "no overage time for a refused heartbeat"
    );
    let acts = env
        .get(&format!("/v1/manage/licenses/{id}/activations"), &t.admin)
        .await;
    for a in acts.data().as_array().unwrap() {
        assert_eq!(
            a["lease_expires_at"], "2026-11-02T10:02:05.000Z",
            "not renewed: {a}"
        );
    }

    // Resumed: heartbeats renew again, and the overage lease's extension counts.
    lifecycle("resume").await;
    let r = env.post(&hb_overage, &t.integration, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data()["lease_expires_at"], "2026-11-02T10:02:35.000Z");
    assert_eq!(overage_seconds(&env, &t, id).await, 150);
    let r = env.post(&hb_committed, &t.integration, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");

    // Cancelled: refused for good.
    lifecycle("cancel").await;
    let r = env.post(&hb_committed, &t.integration, json!({})).await;
    assert_eq!((r.status, r.code()), (403, "LICENSE_NOT_ACTIVE"), "{r:?}");
    assert!(r.text.contains("cancelled"), "{r:?}");

    // A node-locked seat's heartbeat on an expired license: refused too.
    let nl = license_with(&env, &t, 2, json!({ "heartbeat_seconds": 60 })).await;
    let short = env
        .post(
            "/v1/manage/licenses",
            &t.admin,
            json!({ "policy": nl["policy"], "customer_email": "short@example.com",
                    "expires_at": "2026-11-02T10:01:00Z" }),
        )
        .await;
    assert_eq!(short.status, 201, "{short:?}");
    let nkey = short.data()["key"].as_str().unwrap();
    let a = env.activate(&t, nkey, "pc").await;
    assert_eq!(a.status, 201, "{a:?}");
    let r = env.post(&hb(&a), &t.integration, json!({})).await;
    assert_eq!(r.status, 200, "in force: {r:?}");
    env.clock().advance(time::Duration::seconds(60));
    let r = env.post(&hb(&a), &t.integration, json!({})).await;
    assert_eq!((r.status, r.code()), (403, "LICENSE_NOT_ACTIVE"), "{r:?}");
    assert!(r.text.contains("expired"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_churn_limit_is_exact_under_concurrency() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("churn").await;
    let lic = license_with(
        &env,
        &t,
        20,
        json!({ "max_deactivations": { "count": 3, "period": "day" } }),
    )
    .await;
    let (key, id) = (lic["key"].as_str().unwrap(), lic["id"].as_str().unwrap());
    assert_eq!(
        lic["max_deactivations"],
        json!({ "count": 3, "period": "day" })
    );
    let r = checkout_many(&env, &t, key, "pc", 20).await;
    assert!(r.iter().all(|r| r.status == 201), "{r:?}");

    let reqs = (0..20).map(|i| {
        let fp = format!("pc-{i}");
        let t = &t;
        let env = &env;
        async move { env.deactivate(t, key, &fp).await }
    });
    let r = futures::future::join_all(reqs).await;
    let ok = r.iter().filter(|r| r.status == 200).count();
    let limited: Vec<_> = r.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        (ok, limited.len()),
        (3, 17),
        "{:?}",
        r.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(limited
        .iter()
        .all(|r| r.code() == "DEACTIVATION_LIMIT_REACHED"));
    // Retry-After: until the day's end (13 h 59 min 55 s).
    assert_eq!(limited[0].header("retry-after"), Some("50395"));
    let l = env
        .get(&format!("/v1/manage/licenses/{id}"), &t.admin)
        .await;
    assert_eq!(
        l.data()["seats"]["used"],
        17,
        "refused deactivations keep their seats"
    );

    // The next day the budget is back.
    env.clock().advance(time::Duration::days(1));
    let retry = env.deactivate(&t, key, "pc-19").await;
    let already = retry.status == 200;
    assert!(already, "{retry:?}");
}

#[tokio::test]
async fn checkout_and_heartbeat_are_one_write_each() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("lease-rt").await;
    let lic = license_with(&env, &t, 3, json!({ "activation_mode": "floating" })).await;
    let key = lic["key"].as_str().unwrap();
    assert_eq!(lic["lease_seconds"], 900, "the default lease");
    // The instance learns the license's terms from a validate (and its
    // rate-limit tokens of this minute are claimed).
    let v = env.validate(&t, key, json!({})).await;
    assert_eq!(v.status, 200);
    env.calls.take();
    let a = env.activate(&t, key, "m1").await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(
        env.calls.take(),
        ["TransactWriteItems"],
        "a checkout with a seat free"
    );
    let hb = format!(
        "/v1/integration/activations/{}/heartbeat",
        a.data()["id"].as_str().unwrap()
    );
    assert_eq!(env.post(&hb, &t.integration, json!({})).await.status, 200);
    assert_eq!(
        env.calls.take(),
        ["GetItem", "TransactWriteItems"],
        "a heartbeat: the lease read, then one write that checks the license too"
    );
    // Returning the lease is the existing deactivation.
    let id = a.data()["id"].as_str().unwrap();
    let r = env
        .delete(&format!("/v1/integration/activations/{id}"), &t.integration)
        .await;
    assert_eq!(
        (r.status, r.data()["status"].as_str()),
        (200, Some("deactivated"))
    );
    let r = env.post(&hb, &t.integration, json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "LEASE_EXPIRED"),
        "a returned lease"
    );
}

#[tokio::test]
async fn floating_fields_out_of_range_or_out_of_place_are_422() {
    let env = Env::start().await;
    let t = env.tenant("lease-input").await;
    let product = "lease-input";
    assert_eq!(
        env.post(
            "/v1/manage/products",
            &t.admin,
            json!({"code": product, "name": "P"})
        )
        .await
        .status,
        201
    );
    for (body, field) in [
        (
            json!({"activation_mode": "floating", "lease_seconds": 59}),
            "lease_seconds",
        ),
        (
            json!({"activation_mode": "floating", "lease_seconds": 86401}),
            "lease_seconds",
        ),
        (
            json!({"activation_mode": "floating", "heartbeat_seconds": 120}),
            "heartbeat_seconds",
        ),
        (json!({"lease_seconds": 600}), "lease_seconds"),
        (json!({"max_overage": 2}), "max_overage"),
        (json!({"heartbeat_seconds": 30}), "heartbeat_seconds"),
        (
            json!({"max_deactivations": {"count": 1, "period": "week"}}),
            "max_deactivations",
        ),
        (json!({"activation_mode": "leased"}), "activation_mode"),
    ] {
        let mut b = json!({"product": product, "name": "p", "max_activations": 2});
        for (k, v) in body.as_object().unwrap() {
            b[k] = v.clone();
        }
        let r = env.post("/v1/manage/policies", &t.admin, b).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "VALIDATION_ERROR"),
            "{body}: {r:?}"
        );
        assert!(
            r.text.contains(field),
            "{body}: the error names {field}: {}",
            r.text
        );
    }
    // PATCH is checked against the policy as a whole.
    let p = env
        .post(
            "/v1/manage/policies",
            &t.admin,
            json!({"product": product, "name": "n", "max_activations": 2}),
        )
        .await;
    let path = format!("/v1/manage/policies/{}", p.data()["id"].as_str().unwrap());
    let r = env
        .patch(&path, &t.admin, json!({"lease_seconds": 600}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "VALIDATION_ERROR"),
        "lease on a node-locked policy: {r:?}"
    );
    let r = env
        .patch(
            &path,
            &t.admin,
            json!({"activation_mode": "floating", "max_overage": 3}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (
            r.data()["lease_seconds"].as_u64(),
            r.data()["max_overage"].as_u64()
        ),
        (Some(900), Some(3))
    );
    let r = env
        .patch(&path, &t.admin, json!({"heartbeat_seconds": 60}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "VALIDATION_ERROR"),
        "heartbeat on a floating policy: {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lowered_overage_cap_holds_even_where_the_old_terms_are_cached() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("cap").await;
    let lic = license_with(
        &env,
        &t,
        1,
        json!({ "activation_mode": "floating", "max_overage": 3 }),
    )
    .await;
    let (key, id) = (lic["key"].as_str().unwrap(), lic["id"].as_str().unwrap());
    // This instance learns (and caches) the terms with max_overage 3.
    let r = env.activate(&t, key, "a").await;
    assert_eq!(r.status, 201);
    // The license moves to a policy of the same product with max_overage 1.
    let product = lic["product"].as_str().unwrap();
    let p = env
        .post(
            "/v1/manage/policies",
            &t.admin,
            json!({ "product": product, "name": "small", "max_activations": 1, "activation_mode": "floating", "max_overage": 1 }),
        )
        .await;
    let patch = json!({ "policy": p.data()["id"] });
    assert_eq!(
        env.patch(&format!("/v1/manage/licenses/{id}"), &t.admin, patch)
            .await
            .status,
        200
    );
    // Three concurrent checkouts with the stale cache: exactly one overage lease.
    let r = checkout_many(&env, &t, key, "b", 3).await;
    let granted: Vec<_> = r.iter().filter(|r| r.status == 201).collect();
    assert_eq!(
        granted.len(),
        1,
        "{:?}",
        r.iter()
            .map(|r| (r.status, r.code().to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(granted[0].data()["overage"], true);
    let l = env
        .get(&format!("/v1/manage/licenses/{id}"), &t.admin)
        .await;
    assert_eq!(l.data()["seats"]["overage_used"], 1);
    assert_eq!(l.data()["seats"]["overage_limit"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lowered_seat_count_is_never_exceeded_by_reclaims() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("lowered").await;
    let lic = license_with(
        &env,
        &t,
        3,
        json!({ "activation_mode": "floating", "lease_seconds": 60 }),
    )
    .await;
    let (key, id) = (lic["key"].as_str().unwrap(), lic["id"].as_str().unwrap());
    let r = checkout_many(&env, &t, key, "old", 3).await;
    assert!(r.iter().all(|r| r.status == 201));
    env.clock().advance(time::Duration::seconds(120)); // every lease lapses
    let r = env
        .patch(
            &format!("/v1/manage/licenses/{id}"),
            &t.admin,
            json!({ "max_activations": 2 }),
        )
        .await;
    assert_eq!(r.status, 200);
    // Three lapsed leases still hold the counter over the new cap of 2: none passes on.
    let r = checkout_many(&env, &t, key, "new", 3).await;
    assert!(
        r.iter().all(|r| r.status == 409),
        "{:?}",
        r.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // Returning one lapsed lease brings the pool back to its cap: two more, never three.
    let acts = env
        .get(&format!("/v1/manage/licenses/{id}/activations"), &t.admin)
        .await;
    let lapsed = acts.data()[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        env.delete(
            &format!("/v1/integration/activations/{lapsed}"),
            &t.integration
        )
        .await
        .status,
        200
    );
    let r = checkout_many(&env, &t, key, "newer", 3).await;
    assert_eq!(
        r.iter().filter(|r| r.status == 201).count(),
        2,
        "{:?}",
        r.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let l = env
        .get(&format!("/v1/manage/licenses/{id}"), &t.admin)
        .await;
    assert_eq!(l.data()["seats"]["used"], 2);
}

#[tokio::test]
async fn a_lease_taken_back_after_a_switch_to_node_locked_is_a_plain_seat() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("switch").await;
    let lic = license_with(
        &env,
        &t,
        1,
        json!({ "activation_mode": "floating", "max_overage": 1 }),
    )
    .await;
    let (key, id) = (lic["key"].as_str().unwrap(), lic["id"].as_str().unwrap());
    assert_eq!(env.activate(&t, key, "f").await.status, 201);
    let g = env.activate(&t, key, "g").await;
    assert_eq!((g.status, g.data()["overage"].as_bool()), (201, Some(true)));
    let back = env.deactivate(&t, key, "g").await;
    assert_eq!(back.status, 200);
    // The license moves to a node-locked policy of the same product.
    let p = env
        .post(
            "/v1/manage/policies",
            &t.admin,
            json!({ "product": lic["product"], "name": "nl", "max_activations": 2 }),
        )
        .await;
    let r = env
        .patch(
            &format!("/v1/manage/licenses/{id}"),
            &t.admin,
            json!({ "policy": p.data()["id"] }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // g comes back as a plain node-locked seat: no lease, no overage, and it can be returned.
    let again = env.activate(&t, key, "g").await;
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(
        (
            again.data()["overage"].as_bool(),
            again.data()["status"].as_str()
        ),
        (Some(false), Some("active"))
    );
    assert!(again.data()["lease_expires_at"].is_null());
    let v = env.validate(&t, key, json!({ "fingerprint": "g" })).await;
    assert_eq!(v.data()["code"], "VALID");
    let out = env.deactivate(&t, key, "g").await;
    assert_eq!(out.status, 200, "{out:?}");
    let l = env
        .get(&format!("/v1/manage/licenses/{id}"), &t.admin)
        .await;
    assert_eq!(l.data()["seats"]["used"], 1, "only f holds a seat: {l:?}");
}
