//! Outbound webhooks on the local stack: moto's DynamoDB stream and SQS,
//! the same fan-out and dispatch code Lambda runs, and a real HTTP receiver
//! on loopback.

use harness::{Env, Tenant};
use serde_json::{json, Value};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Got {
    signature: String,
    body: String,
}

impl Got {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// A loopback HTTP receiver answering from a script (then 200).
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    script: Arc<Mutex<VecDeque<u16>>>,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    pub(crate) async fn start(script: &[u16]) -> (Receiver, String) {
        use axum::routing::post;
        let r = Receiver::default();
        r.script.lock().unwrap().extend(script.iter().copied());
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(
                move |headers: axum::http::HeaderMap, body: String| async move {
                    let signature = headers
                        .get("x-licensing-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    state.got.lock().unwrap().push(Got { signature, body });
                    let code = state.script.lock().unwrap().pop_front().unwrap_or(200);
                    (axum::http::StatusCode::from_u16(code).unwrap(), "ok")
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (r, url)
    }

    pub(crate) fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Wait until `done` holds of what arrived (at most 60 s).
    pub(crate) async fn until(&self, what: &str, done: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        for _ in 0..600 {
            let got = self.got();
            if done(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}; got {:?}", self.got());
    }
}

pub(crate) async fn endpoint(env: &Env, t: &Tenant, url: &str, events: Value) -> (String, String) {
    let r = env
        .post(
            "/v1/manage/webhook-endpoints",
            &t.admin,
            json!({ "url": url, "events": events, "description": "test receiver" }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let secret = r.data()["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    (r.data()["id"].as_str().unwrap().to_string(), secret)
}

pub(crate) fn verifies(secret: &str, g: &Got) -> bool {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    shared::domain::stripe::verify_signature(secret, Some(&g.signature), g.body.as_bytes(), now)
        .is_ok()
}

#[tokio::test]
async fn a_failing_receiver_gets_the_same_event_until_it_accepts_and_the_log_shows_it() {
    let env = Env::with_webhooks().await;
    let t = env.tenant("wh-retry").await;
    let (_, lic) = env.license(&t, 3, json!({})).await;
    let (recv, url) = Receiver::start(&[500, 500]).await;
    let (ep, secret) = endpoint(&env, &t, &url, json!(["license.suspended"])).await;

    let id = lic["id"].as_str().unwrap();
    let r = env
        .post(
            &format!("/v1/manage/licenses/{id}/suspend"),
            &t.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    let got = recv.until("three attempts", |g| g.len() >= 3).await;
    let ids: HashSet<String> = got.iter().map(|g| g.json()["id"].to_string()).collect();
    assert_eq!(ids.len(), 1, "one event id on every attempt: {ids:?}");
    let ev = got[0].json();
    assert_eq!(ev["type"], "license.suspended");
    assert_eq!(ev["tenant_id"], t.id.as_str());
    assert_eq!(ev["data"]["object"]["id"], id);
    assert_eq!(ev["data"]["object"]["status"], "suspended");
    assert!(
        got.iter().all(|g| verifies(&secret, g)),
        "every attempt is signed"
    );
    assert!(!verifies("whsec_other", &got[0]));

    // Nothing more after the 200: the license.created of the setup was not
    // subscribed, and the suspension was accepted on the third attempt.
    env.webhooks_settled().await;
    assert_eq!(recv.got().len(), 3);

    let log = env
        .get(
            &format!("/v1/manage/webhook-endpoints/{ep}/deliveries"),
            &t.admin,
        )
        .await;
    assert_eq!(log.status, 200, "{log:?}");
    let items = log.data().as_array().unwrap().clone();
    assert_eq!(items.len(), 3, "{log:?}");
    let attempts: Vec<(u64, bool, u64)> = items
        .iter()
        .map(|d| {
            (
                d["attempt"].as_u64().unwrap(),
                d["succeeded"].as_bool().unwrap(),
                d["status_code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        vec![(3, true, 200), (2, false, 500), (1, false, 500)]
    );

    // Cursor pages of the log.
    let p1 = env
        .get(
            &format!("/v1/manage/webhook-endpoints/{ep}/deliveries?limit=2"),
            &t.admin,
        )
        .await;
    assert_eq!(p1.data().as_array().unwrap().len(), 2);
    let cursor = p1.json["meta"]["next_cursor"].as_str().unwrap().to_string();
    let p2 = env
        .get(
            &format!("/v1/manage/webhook-endpoints/{ep}/deliveries?limit=2&cursor={cursor}"),
            &t.admin,
        )
        .await;
    assert_eq!(p2.data()[0]["attempt"], 1, "{p2:?}");

    // A manual retry resends the same event now, and is logged.
    let first = items[2]["id"].as_str().unwrap();
    let again = env
        .post(
            &format!("/v1/manage/webhook-endpoints/{ep}/deliveries/{first}/retry"),
            &t.admin,
            json!({}),
        )
        .await;
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.data()["manual"], true);
    assert_eq!(again.data()["succeeded"], true);
    let got = recv.got();
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].json()["id"], got[0].json()["id"]);

    // The test event reaches the endpoint whatever it subscribes to.
    let test = env
        .post(
            &format!("/v1/manage/webhook-endpoints/{ep}/test"),
            &t.admin,
            json!({}),
        )
        .await;
    assert_eq!(test.status, 201, "{test:?}");
    assert_eq!(recv.got()[4].json()["type"], "webhook.test");
}

#[tokio::test]
async fn concurrent_changes_give_one_event_each_and_refused_ones_none() {
    let env = Env::with_webhooks().await;
    let t = env.tenant("wh-burst").await;
    let (_, lic) = env.license(&t, 10, json!({})).await;
    let key = lic["key"].as_str().unwrap().to_string();
    let (recv, url) = Receiver::start(&[]).await;
    endpoint(&env, &t, &url, json!(["activation.created"])).await;

    // 14 machines race for 10 seats: 4 transactions are refused.
    let results = futures::future::join_all((0..14).map(|i| {
        let (env, t, key) = (&env, &t, key.clone());
        async move {
            env.post(
                "/v1/integration/activations",
                &t.integration,
                json!({ "license_key": key, "fingerprint": format!("machine-{i}") }),
            )
            .await
            .status
        }
    }))
    .await;
    assert_eq!(
        results.iter().filter(|s| **s == 201).count(),
        10,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|s| **s == 409).count(),
        4,
        "{results:?}"
    );

    let distinct = |g: &[Got]| -> HashSet<String> {
        g.iter()
            .map(|g| g.json()["id"].as_str().unwrap().to_string())
            .collect()
    };
    recv.until("ten events", |g| distinct(g).len() >= 10).await;
    // Everything written has been fanned out and delivered: a refused race's
    // event, were there one, would be here now.
    env.webhooks_settled().await;
    let got = recv.got();
    let summary: Vec<String> = got
        .iter()
        .map(|g| {
            let e = g.json();
            format!(
                "{} {} {}",
                e["id"], e["data"]["details"], e["data"]["audit_event_id"]
            )
        })
        .collect();
    let audit = env.get("/v1/manage/audit-events?limit=100", &t.admin).await;
    let created: Vec<String> = audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["code"] == "ACTIVATION.CREATED")
        .map(|e| e["id"].to_string())
        .collect();
    let acts = env
        .get(
            &format!(
                "/v1/manage/licenses/{}/activations",
                lic["id"].as_str().unwrap()
            ),
            &t.admin,
        )
        .await;
    assert_eq!(
        distinct(&got).len(),
        10,
        "one event per committed activation: {summary:#?} {created:?} {acts:?} {results:?}"
    );
    let fps: HashSet<String> = got
        .iter()
        .map(|g| {
            g.json()["data"]["details"]["fingerprint"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(fps.len(), 10);
    assert!(got.iter().all(|g| g.json()["type"] == "activation.created"));
}

#[tokio::test]
async fn usage_reaching_its_limit_is_one_event() {
    let env = Env::with_webhooks().await;
    let t = env.tenant("wh-quota").await;
    let ents = json!({ "api-calls": { "type": "metered", "limit": 5, "period": "month" } });
    let (_, lic) = env.license(&t, 1, ents).await;
    let key = lic["key"].as_str().unwrap().to_string();
    let (recv, url) = Receiver::start(&[]).await;
    endpoint(&env, &t, &url, json!(["usage.quota_reached"])).await;
    for q in [2, 2, 1] {
        let r = env
            .post(
                "/v1/integration/usage/record",
                &t.integration,
                json!({ "license_key": key, "metric": "api-calls", "quantity": q }),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    let got = recv.until("the quota event", |g| !g.is_empty()).await;
    let ev = got[0].json();
    assert_eq!(ev["type"], "usage.quota_reached");
    assert_eq!(ev["data"]["used"], 5);
    assert_eq!(ev["data"]["limit"], 5);
    assert_eq!(ev["data"]["license_id"], lic["id"]);
    env.webhooks_settled().await;
    let ids: HashSet<String> = recv
        .got()
        .iter()
        .map(|g| g.json()["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn endpoints_are_managed_and_disabled_ones_receive_nothing() {
    let env = Env::with_webhooks().await;
    let t = env.tenant("wh-crud").await;
    let other = env.tenant("wh-crud-other").await;
    let (recv, url) = Receiver::start(&[]).await;
    let (ep, _) = endpoint(&env, &t, &url, json!(["*"])).await;

    let one = env
        .get(&format!("/v1/manage/webhook-endpoints/{ep}"), &t.admin)
        .await;
    assert_eq!(one.status, 200);
    assert!(
        one.data().get("secret").is_none(),
        "the secret is shown once"
    );
    assert_eq!(one.data()["events"], json!(["*"]));
    let list = env.get("/v1/manage/webhook-endpoints", &t.admin).await;
    assert_eq!(list.data().as_array().unwrap().len(), 1);
    // Another tenant cannot see it.
    let theirs = env
        .get(&format!("/v1/manage/webhook-endpoints/{ep}"), &other.admin)
        .await;
    assert_eq!(theirs.status, 404);
    assert_eq!(theirs.code(), "WEBHOOK_ENDPOINT_NOT_FOUND");

    let off = env
        .patch(
            &format!("/v1/manage/webhook-endpoints/{ep}"),
            &t.admin,
            json!({ "enabled": false }),
        )
        .await;
    assert_eq!(off.status, 200, "{off:?}");
    assert_eq!(off.data()["disabled_reason"], "manual");
    env.license(&t, 1, json!({})).await;
    env.webhooks_settled().await;
    assert!(
        recv.got().is_empty(),
        "a disabled endpoint receives nothing"
    );

    let on = env
        .patch(
            &format!("/v1/manage/webhook-endpoints/{ep}"),
            &t.admin,
            json!({ "enabled": true, "events": ["license.created"] }),
        )
        .await;
    assert_eq!(on.status, 200, "{on:?}");
    env.license(&t, 1, json!({})).await;
    let got = recv.until("license.created", |g| !g.is_empty()).await;
    assert_eq!(got[0].json()["type"], "license.created");

    let bad = env
        .patch(
            &format!("/v1/manage/webhook-endpoints/{ep}"),
            &t.admin,
            json!({ "events": ["nope"] }),
        )
        .await;
    assert_eq!(bad.status, 422, "{bad:?}");

    let del = env
        .delete(&format!("/v1/manage/webhook-endpoints/{ep}"), &t.admin)
        .await;
    assert_eq!(del.status, 200, "{del:?}");
    let gone = env
        .get(&format!("/v1/manage/webhook-endpoints/{ep}"), &t.admin)
        .await;
    assert_eq!(gone.status, 404);
    let again = env
        .delete(&format!("/v1/manage/webhook-endpoints/{ep}"), &t.admin)
        .await;
    assert_eq!(again.status, 404);

    let audit = env.get("/v1/manage/audit-events", &t.admin).await;
    let codes: Vec<&str> = audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["code"].as_str())
        .collect();
    assert!(codes.contains(&"WEBHOOK_ENDPOINT.CREATED"), "{codes:?}");
    assert!(codes.contains(&"WEBHOOK_ENDPOINT.DELETED"), "{codes:?}");
}

#[tokio::test]
async fn urls_that_reach_inside_are_refused() {
    use shared::domain::webhook::{EventFilter, UrlPolicy};
    use shared::usecases::webhooks::{create_endpoint, NewEndpoint};
    use shared::webhooks::Webhooks;
    let env = Env::start().await;
    let t = env.tenant("wh-ssrf").await;
    for url in [
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "http://example.com/hook",
        "https://localhost/hook",
        "ftp://example.com/",
    ] {
        let r = env
            .post(
                "/v1/manage/webhook-endpoints",
                &t.admin,
                json!({ "url": url, "events": ["*"] }),
            )
            .await;
        assert_eq!(r.status, 422, "{url}: {r:?}");
        assert_eq!(r.code(), "INVALID_WEBHOOK_URL", "{url}");
    }
    // The deployed setting: not even http(s)://127.0.0.1.
    let wh = Webhooks::new(b"master".to_vec(), UrlPolicy::PublicHttps).unwrap();
    let ts = env
        .app
        .store
        .tenant(&shared::ids::TenantId::parse(&t.id).unwrap());
    let actor = shared::domain::Actor {
        actor: "test".into(),
        request_id: "req_test".into(),
    };
    for url in ["http://127.0.0.1:9/hook", "https://127.0.0.1/hook"] {
        let req = NewEndpoint {
            url: url.into(),
            events: EventFilter::All,
            description: None,
        };
        let err = create_endpoint(&ts, &wh, req, &actor, env.app.now())
            .await
            .unwrap_err();
        assert_eq!(err.parts().1, "INVALID_WEBHOOK_URL", "{url}");
    }
    // Nothing was created.
    let list = env.get("/v1/manage/webhook-endpoints", &t.admin).await;
    assert_eq!(list.data().as_array().unwrap().len(), 0);
}

/// IPv6 forms that reach inside (IPv4 embedded in translated and NAT64
/// addresses, Teredo, benchmarking, discard-only): refused when an endpoint
/// is created and when its URL is changed.
#[tokio::test]
async fn ipv6_urls_that_reach_inside_are_refused_at_create_and_patch() {
    let env = Env::start().await;
    let t = env.tenant("wh-ssrf6").await;
    let inside = [
        "https://[::ffff:0:127.0.0.1]/hook",
        "https://[::ffff:0:10.0.0.1]/hook",
        "https://[64:ff9b:1::a9fe:a9fe]/hook",
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
        "https://[2001:2::1]/hook",
        "https://[100::1]/hook",
    ];
    for url in inside {
        let r = env
            .post(
                "/v1/manage/webhook-endpoints",
                &t.admin,
                json!({ "url": url, "events": ["*"] }),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (422, "INVALID_WEBHOOK_URL"),
            "create {url}: {r:?}"
        );
    }
    let list = env.get("/v1/manage/webhook-endpoints", &t.admin).await;
    assert_eq!(list.data().as_array().unwrap().len(), 0, "nothing created");

    // An endpoint at a public address may not be moved inside.
    let (ep, _) = endpoint(&env, &t, "https://[2606:4700::1111]/hook", json!(["*"])).await;
    let path = format!("/v1/manage/webhook-endpoints/{ep}");
    for url in inside {
        let r = env.patch(&path, &t.admin, json!({ "url": url })).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "INVALID_WEBHOOK_URL"),
            "patch {url}: {r:?}"
        );
    }
    let one = env.get(&path, &t.admin).await;
    assert_eq!(one.data()["url"], "https://[2606:4700::1111]/hook");
}

#[tokio::test]
async fn an_endpoint_failing_for_three_days_is_disabled_with_an_audit_event() {
    use shared::domain::webhook::EventType;
    use shared::webhooks::dispatch::{deliver, Step};
    use shared::webhooks::outbox::DeliveryMessage;
    let env = Env::start().await;
    let t = env.tenant("wh-failing").await;
    let (recv, url) = Receiver::start(&[500; 8]).await;
    let (ep, _) = endpoint(&env, &t, &url, json!(["*"])).await;
    let msg = DeliveryMessage {
        tenant_id: shared::ids::TenantId::parse(&t.id).unwrap(),
        endpoint_id: shared::ids::WebhookEndpointId::parse(&ep).unwrap(),
        event_id: "evt_test".into(),
        event_type: EventType::LicenseCreated,
        payload: r#"{"id":"evt_test"}"#.into(),
    };
    let (store, wh) = (&env.app.store, env.app.webhooks().unwrap());
    let t0 = time::OffsetDateTime::now_utc();
    // First failure: retried after the base backoff; the failure clock starts.
    assert_eq!(
        deliver(store, wh, &msg, 1, 60, t0).await.unwrap(),
        Step::RetryIn(60)
    );
    let one = env
        .get(&format!("/v1/manage/webhook-endpoints/{ep}"), &t.admin)
        .await;
    assert!(one.data()["failing_since"].is_string(), "{one:?}");
    // Still failing just before 3 days: retried, doubling.
    let almost = t0 + time::Duration::days(3) - time::Duration::minutes(1);
    assert_eq!(
        deliver(store, wh, &msg, 2, 60, almost).await.unwrap(),
        Step::RetryIn(120)
    );
    // Past 3 days: disabled, audited, and the message is done with.
    let past = t0 + time::Duration::days(3) + time::Duration::minutes(1);
    assert_eq!(
        deliver(store, wh, &msg, 3, 60, past).await.unwrap(),
        Step::Done
    );
    let off = env
        .get(&format!("/v1/manage/webhook-endpoints/{ep}"), &t.admin)
        .await;
    assert_eq!(off.data()["enabled"], false);
    assert_eq!(off.data()["disabled_reason"], "failing");
    // A disabled endpoint is not tried again.
    assert_eq!(
        deliver(store, wh, &msg, 4, 60, past).await.unwrap(),
        Step::Done
    );
    assert_eq!(recv.got().len(), 3);
    let audit = env.get("/v1/manage/audit-events", &t.admin).await;
    let disabled: Vec<&Value> = audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["code"] == "WEBHOOK_ENDPOINT.DISABLED")
        .collect();
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0]["actor"], "webhooks");
    // Re-enabling clears the failure clock.
    let on = env
        .patch(
            &format!("/v1/manage/webhook-endpoints/{ep}"),
            &t.admin,
            json!({ "enabled": true }),
        )
        .await;
    assert_eq!(on.data()["failing_since"], Value::Null);
}

#[tokio::test]
async fn a_trial_emits_license_created_and_activation_created_and_a_refused_one_nothing() {
    let env = Env::with_webhooks().await;
    let t = env.tenant("wh-trial").await;
    let (recv, url) = Receiver::start(&[]).await;
    endpoint(
        &env,
        &t,
        &url,
        json!(["license.created", "activation.created"]),
    )
    .await;
    let r = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": "trialapp", "name": "App" }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let policy = env.policy(&t, "trialapp", 1, json!({})).await;
    let trial = json!({ "trial": { "policy": policy, "days": 14, "cooldown_days": 30 } });
    let r = env
        .patch("/v1/manage/products/trialapp", &t.admin, trial)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let body = |email: &str, fp: &str| json!({ "product": "trialapp", "customer_email": email, "fingerprint": fp });
    let first = env
        .post(
            "/v1/integration/trials",
            &t.integration,
            body("Ann@Example.com", "m1"),
        )
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    // The same e-mail again: refused, so nothing is emitted for it.
    let again = env
        .post(
            "/v1/integration/trials",
            &t.integration,
            body("ann@example.com", "m2"),
        )
        .await;
    assert_eq!(again.status, 409, "{again:?}");
    let got = recv.until("two events", |g| g.len() >= 2).await;
    env.webhooks_settled().await;
    let got_now = recv.got();
    assert_eq!(got_now.len(), got.len(), "no event for the refused trial");
    let mut types: Vec<String> = got_now
        .iter()
        .map(|g| g.json()["type"].as_str().unwrap().to_string())
        .collect();
    types.sort();
    assert_eq!(types, ["activation.created", "license.created"]);
    let lic = got_now
        .iter()
        .find(|g| g.json()["type"] == "license.created")
        .unwrap();
    assert_eq!(
        lic.json()["data"]["object"]["customer_email"],
        "ann@example.com"
    );
}

/// The fan-out reads each license once per stream batch, however many of
/// the batch's events name it: five `activation.created` events on one
/// license cost one GetItem (and the endpoints' Query), and each of the five
/// deliveries shows the license. Reading it once per event made the local
/// fan-out fall minutes behind the writes under `scripts/load.py`.
#[tokio::test]
async fn a_stream_batch_reads_each_license_once() {
    use shared::webhooks::outbox::{handle_changes, StreamChange};
    let env = Env::with_webhook_queue().await;
    let t = env.tenant("wh-batch").await;
    let (_, lic) = env.license(&t, 5, json!({})).await;
    let key = lic["key"].as_str().unwrap();
    let (_recv, url) = Receiver::start(&[]).await;
    endpoint(&env, &t, &url, json!(["activation.created"])).await;
    for i in 0..5 {
        let r = env.activate(&t, key, &format!("m{i}")).await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    // The audit items of the activations, as the stream hands them over.
    let items = env
        .clients
        .dynamodb
        .scan()
        .table_name(&env.config.table_name)
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let s = |i: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
             k: &str| {
        i.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let changes: Vec<StreamChange> = items
        .into_iter()
        .filter(|i| s(i, "code") == "ACTIVATION.CREATED")
        .map(|i| StreamChange {
            pk: s(&i, "PK"),
            sk: s(&i, "SK"),
            new: Some(serde_dynamo::from_item(i).unwrap()),
            old: None,
        })
        .collect();
    assert_eq!(changes.len(), 5);

    env.calls.take();
    let queue = env.app.webhook_queue().unwrap();
    let queued = handle_changes(&env.app.store, queue, &changes)
        .await
        .unwrap();
    assert_eq!(queued, 5);
    let ops = env.calls.take();
    assert_eq!(ops.iter().filter(|o| *o == "GetItem").count(), 1, "{ops:?}");

    let objects: Vec<Value> = env
        .webhook_messages(5)
        .await
        .iter()
        .map(|m| {
            let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            let payload: Value = serde_json::from_str(body["payload"].as_str().unwrap()).unwrap();
            payload["data"]["object"]["id"].clone()
        })
        .collect();
    assert_eq!(objects, vec![lic["id"].clone(); 5]);
}
