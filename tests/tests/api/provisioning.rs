//! The Platform API and the SQS provisioning pipeline, against moto's SQS.

use harness::Env;
use serde_json::{json, Value};
use shared::error::Error;
use shared::ids::TenantId;
use shared::usecases::tenants::StageHook;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Fails a stage a given number of times (`u32::MAX`: until cleared).
#[derive(Default)]
struct Faults(Mutex<HashMap<String, u32>>);

impl Faults {
    fn fail(&self, stage: &str, times: u32) {
        self.0.lock().unwrap().insert(stage.to_string(), times);
    }
    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

impl StageHook for Faults {
    fn before(&self, _t: &TenantId, stage: &str) -> Result<(), Error> {
        let mut m = self.0.lock().unwrap();
        match m.get_mut(stage) {
            Some(n) if *n > 0 => {
                if *n != u32::MAX {
                    *n -= 1;
                }
                Err(Error::Unavailable(format!("injected failure in {stage}")))
            }
            _ => Ok(()),
        }
    }
}

fn tenant_body(id: &str) -> Value {
    json!({ "tenant_id": id, "name": "Acme Inc", "admin_email": "Ops@Acme.example", "plan": "starter", "webhook_endpoints": ["https://acme.example/hooks"] })
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &ulid::Ulid::new().to_string().to_lowercase()[18..]
    )
}

