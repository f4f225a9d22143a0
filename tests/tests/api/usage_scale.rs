//! Usage records at scale: sharded counters and audit, batches, and the
//! item writes per partition key (counted by the harness's SDK interceptor).

use harness::{Env, Tenant};
use serde_json::{json, Value};
use std::collections::HashMap;

async fn metered_license(env: &Env, t: &Tenant, limit: u64) -> (String, String) {
    let ents = json!({ "api-calls": { "type": "metered", "limit": limit, "period": "month", "overage": "deny" } });
    let (_, lic) = env.license(t, 1, ents).await;
    (
        lic["key"].as_str().unwrap().to_string(),
        lic["id"].as_str().unwrap().to_string(),
    )
}

async fn single(env: &Env, t: &Tenant, key: &str) -> harness::Resp {
    env.post(
        "/v1/integration/usage/record",
        &t.integration,
        json!({ "license_key": key, "metric": "api-calls", "quantity": 1 }),
    )
    .await
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

fn event(id: &str, key: &str) -> Value {
    json!({ "id": id, "license_key": key, "metric": "api-calls", "quantity": 1 })
}

fn count(results: &[Value], status: &str) -> usize {
    results.iter().filter(|r| r["status"] == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_on_one_license_is_exact_and_spread() {
    let env = Env::start().await;
    let t = env.tenant("burst").await;
    let (key, _) = metered_license(&env, &t, 1_200).await;
    // 1,500 units: 750 single records and 30 batches of 25, shared out
    // round robin to 16 concurrent callers.
    enum Job {
        Single,
        Batch(usize),
    }
    let mut jobs: Vec<Job> = (0..750).map(|_| Job::Single).collect();
    jobs.extend((0..30).map(Job::Batch));
    // Interleave the batches among the singles.
    let mut mixed = Vec::new();
    let (mut singles, mut batches): (Vec<_>, Vec<_>) =
        jobs.into_iter().partition(|j| matches!(j, Job::Single));
    while !singles.is_empty() || !batches.is_empty() {
        for _ in 0..25 {
            if let Some(j) = singles.pop() {
                mixed.push(j);
            }
        }
        if let Some(j) = batches.pop() {
            mixed.push(j);
        }
    }
    let mut lanes: Vec<Vec<Job>> = (0..16).map(|_| Vec::new()).collect();
    for (i, j) in mixed.into_iter().enumerate() {
        lanes[i % 16].push(j);
    }
    env.calls.take_writes();
    let started = std::time::Instant::now();
    let (env_ref, t_ref, key_ref) = (&env, &t, key.as_str());
    let lanes = lanes.into_iter().map(|lane| async move {
        let (mut ok, mut refused) = (0usize, 0usize);
        for j in lane {
            match j {
                Job::Single => {
                    let r = single(env_ref, t_ref, key_ref).await;
                    match (r.status, r.code()) {
                        (201, _) => ok += 1,
                        (403, "QUOTA_EXCEEDED") => refused += 1,
                        other => panic!("unexpected answer {other:?}: {r:?}"),
                    }
                }
                Job::Batch(b) => {
                    let events = (0..25)
                        .map(|i| event(&format!("b{b}-{i}"), key_ref))
                        .collect();
                    let res = batch(env_ref, t_ref, events).await;
                    ok += count(&res, "recorded");
                    let q = res
                        .iter()
                        .filter(|r| r["status"] == "rejected" && r["code"] == "QUOTA_EXCEEDED")
                        .count();
                    assert_eq!(count(&res, "recorded") + q, 25, "{res:?}");
                    refused += q;
                }
            }
        }
        (ok, refused)
    });
    let totals = futures::future::join_all(lanes).await;
    let elapsed = started.elapsed();
    let ok: usize = totals.iter().map(|t| t.0).sum();
    let refused: usize = totals.iter().map(|t| t.1).sum();
    assert_eq!((ok, refused), (1_200, 300));

    let writes = env.calls.take_writes();
    let mut per_pk: HashMap<&str, usize> = HashMap::new();
    for pk in &writes {
        *per_pk.entry(pk.as_str()).or_default() += 1;
    }
    let (hot_pk, hot) = per_pk
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(k, n)| (k.to_string(), *n))
        .unwrap();
    let share = hot as f64 / writes.len() as f64;
    let per_unit = writes.len() as f64 / 1_200.0;
    eprintln!(
        "burst: {} item writes, {:.2} per accepted unit, {} partition keys, hottest {hot_pk} {hot} ({:.1} %), {:.1} s",
        writes.len(),
        per_unit,
        per_pk.len(),
        share * 100.0,
        elapsed.as_secs_f64()
    );
    assert!(
        share <= 0.10,
        "hottest partition {hot_pk}: {hot} of {}",
        writes.len()
    );
    assert!(per_unit <= 4.0, "{per_unit} item writes per accepted unit");

    let c = env.check(&t, &key, &["api-calls"]).await;
    assert_eq!(c.data()["results"]["api-calls"]["used"], 1_200, "{c:?}");
    assert_eq!(c.data()["results"]["api-calls"]["remaining"], 0, "{c:?}");
    // Every accepted unit is in the audit trail (merged over its shards).
    let mut listed = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/manage/audit-events?limit=100&cursor={c}"),
            None => "/v1/manage/audit-events?limit=100".to_string(),
        };
        let page = env.get(&path, &t.admin).await;
        assert_eq!(page.status, 200, "{page:?}");
        let items = page.data().as_array().unwrap();
        listed += items
            .iter()
            .filter(|e| e["code"] == "USAGE.RECORDED")
            .count();
        cursor = page.json["meta"]["next_cursor"].as_str().map(String::from);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(listed, 1_200);
}

#[tokio::test]
async fn a_batch_answers_each_event_and_replays_as_duplicates() {
    let env = Env::start().await;
    let t = env.tenant("batch").await;
    let (key, lid) = metered_license(&env, &t, 485).await;
    // 490 distinct ids, then 10 of them again: 485 fit, 5 do not.
    let mut events: Vec<Value> = (0..490).map(|i| event(&format!("e{i}"), &key)).collect();
    events.extend((0..10).map(|i| event(&format!("e{i}"), &key)));
    env.calls.take_writes();
    let res = batch(&env, &t, events.clone()).await;
    assert_eq!(res.len(), 500);
    let ids: Vec<&str> = res.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let sent: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, sent, "results come in request order");
    assert_eq!(
        (
            count(&res, "recorded"),
            count(&res, "duplicate"),
            count(&res, "rejected")
        ),
        (485, 10, 5)
    );
    assert!(res[485..490]
        .iter()
        .all(|r| r["code"] == "QUOTA_EXCEEDED" && r["limit"] == 485));
    assert!(res[490..].iter().all(|r| r["status"] == "duplicate"));
    let writes = env.calls.take_writes();
    eprintln!("batch of 500: {} item writes", writes.len());

    // The same batch again: what was recorded is a duplicate; what was
    // refused is judged afresh (still no room).
    let again = batch(&env, &t, events).await;
    assert_eq!(
        (
            count(&again, "recorded"),
            count(&again, "duplicate"),
            count(&again, "rejected")
        ),
        (0, 495, 5)
    );
    let c = env.check(&t, &key, &["api-calls"]).await;
    assert_eq!(c.data()["results"]["api-calls"]["used"], 485);
    // The usage report sums the shards.
    let u = env
        .get(&format!("/v1/manage/usage?license_id={lid}"), &t.admin)
        .await;
    let rows = u.data().as_array().unwrap();
    assert_eq!(rows.len(), 1, "{u:?}");
    assert_eq!(rows[0]["used"], 485, "{u:?}");

    // An event of another license, an unknown metric and a bad quantity are
    // rejected alone.
    let (other, _) = metered_license(&env, &t, 10).await;
    let mixed = batch(
        &env,
        &t,
        vec![
            event("x1", &other),
            json!({ "id": "x2", "license_key": other, "metric": "nope", "quantity": 1 }),
            json!({ "id": "x3", "license_key": other, "metric": "api-calls", "quantity": 0 }),
            json!({ "id": "x4", "license_key": other, "metric": "api-calls", "quantity": "two" }),
        ],
    )
    .await;
    let st: Vec<(&str, &str)> = mixed
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap(),
                r["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        st,
        [
            ("recorded", ""),
            ("rejected", "UNKNOWN_METRIC"),
            ("rejected", "VALIDATION_ERROR"),
            ("rejected", "VALIDATION_ERROR")
        ]
    );
    // Empty and oversized batches are refused whole.
    let r = env
        .post(
            "/v1/integration/usage/batch",
            &t.integration,
            json!({ "events": [] }),
        )
        .await;
    assert_eq!(r.status, 422);
    let many: Vec<Value> = (0..501).map(|i| event(&format!("m{i}"), &other)).collect();
    let r = env
        .post(
            "/v1/integration/usage/batch",
            &t.integration,
            json!({ "events": many }),
        )
        .await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn a_license_key_batches_only_its_own_license() {
    let env = Env::start().await;
    let t = env.tenant("batchscope").await;
    let (mine, _) = metered_license(&env, &t, 100).await;
    let (other, _) = metered_license(&env, &t, 100).await;
    let r = env
        .send_raw(
            "POST",
            "/v1/integration/usage/batch",
            &[
                ("authorization", format!("License {mine}").as_str()),
                ("x-tenant-id", t.id.as_str()),
                ("x-nonce", "batch-scope-nonce-0001"),
                ("content-type", "application/json"),
            ],
            json!({ "events": [event("a", &mine), event("b", &other)] })
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let res = r.data()["results"].as_array().unwrap();
    assert_eq!(res[0]["status"], "recorded");
    assert_eq!(res[1]["status"], "rejected");
    assert_eq!(res[1]["code"], "LICENSE_SCOPE_MISMATCH");
}

#[tokio::test]
async fn records_after_a_suspension_are_refused() {
    let env = Env::start().await;
    let t = env.tenant("suspendrec").await;
    let (key, lid) = metered_license(&env, &t, 100).await;
    assert_eq!(single(&env, &t, &key).await.status, 201);
    let r = env
        .post(
            &format!("/v1/manage/licenses/{lid}/suspend"),
            &t.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = single(&env, &t, &key).await;
    assert_eq!((r.status, r.code()), (403, "LICENSE_NOT_ACTIVE"), "{r:?}");
    let res = batch(&env, &t, vec![event("s1", &key)]).await;
    assert_eq!(res[0]["code"], "LICENSE_NOT_ACTIVE");
    let r = env
        .post(
            &format!("/v1/manage/licenses/{lid}/resume"),
            &t.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(single(&env, &t, &key).await.status, 201);
    let c = env.check(&t, &key, &["api-calls"]).await;
    assert_eq!(c.data()["results"]["api-calls"]["used"], 2);
}

#[tokio::test]
async fn a_changed_limit_rebudgets_the_shards_exactly() {
    let env = Env::start().await;
    let t = env.tenant("rebudget").await;
    let (key, lid) = metered_license(&env, &t, 10).await;
    for _ in 0..6 {
        assert_eq!(single(&env, &t, &key).await.status, 201);
    }
    let limit = |l: u64| json!({ "entitlements": { "api-calls": { "type": "metered", "limit": l, "period": "month", "overage": "deny" } } });
    // Raised to 8: exactly 2 more.
    let p = env
        .patch(&format!("/v1/manage/licenses/{lid}"), &t.admin, limit(8))
        .await;
    assert_eq!(p.status, 200, "{p:?}");
    let answers = futures::future::join_all((0..5).map(|_| single(&env, &t, &key))).await;
    assert_eq!(answers.iter().filter(|r| r.status == 201).count(), 2);
    // Lowered below what is used: nothing more; raised again: the difference.
    let p = env
        .patch(&format!("/v1/manage/licenses/{lid}"), &t.admin, limit(5))
        .await;
    assert_eq!(p.status, 200);
    assert_eq!(single(&env, &t, &key).await.code(), "QUOTA_EXCEEDED");
    let p = env
        .patch(&format!("/v1/manage/licenses/{lid}"), &t.admin, limit(11))
        .await;
    assert_eq!(p.status, 200);
    let answers = futures::future::join_all((0..6).map(|_| single(&env, &t, &key))).await;
    assert_eq!(answers.iter().filter(|r| r.status == 201).count(), 3);
    let c = env.check(&t, &key, &["api-calls"]).await;
    assert_eq!(c.data()["results"]["api-calls"]["used"], 11);
    // A quantity larger than any one shard's budget gathers room first.
    let (big, _) = metered_license(&env, &t, 100).await;
    let r = env
        .post(
            "/v1/integration/usage/record",
            &t.integration,
            json!({ "license_key": big, "metric": "api-calls", "quantity": 90 }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = env
        .post(
            "/v1/integration/usage/record",
            &t.integration,
            json!({ "license_key": big, "metric": "api-calls", "quantity": 11 }),
        )
        .await;
    assert_eq!(r.code(), "QUOTA_EXCEEDED");
    let r = env
        .post(
            "/v1/integration/usage/record",
            &t.integration,
            json!({ "license_key": big, "metric": "api-calls", "quantity": 10 }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
}

/// A limit lowered (100 → 10) while a fresh counter's first records are in
/// flight. Records that read 100 may open untouched shards for it; the
/// window is the one data-model.md describes ("While a limit changes"): the
/// counter never holds more than the larger limit, and once the burst is
/// answered the next records read 10, re-budget, and the count ends at
/// exactly max(accepted, 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_lowered_during_the_first_burst_holds_after_it() {
    let env = Env::start().await;
    let t = env.tenant("limit-race").await;
    let (key, lid) = metered_license(&env, &t, 100).await;
    let lowered = json!({ "entitlements": { "api-calls": { "type": "metered", "limit": 10, "period": "month", "overage": "deny" } } });
    let path = format!("/v1/manage/licenses/{lid}");
    let (answers, p) = tokio::join!(
        futures::future::join_all((0..40).map(|_| single(&env, &t, &key))),
        env.patch(&path, &t.admin, lowered)
    );
    assert_eq!(p.status, 200, "{p:?}");
    assert!(
        answers
            .iter()
            .all(|r| r.status == 201 || r.code() == "QUOTA_EXCEEDED"),
        "{answers:?}"
    );
    let accepted = answers.iter().filter(|r| r.status == 201).count() as u64;
    let after = futures::future::join_all((0..20).map(|_| single(&env, &t, &key))).await;
    let more = after.iter().filter(|r| r.status == 201).count() as u64;
    assert!(after
        .iter()
        .all(|r| r.status == 201 || r.code() == "QUOTA_EXCEEDED"));
    let c = env.check(&t, &key, &["api-calls"]).await;
    let used = c.data()["results"]["api-calls"]["used"].as_u64();
    println!("limit lowered during the burst: {accepted} accepted during, {more} after");
    assert_eq!(used, Some(accepted + more), "{c:?}");
    assert_eq!(accepted + more, accepted.max(10));
}

/// The license's `api-calls` usage this period, as the Management API reports it.
async fn used_of(env: &Env, t: &Tenant, id: &str) -> u64 {
    let u = env
        .get(
            &format!("/v1/manage/usage?license_id={id}&metric=api-calls"),
            &t.admin,
        )
        .await;
    u.data()[0]["used"]
        .as_u64()
        .unwrap_or_else(|| panic!("no usage row: {u:?}"))
}

/// 60 concurrent single records on `key`, all accepted; the DynamoDB calls
/// they made, by kind.
async fn burst_of_60(
    env: &Env,
    t: &Tenant,
    key: &str,
) -> (usize, std::collections::BTreeMap<String, usize>) {
    env.calls.take();
    let statuses: Vec<u16> = futures::future::join_all((0..60).map(|_| single(env, t, key)))
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let calls = env.calls.take();
    let mut by_kind = std::collections::BTreeMap::new();
    for c in &calls {
        *by_kind.entry(c.clone()).or_default() += 1;
    }
    (calls.len(), by_kind)
}

/// What the first burst of a period costs on a hard-limited counter: 60
/// concurrent records on a fresh license (no shard written yet: each opens
/// with its share of the limit, which the first take sets). Exact, and the
/// DynamoDB calls it took are printed (docs/benchmarks.md, `make dev` under
/// load): run alone, one read and one transaction per record, as warm.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_burst_of_a_period_is_exact() {
    let env = Env::start().await;
    let t = env.tenant("first-burst").await;
    let (key, id) = metered_license(&env, &t, 1_000_000_000).await;
    // Warm the key and the policy, on another license of the same policy
    // kind, so only the burst's calls are counted.
    let (warm, _) = metered_license(&env, &t, 1_000_000_000).await;
    assert_eq!(single(&env, &t, &warm).await.status, 201);
    let (n, by_kind) = burst_of_60(&env, &t, &key).await;
    println!("60 concurrent first records of a period: {n} DynamoDB calls {by_kind:?}");
    assert_eq!(used_of(&env, &t, &id).await, 60);
    // Then a warm burst on the same counter (budgets set). The call figures
    // are only the burst's when the test runs alone (run beside the rest of
    // the module, they also counted other tests' calls): docs/benchmarks.md
    // quotes runs of this test alone.
    let (n, by_kind) = burst_of_60(&env, &t, &key).await;
    println!("60 concurrent records on a budgeted counter: {n} DynamoDB calls {by_kind:?}");
    assert_eq!(used_of(&env, &t, &id).await, 120);
}
