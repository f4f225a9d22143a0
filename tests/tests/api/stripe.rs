//! Stripe webhooks on the real local stack: the fixtures in `events/stripe/`
//! (real event shapes), signed here with a test secret exactly as Stripe signs.

use harness::{Env, Resp, Tenant};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use shared::ids::TenantId;
use time::macros::datetime;

const SECRET: &str = "whsec_test_5f2b8c1d9e7a4036b1c2d3e4f5a6b7c8";
const SUB: &str = "sub_1PqR7qLkdIwHu7ixZ3mW0kTa";
const CHARGE: &str = "ch_3PqR7sLkdIwHu7ix0Gq1Xw9e";
const INTENT: &str = "pi_3PqR7sLkdIwHu7ix0Yk2Bc7d";
const BASIC_PRICE: &str = "price_1PqQz8LkdIwHu7ixBas1cM0n";
const PRO_PRICE: &str = "price_1PqQz8LkdIwHu7ixPr0M0nth";
const EMAIL: &str = "ann.buyer@example.com";

/// `events/stripe/<name>.json` with its id and `created` replaced.
fn fixture(name: &str, id: &str, created: i64) -> Value {
    let path = format!(
        "{}/../events/stripe/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut v: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
    )
    .unwrap();
    v["id"] = json!(id);
    v["created"] = json!(created);
    v
}

/// Stripe's scheme, computed independently of the service's code.
fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn hook_path(tenant: &str) -> String {
    format!("/v1/stripe/webhook/{tenant}")
}

async fn post_signed(env: &Env, tenant: &str, body: Vec<u8>, sig: Option<String>) -> Resp {
    let mut headers = vec![("content-type", "application/json".to_string())];
    if let Some(s) = sig {
        headers.push(("stripe-signature", s));
    }
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.send_raw("POST", &hook_path(tenant), &h, body).await
}

/// Deliver `ev` to `t`'s endpoint, signed now with `SECRET`.
async fn deliver(env: &Env, t: &Tenant, ev: &Value) -> Resp {
    let body = serde_json::to_vec(ev).unwrap();
    let sig = signature(SECRET, env.app.now().unix_timestamp(), &body);
    post_signed(env, &t.id, body, Some(sig)).await
}

/// Deliver and expect 200 with `outcome`; returns the receipt.
async fn expect(env: &Env, t: &Tenant, ev: &Value, outcome: &str) -> Value {
    let r = deliver(env, t, ev).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.data()["outcome"],
        outcome,
        "{} {}: {r:?}",
        ev["type"],
        ev["id"]
    );
    assert_eq!(r.data()["received"], true);
    assert_eq!(r.data()["event_id"], ev["id"]);
    assert_eq!(r.data()["type"], ev["type"]);
    r.data().clone()
}