async fn wait_for(env: &Env, token: &str, id: &str, status: &str) -> Value {
    for _ in 0..150 {
        let r = env
            .operator("GET", &format!("/v1/platform/tenants/{id}"), token, None)
            .await;
        if r.data()["status"] == status {
            return r.data().clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = env
        .operator("GET", &format!("/v1/platform/tenants/{id}"), token, None)
        .await;
    panic!("tenant {id} never became {status}: {r:?}");
}

fn stage<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap()
}

async fn queue_depth(env: &Env, url: &str) -> u64 {
    let out = env
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    out.attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provision_end_to_end_with_a_retried_stage_and_duplicates() {
    let faults = Arc::new(Faults::default());
    faults.fail("branding", 1);
    let env = Env::with_queue(faults.clone()).await;
    let token = env.operator_token().await;
    let id = unique("acme");

    let r = env
        .operator(
            "POST",
            "/v1/platform/tenants",
            &token,
            Some(&tenant_body(&id)),
        )
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(
        (r.data()["tenant_id"].as_str(), r.data()["status"].as_str()),
        (Some(id.as_str()), Some("provisioning"))
    );
    let admin = r.data()["admin_api_key"].as_str().unwrap().to_string();
    // Until the tenant is active, its key is known but shut out.
    let early = env.get("/v1/manage/products", &admin).await;
    assert_eq!(
        (early.status, early.code()),
        (403, "TENANT_INACTIVE"),
        "{early:?}"
    );
    assert!(
        early.header("x-ratelimit-limit").is_some(),
        "a known key's answers carry the rate-limit headers"
    );

    // The same request again: the same tenant and a second message, but the
    // first admin key is never shown again (it is random and stored hashed).
    let again = env
        .operator(
            "POST",
            "/v1/platform/tenants",
            &token,
            Some(&tenant_body(&id)),
        )
        .await;
    assert_eq!(
        (again.status, again.data()["created"].as_bool()),
        (202, Some(false)),
        "{again:?}"
    );
    assert!(again.data()["admin_api_key"].is_null(), "{again:?}");
    assert!(
        !again.text.contains(&admin),
        "the first key is never shown again"
    );
    let note = again.data()["admin_api_key_note"].as_str().unwrap();
    assert!(
        note.contains(&format!("/v1/platform/tenants/{id}/admin-keys")),
        "{note}"
    );
    shared::sqs::enqueue(
        &env.clients.sqs,
        env.config.provisioning_queue_url.as_deref().unwrap(),
        &TenantId::parse(id.clone()).unwrap(),
    )
    .await
    .unwrap();

    let t = wait_for(&env, &token, &id, "active").await;
    assert_eq!(
        stage(&t, "branding")["attempts"],
        2,
        "failed once, then done: {t}"
    );
    assert_eq!(stage(&t, "branding")["state"], "done");
    assert!(stage(&t, "branding")["last_error"].is_null());
    for s in t["stages"].as_array().unwrap() {
        assert!(s["state"] == "done", "{s}");
    }
    assert_eq!(
        (t["plan"].as_str(), t["license_limit"].as_u64()),
        (Some("starter"), Some(1000))
    );
    assert_eq!(t["admin_email"], "ops@acme.example");

    // Now the admin key works, and nothing was written twice.
    let keys = env.get("/v1/manage/api-keys", &admin).await;
    assert_eq!(keys.status, 200, "{keys:?}");
    assert_eq!(keys.data().as_array().unwrap().len(), 1);
    assert!(keys.data()[0]["scopes"] == json!(["admin"]));
    // The duplicate messages have been consumed (and found nothing to do).
    env.queue_empty(env.config.provisioning_queue_url.as_deref().unwrap())
        .await;
    let audit = env.get("/v1/manage/audit-events", &admin).await;
    let provisioned = audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["code"] == "TENANT.PROVISIONED")
        .count();
    assert_eq!(provisioned, 1, "{audit:?}");
    let after = env
        .operator("GET", &format!("/v1/platform/tenants/{id}"), &token, None)
        .await;
    assert_eq!(
        stage(after.data(), "branding")["attempts"],
        2,
        "duplicates did not rerun finished stages"
    );
    assert_eq!(
        queue_depth(&env, env.config.provisioning_queue_url.as_deref().unwrap()).await,
        0
    );

    // Same id, different body.
    let mut other = tenant_body(&id);
    other["plan"] = json!("growth");
    let c = env
        .operator("POST", "/v1/platform/tenants", &token, Some(&other))
        .await;
    assert_eq!((c.status, c.code()), (409, "TENANT_EXISTS"));

    // The operator's way back in: a new admin key, shown once, that works.
    let path = format!("/v1/platform/tenants/{id}/admin-keys");
    let k = env.operator("POST", &path, &token, None).await;
    assert_eq!(k.status, 201, "{k:?}");
    let new_key = k.data()["key"].as_str().unwrap().to_string();
    assert_ne!(new_key, admin);
    assert_eq!(k.data()["scopes"], json!(["admin"]));
    let keys = env.get("/v1/manage/api-keys", &new_key).await;
    assert_eq!(
        (keys.status, keys.data().as_array().unwrap().len()),
        (200, 2),
        "{keys:?}"
    );
    let missing = env
        .operator(
            "POST",
            "/v1/platform/tenants/no-such-tenant/admin-keys",
            &token,
            None,
        )
        .await;
    assert_eq!((missing.status, missing.code()), (404, "TENANT_NOT_FOUND"));
    let unauthorised = env.operator("POST", &path, "wrong-token", None).await;
    assert_eq!(unauthorised.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stage_that_always_fails_lands_in_the_dlq_and_a_redrive_finishes_it() {
    let faults = Arc::new(Faults::default());
    faults.fail("health_check", u32::MAX);
    let env = Env::with_queue(faults.clone()).await;
    let token = env.operator_token().await;
    let id = unique("stuck");
    assert_eq!(
        env.operator(
            "POST",
            "/v1/platform/tenants",
            &token,
            Some(&tenant_body(&id))
        )
        .await
        .status,
        202
    );
    let dlq = env.dlq_url.clone().unwrap();
    let queue = env.config.provisioning_queue_url.clone().unwrap();
    let mut in_dlq = 0;
    for _ in 0..200 {
        in_dlq = queue_depth(&env, &dlq).await;
        if in_dlq == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(in_dlq, 1, "the message reached the DLQ");
    let t = env
        .operator("GET", &format!("/v1/platform/tenants/{id}"), &token, None)
        .await;
    assert_eq!(t.data()["status"], "failed");
    let hc = stage(t.data(), "health_check");
    assert_eq!(
        (hc["state"].as_str(), hc["attempts"].as_u64()),
        (Some("failed"), Some(3)),
        "{t:?}"
    );
    assert!(hc["last_error"]
        .as_str()
        .unwrap()
        .contains("injected failure"));
    assert_eq!(
        stage(t.data(), "branding")["state"],
        "done",
        "earlier stages stay done"
    );

    // Fix the cause, re-drive: it finishes.
    faults.clear();
    assert_eq!(
        shared::sqs::redrive(&env.clients.sqs, &dlq, &queue)
            .await
            .unwrap(),
        1
    );
    let t = wait_for(&env, &token, &id, "active").await;
    assert_eq!(stage(&t, "health_check")["attempts"], 4);

    // A poison message goes to the DLQ too.
    env.clients
        .sqs
        .send_message()
        .queue_url(&queue)
        .message_body("not json")
        .send()
        .await
        .unwrap();
    let mut depth = 0;
    for _ in 0..200 {
        depth = queue_depth(&env, &dlq).await;
        if depth == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(depth, 1, "the poison message reached the DLQ");
}

#[tokio::test]
async fn tenant_lifecycle_shuts_keys_out() {
    let env = Env::start().await;
    let token = env.operator_token().await;
    let t = env.tenant("life-t").await;
    let path = format!("/v1/platform/tenants/{}", t.id);
    assert_eq!(
        env.operator("GET", &path, &token, None).await.data()["status"],
        "active"
    );

    let s = env
        .operator("POST", &format!("{path}/suspend"), &token, None)
        .await;
    assert_eq!(
        (s.status, s.data()["status"].as_str()),
        (200, Some("suspended")),
        "{s:?}"
    );
    // A fresh function instance (no cached key) shuts every key out at once;
    // warm instances within the 60 s key-cache bound.
    let other = env.sibling().await;
    let probe = |app: Arc<shared::app::App>, key: String, path: &'static str| async move {
        let req = lambda_http::http::Request::builder()
            .method(if path.contains("validate") {
                "POST"
            } else {
                "GET"
            })
            .uri(path)
            .header("x-api-key", key)
            .body(lambda_http::Body::Empty)
            .unwrap();
        let resp = shared::http::handle(&app, None, req).await;
        let body: Value = match resp.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
            _ => Value::Null,
        };
        (
            resp.status().as_u16(),
            body["error"]["code"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(
        probe(other.clone(), t.admin.clone(), "/v1/manage/products").await,
        (403, "TENANT_INACTIVE".into())
    );
    assert_eq!(
        probe(
            other.clone(),
            t.integration.clone(),
            "/v1/integration/licenses/SOME-LICENSE-KEY/validate"
        )
        .await,
        (403, "TENANT_INACTIVE".into())
    );

    assert_eq!(
        env.operator("POST", &format!("{path}/reactivate"), &token, None)
            .await
            .data()["status"],
        "active"
    );
    assert_eq!(
        probe(env.sibling().await, t.admin.clone(), "/v1/manage/products")
            .await
            .0,
        200
    );

    assert_eq!(
        env.operator("POST", &format!("{path}/close"), &token, None)
            .await
            .data()["status"],
        "closed"
    );
    assert_eq!(
        probe(env.sibling().await, t.admin.clone(), "/v1/manage/products").await,
        (403, "TENANT_INACTIVE".into())
    );
    let r = env
        .operator("POST", &format!("{path}/reactivate"), &token, None)
        .await;
    assert_eq!((r.status, r.code()), (409, "TENANT_CLOSED"));
    assert_eq!(
        env.operator("POST", &format!("{path}/suspend"), &token, None)
            .await
            .code(),
        "TENANT_CLOSED"
    );
    assert_eq!(
        env.operator("POST", &format!("{path}/close"), &token, None)
            .await
            .status,
        200,
        "closing twice is a no-op"
    );
}

#[tokio::test]
async fn platform_auth_and_bad_input() {
    let env = Env::start().await;
    let token = env.operator_token().await;
    let t = env.tenant("plat").await;
    let path = "/v1/platform/tenants";
    let body = tenant_body(&unique("nope"));
    for bad in ["wrong", &t.admin, ""] {
        let r = env.operator("POST", path, bad, Some(&body)).await;
        assert_eq!((r.status, r.code()), (401, "UNAUTHENTICATED"), "{bad}");
    }
    let r = env
        .send("GET", &format!("{path}/{}", t.id), Some(&t.admin), None)
        .await;
    assert_eq!(r.status, 401, "an API key is not an operator token");
    let r = env
        .send_raw(
            "POST",
            path,
            &[("authorization", &format!("Basic {token}"))],
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 401);

    for (b, status) in [
        (
            json!({ "tenant_id": "Bad Id", "name": "x", "admin_email": "a@b.co", "plan": "free" }),
            422,
        ),
        (
            json!({ "tenant_id": "okay", "name": "x", "admin_email": "a@b.co", "plan": "platinum" }),
            422,
        ),
        (
            json!({ "tenant_id": "okay", "name": "x", "admin_email": "not-mail", "plan": "free" }),
            422,
        ),
        (
            json!({ "tenant_id": "okay", "name": "", "admin_email": "a@b.co", "plan": "free" }),
            422,
        ),
        (
            json!({ "tenant_id": "okay", "name": "x", "admin_email": "a@b.co", "plan": "free", "webhook_endpoints": ["http://insecure"] }),
            422,
        ),
        (
            json!({ "tenant_id": "okay", "name": "x", "admin_email": "a@b.co" }),
            422,
        ),
        (
            json!({ "tenant_id": "okay", "name": "x", "admin_email": "a@b.co", "plan": "free", "extra": 1 }),
            422,
        ),
    ] {
        let r = env.operator("POST", path, &token, Some(&b)).await;
        assert_eq!(r.status, status, "{b}: {r:?}");
        assert!(r.json["error"]["code"].is_string());
    }
    let r = env
        .send_raw(
            "POST",
            path,
            &[("authorization", &format!("Bearer {token}"))],
            b"{\"tenant_id\":".to_vec(),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "INVALID_JSON"));
    assert_eq!(
        env.operator("GET", &format!("{path}/no-such-tenant"), &token, None)
            .await
            .code(),
        "TENANT_NOT_FOUND"
    );
    assert_eq!(
        env.operator(
            "POST",
            &format!("{path}/no-such-tenant/suspend"),
            &token,
            None
        )
        .await
        .code(),
        "TENANT_NOT_FOUND"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plan_limit_is_enforced_at_issuance() {
    let env = Env::start().await;
    let t = env.tenant_on_plan("freebie", "free").await;
    let (pol, _) = env.license(&t, 1, json!({})).await; // licence 1 of 100
    let results = futures::future::join_all((0..105).map(|i| {
        let env = &env;
        let (admin, pol) = (t.admin.clone(), pol.clone());
        async move {
            env.post(
                "/v1/manage/licenses",
                &admin,
                json!({ "policy": pol, "customer_email": format!("c{i}@example.com") }),
            )
            .await
        }
    }))
    .await;
    let created = results.iter().filter(|r| r.status == 201).count();
    let refused: Vec<_> = results.iter().filter(|r| r.status != 201).collect();
    assert_eq!(created, 99, "the free plan holds 100 licenses");
    assert!(
        refused
            .iter()
            .all(|r| r.status == 403 && r.code() == "PLAN_LIMIT_REACHED"),
        "{refused:?}"
    );
    let token = env.operator_token().await;
    let tenant = env
        .operator(
            "GET",
            &format!("/v1/platform/tenants/{}", t.id),
            &token,
            None,
        )
        .await;
    assert_eq!(
        tenant.data()["licenses_issued"],
        100,
        "nothing written for refused issues"
    );
}
