//! Metric aggregations: `unique_count` exact under concurrency (with and
//! without a limit), `max` and `last` under out-of-order timestamps, the
//! batch route, and the policy rules.

use futures::StreamExt;
use harness::{Env, Resp, Tenant};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn unique(limit: u64, overage: &str) -> Value {
    json!({ "type": "metered", "limit": limit, "period": "month", "overage": overage,
            "aggregation": "unique_count", "unique_by": "user_id" })
}

async fn license(env: &Env, t: &Tenant, ents: Value) -> (String, String) {
    let (_, lic) = env.license(t, 3, ents).await;
    (
        lic["key"].as_str().unwrap().to_string(),
        lic["id"].as_str().unwrap().to_string(),
    )
}

async fn record_user(env: &Env, t: &Tenant, key: &str, user: &str) -> Resp {
    env.record_with(
        t,
        key,
        "active-users",
        1,
        json!({ "metadata": { "user_id": user } }),
    )
    .await
}

async fn check(env: &Env, t: &Tenant, key: &str, metric: &str) -> Value {
    let r = env.check(t, key, &[metric]).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.data()["results"][metric].clone()
}

async fn batch(env: &Env, t: &Tenant, events: Vec<Value>) -> Vec<Value> {
    let r = env
        .post(
            "/v1/integration/usage/batch",
            &t.integration,
            json!({ "events": events }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.data()["results"].as_array().unwrap().clone()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_records_of_37_users_count_37() {
    let env = Env::start().await;
    let t = env.tenant("uniq").await;
    // A hard limit well above 37: the budgeted path, shard room and all.
    let (key, lid) = license(
        &env,
        &t,
        json!({ "active-users": unique(1_000, "deny"), "peak": { "type": "metered", "period": "day", "aggregation": "max" } }),
    )
    .await;
    let statuses: Vec<u16> = futures::stream::iter(0..1_000)
        .map(|i| {
            let (env, t, key) = (&env, &t, &key);
            async move {
                record_user(env, t, key, &format!("user-{}", i % 37))
                    .await
                    .status
            }
        })
        .buffer_unordered(24)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let u = check(&env, &t, &key, "active-users").await;
    assert_eq!(u["used"], 37, "{u}");
    assert_eq!(u["aggregation"], "unique_count");
    assert_eq!(u["limit"], 1_000);
    assert_eq!(u["remaining"], 963);
    // The license view, validate and the usage report agree.
    let l = env
        .get(&format!("/v1/manage/licenses/{lid}"), &t.admin)
        .await;
    assert_eq!(l.status, 200, "{l:?}");
    let e = &l.data()["entitlements"]["active-users"];
    assert_eq!(
        (e["used"].as_u64(), e["aggregation"].as_str()),
        (Some(37), Some("unique_count"))
    );
    assert_eq!(e["unique_by"], "user_id");
    let v = env.validate(&t, &key, json!({})).await;
    assert_eq!(v.status, 200, "{v:?}");
    assert_eq!(
        v.data()["license"]["entitlements"]["active-users"]["used"],
        37,
        "{v:?}"
    );
    let r = env
        .get(
            &format!("/v1/manage/usage?license_id={lid}&metric=active-users"),
            &t.admin,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let rows = r.data().as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0]["used"].as_u64(), rows[0]["aggregation"].as_str()),
        (Some(37), Some("unique_count"))
    );
    // Every record is an event of its own, repeats included.
    let month = OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year]-[month]"))
        .unwrap();
    let mut events = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/manage/usage/events?license_id={lid}&period={month}&limit=100");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let p = env.get(&path, &t.admin).await;
        assert_eq!(p.status, 200, "{p:?}");
        events += p.data().as_array().unwrap().len();
        match p.json["meta"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(events, 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_unique_count_limit_counts_exactly_ten_values_and_accepts_their_repeats() {
    let env = Env::start().await;
    let t = env.tenant("uniqlimit").await;
    let (key, _) = license(&env, &t, json!({ "active-users": unique(10, "deny") })).await;
    // 37 users, 10 records each, 24 at a time.
    let results: Vec<(String, Resp)> = futures::stream::iter(0..370)
        .map(|i| {
            let (env, t, key) = (&env, &t, &key);
            async move {
                let user = format!("user-{}", i % 37);
                let r = record_user(env, t, key, &user).await;
                (user, r)
            }
        })
        .buffer_unordered(24)
        .collect()
        .await;
    let mut by_user: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for (user, r) in &results {
        assert!(
            r.status == 201 || (r.status == 403 && r.code() == "QUOTA_EXCEEDED"),
            "{r:?}"
        );
        by_user.entry(user.clone()).or_default().push(r.status);
    }
    // A counted value's records are all accepted (the repeats never meet
    // the limit); any other value's records are all refused.
    let counted: BTreeSet<&String> = by_user
        .iter()
        .filter(|(_, s)| s.contains(&201))
        .map(|(u, _)| u)
        .collect();
    assert_eq!(counted.len(), 10, "{by_user:?}");
    for (user, s) in &by_user {
        let want = if counted.contains(user) { 201 } else { 403 };
        assert!(s.iter().all(|x| *x == want), "{user}: {s:?}");
    }
    let accepted = results.iter().filter(|(_, r)| r.status == 201).count();
    assert_eq!(accepted, 100);
    let u = check(&env, &t, &key, "active-users").await;
    assert_eq!(
        (u["used"].as_u64(), u["remaining"].as_u64()),
        (Some(10), Some(0)),
        "{u}"
    );
    assert_eq!(u["granted"], false);
    // Afterwards: a counted user again is recorded, a new one refused.
    let again = record_user(&env, &t, &key, counted.iter().next().unwrap()).await;
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(
        (
            again.data()["used"].as_u64(),
            again.data()["limit"].as_u64()
        ),
        (Some(10), Some(10))
    );
    let new = record_user(&env, &t, &key, "someone-new").await;
    assert_eq!((new.status, new.code()), (403, "QUOTA_EXCEEDED"), "{new:?}");
    // A record without the property is refused whatever the count.
    let none = env.record(&t, &key, "active-users", 1).await;
    assert_eq!(
        (none.status, none.code()),
        (422, "UNIQUE_BY_REQUIRED"),
        "{none:?}"
    );
    let null = env
        .record_with(
            &t,
            &key,
            "active-users",
            1,
            json!({ "properties": { "user_id": null } }),
        )
        .await;
    assert_eq!(
        (null.status, null.code()),
        (422, "UNIQUE_BY_REQUIRED"),
        "{null:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_hard_limit_unique_count_is_exact_too() {
    let env = Env::start().await;
    let t = env.tenant("uniqsoft").await;
    let (key, _) = license(&env, &t, json!({ "active-users": unique(50, "allow") })).await;
    let statuses: Vec<u16> = futures::stream::iter(0..400)
        .map(|i| {
            let (env, t, key) = (&env, &t, &key);
            // Strings and integers are different values: "7" is not 7.
            let user = if i % 2 == 0 {
                json!(format!("{}", i % 37))
            } else {
                json!(i % 37)
            };
            async move {
                env.record_with(
                    t,
                    key,
                    "active-users",
                    3,
                    json!({ "metadata": { "user_id": user } }),
                )
                .await
                .status
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let u = check(&env, &t, &key, "active-users").await;
    // Each of the 37 residues comes as a string and as an integer (37 is
    // odd: i and i + 37 differ in parity): 74 values, each counted 1.
    assert_eq!(
        (u["used"].as_u64(), u["overage"].as_u64()),
        (Some(74), Some(24)),
        "{u}"
    );
    assert_eq!(u["granted"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_and_last_are_right_under_out_of_order_timestamps() {
    let now = datetime!(2026-12-06 12:00 UTC);
    let env = Env::with_clock(now).await;
    let t = env.tenant("gauges").await;
    let (key, lid) = license(
        &env,
        &t,
        json!({
            "peak": { "type": "metered", "period": "month", "aggregation": "max" },
            "storage": { "type": "metered", "period": "month", "aggregation": "last" },
        }),
    )
    .await;
    // 60 samples over the last 5 days of December 1-6, fired all at once in
    // an order unrelated to their timestamps.
    let samples: Vec<(u64, OffsetDateTime)> = (0..60u64)
        .map(|i| {
            let q = (i * 37) % 101 + 1;
            let at = now - Duration::minutes(((i * 53) % 60 * 97) as i64 + 1);
            (q, at)
        })
        .collect();
    let want_max = samples.iter().map(|s| s.0).max().unwrap();
    let want_last = samples.iter().max_by_key(|s| s.1).unwrap().0;
    let results = futures::future::join_all(samples.iter().flat_map(|(q, at)| {
        let body = json!({ "timestamp": rfc3339(*at) });
        [
            env.record_with(&t, &key, "peak", *q, body.clone()),
            env.record_with(&t, &key, "storage", *q, body),
        ]
    }))
    .await;
    assert!(
        results.iter().all(|r| r.status == 201),
        "{:?}",
        results.iter().find(|r| r.status != 201)
    );
    let peak = check(&env, &t, &key, "peak").await;
    assert_eq!(peak["used"].as_u64(), Some(want_max), "{peak}");
    assert_eq!(
        (peak["aggregation"].as_str(), peak["limit"].is_null()),
        (Some("max"), true)
    );
    assert_eq!(
        (peak["granted"].as_bool(), peak["remaining"].is_null()),
        (Some(true), true)
    );
    let storage = check(&env, &t, &key, "storage").await;
    assert_eq!(storage["used"].as_u64(), Some(want_last), "{storage}");
    assert_eq!(storage["aggregation"], "last");

    // An old sample with a bigger value: a new max, but not the last.
    let old = json!({ "timestamp": rfc3339(now - Duration::days(4)) });
    let r = env.record_with(&t, &key, "peak", 500, old.clone()).await;
    assert_eq!(
        (r.status, r.data()["used"].as_u64()),
        (201, Some(500)),
        "{r:?}"
    );
    assert_eq!(r.data()["aggregation"], "max");
    let r = env.record_with(&t, &key, "storage", 500, old).await;
    assert_eq!(
        (r.status, r.data()["used"].as_u64()),
        (201, Some(want_last)),
        "{r:?}"
    );
    // A smaller, newer sample: the last, not the max.
    let r = env.record_with(&t, &key, "storage", 3, json!({})).await;
    assert_eq!(
        (r.status, r.data()["used"].as_u64()),
        (201, Some(3)),
        "{r:?}"
    );
    let r = env.record_with(&t, &key, "peak", 3, json!({})).await;
    assert_eq!(
        (r.status, r.data()["used"].as_u64()),
        (201, Some(500)),
        "{r:?}"
    );
    assert_eq!(check(&env, &t, &key, "peak").await["used"], 500);
    assert_eq!(check(&env, &t, &key, "storage").await["used"], 3);

    // The usage report and the export show them with their aggregation.
    let r = env
        .get(
            &format!("/v1/manage/usage?license_id={lid}&period=2026-12"),
            &t.admin,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let rows: BTreeMap<String, (u64, String, bool)> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let m = c["metric"].as_str().unwrap().to_string();
            let agg = c["aggregation"].as_str().unwrap().to_string();
            (m, (c["used"].as_u64().unwrap(), agg, c["limit"].is_null()))
        })
        .collect();
    assert_eq!(rows["peak"], (500, "max".to_string(), true), "{rows:?}");
    assert_eq!(rows["storage"], (3, "last".to_string(), true), "{rows:?}");
    let csv = env
        .send(
            "GET",
            "/v1/manage/usage/export?period=2026-12&format=csv",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(csv.status, 200, "{csv:?}");
    assert!(
        csv.text
            .lines()
            .any(|l| l == format!("{lid},buyer@example.com,peak,2026-12,,500,0,max")),
        "{}",
        csv.text
    );
    assert!(
        csv.text
            .lines()
            .any(|l| l == format!("{lid},buyer@example.com,storage,2026-12,,3,0,last")),
        "{}",
        csv.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_counts_distinct_values_once_and_rejects_records_without_one() {
    let env = Env::start().await;
    let t = env.tenant("uniqbatch").await;
    let (key, _) = license(
        &env,
        &t,
        json!({
            "active-users": unique(5, "deny"),
            "peak": { "type": "metered", "period": "month", "aggregation": "max" },
        }),
    )
    .await;
    let ev = |id: &str, user: Option<&str>| {
        let mut e =
            json!({ "id": id, "license_key": key, "metric": "active-users", "quantity": 1 });
        if let Some(u) = user {
            e["properties"] = json!({ "user_id": u });
        }
        e
    };
    // u0..u7 in request order, each twice, one without the property, and
    // two samples of the max metric.
    let mut events: Vec<Value> = (0..16)
        .map(|i| ev(&format!("e{i}"), Some(&format!("u{}", i % 8))))
        .collect();
    events.push(ev("no-user", None));
    events.push(json!({ "id": "p1", "license_key": key, "metric": "peak", "quantity": 7 }));
    events.push(json!({ "id": "p2", "license_key": key, "metric": "peak", "quantity": 4 }));
    let res = batch(&env, &t, events.clone()).await;
    let status = |id: &str| {
        let r = res.iter().find(|r| r["id"] == id).unwrap();
        (
            r["status"].as_str().unwrap().to_string(),
            r["code"].as_str().map(String::from),
        )
    };
    // The first five distinct users are counted (in request order), so
    // both their events are recorded; u5..u7 are refused.
    for i in 0..16 {
        let (s, code) = status(&format!("e{i}"));
        if i % 8 < 5 {
            assert_eq!(s, "recorded", "e{i}: {res:?}");
        } else {
            assert_eq!(
                (s.as_str(), code.as_deref()),
                ("rejected", Some("QUOTA_EXCEEDED")),
                "e{i}"
            );
        }
    }
    assert_eq!(
        status("no-user"),
        ("rejected".into(), Some("UNIQUE_BY_REQUIRED".into()))
    );
    assert_eq!(status("p1").0, "recorded");
    assert_eq!(status("p2").0, "recorded");
    assert_eq!(check(&env, &t, &key, "active-users").await["used"], 5);
    assert_eq!(check(&env, &t, &key, "peak").await["used"], 7);

    // The same batch again: recorded ids are duplicates, the others judged
    // again (and refused again).
    let again = batch(&env, &t, events).await;
    let dup = again.iter().filter(|r| r["status"] == "duplicate").count();
    let rej = again.iter().filter(|r| r["status"] == "rejected").count();
    assert_eq!((dup, rej), (12, 7), "{again:?}");

    // Repeats of counted users in a new batch are recorded (without moving
    // the count); a new user is refused.
    let more: Vec<Value> = (0..40)
        .map(|i| ev(&format!("r{i}"), Some(&format!("u{}", i % 5))))
        .chain([ev("fresh", Some("u9"))])
        .collect();
    let res = batch(&env, &t, more).await;
    let recorded = res.iter().filter(|r| r["status"] == "recorded").count();
    assert_eq!(recorded, 40, "{res:?}");
    assert!(res
        .iter()
        .filter(|r| r["status"] == "recorded")
        .all(|r| r["used"] == 5 && r["limit"] == 5));
    let fresh = res.iter().find(|r| r["id"] == "fresh").unwrap();
    assert_eq!(
        (fresh["status"].as_str(), fresh["code"].as_str()),
        (Some("rejected"), Some("QUOTA_EXCEEDED"))
    );
    assert_eq!(check(&env, &t, &key, "active-users").await["used"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn policies_state_their_aggregation_or_get_a_422() {
    let env = Env::start().await;
    let t = env.tenant("aggpolicy").await;
    let product = "aggp";
    let r = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": product, "name": "App" }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let create = |ents: Value| {
        env.post(
            "/v1/manage/policies",
            &t.admin,
            json!({ "product": product, "name": "Pro", "max_activations": 1, "entitlements": ents }),
        )
    };
    for (spec, says) in [
        (
            json!({ "type": "metered", "limit": 5, "period": "month", "aggregation": "max" }),
            "limit is not allowed for aggregation 'max'",
        ),
        (
            json!({ "type": "metered", "limit": 0, "period": "month", "aggregation": "last" }),
            "limit is not allowed for aggregation 'last'",
        ),
        (
            json!({ "type": "metered", "limit": 5, "period": "month", "aggregation": "unique_count" }),
            "unique_by is required",
        ),
        (
            json!({ "type": "metered", "limit": 5, "period": "month", "unique_by": "user_id" }),
            "unique_by is allowed only with aggregation 'unique_count'",
        ),
        (
            json!({ "type": "metered", "period": "month" }),
            "limit is required for aggregation 'sum'",
        ),
        (
            json!({ "type": "metered", "period": "month", "aggregation": "unique_count", "unique_by": "user_id" }),
            "limit is required for aggregation 'unique_count'",
        ),
        (
            json!({ "type": "metered", "limit": 5, "period": "month", "aggregation": "unique_count", "unique_by": "user.id" }),
            "property name",
        ),
        (
            json!({ "type": "metered", "limit": 5, "period": "month", "aggregation": "median" }),
            "unknown variant `median`",
        ),
    ] {
        let r = create(json!({ "m": spec })).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "VALIDATION_ERROR"),
            "{spec}: {r:?}"
        );
        let msg = r.json["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(says), "{spec}: {msg}");
    }
    let ok = create(json!({
        "users": { "type": "metered", "limit": 5, "period": "month", "aggregation": "unique_count", "unique_by": "user_id" },
        "peak": { "type": "metered", "period": "day", "aggregation": "max" },
        "calls": { "type": "metered", "limit": 5, "period": "day" },
    }))
    .await;
    assert_eq!(ok.status, 201, "{ok:?}");
    let e = &ok.data()["entitlements"];
    assert_eq!(e["users"]["aggregation"], "unique_count");
    assert_eq!(e["users"]["unique_by"], "user_id");
    assert_eq!(e["peak"]["aggregation"], "max");
    assert!(e["peak"].get("limit").is_none(), "{e}");
    assert!(
        e["calls"].get("aggregation").is_none(),
        "sum is the default: {e}"
    );
    // PATCH of a policy and a license override follow the same rules.
    let pid = ok.data()["id"].as_str().unwrap();
    let bad = json!({ "entitlements": { "peak": { "type": "metered", "limit": 3, "period": "day", "aggregation": "max" } } });
    let r = env
        .patch(&format!("/v1/manage/policies/{pid}"), &t.admin, bad.clone())
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");
    let l = env
        .post(
            "/v1/manage/licenses",
            &t.admin,
            json!({ "policy": pid, "customer_email": "b@example.com" }),
        )
        .await;
    assert_eq!(l.status, 201, "{l:?}");
    let lid = l.data()["id"].as_str().unwrap();
    let r = env
        .patch(&format!("/v1/manage/licenses/{lid}"), &t.admin, bad)
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");
}