async fn connect(env: &Env, t: &Tenant) {
    let r = env
        .send(
            "PUT",
            "/v1/manage/integrations/stripe",
            Some(&t.admin),
            Some(&json!({ "webhook_secret": SECRET })),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// A product with two plans: basic (export-4k, 2 seats) and pro (export-4k
/// and export-8k, 5 seats), each sold at its own Stripe price; 3 grace days.
async fn plans(env: &Env, t: &Tenant) -> (String, String) {
    let r = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": "studio", "name": "Studio" }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let mut ids = Vec::new();
    for (name, seats, price, ents) in [
        (
            "Basic",
            2,
            BASIC_PRICE,
            json!({ "export-4k": { "type": "boolean" } }),
        ),
        (
            "Pro",
            5,
            PRO_PRICE,
            json!({ "export-4k": { "type": "boolean" }, "export-8k": { "type": "boolean" } }),
        ),
    ] {
        let body = json!({ "product": "studio", "name": name, "max_activations": seats, "entitlements": ents,
                           "grace_period_days": 3, "stripe_price_ids": [price] });
        let p = env.post("/v1/manage/policies", &t.admin, body).await;
        assert_eq!(p.status, 201, "{p:?}");
        ids.push(p.data()["id"].as_str().unwrap().to_string());
    }
    (ids[0].clone(), ids[1].clone())
}

fn checkout(id: &str, created: i64, policy: Option<&str>) -> Value {
    let mut ev = fixture("checkout.session.completed", id, created);
    ev["data"]["object"]["metadata"] = match policy {
        Some(p) => json!({ "policy": p }),
        None => json!({}),
    };
    ev
}

/// A subscription event for `price`. Its item carries no quantity (as a
/// metered price's does not), so the policy's seat limit applies; see
/// [`with_quantity`] for per-seat subscriptions.
fn subscription(kind: &str, id: &str, created: i64, status: &str, price: &str) -> Value {
    let mut ev = fixture(kind, id, created);
    let o = &mut ev["data"]["object"];
    o["status"] = json!(status);
    o["items"]["data"][0]["price"]["id"] = json!(price);
    o["items"]["data"][0]["plan"]["id"] = json!(price);
    o["items"]["data"][0]["quantity"] = Value::Null;
    o["plan"]["id"] = json!(price);
    o["quantity"] = Value::Null;
    ev
}

/// `ev` (a subscription event) with its item's quantity set as Stripe sends it.
fn with_quantity(mut ev: Value, quantity: Value) -> Value {
    ev["data"]["object"]["items"]["data"][0]["quantity"] = quantity.clone();
    ev["data"]["object"]["quantity"] = quantity;
    ev
}

fn invoice_paid(id: &str, created: i64, period_end: i64, charge: &str, intent: &str) -> Value {
    let mut ev = fixture("invoice.paid", id, created);
    let o = &mut ev["data"]["object"];
    o["lines"]["data"][0]["period"] =
        json!({ "start": period_end - 30 * 86_400, "end": period_end });
    o["charge"] = json!(charge);
    o["payment_intent"] = json!(intent);
    ev
}

async fn license(env: &Env, t: &Tenant, id: &str) -> Value {
    let r = env
        .get(&format!("/v1/manage/licenses/{id}"), &t.admin)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.data().clone()
}

async fn validate(env: &Env, t: &Tenant, key: &str, body: Value) -> Value {
    let r = env.validate(t, key, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.data().clone()
}

async fn licenses_of(env: &Env, t: &Tenant, email: &str) -> Vec<Value> {
    let r = env
        .get(
            &format!("/v1/manage/licenses?email={email}&limit=100"),
            &t.admin,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.data().as_array().unwrap().clone()
}

async fn audit(env: &Env, t: &Tenant) -> Vec<Value> {
    let r = env.get("/v1/manage/audit-events?limit=100", &t.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.data().as_array().unwrap().clone()
}

fn store(env: &Env, t: &Tenant) -> shared::store::TenantStore {
    env.app
        .store
        .tenant(&TenantId::parse(t.id.as_str()).unwrap())
}

// ------------------------------------------------------------ the secret

#[tokio::test]
async fn webhook_secret_is_stored_never_echoed_and_validated() {
    let env = Env::start().await;
    let t = env.tenant("hooks").await;
    let r = env
        .send(
            "PUT",
            "/v1/manage/integrations/stripe",
            Some(&t.admin),
            Some(&json!({ "webhook_secret": SECRET })),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        !r.text.contains(SECRET) && !r.text.contains("5f2b8c1d"),
        "the secret is never echoed: {}",
        r.text
    );
    assert_eq!(r.data()["configured"], true);
    assert_eq!(r.data()["webhook_url_path"], hook_path(&t.id));

    // Kept in Secrets Manager under the tenant's prefix; another function
    // instance (empty cache) reads it from there.
    let tid = TenantId::parse(t.id.as_str()).unwrap();
    let id = format!(
        "{}/{}/stripe-webhook-secret",
        env.config.secrets_prefix.as_deref().unwrap(),
        t.id
    );
    assert_eq!(
        env.app.secrets.get(&id).await.unwrap().as_deref(),
        Some(SECRET)
    );
    let other = shared::app::App::build(
        env.config.clone(),
        env.clients.clone(),
        std::sync::Arc::new(shared::clock::SystemClock),
    )
    .await
    .unwrap();
    assert_eq!(
        other.webhook_secrets.get(&tid).await.unwrap().as_deref(),
        Some(SECRET)
    );

    for bad in [
        json!({ "webhook_secret": "sk_live_51H8xYzAbCdEfGhIjKlMn" }),
        json!({ "webhook_secret": "whsec_short" }),
        json!({ "webhook_secret": "whsec_has spaces in it 0123456789" }),
        json!({ "webhook_secret": 42 }),
        json!({}),
    ] {
        let r = env
            .send(
                "PUT",
                "/v1/manage/integrations/stripe",
                Some(&t.admin),
                Some(&bad),
            )
            .await;
        assert_eq!(r.status, 422, "{bad}: {r:?}");
        assert!(!r.text.contains("sk_live_51H8"), "{}", r.text);
    }
    // Integration keys cannot set it.
    let r = env
        .send(
            "PUT",
            "/v1/manage/integrations/stripe",
            Some(&t.integration),
            Some(&json!({ "webhook_secret": SECRET })),
        )
        .await;
    assert_eq!(r.status, 403);

    // Rotating: the new secret verifies at once on this instance, the old one no longer does.
    let rotated = "whsec_test_rotated_0a1b2c3d4e5f6a7b8c9d";
    let r = env
        .send(
            "PUT",
            "/v1/manage/integrations/stripe",
            Some(&t.admin),
            Some(&json!({ "webhook_secret": rotated })),
        )
        .await;
    assert_eq!(r.status, 200);
    let ev = fixture("customer.created", "evt_rotate_1", 1_724_140_753);
    let body = serde_json::to_vec(&ev).unwrap();
    let now = env.app.now().unix_timestamp();
    assert_eq!(
        post_signed(
            &env,
            &t.id,
            body.clone(),
            Some(signature(SECRET, now, &body))
        )
        .await
        .code(),
        "INVALID_SIGNATURE"
    );
    assert_eq!(
        post_signed(
            &env,
            &t.id,
            body.clone(),
            Some(signature(rotated, now, &body))
        )
        .await
        .status,
        200
    );

    let events = audit(&env, &t).await;
    let updates: Vec<&Value> = events
        .iter()
        .filter(|e| e["code"] == "INTEGRATION.STRIPE_UPDATED")
        .collect();
    assert_eq!(updates.len(), 2, "one audit event per successful PUT");
    assert!(
        !serde_json::to_string(&events).unwrap().contains("whsec_"),
        "no secret in the audit trail"
    );
}

// ------------------------------------------------------------ signatures and tenants

#[tokio::test]
async fn unsigned_forged_stale_and_foreign_deliveries_are_refused_and_write_nothing() {
    let env = Env::start().await;
    let t = env.tenant("sigs").await;
    let other = env.tenant("sigs-other").await;
    connect(&env, &t).await;
    let (basic, _) = plans(&env, &t).await;
    let ev = checkout("evt_sig_1", 1_724_140_802, Some(&basic));
    let body = serde_json::to_vec(&ev).unwrap();
    let now = env.app.now().unix_timestamp();
    let good = signature(SECRET, now, &body);
    let v1 = good.split_once(",v1=").unwrap().1.to_string();

    let refused: Vec<(&str, Option<String>, Vec<u8>)> = vec![
        ("missing header", None, body.clone()),
        ("empty header", Some(String::new()), body.clone()),
        (
            "wrong signature",
            Some(format!("t={now},v1={}", "ab".repeat(32))),
            body.clone(),
        ),
        (
            "signed by another secret",
            Some(signature("whsec_someone_else_0123456789abcdef", now, &body)),
            body.clone(),
        ),
        (
            "body changed after signing",
            Some(good.clone()),
            serde_json::to_vec(&checkout("evt_sig_1", 1_724_140_802, None)).unwrap(),
        ),
        (
            "ten minutes old",
            Some(signature(SECRET, now - 600, &body)),
            body.clone(),
        ),
        (
            "ten minutes ahead",
            Some(signature(SECRET, now + 600, &body)),
            body.clone(),
        ),
        (
            "timestamp swapped",
            Some(format!("t={},v1={v1}", now - 1)),
            body.clone(),
        ),
        ("no v1", Some(format!("t={now},v0={v1}")), body.clone()),
        ("no timestamp", Some(format!("v1={v1}")), body.clone()),
    ];
    for (what, sig, b) in refused {
        let r = post_signed(&env, &t.id, b, sig).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "INVALID_SIGNATURE"),
            "{what}: {r:?}"
        );
        assert_eq!(r.json["error"]["type"], "invalid_request_error");
    }
    // Signed with t's secret but sent to another tenant's URL: that tenant has no secret → 400 ...
    let r = post_signed(&env, &other.id, body.clone(), Some(good.clone())).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_SIGNATURE"), "{r:?}");
    // ... and with a secret of its own, t's signature still does not verify there.
    let other_secret = "whsec_test_other_tenant_99887766554433";
    let put = env
        .send(
            "PUT",
            "/v1/manage/integrations/stripe",
            Some(&other.admin),
            Some(&json!({ "webhook_secret": other_secret })),
        )
        .await;
    assert_eq!(put.status, 200);
    let r = post_signed(&env, &other.id, body.clone(), Some(good.clone())).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_SIGNATURE"), "{r:?}");

    // Unknown and malformed tenants answer exactly as a known tenant with a
    // bad signature (bar the request id): the endpoint does not enumerate
    // tenants.
    let known = post_signed(&env, &other.id, body.clone(), Some(good.clone())).await;
    let without_id = |r: &harness::Resp| {
        let mut v: serde_json::Value = serde_json::from_str(&r.text).unwrap();
        v["meta"]["request_id"] = serde_json::Value::Null;
        v
    };
    for tenant in ["nobody-here", "NOT_A_TENANT", "x"] {
        let r = post_signed(&env, tenant, body.clone(), Some(good.clone())).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "INVALID_SIGNATURE"),
            "{tenant}: {r:?}"
        );
        assert_eq!(without_id(&r), without_id(&known), "{tenant}");
    }

    // Nothing was written anywhere.
    assert!(store(&env, &t)
        .get_stripe_event("evt_sig_1")
        .await
        .unwrap()
        .is_none());
    assert!(store(&env, &other)
        .get_stripe_event("evt_sig_1")
        .await
        .unwrap()
        .is_none());
    assert!(licenses_of(&env, &t, EMAIL).await.is_empty());
    assert!(licenses_of(&env, &other, EMAIL).await.is_empty());
    assert!(audit(&env, &t)
        .await
        .iter()
        .all(|e| !e["code"].as_str().unwrap().starts_with("STRIPE.")));

    // Validly signed but not JSON, or not an event: 400, nothing written.
    for (bad, code) in [
        (&b"{\"id\": \"evt_x\", \"type\": "[..], "INVALID_JSON"),
        (&b"[]"[..], "INVALID_EVENT"),
        (&b"{\"id\":\"evt_x\"}"[..], "INVALID_EVENT"),
    ] {
        let r = post_signed(&env, &t.id, bad.to_vec(), Some(signature(SECRET, now, bad))).await;
        assert_eq!((r.status, r.code()), (400, code), "{r:?}");
    }
    assert!(store(&env, &t)
        .get_stripe_event("evt_x")
        .await
        .unwrap()
        .is_none());

    // The genuine delivery, with a second (rotated-out) v1 first, is accepted.
    let both = format!("t={now},v1={},v1={v1}", "00".repeat(32));
    let r = post_signed(&env, &t.id, body.clone(), Some(both)).await;
    assert_eq!(
        (r.status, r.data()["outcome"].as_str()),
        (200, Some("applied")),
        "{r:?}"
    );
}

// ------------------------------------------------------------ checkout

#[tokio::test]
async fn checkout_issues_exactly_one_license_per_subscription() {
    let env = Env::start().await;
    let t = env.tenant("checkout").await;
    connect(&env, &t).await;
    let (basic, _) = plans(&env, &t).await;

    let ev = checkout("evt_checkout_1", 1_724_140_802, Some(&basic));
    let first = expect(&env, &t, &ev, "applied").await;
    let id = first["license_id"].as_str().unwrap().to_string();
    let l = license(&env, &t, &id).await;
    assert_eq!(
        l["customer_email"], EMAIL,
        "customer_details.email, lowercased"
    );
    assert_eq!(
        (l["status"].as_str(), l["policy"].as_str()),
        (Some("active"), Some(basic.as_str()))
    );
    assert_eq!(l["seats"]["limit"], 2);
    let key = l["key"].as_str().unwrap().to_string();
    assert_eq!(
        validate(&env, &t, &key, json!({ "entitlements": ["export-4k"] })).await["code"],
        "VALID"
    );

    // The same event again: one effect.
    let again = expect(&env, &t, &ev, "duplicate").await;
    assert_eq!(again["license_id"], id.as_str());
    // Another checkout event for the same subscription: still one license.
    let other = expect(
        &env,
        &t,
        &checkout("evt_checkout_2", 1_724_140_900, Some(&basic)),
        "ignored",
    )
    .await;
    assert_eq!(other["license_id"], id.as_str());
    assert_eq!(licenses_of(&env, &t, EMAIL).await.len(), 1);

    // Audit: LICENSE.CREATED and STRIPE.EVENT_APPLIED by "stripe", with the event's id and type.
    let events = audit(&env, &t).await;
    let applied: Vec<&Value> = events
        .iter()
        .filter(|e| e["code"] == "STRIPE.EVENT_APPLIED")
        .collect();
    assert_eq!(applied.len(), 1, "{events:?}");
    assert_eq!(
        (
            applied[0]["actor"].as_str(),
            applied[0]["target_id"].as_str()
        ),
        (Some("stripe"), Some(id.as_str()))
    );
    assert_eq!(applied[0]["data"]["event_id"], "evt_checkout_1");
    assert_eq!(applied[0]["data"]["type"], "checkout.session.completed");
    let created: Vec<&Value> = events
        .iter()
        .filter(|e| e["code"] == "LICENSE.CREATED")
        .collect();
    assert_eq!(
        (created.len(), created[0]["actor"].as_str()),
        (1, Some("stripe"))
    );

    // The tenant's plan counter moved once.
    let tenant = env
        .app
        .store
        .get_tenant(&TenantId::parse(t.id.as_str()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tenant.licenses_issued, 1);

    // Setup-mode checkouts buy nothing: recorded, ignored.
    let mut one_off = checkout("evt_checkout_3", 1_724_140_950, Some(&basic));
    one_off["data"]["object"]["mode"] = json!("setup");
    one_off["data"]["object"]["subscription"] = Value::Null;
    let r = expect(&env, &t, &one_off, "ignored").await;
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("neither subscription nor payment"),
        "{r}"
    );
    assert!(
        store(&env, &t)
            .get_stripe_event("evt_checkout_3")
            .await
            .unwrap()
            .is_some(),
        "ignored events are recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_deliveries_of_one_checkout_issue_one_license() {
    let env = Env::start().await;
    let t = env.tenant("herd").await;
    connect(&env, &t).await;
    let (basic, _) = plans(&env, &t).await;
    let ev = checkout("evt_herd_1", 1_724_140_802, Some(&basic));
    let results = futures::future::join_all((0..10).map(|_| deliver(&env, &t, &ev))).await;
    assert!(results.iter().all(|r| r.status == 200), "{results:?}");
    let outcomes: Vec<&str> = results
        .iter()
        .map(|r| r.data()["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "applied").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "duplicate").count(),
        9,
        "{outcomes:?}"
    );
    let ids: std::collections::HashSet<&str> = results
        .iter()
        .map(|r| r.data()["license_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "every answer names the one license");
    assert_eq!(licenses_of(&env, &t, EMAIL).await.len(), 1);
    let tenant = env
        .app
        .store
        .get_tenant(&TenantId::parse(t.id.as_str()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tenant.licenses_issued, 1);
    let applied = audit(&env, &t)
        .await
        .into_iter()
        .filter(|e| e["code"] == "STRIPE.EVENT_APPLIED")
        .count();
    assert_eq!(applied, 1);
}

#[tokio::test]
async fn policy_from_the_subscription_price_in_either_order() {
    let env = Env::start().await;
    let t = env.tenant("byprice").await;
    connect(&env, &t).await;
    let (_, pro) = plans(&env, &t).await;

    // Checkout first, without metadata.policy: kept until the price is seen.
    let r = expect(
        &env,
        &t,
        &checkout("evt_bp_1", 1_724_140_802, None),
        "pending",
    )
    .await;
    assert!(r["license_id"].is_null());
    assert!(licenses_of(&env, &t, EMAIL).await.is_empty());
    // The subscription (older event, still incomplete) brings the price: the license is issued.
    let created = expect(
        &env,
        &t,
        &subscription(
            "customer.subscription.created",
            "evt_bp_2",
            1_724_140_798,
            "incomplete",
            PRO_PRICE,
        ),
        "applied",
    )
    .await;
    let id = created["license_id"].as_str().unwrap().to_string();
    let l = license(&env, &t, &id).await;
    assert_eq!(
        (
            l["policy"].as_str(),
            l["status"].as_str(),
            l["customer_email"].as_str()
        ),
        (Some(pro.as_str()), Some("active"), Some(EMAIL))
    );
    assert_eq!(l["seats"]["limit"], 5);

    // The other order, on a second subscription: subscription and invoice first, checkout last.
    let sub2 = "sub_1PqR9zLkdIwHu7ixSecond00";
    let mut sc = subscription(
        "customer.subscription.created",
        "evt_bp_3",
        1_724_140_798,
        "incomplete",
        BASIC_PRICE,
    );
    sc["data"]["object"]["id"] = json!(sub2);
    assert_eq!(
        expect(&env, &t, &sc, "pending").await["license_id"],
        Value::Null
    );
    let mut paid = invoice_paid(
        "evt_bp_4",
        1_724_140_801,
        1_726_819_198,
        "ch_3PqR9zLkdIwHu7ix0Second",
        "pi_3PqR9zLkdIwHu7ix0Second",
    );
    paid["data"]["object"]["subscription"] = json!(sub2);
    paid["data"]["object"]["lines"]["data"][0]["subscription"] = json!(sub2);
    expect(&env, &t, &paid, "pending").await;
    let mut co = checkout("evt_bp_5", 1_724_140_802, None);
    co["data"]["object"]["subscription"] = json!(sub2);
    co["data"]["object"]["customer_details"]["email"] = json!("bob@example.com");
    let issued = expect(&env, &t, &co, "applied").await;
    let l2 = license(&env, &t, issued["license_id"].as_str().unwrap()).await;
    assert_eq!(l2["customer_email"], "bob@example.com");
    assert_eq!(l2["seats"]["limit"], 2, "basic, from the kept price");
    assert_eq!(
        l2["expires_at"], "2024-09-20T07:59:58.000Z",
        "the kept invoice.paid's period end"
    );
    // The charge of the kept invoice still finds the license.
    let mut refund = fixture("charge.refunded", "evt_bp_6", 1_724_227_198);
    refund["data"]["object"]["id"] = json!("ch_3PqR9zLkdIwHu7ix0Second");
    refund["data"]["object"]["payment_intent"] = json!("pi_3PqR9zLkdIwHu7ix0Second");
    let r = expect(&env, &t, &refund, "applied").await;
    assert_eq!(r["license_id"], issued["license_id"]);

    // A price no policy lists: the checkout is refused with the reason recorded, never a 500.
    let sub3 = "sub_1PqRAaLkdIwHu7ixThird000";
    let mut sc = subscription(
        "customer.subscription.created",
        "evt_bp_7",
        1_724_140_798,
        "active",
        "price_nobody_sells_this",
    );
    sc["data"]["object"]["id"] = json!(sub3);
    expect(&env, &t, &sc, "pending").await;
    let mut co = checkout("evt_bp_8", 1_724_140_802, None);
    co["data"]["object"]["subscription"] = json!(sub3);
    let r = expect(&env, &t, &co, "ignored").await;
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("price_nobody_sells_this"),
        "{r}"
    );
    let rec = store(&env, &t)
        .get_stripe_event("evt_bp_8")
        .await
        .unwrap()
        .unwrap();
    assert!(
        rec.reason.unwrap().contains("no policy"),
        "the reason is recorded"
    );
    // A metadata.policy that names nothing: refused too.
    let mut co = checkout(
        "evt_bp_9",
        1_724_140_803,
        Some("pol_01j5xk3v2m8n4p6q7r9s0t1u2v"),
    );
    co["data"]["object"]["subscription"] = json!("sub_1PqRAbLkdIwHu7ixFourth00");
    expect(&env, &t, &co, "ignored").await;
}

// ------------------------------------------------------------ lifecycle

#[tokio::test]
async fn subscription_changes_move_status_and_plan_upgrade_switches_entitlements() {
    let env = Env::start().await;
    let t = env.tenant("plans").await;
    connect(&env, &t).await;
    let (basic, pro) = plans(&env, &t).await;
    let id = expect(
        &env,
        &t,
        &checkout("evt_pl_1", 1_724_140_802, Some(&basic)),
        "applied",
    )
    .await["license_id"]
        .as_str()
        .unwrap()
        .to_string();
    let key = license(&env, &t, &id).await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let want_8k = json!({ "entitlements": ["export-8k"] });
    assert_eq!(
        validate(&env, &t, &key, want_8k.clone()).await["code"],
        "ENTITLEMENTS_MISSING"
    );

    // Upgrade: the price moves to pro; the policy follows, and validate sees pro's entitlements and seats.
    let up = expect(
        &env,
        &t,
        &subscription(
            "customer.subscription.updated",
            "evt_pl_2",
            1_724_200_000,
            "active",
            PRO_PRICE,
        ),
        "applied",
    )
    .await;
    assert_eq!(up["license_id"], id.as_str());
    let v = validate(&env, &t, &key, want_8k.clone()).await;
    assert_eq!(v["code"], "VALID", "{v}");
    assert_eq!(v["license"]["policy"], pro.as_str());
    assert_eq!(v["license"]["seats"]["limit"], 5);
    assert_eq!(v["license"]["entitlements"]["export-8k"], true);

    let mut at = 1_724_200_000;
    for (status, license_status, code) in [
        ("past_due", "past_due", "VALID"),
        ("unpaid", "suspended", "SUSPENDED"),
        ("active", "active", "VALID"),
        ("trialing", "active", "VALID"),
        ("canceled", "cancelled", "CANCELLED"),
    ] {
        at += 100;
        expect(
            &env,
            &t,
            &subscription(
                "customer.subscription.updated",
                &format!("evt_pl_{at}"),
                at,
                status,
                PRO_PRICE,
            ),
            "applied",
        )
        .await;
        let v = validate(&env, &t, &key, json!({})).await;
        assert_eq!(
            (v["license"]["status"].as_str(), v["code"].as_str()),
            (Some(license_status), Some(code)),
            "{status}: {v}"
        );
    }
    // Downgrade after cancellation: nothing moves a cancelled license.
    let r = expect(
        &env,
        &t,
        &subscription(
            "customer.subscription.updated",
            "evt_pl_late",
            at + 100,
            "active",
            BASIC_PRICE,
        ),
        "ignored",
    )
    .await;
    assert!(r["reason"].as_str().unwrap().contains("cancelled"), "{r}");
    let l = license(&env, &t, &id).await;
    assert_eq!(
        (l["status"].as_str(), l["policy"].as_str()),
        (Some("cancelled"), Some(pro.as_str()))
    );
    // An incomplete subscription changes nothing but is recorded.
    let r = expect(
        &env,
        &t,
        &subscription(
            "customer.subscription.updated",
            "evt_pl_inc",
            at + 200,
            "incomplete",
            PRO_PRICE,
        ),
        "ignored",
    )
    .await;
    assert_eq!(r["license_id"], id.as_str());

    // Stripe's changes wrote the Management API's LICENSE.* codes (actor
    // `stripe`), once each, in order; the unchanged `trialing` wrote none.
    let mut codes: Vec<String> = audit(&env, &t)
        .await
        .iter()
        .filter(|e| e["actor"] == "stripe" && e["target_id"] == id.as_str())
        .filter_map(|e| e["code"].as_str().filter(|c| c.starts_with("LICENSE.")))
        .map(str::to_string)
        .collect();
    codes.reverse();
    assert_eq!(
        codes,
        [
            "LICENSE.CREATED",
            "LICENSE.POLICY_CHANGED",
            "LICENSE.PAST_DUE",
            "LICENSE.SUSPENDED",
            "LICENSE.RESUMED",
            "LICENSE.CANCELLED"
        ]
    );
}

#[tokio::test]
async fn failed_payments_start_a_grace_period_then_suspend_and_payment_reinstates() {
    let start = datetime!(2026-05-10 08:00 UTC);
    let env = Env::with_clock(start).await;
    let t = env.tenant("grace").await;
    connect(&env, &t).await;
    let (basic, _) = plans(&env, &t).await;
    let base = start.unix_timestamp();
    let id = expect(
        &env,
        &t,
        &checkout("evt_gr_1", base - 10, Some(&basic)),
        "applied",
    )
    .await["license_id"]
        .as_str()
        .unwrap()
        .to_string();
    let key = license(&env, &t, &id).await["key"]
        .as_str()
        .unwrap()
        .to_string();

    // invoice.paid: active until the paid period's end.
    let period_end = base + 30 * 86_400;
    expect(
        &env,
        &t,
        &invoice_paid("evt_gr_2", base - 5, period_end, CHARGE, INTENT),
        "applied",
    )
    .await;
    let l = license(&env, &t, &id).await;
    assert_eq!(l["expires_at"], "2026-06-09T08:00:00.000Z");

    // A failed payment: past due, valid for the policy's 3 grace days.
    let failed = fixture("invoice.payment_failed", "evt_gr_3", base);
    expect(&env, &t, &failed, "applied").await;
    let l = license(&env, &t, &id).await;
    assert_eq!(
        (l["status"].as_str(), l["grace_until"].as_str()),
        (Some("past_due"), Some("2026-05-13T08:00:00.000Z"))
    );
    let v = validate(&env, &t, &key, json!({})).await;
    assert_eq!(
        (v["code"].as_str(), v["license"]["status"].as_str()),
        (Some("VALID"), Some("past_due"))
    );

    // A retry that fails again a day later does not extend the grace period.
    env.clock().set(datetime!(2026-05-11 08:00 UTC));
    expect(
        &env,
        &t,
        &fixture("invoice.payment_failed", "evt_gr_4", base + 86_400),
        "applied",
    )
    .await;
    assert_eq!(
        license(&env, &t, &id).await["grace_until"],
        "2026-05-13T08:00:00.000Z"
    );

    // The boundary: valid one second before, suspended at the end, with no job run.
    env.clock().set(datetime!(2026-05-13 07:59:59 UTC));
    assert_eq!(validate(&env, &t, &key, json!({})).await["code"], "VALID");
    env.clock().set(datetime!(2026-05-13 08:00 UTC));
    let v = validate(&env, &t, &key, json!({})).await;
    assert_eq!(
        (v["code"].as_str(), v["license"]["status"].as_str()),
        (Some("SUSPENDED"), Some("past_due"))
    );
    let a = env.activate(&t, &key, "m1").await;
    assert_eq!((a.status, a.code()), (403, "LICENSE_NOT_ACTIVE"), "{a:?}");

    // Payment: active again, expires at the new paid period's end, grace gone.
    env.clock().set(datetime!(2026-05-14 09:00 UTC));
    let now = env.app.now().unix_timestamp();
    expect(
        &env,
        &t,
        &invoice_paid(
            "evt_gr_5",
            now,
            period_end + 30 * 86_400,
            "ch_3PqRretryLkdIwHu7ix0002",
            "pi_3PqRretryLkdIwHu7ix0002",
        ),
        "applied",
    )
    .await;
    let l = license(&env, &t, &id).await;
    assert_eq!(
        (
            l["status"].as_str(),
            l["expires_at"].as_str(),
            l["grace_until"].as_str()
        ),
        (Some("active"), Some("2026-07-09T08:00:00.000Z"), None)
    );
    assert_eq!(validate(&env, &t, &key, json!({})).await["code"], "VALID");

    // Past the paid period with no newer payment: expired.
    env.clock().set(datetime!(2026-07-09 08:00 UTC));
    assert_eq!(validate(&env, &t, &key, json!({})).await["code"], "EXPIRED");
}

#[tokio::test]
async fn late_and_out_of_order_events_never_undo_newer_state() {
    let env = Env::start().await;
    let t = env.tenant("order").await;
    connect(&env, &t).await;
    let (basic, _) = plans(&env, &t).await;
    let id = expect(
        &env,
        &t,
        &checkout("evt_or_1", 1_724_140_802, Some(&basic)),
        "applied",
    )
    .await["license_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Newer failure first, then an older payment: the payment is stale.
    expect(
        &env,
        &t,
        &fixture("invoice.payment_failed", "evt_or_2", 1_724_300_000),
        "applied",
    )
    .await;
    let r = expect(
        &env,
        &t,
        &invoice_paid("evt_or_3", 1_724_250_000, 1_726_819_198, CHARGE, INTENT),
        "stale",
    )
    .await;
    assert_eq!(r["license_id"], id.as_str());
    let l = license(&env, &t, &id).await;
    assert_eq!(
        (l["status"].as_str(), l["expires_at"].as_str()),
        (Some("past_due"), None),
        "{l}"
    );
    // ... but it still taught us which charge paid the subscription.
    assert_eq!(
        store(&env, &t)
            .get_stripe_charge(CHARGE)
            .await
            .unwrap()
            .unwrap()
            .subscription_id,
        SUB
    );

    // Cancelled, then a late older invoice.paid: stays cancelled.
    expect(
        &env,
        &t,
        &fixture("customer.subscription.deleted", "evt_or_4", 1_724_400_000),
        "applied",
    )
    .await;
    expect(
        &env,
        &t,
        &invoice_paid("evt_or_5", 1_724_350_000, 1_729_000_000, CHARGE, INTENT),
        "stale",
    )
    .await;
    // Nothing newer reactivates it either.
    expect(
        &env,
        &t,
        &invoice_paid("evt_or_6", 1_724_500_000, 1_729_000_000, CHARGE, INTENT),
        "ignored",
    )
    .await;
    expect(
        &env,
        &t,
        &subscription(
            "customer.subscription.updated",
            "evt_or_7",
            1_724_600_000,
            "active",
            BASIC_PRICE,
        ),
        "ignored",
    )
    .await;
    let l = license(&env, &t, &id).await;
    assert_eq!(
        (l["status"].as_str(), l["expires_at"].as_str()),
        (Some("cancelled"), None)
    );
    // Re-delivery of the cancellation: one effect.
    expect(
        &env,
        &t,
        &fixture("customer.subscription.deleted", "evt_or_4", 1_724_400_000),
        "duplicate",
    )
    .await;
    let applied = audit(&env, &t)
        .await
        .into_iter()
        .filter(|e| e["code"] == "STRIPE.EVENT_APPLIED")
        .count();
    assert_eq!(applied, 3, "checkout, failure, cancellation");
}

#[tokio::test]
async fn refunds_and_disputes_find_their_license_through_the_charge() {
    let env = Env::start().await;
    let t = env.tenant("refunds").await;
    connect(&env, &t).await;
    let (basic, _) = plans(&env, &t).await;
    let id = expect(
        &env,
        &t,
        &checkout("evt_rf_1", 1_724_140_802, Some(&basic)),
        "applied",
    )
    .await["license_id"]
        .as_str()
        .unwrap()
        .to_string();
    let key = license(&env, &t, &id).await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let paid_until = env.app.now().unix_timestamp() + 30 * 86_400;
    expect(
        &env,
        &t,
        &invoice_paid("evt_rf_2", 1_724_140_803, paid_until, CHARGE, INTENT),
        "applied",
    )
    .await;

    // A partial refund changes nothing.
    let mut partial = fixture("charge.refunded", "evt_rf_3", 1_724_200_000);
    partial["data"]["object"]["refunded"] = json!(false);
    partial["data"]["object"]["amount_refunded"] = json!(900);
    expect(&env, &t, &partial, "ignored").await;
    assert_eq!(license(&env, &t, &id).await["status"], "active");

    // A full refund suspends it.
    let r = expect(
        &env,
        &t,
        &fixture("charge.refunded", "evt_rf_4", 1_724_227_198),
        "applied",
    )
    .await;
    assert_eq!(r["license_id"], id.as_str());
    assert_eq!(
        validate(&env, &t, &key, json!({})).await["code"],
        "SUSPENDED"
    );

    // The next payment reinstates it.
    expect(
        &env,
        &t,
        &invoice_paid(
            "evt_rf_5",
            1_726_819_300,
            paid_until + 30 * 86_400,
            "ch_3PqZ2cLkdIwHu7ix0Next01",
            "pi_3PqZ2cLkdIwHu7ix0Next01",
        ),
        "applied",
    )
    .await;
    assert_eq!(validate(&env, &t, &key, json!({})).await["code"], "VALID");

    // A dispute on that payment, found by its payment intent alone, suspends it again.
    let mut dispute = fixture("charge.dispute.created", "evt_rf_6", 1_727_000_000);
    dispute["data"]["object"]["charge"] = json!("ch_unknown_to_us_0000000000");
    dispute["data"]["object"]["payment_intent"] = json!("pi_3PqZ2cLkdIwHu7ix0Next01");
    expect(&env, &t, &dispute, "applied").await;
    let l = license(&env, &t, &id).await;
    assert_eq!(l["status"], "suspended");

    // A charge no invoice.paid named: recorded, ignored.
    let mut stranger = fixture("charge.dispute.created", "evt_rf_7", 1_727_000_100);
    stranger["data"]["object"]["charge"] = json!("ch_3PzzStrangerLkdIwHu7ix00");
    stranger["data"]["object"]["payment_intent"] = json!("pi_3PzzStrangerLkdIwHu7ix00");
    let r = expect(&env, &t, &stranger, "ignored").await;
    assert!(
        r["reason"].as_str().unwrap().contains("unknown charge"),
        "{r}"
    );

    let applied: Vec<String> = audit(&env, &t)
        .await
        .into_iter()
        .filter(|e| e["code"] == "STRIPE.EVENT_APPLIED")
        .map(|e| e["data"]["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        applied,
        [
            "charge.dispute.created",
            "invoice.paid",
            "charge.refunded",
            "invoice.paid",
            "checkout.session.completed"
        ]
    );
}

#[tokio::test]
async fn other_event_types_are_acknowledged_and_recorded() {
    let env = Env::start().await;
    let t = env.tenant("others").await;
    connect(&env, &t).await;
    let ev = fixture("customer.created", "evt_other_1", 1_724_140_753);
    let r = expect(&env, &t, &ev, "ignored").await;
    assert_eq!(r["reason"], "event type not handled");
    let rec = store(&env, &t)
        .get_stripe_event("evt_other_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (rec.event_type.as_str(), rec.outcome.as_str()),
        ("customer.created", "ignored")
    );
    expect(&env, &t, &ev, "duplicate").await;
    // An invoice that is not for a subscription, and a subscription event for
    // one that has no checkout yet.
    let mut inv = invoice_paid("evt_other_2", 1_724_140_800, 1_726_819_198, CHARGE, INTENT);
    let o = &mut inv["data"]["object"];
    o["subscription"] = Value::Null;
    o["lines"]["data"][0]["subscription"] = Value::Null;
    expect(&env, &t, &inv, "ignored").await;
    let r = expect(
        &env,
        &t,
        &subscription(
            "customer.subscription.updated",
            "evt_other_3",
            1_724_140_800,
            "past_due",
            PRO_PRICE,
        ),
        "pending",
    )
    .await;
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("checkout.session.completed"),
        "{r}"
    );
    assert!(licenses_of(&env, &t, EMAIL).await.is_empty());
}

#[tokio::test]
async fn a_refused_attempt_is_not_marked_done_so_stripes_retry_applies_it() {
    let env = Env::start().await;
    let t = env.tenant("retry").await;
    connect(&env, &t).await;
    let (basic, _) = plans(&env, &t).await;
    let tid = TenantId::parse(t.id.as_str()).unwrap();
    let ev = checkout("evt_rt_1", 1_724_140_802, Some(&basic));

    // A dependency down: 503 (Stripe retries), nothing recorded.
    let mut broken = env.clients.clone();
    let sdk = shared::aws::sdk_config().await;
    broken.dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url("http://127.0.0.1:9")
            .build(),
    );
    let down = shared::app::App::build(
        env.config.clone(),
        broken,
        std::sync::Arc::new(shared::clock::SystemClock),
    )
    .await
    .unwrap();
    let body = serde_json::to_vec(&ev).unwrap();
    let sig = signature(SECRET, env.app.now().unix_timestamp(), &body);
    let req = http_request(&t.id, &sig, &body);
    let resp = stripe_webhook::handler(&down, req).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());

    // The tenant suspended: 403, not recorded; reactivated, Stripe's retry applies it.
    use shared::domain::TenantStatus::{Active, Suspended};
    assert!(env
        .app
        .store
        .set_tenant_status(&tid, &[Active], Suspended, env.app.now(), None)
        .await
        .unwrap());
    let r = deliver(&env, &t, &ev).await;
    assert_eq!((r.status, r.code()), (403, "TENANT_INACTIVE"), "{r:?}");
    assert!(store(&env, &t)
        .get_stripe_event("evt_rt_1")
        .await
        .unwrap()
        .is_none());
    assert!(env
        .app
        .store
        .set_tenant_status(&tid, &[Suspended], Active, env.app.now(), None)
        .await
        .unwrap());
    expect(&env, &t, &ev, "applied").await;
}

/// An API Gateway (HTTP API v2) event as Stripe's delivery arrives at the function.
fn http_request(tenant: &str, sig: &str, body: &[u8]) -> lambda_http::Request {
    let raw = harness::event(
        "stripe-webhook.json",
        &[("TENANT_ID", tenant), ("STRIPE_SIGNATURE", sig)],
    );
    let mut v: Value = serde_json::from_str(&raw).unwrap();
    v["body"] = json!(std::str::from_utf8(body).unwrap());
    lambda_http::request::from_str(&v.to_string()).unwrap()
}

#[tokio::test]
async fn the_function_verifies_the_gateway_body_as_received() {
    let env = Env::start().await;
    let t = env.tenant("gateway").await;
    connect(&env, &t).await;
    let (basic, _) = plans(&env, &t).await;
    // Stripe's bytes, with its own spacing: verified as received, not re-serialised.
    let pretty =
        serde_json::to_vec_pretty(&checkout("evt_gw_1", 1_724_140_802, Some(&basic))).unwrap();
    let sig = signature(SECRET, env.app.now().unix_timestamp(), &pretty);
    let resp = stripe_webhook::handler(&env.app, http_request(&t.id, &sig, &pretty)).await;
    assert_eq!(resp.status(), 200);
    let body: Value = match resp.body() {
        lambda_http::Body::Text(s) => serde_json::from_str(s).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(body["data"]["outcome"], "applied");
    assert_eq!(body["meta"]["request_id"], "req_Kz3oHiR8pBNEW1R=");
    // The function answers only its own route.
    let req = lambda_http::request::from_str(&harness::event(
        "validate.json",
        &[
            ("LICENSE_KEY", "ABCDEFGH12"),
            ("INTEGRATION_KEY", "x"),
            ("FINGERPRINT", "f"),
        ],
    ))
    .unwrap();
    assert_eq!(stripe_webhook::handler(&env.app, req).await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_events_of_one_subscription_issue_one_license_and_the_newest_state_wins() {
    let env = Env::start().await;
    let t = env.tenant("racers").await;
    connect(&env, &t).await;
    let (basic, _) = plans(&env, &t).await;

    // Ten different checkout events for one subscription at once: the
    // subscription record's license_id guard lets exactly one issue.
    let evs: Vec<Value> = (0..10)
        .map(|i| checkout(&format!("evt_race_co_{i}"), 1_724_140_802 + i, Some(&basic)))
        .collect();
    let results = futures::future::join_all(evs.iter().map(|ev| deliver(&env, &t, ev))).await;
    let outcomes: Vec<&str> = results
        .iter()
        .map(|r| r.data()["outcome"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "applied").count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "ignored").count(),
        9,
        "{results:?}"
    );
    let ids: std::collections::HashSet<&str> = results
        .iter()
        .map(|r| r.data()["license_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(licenses_of(&env, &t, EMAIL).await.len(), 1);
    let id = ids.into_iter().next().unwrap().to_string();

    // Old and new subscription states delivered at once, in scrambled order:
    // whatever order they commit in, the newest (unpaid at t+9) is what stays.
    let statuses = [
        "active", "past_due", "active", "past_due", "active", "trialing", "past_due", "active",
        "active", "unpaid",
    ];
    let mut evs: Vec<Value> = statuses
        .iter()
        .enumerate()
        .map(|(i, st)| {
            subscription(
                "customer.subscription.updated",
                &format!("evt_race_su_{i}"),
                1_724_300_000 + i as i64,
                st,
                BASIC_PRICE,
            )
        })
        .collect();
    evs.reverse();
    evs.swap(2, 7);
    let results = futures::future::join_all(evs.iter().map(|ev| deliver(&env, &t, ev))).await;
    assert!(
        results.iter().all(|r| r.status == 200
            && ["applied", "stale"].contains(&r.data()["outcome"].as_str().unwrap())),
        "{results:?}"
    );
    let l = license(&env, &t, &id).await;
    assert_eq!(
        l["status"], "suspended",
        "the newest event (unpaid) wins: {l}"
    );
}

// ------------------------------------------------------------ quantity, one-off purchases

async fn deactivate(env: &Env, t: &Tenant, key: &str, fingerprint: &str) {
    let r = env.deactivate(t, key, fingerprint).await;
    assert_eq!(r.status, 200, "{r:?}");
}

fn codes_for(events: &[Value], code: &str, target: &str) -> usize {
    events
        .iter()
        .filter(|e| e["code"] == code && e["target_id"] == target)
        .count()
}

const SEAT_PRICE: &str = "price_1PqQz8LkdIwHu7ixPerSeat01";

#[tokio::test]
async fn the_seats_are_the_policys_seats_times_the_quantity_on_issue_and_on_every_update() {
    let env = Env::start().await;
    let t = env.tenant("quantity").await;
    connect(&env, &t).await;
    let (basic, pro) = plans(&env, &t).await;
    // A per-seat plan: one seat per unit bought.
    let body = json!({ "product": "studio", "name": "Per seat", "max_activations": 1,
                       "grace_period_days": 3, "stripe_price_ids": [SEAT_PRICE] });
    let p = env.post("/v1/manage/policies", &t.admin, body).await;
    assert_eq!(p.status, 201, "{p:?}");
    let per_seat = p.data()["id"].as_str().unwrap().to_string();

    // The subscription (pro, "5 seats", quantity 1) first, then the
    // checkout: pro's entitlements and pro's 5 seats (5 × 1, not 1).
    let created = with_quantity(
        subscription(
            "customer.subscription.created",
            "evt_q_1",
            1_724_140_798,
            "active",
            PRO_PRICE,
        ),
        json!(1),
    );
    expect(&env, &t, &created, "pending").await;
    let issued = expect(
        &env,
        &t,
        &checkout("evt_q_2", 1_724_140_802, None),
        "applied",
    )
    .await;
    let id = issued["license_id"].as_str().unwrap().to_string();
    let l = license(&env, &t, &id).await;
    assert_eq!(
        (l["policy"].as_str(), &l["seats"]["limit"]),
        (Some(pro.as_str()), &json!(5)),
        "a 5-seat plan bought once is 5 seats: {l}"
    );
    let key = l["key"].as_str().unwrap().to_string();

    // Six machines on five seats: five in, the sixth refused.
    let mut statuses = Vec::new();
    for m in 1..=6 {
        statuses.push(env.activate(&t, &key, &format!("m{m}")).await);
    }
    assert_eq!(
        statuses.iter().map(|r| r.status).collect::<Vec<_>>(),
        [201, 201, 201, 201, 201, 409],
        "{statuses:?}"
    );
    assert_eq!(statuses[5].code(), "TOO_MANY_ACTIVATIONS");

    // A quantity change alone (same price, same status) is applied: two
    // of the 5-seat plan are 10 seats, and m6 gets in.
    let up = with_quantity(
        subscription(
            "customer.subscription.updated",
            "evt_q_3",
            1_724_200_000,
            "active",
            PRO_PRICE,
        ),
        json!(2),
    );
    expect(&env, &t, &up, "applied").await;
    assert_eq!(license(&env, &t, &id).await["seats"]["limit"], 10);
    assert_eq!(env.activate(&t, &key, "m6").await.status, 201);
    let events = audit(&env, &t).await;
    assert_eq!(
        codes_for(&events, "LICENSE.UPDATED", &id),
        1,
        "a seat change writes LICENSE.UPDATED (actor stripe): {events:?}"
    );
    assert!(events
        .iter()
        .any(|e| e["code"] == "STRIPE.EVENT_APPLIED" && e["data"]["max_activations"] == 10));

    // The same quantity again changes nothing new: no second LICENSE.UPDATED.
    let same = with_quantity(
        subscription(
            "customer.subscription.updated",
            "evt_q_4",
            1_724_200_100,
            "active",
            PRO_PRICE,
        ),
        json!(2),
    );
    expect(&env, &t, &same, "applied").await;
    assert_eq!(codes_for(&audit(&env, &t).await, "LICENSE.UPDATED", &id), 1);

    // Back to one (5 seats) with 6 in use: the activations stay, new ones
    // are refused until fewer than 5 are in use.
    let down = with_quantity(
        subscription(
            "customer.subscription.updated",
            "evt_q_5",
            1_724_200_200,
            "active",
            PRO_PRICE,
        ),
        json!(1),
    );
    expect(&env, &t, &down, "applied").await;
    let l = license(&env, &t, &id).await;
    assert_eq!(
        (&l["seats"]["limit"], &l["seats"]["used"]),
        (&json!(5), &json!(6))
    );
    assert_eq!(
        validate(&env, &t, &key, json!({ "fingerprint": "m1" })).await["code"],
        "VALID",
        "existing activations keep working"
    );
    assert_eq!(env.activate(&t, &key, "m7").await.status, 409);
    deactivate(&env, &t, &key, "m6").await;
    assert_eq!(
        env.activate(&t, &key, "m7").await.status,
        409,
        "5 in use of 5"
    );
    deactivate(&env, &t, &key, "m5").await;
    assert_eq!(env.activate(&t, &key, "m7").await.status, 201);

    // A downgrade to basic's price (2 seats) at quantity 3: basic's
    // entitlements, 6 seats.
    let plan = with_quantity(
        subscription(
            "customer.subscription.updated",
            "evt_q_6",
            1_724_200_300,
            "active",
            BASIC_PRICE,
        ),
        json!(3),
    );
    expect(&env, &t, &plan, "applied").await;
    let l = license(&env, &t, &id).await;
    assert_eq!(
        (l["policy"].as_str(), &l["seats"]["limit"]),
        (Some(basic.as_str()), &json!(6))
    );

    // Out-of-bounds or malformed quantities, and a product over the seat
    // bound (2 × 500,001): recorded as ignored, with the reason; nothing moves.
    for (n, (bad, why)) in [
        (json!(0), "not a whole number from 1 to 1000000"),
        (json!(1_000_001), "not a whole number from 1 to 1000000"),
        (json!(-3), "not a whole number from 1 to 1000000"),
        (json!("7"), "not a whole number from 1 to 1000000"),
        (json!(2.5), "not a whole number from 1 to 1000000"),
        (json!(500_001), "more than 1000000 seats"),
    ]
    .into_iter()
    .enumerate()
    {
        let ev = with_quantity(
            subscription(
                "customer.subscription.updated",
                &format!("evt_q_bad_{n}"),
                1_724_300_000 + n as i64,
                "past_due",
                BASIC_PRICE,
            ),
            bad.clone(),
        );
        let r = expect(&env, &t, &ev, "ignored").await;
        assert!(r["reason"].as_str().unwrap().contains(why), "{bad}: {r}");
    }
    let l = license(&env, &t, &id).await;
    assert_eq!(
        (
            l["status"].as_str(),
            l["policy"].as_str(),
            &l["seats"]["limit"]
        ),
        (Some("active"), Some(basic.as_str()), &json!(6))
    );
    assert!(store(&env, &t)
        .get_stripe_event("evt_q_bad_0")
        .await
        .unwrap()
        .is_some_and(|r| r.reason.is_some()));

    // The per-seat plan: one seat per unit, 20 at quantity 20, and the
    // upper bound itself is accepted.
    for (n, (q, seats)) in [(20, 20), (1_000_000, 1_000_000)].into_iter().enumerate() {
        let ev = with_quantity(
            subscription(
                "customer.subscription.updated",
                &format!("evt_q_seat_{n}"),
                1_724_400_000 + n as i64,
                "active",
                SEAT_PRICE,
            ),
            json!(q),
        );
        expect(&env, &t, &ev, "applied").await;
        let l = license(&env, &t, &id).await;
        assert_eq!(
            (l["policy"].as_str(), &l["seats"]["limit"]),
            (Some(per_seat.as_str()), &json!(seats))
        );
    }

    // Checkout first with a named policy, then the real fixture's item
    // (pro, quantity 1): pro's 5 seats throughout.
    let sub2 = "sub_1PqR9zLkdIwHu7ixQuantity1";
    let mut co = checkout("evt_q_8", 1_724_140_802, Some(&pro));
    co["data"]["object"]["subscription"] = json!(sub2);
    co["data"]["object"]["customer_details"]["email"] = json!("dee@example.com");
    let id2 = expect(&env, &t, &co, "applied").await["license_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        license(&env, &t, &id2).await["seats"]["limit"],
        5,
        "the policy's seats until an item's quantity is seen"
    );
    let mut real = fixture("customer.subscription.created", "evt_q_9", 1_724_140_803);
    real["data"]["object"]["id"] = json!(sub2);
    real["data"]["object"]["status"] = json!("active");
    expect(&env, &t, &real, "applied").await;
    assert_eq!(license(&env, &t, &id2).await["seats"]["limit"], 5);

    // A subscription checkout with its line items expanded: their quantity
    // times the policy's seats, at once or (kept on the subscription
    // record) when the price arrives in an event whose item has no quantity.
    let mut co = checkout("evt_q_10", 1_724_140_802, None);
    co["data"]["object"]["subscription"] = json!("sub_1PqR9zLkdIwHu7ixLineItem1");
    co["data"]["object"]["customer_details"]["email"] = json!("eve@example.com");
    co["data"]["object"]["line_items"] =
        json!({ "data": [{ "price": { "id": PRO_PRICE }, "quantity": 4 }] });
    let now = expect(&env, &t, &co, "applied").await;
    assert_eq!(
        license(&env, &t, now["license_id"].as_str().unwrap()).await["seats"]["limit"],
        20
    );
    let sub4 = "sub_1PqR9zLkdIwHu7ixLineItem2";
    let mut co = checkout("evt_q_11", 1_724_140_802, None);
    co["data"]["object"]["subscription"] = json!(sub4);
    co["data"]["object"]["customer_details"]["email"] = json!("fay@example.com");
    co["data"]["object"]["line_items"] = json!({ "data": [{ "quantity": 6 }] });
    expect(&env, &t, &co, "pending").await;
    let mut sc = subscription(
        "customer.subscription.created",
        "evt_q_12",
        1_724_140_798,
        "active",
        PRO_PRICE,
    );
    sc["data"]["object"]["id"] = json!(sub4);
    let later = expect(&env, &t, &sc, "applied").await;
    assert_eq!(
        license(&env, &t, later["license_id"].as_str().unwrap()).await["seats"]["limit"],
        30
    );
}

/// A `mode: payment` checkout for `session`, with expanded line items when `price` is given.
fn one_off(id: &str, created: i64, session: &str, price: Option<&str>, quantity: Value) -> Value {
    let mut ev = fixture("checkout.session.completed.payment", id, created);
    let o = &mut ev["data"]["object"];
    o["id"] = json!(session);
    match price {
        Some(p) => {
            o["line_items"]["data"][0]["price"]["id"] = json!(p);
            o["line_items"]["data"][0]["quantity"] = quantity;
        }
        None => o["line_items"] = Value::Null,
    }
    ev
}

const PERPETUAL_PRICE: &str = "price_1PqS1xLkdIwHu7ixPerp3tL1";
const CAM: &str = "cam.buyer@example.com";

/// A policy sold once at `PERPETUAL_PRICE` (a 30-day duration, 1 seat).
async fn perpetual_plan(env: &Env, t: &Tenant) -> String {
    let body = json!({ "product": "studio", "name": "Perpetual", "max_activations": 1,
                       "duration_days": 30, "entitlements": { "export-4k": { "type": "boolean" } },
                       "stripe_price_ids": [PERPETUAL_PRICE] });
    let p = env.post("/v1/manage/policies", &t.admin, body).await;
    assert_eq!(p.status, 201, "{p:?}");
    p.data()["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_one_off_checkout_issues_a_perpetual_license_once_per_session() {
    let env = Env::start().await;
    let t = env.tenant("oneoff").await;
    connect(&env, &t).await;
    let (basic, _) = plans(&env, &t).await;
    let perpetual = perpetual_plan(&env, &t).await;

    // The fixture as is: the line item's price names the policy (1 seat);
    // quantity 3 buys 3 of it.
    let ev = fixture(
        "checkout.session.completed.payment",
        "evt_oo_1",
        1_724_150_000,
    );
    let session = ev["data"]["object"]["id"].as_str().unwrap().to_string();
    let r = expect(&env, &t, &ev, "applied").await;
    let id = r["license_id"].as_str().unwrap().to_string();
    let l = license(&env, &t, &id).await;
    assert_eq!(
        (
            l["policy"].as_str(),
            l["status"].as_str(),
            l["customer_email"].as_str(),
            &l["expires_at"],
            &l["seats"]["limit"]
        ),
        (
            Some(perpetual.as_str()),
            Some("active"),
            Some(CAM),
            &Value::Null,
            &json!(3)
        ),
        "perpetual despite the policy's 30 days: {l}"
    );
    let key = l["key"].as_str().unwrap().to_string();
    assert_eq!(validate(&env, &t, &key, json!({})).await["code"], "VALID");
    let events = audit(&env, &t).await;
    let created: Vec<&Value> = events
        .iter()
        .filter(|e| e["code"] == "LICENSE.CREATED" && e["target_id"] == id.as_str())
        .collect();
    assert_eq!(created.len(), 1, "{events:?}");
    assert_eq!(created[0]["actor"], "stripe");
    assert_eq!(
        created[0]["data"]["stripe_checkout_session_id"],
        session.as_str()
    );
    assert_eq!(codes_for(&events, "STRIPE.EVENT_APPLIED", &id), 1);
    let link = store(&env, &t)
        .get_stripe_checkout(&session)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        link.license_id.as_ref().map(|l| l.as_str()),
        Some(id.as_str())
    );

    // The same event again: duplicate; another event for the same session: ignored, same license.
    assert_eq!(
        expect(&env, &t, &ev, "duplicate").await["license_id"],
        id.as_str()
    );
    let other = expect(
        &env,
        &t,
        &one_off(
            "evt_oo_2",
            1_724_150_100,
            &session,
            Some(PERPETUAL_PRICE),
            json!(3),
        ),
        "ignored",
    )
    .await;
    assert_eq!(other["license_id"], id.as_str());
    assert!(other["reason"]
        .as_str()
        .unwrap()
        .contains("already has a license"));
    assert_eq!(licenses_of(&env, &t, CAM).await.len(), 1);

    // metadata.policy on the session wins over the price; no quantity: the policy's seats.
    let mut named = one_off(
        "evt_oo_3",
        1_724_150_200,
        "cs_test_named01",
        None,
        Value::Null,
    );
    named["data"]["object"]["metadata"] = json!({ "policy": basic });
    let l = license(
        &env,
        &t,
        expect(&env, &t, &named, "applied").await["license_id"]
            .as_str()
            .unwrap(),
    )
    .await;
    assert_eq!(
        (l["policy"].as_str(), &l["seats"]["limit"], &l["expires_at"]),
        (Some(basic.as_str()), &json!(2), &Value::Null)
    );

    // An expanded price's metadata.policy names the policy.
    let mut by_meta = one_off(
        "evt_oo_4",
        1_724_150_300,
        "cs_test_pricemeta01",
        Some("price_1PqS9xLkdIwHu7ixUnlisted"),
        json!(1),
    );
    by_meta["data"]["object"]["line_items"]["data"][0]["price"]["metadata"] =
        json!({ "policy": basic });
    let l = license(
        &env,
        &t,
        expect(&env, &t, &by_meta, "applied").await["license_id"]
            .as_str()
            .unwrap(),
    )
    .await;
    assert_eq!(
        (l["policy"].as_str(), &l["seats"]["limit"]),
        (Some(basic.as_str()), &json!(2)),
        "basic's 2 seats × quantity 1"
    );

    // What cannot issue is recorded as ignored, with the reason.
    let cases: Vec<(Value, &str)> = vec![
        (
            one_off("evt_oo_5", 1, "cs_test_nopolicy01", None, Value::Null),
            "names no policy",
        ),
        (
            one_off(
                "evt_oo_6",
                1,
                "cs_test_unlisted01",
                Some("price_1PqS9xLkdIwHu7ixUnlisted"),
                json!(1),
            ),
            "no policy lists price price_1PqS9xLkdIwHu7ixUnlisted",
        ),
        (
            {
                let mut e = one_off("evt_oo_7", 1, "cs_test_noemail01", None, Value::Null);
                e["data"]["object"]["metadata"] = json!({ "policy": basic });
                e["data"]["object"]["customer_details"]["email"] = Value::Null;
                e
            },
            "no usable customer e-mail",
        ),
        (
            {
                let mut e = one_off("evt_oo_8", 1, "cs_test_ghost01", None, Value::Null);
                e["data"]["object"]["metadata"] =
                    json!({ "policy": "pol_01j5xk3v2m8n4p6q7r9s0t1u2v" });
                e
            },
            "names no policy of this tenant",
        ),
        (
            one_off(
                "evt_oo_9",
                1,
                "cs_test_badqty01",
                Some(PERPETUAL_PRICE),
                json!(0),
            ),
            "not a whole number from 1 to 1000000",
        ),
        (
            one_off("evt_oo_10", 1, "cs#bad", Some(PERPETUAL_PRICE), json!(1)),
            "session id is not well-formed",
        ),
    ];
    for (ev, why) in cases {
        let r = expect(&env, &t, &ev, "ignored").await;
        assert!(r["reason"].as_str().unwrap().contains(why), "{why}: {r}");
        assert!(r["license_id"].is_null(), "{r}");
    }
    let tenant = env
        .app
        .store
        .get_tenant(&TenantId::parse(t.id.as_str()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tenant.licenses_issued, 3);
}

/// A checkout paid by a delayed method (a bank debit) completes with
/// `payment_status: unpaid`: nothing is issued until
/// `checkout.session.async_payment_succeeded`, and a failed payment issues
/// nothing at all.
#[tokio::test]
async fn an_unpaid_checkout_issues_nothing_until_its_payment_succeeds() {
    let env = Env::start().await;
    let t = env.tenant("asyncpay").await;
    connect(&env, &t).await;
    let (basic, _) = plans(&env, &t).await;
    let perpetual = perpetual_plan(&env, &t).await;

    // A one-off checkout, completed but not paid yet: pending, no license.
    let mut done = fixture(
        "checkout.session.completed.payment",
        "evt_ap_1",
        1_724_150_000,
    );
    done["data"]["object"]["payment_status"] = json!("unpaid");
    let session = done["data"]["object"]["id"].as_str().unwrap().to_string();
    let r = expect(&env, &t, &done, "pending").await;
    assert!(r["license_id"].is_null(), "{r}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("checkout.session.async_payment_succeeded"),
        "{r}"
    );
    assert!(
        licenses_of(&env, &t, CAM).await.is_empty(),
        "nothing issued"
    );
    assert!(store(&env, &t)
        .get_stripe_checkout(&session)
        .await
        .unwrap()
        .and_then(|c| c.license_id)
        .is_none());

    // Its payment succeeds: the session (as the later event carries it; a
    // webhook has no line items, so the policy is named) issues the license.
    let mut paid = fixture(
        "checkout.session.async_payment_succeeded",
        "evt_ap_2",
        1_724_322_800,
    );
    let o = &mut paid["data"]["object"];
    o["id"] = json!(session);
    o["customer_details"]["email"] = json!(CAM);
    o["metadata"] = json!({ "policy": perpetual });
    let r = expect(&env, &t, &paid, "applied").await;
    let id = r["license_id"].as_str().unwrap().to_string();
    let l = license(&env, &t, &id).await;
    assert_eq!(
        (l["policy"].as_str(), l["status"].as_str(), &l["expires_at"]),
        (Some(perpetual.as_str()), Some("active"), &Value::Null),
        "{l}"
    );
    expect(&env, &t, &paid, "duplicate").await;
    expect(&env, &t, &done, "duplicate").await;
    assert_eq!(licenses_of(&env, &t, CAM).await.len(), 1);

    // Another session whose payment fails: pending, then ignored; no license.
    let mut done = fixture(
        "checkout.session.completed.payment",
        "evt_ap_4",
        1_724_150_000,
    );
    let dan_session = "cs_test_a1Bk7DlY3nQ8sT2vX6zB4cE9fH0jK5mP1rS3uW7yA2dF6gI8kL0nO4";
    done["data"]["object"]["id"] = json!(dan_session);
    done["data"]["object"]["customer_details"]["email"] = json!("dan.buyer@example.com");
    done["data"]["object"]["payment_status"] = json!("unpaid");
    expect(&env, &t, &done, "pending").await;
    let mut failed = fixture(
        "checkout.session.async_payment_failed",
        "evt_ap_5",
        1_724_322_800,
    );
    failed["data"]["object"]["metadata"] = json!({ "policy": perpetual });
    let r = expect(&env, &t, &failed, "ignored").await;
    assert!(r["license_id"].is_null(), "{r}");
    assert!(r["reason"].as_str().unwrap().contains("failed"), "{r}");
    assert!(licenses_of(&env, &t, "dan.buyer@example.com")
        .await
        .is_empty());
    assert!(store(&env, &t)
        .get_stripe_event("evt_ap_5")
        .await
        .unwrap()
        .is_some());

    // Nothing to pay (a 100 % coupon): issued at completion.
    let mut free = one_off(
        "evt_ap_6",
        1_724_150_100,
        "cs_test_freecoupon01",
        Some(PERPETUAL_PRICE),
        json!(1),
    );
    free["data"]["object"]["payment_status"] = json!("no_payment_required");
    free["data"]["object"]["customer_details"]["email"] = json!("free@example.com");
    expect(&env, &t, &free, "applied").await;
    assert_eq!(licenses_of(&env, &t, "free@example.com").await.len(), 1);

    // A session that has a license all the same (issued before unpaid
    // checkouts waited for their payment): its failed payment suspends it.
    let mut legacy = one_off(
        "evt_ap_9",
        1_724_150_200,
        "cs_test_legacy01",
        Some(PERPETUAL_PRICE),
        json!(1),
    );
    legacy["data"]["object"]["customer_details"]["email"] = json!("old@example.com");
    let lid = expect(&env, &t, &legacy, "applied").await["license_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut failed = fixture(
        "checkout.session.async_payment_failed",
        "evt_ap_10",
        1_724_322_900,
    );
    failed["data"]["object"]["id"] = json!("cs_test_legacy01");
    let r = expect(&env, &t, &failed, "applied").await;
    assert_eq!(r["license_id"], lid.as_str());
    assert_eq!(license(&env, &t, &lid).await["status"], "suspended");

    // A subscription checkout paid by bank debit: the same rule.
    let mut co = checkout("evt_ap_7", 1_724_140_802, Some(&basic));
    co["data"]["object"]["payment_status"] = json!("unpaid");
    expect(&env, &t, &co, "pending").await;
    assert!(licenses_of(&env, &t, EMAIL).await.is_empty());
    let mut ok = co.clone();
    ok["id"] = json!("evt_ap_8");
    ok["type"] = json!("checkout.session.async_payment_succeeded");
    ok["created"] = json!(1_724_322_800);
    ok["data"]["object"]["payment_status"] = json!("paid");
    let r = expect(&env, &t, &ok, "applied").await;
    let l = license(&env, &t, r["license_id"].as_str().unwrap()).await;
    assert_eq!(
        (l["policy"].as_str(), l["status"].as_str()),
        (Some(basic.as_str()), Some("active"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_off_checkouts_issue_one_license_per_session() {
    let env = Env::start().await;
    let t = env.tenant("oneoffherd").await;
    connect(&env, &t).await;
    plans(&env, &t).await;
    perpetual_plan(&env, &t).await;

    let outcomes = |rs: &[Resp]| -> Vec<String> {
        assert!(rs.iter().all(|r| r.status == 200), "{rs:?}");
        rs.iter()
            .map(|r| r.data()["outcome"].as_str().unwrap().to_string())
            .collect()
    };
    let count = |os: &[String], o: &str| os.iter().filter(|x| *x == o).count();
    let license_ids = |rs: &[Resp]| -> std::collections::HashSet<String> {
        rs.iter()
            .map(|r| r.data()["license_id"].as_str().unwrap().to_string())
            .collect()
    };

    // Ten deliveries of one event at once: one applied, nine duplicates.
    let ev = one_off(
        "evt_ooh_1",
        1_724_150_000,
        "cs_test_herd_a",
        Some(PERPETUAL_PRICE),
        json!(2),
    );
    let rs = futures::future::join_all((0..10).map(|_| deliver(&env, &t, &ev))).await;
    let os = outcomes(&rs);
    assert_eq!(
        (count(&os, "applied"), count(&os, "duplicate")),
        (1, 9),
        "{os:?}"
    );
    assert_eq!(
        license_ids(&rs).len(),
        1,
        "every answer names the one license"
    );

    // Ten deliveries of two event ids for one session, interleaved: still one license.
    let evs = [
        one_off(
            "evt_ooh_2",
            1_724_150_010,
            "cs_test_herd_b",
            Some(PERPETUAL_PRICE),
            json!(2),
        ),
        one_off(
            "evt_ooh_3",
            1_724_150_011,
            "cs_test_herd_b",
            Some(PERPETUAL_PRICE),
            json!(2),
        ),
    ];
    let rs = futures::future::join_all((0..10).map(|i| deliver(&env, &t, &evs[i % 2]))).await;
    let os = outcomes(&rs);
    assert_eq!(
        (
            count(&os, "applied"),
            count(&os, "ignored"),
            count(&os, "duplicate")
        ),
        (1, 1, 8),
        "{os:?}"
    );
    assert_eq!(license_ids(&rs).len(), 1, "{rs:?}");

    assert_eq!(licenses_of(&env, &t, CAM).await.len(), 2, "one per session");
    let tenant = env
        .app
        .store
        .get_tenant(&TenantId::parse(t.id.as_str()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tenant.licenses_issued, 2);
    let events = audit(&env, &t).await;
    let created = events
        .iter()
        .filter(|e| e["code"] == "LICENSE.CREATED")
        .count();
    assert_eq!(created, 2, "{events:?}");
}

#[tokio::test]
async fn invoice_payment_succeeded_renews_and_reinstates_like_invoice_paid() {
    let start = datetime!(2026-05-10 08:00 UTC);
    let env = Env::with_clock(start).await;
    let t = env.tenant("succeeded").await;
    connect(&env, &t).await;
    let (basic, _) = plans(&env, &t).await;
    let base = start.unix_timestamp();
    let id = expect(
        &env,
        &t,
        &checkout("evt_ps_1", base - 10, Some(&basic)),
        "applied",
    )
    .await["license_id"]
        .as_str()
        .unwrap()
        .to_string();

    // The fixture, as Stripe sends it: expires at the paid period's end.
    let succeeded = |id: &str, created: i64, period_end: i64, charge: &str| {
        let mut ev = invoice_paid(id, created, period_end, charge, INTENT);
        ev["type"] = json!("invoice.payment_succeeded");
        ev
    };
    let period_end = base + 30 * 86_400;
    let first = succeeded("evt_ps_2", base - 5, period_end, CHARGE);
    assert_eq!(
        fixture("invoice.payment_succeeded", "x", 0)["type"],
        "invoice.payment_succeeded"
    );
    expect(&env, &t, &first, "applied").await;
    assert_eq!(
        license(&env, &t, &id).await["expires_at"],
        "2026-06-09T08:00:00.000Z"
    );

    // A failure, then payment_succeeded: active again, renewed, grace gone.
    expect(
        &env,
        &t,
        &fixture("invoice.payment_failed", "evt_ps_3", base),
        "applied",
    )
    .await;
    assert_eq!(license(&env, &t, &id).await["status"], "past_due");
    let renewal = succeeded(
        "evt_ps_4",
        base + 60,
        period_end + 30 * 86_400,
        "ch_3PqRsuccLkdIwHu7ix0002",
    );
    expect(&env, &t, &renewal, "applied").await;
    let l = license(&env, &t, &id).await;
    assert_eq!(
        (
            l["status"].as_str(),
            l["expires_at"].as_str(),
            l["grace_until"].as_str()
        ),
        (Some("active"), Some("2026-07-09T08:00:00.000Z"), None)
    );
    let events = audit(&env, &t).await;
    assert_eq!(codes_for(&events, "LICENSE.RESUMED", &id), 1, "{events:?}");
    assert_eq!(codes_for(&events, "LICENSE.RENEWED", &id), 1, "{events:?}");

    // Its charge is remembered, as with invoice.paid: a full refund of it suspends the license.
    let mut refund = fixture("charge.refunded", "evt_ps_5", base + 120);
    refund["data"]["object"]["id"] = json!("ch_3PqRsuccLkdIwHu7ix0002");
    refund["data"]["object"]["payment_intent"] = Value::Null;
    expect(&env, &t, &refund, "applied").await;
    assert_eq!(license(&env, &t, &id).await["status"], "suspended");

    // Stripe sends invoice.paid for the same invoice too: same effect, no second renewal.
    let mut twin = invoice_paid(
        "evt_ps_6",
        base + 180,
        period_end + 30 * 86_400,
        "ch_3PqRsuccLkdIwHu7ix0002",
        INTENT,
    );
    twin["type"] = json!("invoice.paid");
    expect(&env, &t, &twin, "applied").await;
    let l = license(&env, &t, &id).await;
    assert_eq!(
        (l["status"].as_str(), l["expires_at"].as_str()),
        (Some("active"), Some("2026-07-09T08:00:00.000Z"))
    );
    assert_eq!(codes_for(&audit(&env, &t).await, "LICENSE.RENEWED", &id), 1);
}
