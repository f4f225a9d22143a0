//! Trials: one per product per e-mail (any case) and per fingerprint within
//! the cooldown, exact under concurrency; public trials without a
//! credential, limited per source address.

use harness::{Env, Resp, Tenant};
use serde_json::{json, Value};
use std::collections::HashMap;
use time::macros::datetime;
use time::Duration;

const TRIALS: &str = "/v1/integration/trials";

/// A product `code` with a 2-seat policy and a 14-day trial, 30-day cooldown.
async fn product_with_trial(env: &Env, t: &Tenant, code: &str, public: bool) -> String {
    let r = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": code, "name": code }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let policy = env
        .policy(t, code, 2, json!({ "pro": { "type": "boolean" } }))
        .await;
    let r = env
        .patch(
            &format!("/v1/manage/products/{code}"),
            &t.admin,
            json!({ "trial": { "policy": policy, "days": 14, "cooldown_days": 30, "public": public } }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data()["trial"]["policy"], policy.as_str());
    assert_eq!(r.data()["trial"]["public"], public);
    policy
}

fn body(product: &str, email: &str, fp: &str) -> Value {
    json!({ "product": product, "customer_email": email, "fingerprint": fp })
}

/// The audit codes of the tenant's events, counted.
async fn audit_counts(env: &Env, t: &Tenant) -> HashMap<String, usize> {
    let r = env.get("/v1/manage/audit-events?limit=100", &t.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut out = HashMap::new();
    for e in r.data().as_array().unwrap() {
        *out.entry(e["code"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    out
}

fn mixed_case(i: usize) -> String {
    "jane.doe@example.com"
        .chars()
        .enumerate()
        .map(|(j, c)| {
            if (i >> (j % 6)) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

async fn fire(env: &Env, key: &str, bodies: Vec<Value>) -> Vec<Resp> {
    futures::future::join_all(bodies.into_iter().map(|b| env.post(TRIALS, key, b))).await
}

fn tally(rs: &[Resp]) -> (usize, usize) {
    let created = rs.iter().filter(|r| r.status == 201).count();
    let refused = rs
        .iter()
        .filter(|r| r.status == 409 && r.code() == "TRIAL_ALREADY_USED")
        .count();
    (created, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_trials_of_one_email_in_mixed_case_make_one() {
    let env = Env::start().await;
    let t = env.tenant("trialrace").await;
    product_with_trial(&env, &t, "app", false).await;
    let before = audit_counts(&env, &t).await;
    let bodies = (0..30)
        .map(|i| body("app", &mixed_case(i), &format!("machine-{i}")))
        .collect();
    let rs = fire(&env, &t.integration, bodies).await;
    assert_eq!(
        tally(&rs),
        (1, 29),
        "{:?}",
        rs.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let won = rs.iter().find(|r| r.status == 201).unwrap();
    let lic = &won.data()["license"];
    let act = &won.data()["activation"];
    assert_eq!(lic["customer_email"], "jane.doe@example.com");
    assert_eq!(lic["status"], "active");
    assert_eq!(lic["seats"]["used"], 1);
    assert_eq!(lic["metadata"]["trial"], true);
    assert_eq!(act["license_id"], lic["id"]);
    assert_eq!(act["status"], "active");
    // Every refusal says when the cooldown (from the one trial's start) ends.
    let created = time::OffsetDateTime::parse(
        lic["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ends = shared::clock::rfc3339(created + Duration::days(30));
    for r in rs.iter().filter(|r| r.status == 409) {
        assert_eq!(
            r.json["error"]["data"]["retry_after"],
            ends.as_str(),
            "{r:?}"
        );
        assert_eq!(r.json["error"]["type"], "conflict_error");
    }
    let expires = shared::clock::rfc3339(created + Duration::days(14));
    assert_eq!(lic["expires_at"], expires.as_str());

    // Already activated: validate with the winner's fingerprint is VALID.
    let key = lic["key"].as_str().unwrap();
    let v = env
        .validate(
            &t,
            key,
            json!({ "fingerprint": act["fingerprint"], "entitlements": ["pro"] }),
        )
        .await;
    assert_eq!(v.data()["code"], "VALID", "{v:?}");
    // One license for the e-mail; one of each audit event.
    let r = env
        .get("/v1/manage/licenses?email=jane.doe@example.com", &t.admin)
        .await;
    assert_eq!(r.data().as_array().unwrap().len(), 1, "{r:?}");
    let after = audit_counts(&env, &t).await;
    for code in ["TRIAL.STARTED", "LICENSE.CREATED", "ACTIVATION.CREATED"] {
        let n = after.get(code).copied().unwrap_or(0) - before.get(code).copied().unwrap_or(0);
        assert_eq!(n, 1, "{code}: {after:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_trials_of_one_fingerprint_make_one() {
    let env = Env::start().await;
    let t = env.tenant("trialfp").await;
    product_with_trial(&env, &t, "app", false).await;
    let bodies = (0..30)
        .map(|i| body("app", &format!("person{i}@example.com"), "the-one-machine"))
        .collect();
    let rs = fire(&env, &t.integration, bodies).await;
    assert_eq!(
        tally(&rs),
        (1, 29),
        "{:?}",
        rs.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // The losers' e-mails were not claimed: each may still start a trial
    // on another machine.
    let loser = rs
        .iter()
        .zip(0..)
        .find(|(r, _)| r.status == 409)
        .map(|(_, i)| i)
        .unwrap();
    let r = env
        .post(
            TRIALS,
            &t.integration,
            body(
                "app",
                &format!("person{loser}@example.com"),
                "another-machine",
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
}

#[tokio::test]
async fn the_cooldown_ends_and_claims_are_per_product() {
    let env = Env::with_clock(datetime!(2026-05-01 9:00 UTC)).await;
    let t = env.tenant("cooldown").await;
    product_with_trial(&env, &t, "app", false).await;
    product_with_trial(&env, &t, "other", false).await;
    let first = env
        .post(TRIALS, &t.integration, body("app", "a@b.co", "fp-1"))
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    // The same e-mail on another product is another trial.
    let r = env
        .post(TRIALS, &t.integration, body("other", "A@B.CO", "fp-1"))
        .await;
    assert_eq!(r.status, 201, "{r:?}");

    env.clock()
        .advance(Duration::days(30) - Duration::seconds(1));
    let r = env
        .post(TRIALS, &t.integration, body("app", "A@b.co", "fp-2"))
        .await;
    assert_eq!((r.status, r.code()), (409, "TRIAL_ALREADY_USED"), "{r:?}");
    assert_eq!(
        r.json["error"]["data"]["retry_after"],
        "2026-05-31T09:00:00.000Z"
    );
    let r = env
        .post(TRIALS, &t.integration, body("app", "z@b.co", "fp-1"))
        .await;
    assert_eq!((r.status, r.code()), (409, "TRIAL_ALREADY_USED"), "{r:?}");

    env.clock().advance(Duration::seconds(1));
    let again = env
        .post(TRIALS, &t.integration, body("app", "a@b.co", "fp-1"))
        .await;
    assert_eq!(again.status, 201, "{again:?}");
    assert_ne!(again.data()["license"]["id"], first.data()["license"]["id"]);
    // The first trial ended after its 14 days.
    let id = first.data()["license"]["id"].as_str().unwrap();
    let l = env
        .get(&format!("/v1/manage/licenses/{id}"), &t.admin)
        .await;
    assert_eq!(l.data()["status"], "expired", "{l:?}");
}

#[tokio::test]
async fn trial_settings_are_checked_and_other_tenants_products_do_not_exist() {
    let env = Env::start().await;
    let t = env.tenant("trialset").await;
    let policy = product_with_trial(&env, &t, "app", false).await;
    let r = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": "plain", "name": "Plain" }),
        )
        .await;
    assert_eq!(r.status, 201);
    let plain_policy = env.policy(&t, "plain", 1, json!({})).await;
    let patch = |code: &'static str, trial: Value| {
        let env = &env;
        let t = &t;
        async move {
            env.patch(
                &format!("/v1/manage/products/{code}"),
                &t.admin,
                json!({ "trial": trial }),
            )
            .await
        }
    };
    for (trial, code, field) in [
        (
            json!({ "policy": plain_policy, "days": 14 }),
            "POLICY_NOT_FOUND",
            "trial.policy",
        ),
        (
            json!({ "policy": "pol_01jabcdefghjkmnpqrstvwxyz0", "days": 14 }),
            "POLICY_NOT_FOUND",
            "trial.policy",
        ),
        (
            json!({ "policy": policy, "days": 0 }),
            "VALIDATION_ERROR",
            "trial.days",
        ),
        (
            json!({ "policy": policy, "days": 366 }),
            "VALIDATION_ERROR",
            "trial.days",
        ),
        (
            json!({ "policy": policy, "days": 7, "cooldown_days": 0 }),
            "VALIDATION_ERROR",
            "trial.cooldown_days",
        ),
        (json!({ "policy": policy }), "VALIDATION_ERROR", "trial"),
        (
            json!({ "policy": policy, "days": 7, "extra": 1 }),
            "VALIDATION_ERROR",
            "trial",
        ),
    ] {
        let r = patch("app", trial.clone()).await;
        assert_eq!((r.status, r.code()), (422, code), "{trial}: {r:?}");
        let msg = r.json["error"]["message"].as_str().unwrap();
        assert!(msg.contains(field), "{trial}: {msg}");
    }
    // The refused patches changed nothing; defaults fill in.
    let r = patch("app", json!({ "policy": policy, "days": 7 })).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data()["trial"]["cooldown_days"], 365);
    assert_eq!(r.data()["trial"]["public"], false);

    // No trial on the product, an unknown product: not available.
    for product in ["plain", "nope"] {
        let r = env
            .post(TRIALS, &t.integration, body(product, "x@y.co", "fp"))
            .await;
        assert_eq!((r.status, r.code()), (404, "TRIAL_NOT_AVAILABLE"), "{r:?}");
    }
    // Another tenant's product code is not this tenant's product.
    let other = env.tenant("trialother").await;
    product_with_trial(&env, &other, "theirs", true).await;
    let r = env
        .post(TRIALS, &t.integration, body("theirs", "x@y.co", "fp"))
        .await;
    assert_eq!((r.status, r.code()), (404, "TRIAL_NOT_AVAILABLE"), "{r:?}");
    // Removing the trial.
    let r = patch("app", Value::Null).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.data()["trial"].is_null());
    let r = env
        .post(TRIALS, &t.integration, body("app", "x@y.co", "fp"))
        .await;
    assert_eq!((r.status, r.code()), (404, "TRIAL_NOT_AVAILABLE"), "{r:?}");
    // Bad bodies.
    let r = env
        .post(TRIALS, &t.integration, body("app", "not-an-email", "fp"))
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    let r = env
        .post(
            TRIALS,
            &t.integration,
            json!({ "product": "app", "customer_email": "a@b.co" }),
        )
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    // An admin key lacks the integration scope.
    let r = env
        .post(TRIALS, &t.admin, body("app", "x@y.co", "fp"))
        .await;
    assert_eq!(r.status, 403, "{r:?}");
}

/// A client that connects from `ip` (any 127.0.0.0/8 address is loopback).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(ip.parse().unwrap()))
        .build()
        .unwrap()
}

async fn public_trial(env: &Env, from: &reqwest::Client, tenant: &str, b: &Value) -> Resp {
    let resp = from
        .post(format!("{}{TRIALS}", env.base))
        .header("x-tenant-id", tenant)
        .header("content-type", "application/json")
        .body(b.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    Resp {
        status,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
        text,
    }
}

#[tokio::test]
async fn public_trials_need_no_credential_and_are_limited_per_address() {
    // A fixed clock: the per-minute window cannot roll over mid-test.
    let env = Env::with_clock(datetime!(2026-05-01 9:00:05 UTC)).await;
    let t = env.tenant("public").await;
    let policy = product_with_trial(&env, &t, "app", false).await;
    let a = client_from("127.0.0.2");
    let b = client_from("127.0.0.3");

    // Not public: no credential is no caller.
    let r = public_trial(&env, &a, &t.id, &body("app", "p0@x.co", "fp-p0")).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHENTICATED"), "{r:?}");
    let r = env
        .patch(
            "/v1/manage/products/app",
            &t.admin,
            json!({ "trial": { "policy": policy, "days": 14, "public": true } }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    // Unknown tenant, a product without a trial, no such product: the same 401.
    let r = public_trial(&env, &b, "no-such-tenant", &body("app", "p@x.co", "fp")).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHENTICATED"), "{r:?}");
    let r = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": "plain", "name": "Plain" }),
        )
        .await;
    assert_eq!(r.status, 201);
    for product in ["plain", "nope"] {
        let r = public_trial(&env, &b, &t.id, &body(product, "p@x.co", "fp")).await;
        assert_eq!(
            (r.status, r.code()),
            (401, "UNAUTHENTICATED"),
            "{product}: {r:?}"
        );
    }

    // The first request above spent one of 127.0.0.2's ten this minute.
    let limit = 10;
    let mut statuses = Vec::new();
    for i in 1..=limit {
        let r = public_trial(
            &env,
            &a,
            &t.id,
            &body("app", &format!("p{i}@x.co"), &format!("fp-p{i}")),
        )
        .await;
        if i < limit {
            assert_eq!(r.status, 201, "{i}: {r:?}");
            assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
            assert!(r.header("x-signature").is_some(), "answers are signed");
        }
        statuses.push(r.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        limit - 1,
        "{statuses:?}"
    );
    let r = public_trial(&env, &a, &t.id, &body("app", "late@x.co", "fp-late")).await;
    assert_eq!((r.status, r.code()), (429, "RATE_LIMITED"), "{r:?}");
    assert!(r.header("retry-after").is_some());
    // Another address has its own budget.
    let r = public_trial(&env, &b, &t.id, &body("app", "late@x.co", "fp-late")).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.data()["license"]["customer_email"], "late@x.co");
    // Its audit events name the address.
    let r = env.get("/v1/manage/audit-events?limit=5", &t.admin).await;
    let started = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["code"] == "TRIAL.STARTED")
        .cloned()
        .unwrap();
    assert_eq!(started["actor"], "public:127.0.0.3");
    assert_eq!(started["data"]["public"], true);

    // A license key is not a way to start another license's trial.
    let lic_key = {
        let r = env
            .get("/v1/manage/licenses?email=late@x.co", &t.admin)
            .await;
        r.data()[0]["key"].as_str().unwrap().to_string()
    };
    let r = env
        .send_raw(
            "POST",
            TRIALS,
            &[
                ("authorization", &format!("License {lic_key}")),
                ("x-tenant-id", &t.id),
                ("x-nonce", "trial-nonce-0123456789"),
                ("content-type", "application/json"),
            ],
            body("app", "new@x.co", "fp-new").to_string().into_bytes(),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "LICENSE_SCOPE_MISMATCH"),
        "{r:?}"
    );
}

#[tokio::test]
async fn look_alike_fingerprints_are_one_device() {
    let env = Env::start().await;
    let t = env.tenant("lookalike").await;
    product_with_trial(&env, &t, "app", false).await;
    let first = env
        .post(TRIALS, &t.integration, body("app", "a@b.co", "Büro-PC 1"))
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    // Stored and answered in its normal form.
    assert_eq!(first.data()["activation"]["fingerprint"], "büro-pc 1");
    // Trailing space, case, a combining accent, a non-breaking hyphen, a
    // no-break space: the same device, so no second trial.
    for (i, alike) in [
        "büro-pc 1 ",
        "BÜRO-PC 1",
        "bu\u{308}ro-pc 1",
        "büro\u{2011}pc 1",
        "büro-pc\u{a0}1",
    ]
    .into_iter()
    .enumerate()
    {
        let r = env
            .post(
                TRIALS,
                &t.integration,
                body("app", &format!("other{i}@b.co"), alike),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (409, "TRIAL_ALREADY_USED"),
            "{alike:?}: {r:?}"
        );
    }
    // Activations too: the look-alike is the existing activation, not a
    // second seat.
    let (_, lic) = env.license(&t, 1, json!({})).await;
    let key = lic["key"].as_str().unwrap();
    let a = env.activate(&t, key, "Laptop\u{2011}7").await;
    assert_eq!(a.status, 201, "{a:?}");
    let b = env.activate(&t, key, " laptop-7 ").await;
    assert!(b.status == 200 || b.status == 201, "{b:?}");
    assert_eq!(b.data()["id"], a.data()["id"], "{b:?}");
    let v = env
        .validate(&t, key, json!({ "fingerprint": "LAPTOP-7" }))
        .await;
    assert_eq!(v.data()["code"], "VALID", "{v:?}");
}

/// A public trial's body for `email` with a fingerprint of its own.
fn public_body(email: &str) -> Value {
    body("app", email, &format!("fp-{email}"))
}

/// Make `app`'s trial public.
async fn make_public(env: &Env, t: &Tenant, policy: &str) {
    let r = env
        .patch(
            "/v1/manage/products/app",
            &t.admin,
            json!({ "trial": { "policy": policy, "days": 14, "public": true } }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn trials_do_not_spend_the_plan_license_limit() {
    let env = Env::with_clock(datetime!(2026-05-01 9:00:05 UTC)).await;
    let t = env.tenant("trialplan").await;
    let policy = product_with_trial(&env, &t, "app", false).await;
    make_public(&env, &t, &policy).await;
    let tid = shared::ids::TenantId::parse(t.id.as_str()).unwrap();
    env.app
        .store
        .set_license_limit(&tid, Some(2))
        .await
        .unwrap();
    // Public trials from anyone, and trials through the integration key.
    let a = client_from("127.0.0.2");
    for i in 0..4 {
        let r = public_trial(&env, &a, &t.id, &public_body(&format!("anon{i}@x.co"))).await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    for i in 0..2 {
        let r = env
            .post(
                TRIALS,
                &t.integration,
                body("app", &format!("k{i}@x.co"), &format!("k{i}")),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    let tenant = env.app.store.get_tenant(&tid).await.unwrap().unwrap();
    assert_eq!(tenant.licenses_issued, 0, "trials spent the plan's limit");
    // The vendor still issues its plan's licenses, and no more.
    for i in 0..2 {
        let r = env
            .post(
                "/v1/manage/licenses",
                &t.admin,
                json!({ "policy": policy, "customer_email": format!("buyer{i}@x.co") }),
            )
            .await;
        assert_eq!(r.status, 201, "{i}: {r:?}");
    }
    let r = env
        .post(
            "/v1/manage/licenses",
            &t.admin,
            json!({ "policy": policy, "customer_email": "third@x.co" }),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "PLAN_LIMIT_REACHED"), "{r:?}");
    // A suspended tenant starts no trial (the trial's own tenant check).
    env.app
        .store
        .set_tenant_status(
            &tid,
            &[shared::domain::TenantStatus::Active],
            shared::domain::TenantStatus::Suspended,
            env.app.now(),
            None,
        )
        .await
        .unwrap();
    env.app.keys.forget_tenant(&tid);
    let r = env
        .post(TRIALS, &t.integration, body("app", "late@x.co", "late"))
        .await;
    assert_eq!((r.status, r.code()), (403, "TENANT_INACTIVE"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_daily_public_trial_cap_is_a_setting_and_exact_under_concurrency() {
    let env = Env::with_clock(datetime!(2026-05-01 9:00:05 UTC)).await;
    let t = env.tenant("trialcap").await;
    let policy = product_with_trial(&env, &t, "app", false).await;
    make_public(&env, &t, &policy).await;
    let op = env.operator_token().await;
    let path = format!("/v1/platform/tenants/{}", t.id);
    // Readable, with its default, and updatable within bounds.
    let r = env.operator("GET", &path, &op, None).await;
    assert_eq!(r.data()["settings"]["public_trials_per_day"], 100, "{r:?}");
    for bad in [json!(0), json!(1_000_001), json!("7"), json!(-1)] {
        let b = json!({ "settings": { "public_trials_per_day": bad } });
        let r = env.operator("PATCH", &path, &op, Some(&b)).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "VALIDATION_ERROR"),
            "{bad}: {r:?}"
        );
    }
    let b = json!({ "settings": { "public_trials_per_day": 7 } });
    let r = env.operator("PATCH", &path, &op, Some(&b)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data()["settings"]["public_trials_per_day"], 7);
    // The public path reads the tenant through its 5-second cache.
    env.app
        .tenants
        .forget(&shared::ids::TenantId::parse(t.id.as_str()).unwrap());

    // 24 at once from four addresses (6 each, within the per-address limit).
    let clients: Vec<_> = (2..6)
        .map(|i| client_from(&format!("127.0.0.{i}")))
        .collect();
    let rs = futures::future::join_all((0..24).map(|i| {
        let (env, c, id) = (&env, &clients[i % 4], t.id.clone());
        async move { public_trial(env, c, &id, &public_body(&format!("cap{i}@x.co"))).await }
    }))
    .await;
    let created = rs.iter().filter(|r| r.status == 201).count();
    let capped: Vec<_> = rs
        .iter()
        .filter(|r| r.status == 429 && r.code() == "TRIAL_CAP_REACHED")
        .collect();
    assert_eq!(
        (created, capped.len()),
        (7, 17),
        "{:?}",
        rs.iter()
            .map(|r| (r.status, r.code().to_string()))
            .collect::<Vec<_>>()
    );
    for r in &capped {
        // Until the next UTC midnight.
        assert_eq!(r.header("retry-after"), Some("53995"), "{r:?}");
        assert_eq!(r.json["error"]["limit"], 7);
        assert_eq!(r.json["error"]["type"], "rate_limit_error");
    }
    // Exactly 7 trial licenses exist; the refused ones claimed nothing.
    let r = env.get("/v1/manage/licenses?limit=100", &t.admin).await;
    assert_eq!(r.data().as_array().unwrap().len(), 7, "{r:?}");
    let refused = rs.iter().position(|r| r.status == 429).unwrap();
    // The cap is the public path's: the vendor's own key still starts trials.
    let r = env
        .post(
            TRIALS,
            &t.integration,
            public_body(&format!("cap{refused}@x.co")),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    // The next UTC day has its own.
    env.clock().advance(Duration::days(1));
    let r = public_trial(&env, &clients[0], &t.id, &public_body("nextday@x.co")).await;
    assert_eq!(r.status, 201, "{r:?}");
}

#[tokio::test]
async fn a_public_trials_email_gives_no_portal_access_until_verified() {
    use harness::{sent_mail, Visitor};
    let env = Env::with_clock(datetime!(2026-05-01 9:00:05 UTC)).await;
    let t = env.tenant("trialmail").await;
    let policy = product_with_trial(&env, &t, "app", false).await;
    make_public(&env, &t, &policy).await;
    let unique = ulid::Ulid::new().to_string().to_lowercase();
    let victim = format!("victim-{unique}@example.com");
    let a = client_from("127.0.0.2");
    let r = public_trial(&env, &a, &t.id, &public_body(&victim)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let trial_id = r.data()["license"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.data()["license"]["customer_email_verified"], false);
    // One e-mail: the verification link (sent once per trial).
    let mail = sent_mail(&victim).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(
        !mail[0].contains("/auth?token="),
        "no sign-in link: {}",
        mail[0]
    );
    let link = mail[0]
        .split_whitespace()
        .find(|w| w.contains("/verify?token="))
        .expect("a verification link")
        .to_string();
    let token = link.split("token=").nth(1).unwrap().to_string();

    // Unverified: asking for a sign-in link sends nothing; the portal
    // answers as for any address.
    let mut v = Visitor::new(&env, &t.id);
    let p = v.post("/login", &[("email", &victim)]).await;
    assert_eq!(p.status, 200, "{p:?}");
    assert_eq!(sent_mail(&victim).await.len(), 1, "no sign-in mail");

    // The link opens a page with one button; pressing it verifies, once.
    let page = v.get(&format!("/verify?token={token}")).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains(&token));
    let done = v.post("/verify", &[("token", &token)]).await;
    assert_eq!(done.status, 200, "{done:?}");
    assert!(done.html.contains("id=\"verified\""), "{}", done.html);
    let again = v.post("/verify", &[("token", &token)]).await;
    assert_eq!((again.status, again.code()), (403, Some("LINK_INVALID")));
    let forged = v.post("/verify", &[("token", "forged")]).await;
    assert_eq!((forged.status, forged.code()), (403, Some("LINK_INVALID")));

    // Verified: sign-in works as for any customer, and shows the trial.
    assert_eq!(v.sign_in(&victim).await.status, 303);
    let me = v.get("/me").await;
    assert_eq!(me.status, 200);
    assert!(me.html.contains(&trial_id), "{}", me.html);
    let l = env
        .get(&format!("/v1/manage/licenses/{trial_id}"), &t.admin)
        .await;
    assert_eq!(l.data()["customer_email_verified"], true, "{l:?}");
    let audit = env.get("/v1/manage/audit-events?limit=20", &t.admin).await;
    let ev = audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["code"] == "LICENSE.UPDATED" && e["target_id"] == trial_id.as_str())
        .cloned()
        .expect("the verification is audited");
    assert_eq!(ev["actor"], format!("customer:{victim}"));

    // An address with a license of its own signs in, but sees a public
    // trial of it that is not verified yet nowhere.
    let buyer = format!("buyer-{unique}@example.com");
    let issued = env
        .post(
            "/v1/manage/licenses",
            &t.admin,
            json!({ "policy": policy, "customer_email": buyer }),
        )
        .await;
    assert_eq!(issued.status, 201, "{issued:?}");
    let r = public_trial(&env, &a, &t.id, &public_body(&buyer)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let hidden = r.data()["license"]["id"].as_str().unwrap().to_string();
    let mut b = Visitor::new(&env, &t.id);
    assert_eq!(b.sign_in(&buyer).await.status, 303);
    let me = b.get("/me").await;
    assert!(me.html.contains(issued.data()["id"].as_str().unwrap()));
    assert!(!me.html.contains(&hidden), "{}", me.html);
    let file = b.get(&format!("/me/licenses/{hidden}/file")).await;
    assert_eq!(file.status, 404, "{file:?}");

    // A trial through the vendor's own key is verified as before.
    let keyed = format!("keyed-{unique}@example.com");
    let r = env
        .post(TRIALS, &t.integration, body("app", &keyed, "keyed-fp"))
        .await;
    assert_eq!(
        r.data()["license"]["customer_email_verified"],
        true,
        "{r:?}"
    );
    assert!(sent_mail(&keyed).await.is_empty(), "no verification mail");
    let mut k = Visitor::new(&env, &t.id);
    assert_eq!(k.sign_in(&keyed).await.status, 303);
}
