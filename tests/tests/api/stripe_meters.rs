//! Stripe billing meters: every usage event recorded on a license sold
//! through Stripe, whose metric names a meter, is posted from the outbox
//! (the table's stream → the delivery queue → the sender) to a local
//! stand-in of `POST /v1/billing/meter_events`.

use aws_sdk_dynamodb::types::AttributeValue;
use harness::{Env, Tenant};
use serde_json::{json, Value};
use shared::ids::{LicenseId, TenantId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "sk_test_51MeterStandInKey0123";
const CUSTOMER: &str = "cus_MeterTest01";

/// One meter event the stand-in got: its form fields and Authorization.
#[derive(Clone, Debug)]
struct Got {
    auth: String,
    form: HashMap<String, String>,
}

/// A loopback stand-in of Stripe answering from a script (then 200).
#[derive(Clone, Default)]
struct Stripe {
    script: Arc<Mutex<VecDeque<u16>>>,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Stripe {
    async fn start(script: &[u16]) -> (Stripe, String) {
        use axum::routing::post;
        let s = Stripe::default();
        s.script.lock().unwrap().extend(script.iter().copied());
        let state = s.clone();
        let app = axum::Router::new().route(
            "/v1/billing/meter_events",
            post(
                move |headers: axum::http::HeaderMap, body: String| async move {
                    assert_eq!(
                        headers.get("content-type").and_then(|v| v.to_str().ok()),
                        Some("application/x-www-form-urlencoded")
                    );
                    let form = parse_form(&body);
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    state.got.lock().unwrap().push(Got { auth, form });
                    let code = state.script.lock().unwrap().pop_front().unwrap_or(200);
                    (axum::http::StatusCode::from_u16(code).unwrap(), "{}")
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (s, base)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    async fn until(&self, what: &str, done: impl Fn(&[Got]) -> bool) -> Vec<Got> {
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

/// A tenant with a Stripe API key, and a license (metric `api-calls`
/// metered to the meter `api_calls`, overage allowed) sold through Stripe
/// when `stripe` (its Stripe customer set as a Stripe checkout sets it).
async fn setup(env: &Env, name: &str) -> (Tenant, String, String) {
    let t = env.tenant(name).await;
    let r = env
        .send(
            "PUT",
            "/v1/manage/integrations/stripe",
            Some(&t.admin),
            Some(&json!({ "api_key": KEY })),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!r.text.contains(KEY), "the key is never echoed: {}", r.text);
    let ents = json!({ "api-calls": { "type": "metered", "limit": 1000000, "period": "month",
        "overage": "allow", "stripe_meter_event_name": "api_calls" } });
    let (policy, lic) = env.license(&t, 1, ents).await;
    let p = env
        .get(&format!("/v1/manage/policies/{policy}"), &t.admin)
        .await;
    assert_eq!(
        p.data()["entitlements"]["api-calls"]["stripe_meter_event_name"],
        "api_calls",
        "{p:?}"
    );
    let id = lic["id"].as_str().unwrap().to_string();
    let key = lic["key"].as_str().unwrap().to_string();
    (t, id, key)
}

async fn sold_through_stripe(env: &Env, t: &Tenant, license_id: &str) {
    let tenant = TenantId::parse(t.id.as_str()).unwrap();
    let id = LicenseId::parse(license_id).unwrap();
    let k = shared::store::keys::license(&tenant, &id);
    let link = AttributeValue::M(HashMap::from([(
        "customer_id".to_string(),
        AttributeValue::S(CUSTOMER.into()),
    )]));
    env.clients
        .dynamodb
        .update_item()
        .table_name(&env.config.table_name)
        .key("PK", AttributeValue::S(k.pk))
        .key("SK", AttributeValue::S(k.sk))
        .update_expression("SET stripe = :s")
        .expression_attribute_values(":s", link)
        .send()
        .await
        .unwrap();
}

/// `application/x-www-form-urlencoded`, decoded.
fn parse_form(body: &str) -> HashMap<String, String> {
    let decode = |s: &str| {
        let b = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn check_fields(g: &Got) {
    assert_eq!(g.auth, format!("Bearer {KEY}"));
    assert_eq!(g.form["event_name"], "api_calls");
    assert_eq!(g.form["payload[stripe_customer_id]"], CUSTOMER);
    assert!(g.form["identifier"].starts_with("use_"), "{g:?}");
    let ts: i64 = g.form["timestamp"].parse().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - 600..=now + 5).contains(&ts), "{g:?}");
}

#[tokio::test]
async fn a_failing_stripe_gets_the_same_identifier_until_it_accepts() {
    let (stripe, base) = Stripe::start(&[500, 500]).await;
    let env = Env::with_webhooks_and_stripe(Some(base)).await;
    let (t, id, key) = setup(&env, "meters-retry").await;
    sold_through_stripe(&env, &t, &id).await;
    let r = env.record(&t, &key, "api-calls", 3).await;
    assert_eq!(r.status, 201, "{r:?}");
    let got = stripe.until("three attempts", |g| g.len() >= 3).await;
    env.webhooks_settled().await;
    let got = if got.len() == 3 { got } else { stripe.got() };
    assert_eq!(got.len(), 3, "{got:?}");
    for g in &got {
        check_fields(g);
        assert_eq!(g.form["payload[value]"], "3");
        assert_eq!(g.form["identifier"], got[0].form["identifier"]);
    }
}

#[tokio::test]
async fn every_record_is_reported_once_and_only_for_stripe_licenses() {
    let (stripe, base) = Stripe::start(&[]).await;
    let env = Env::with_webhooks_and_stripe(Some(base)).await;
    let (t, id, key) = setup(&env, "meters-many").await;
    sold_through_stripe(&env, &t, &id).await;
    // The same policy's metric, on a license not sold through Stripe.
    let (plain, _, plain_key) = setup(&env, "meters-plain").await;
    for _ in 0..5 {
        let r = env.record(&plain, &plain_key, "api-calls", 7).await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    let answers = futures::future::join_all((1..=100u64).map(|q| {
        let (env, t, key) = (&env, &t, &key);
        async move { env.record(t, key, "api-calls", q).await }
    }))
    .await;
    for r in &answers {
        assert_eq!(r.status, 201, "{r:?}");
        assert!(!r.text.contains(KEY));
    }
    let got = stripe.until("100 meter events", |g| g.len() >= 100).await;
    env.webhooks_settled().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = if got.len() == 100 { stripe.got() } else { got };
    assert_eq!(
        got.len(),
        100,
        "one request per record, none for the plain license"
    );
    let ids: HashSet<&str> = got.iter().map(|g| g.form["identifier"].as_str()).collect();
    assert_eq!(ids.len(), 100);
    let sum: u64 = got
        .iter()
        .map(|g| g.form["payload[value]"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(sum, 5050);
    for g in &got {
        check_fields(g);
    }
    let usage: Value = env
        .get(&format!("/v1/manage/licenses/{id}"), &t.admin)
        .await
        .json;
    assert!(!usage.to_string().contains(KEY));
}

#[tokio::test]
async fn a_unique_count_meter_gets_one_per_new_value_and_nothing_for_repeats() {
    let (stripe, base) = Stripe::start(&[]).await;
    let env = Env::with_webhooks_and_stripe(Some(base)).await;
    let t = env.tenant("meters-unique").await;
    let r = env
        .send(
            "PUT",
            "/v1/manage/integrations/stripe",
            Some(&t.admin),
            Some(&json!({ "api_key": KEY })),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let ents = json!({ "api-calls": { "type": "metered", "limit": 100, "period": "month",
        "aggregation": "unique_count", "unique_by": "user",
        "stripe_meter_event_name": "api_calls" } });
    let (_, lic) = env.license(&t, 1, ents).await;
    let (id, key) = (lic["id"].as_str().unwrap(), lic["key"].as_str().unwrap());
    sold_through_stripe(&env, &t, id).await;
    // 20 records of 4 users (quantity 5 each): 4 values counted.
    let answers = futures::future::join_all((0..20).map(|i| {
        let (env, t) = (&env, &t);
        let extra = json!({ "metadata": { "user": format!("u{}", i % 4) } });
        async move { env.record_with(t, key, "api-calls", 5, extra).await }
    }))
    .await;
    assert!(answers.iter().all(|r| r.status == 201), "{answers:?}");
    let got = stripe.until("4 meter events", |g| g.len() >= 4).await;
    env.webhooks_settled().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = if got.len() == 4 { stripe.got() } else { got };
    assert_eq!(got.len(), 4, "one per new value: {got:?}");
    for g in &got {
        check_fields(g);
        assert_eq!(g.form["payload[value]"], "1");
    }
}
