use harness::Env;
use serde_json::json;
use time::macros::datetime;

#[tokio::test]
async fn every_validation_code() {
    let env = Env::with_clock(datetime!(2026-03-01 12:00 UTC)).await;
    let t = env.tenant("codes").await;
    let (_, lic) = env
        .license(&t, 2, json!({ "export-4k": { "type": "boolean" } }))
        .await;
    let key = lic["key"].as_str().unwrap();
    let v = |body| {
        let env = &env;
        let t = &t;
        async move { env.validate(t, key, body).await }
    };

    // Any key validates with 200: one that cannot exist (bad characters) is not found either.
    for missing in ["NO-SUCH-KEY-12345", "short", "has%20spaces%21"] {
        let r = env.validate(&t, missing, json!({})).await;
        assert_eq!(
            (
                r.status,
                r.data()["code"].as_str(),
                r.data()["valid"].as_bool()
            ),
            (200, Some("NOT_FOUND"), Some(false)),
            "{missing}: {r:?}"
        );
        assert!(r.data()["license"].is_null());
    }

    let r = v(json!({})).await;
    assert_eq!(r.data()["code"], "VALID", "{r:?}");
    assert_eq!(r.data()["valid"], true);
    assert_eq!(
        r.data()["license"]["seats"],
        json!({ "limit": 2, "used": 0 })
    );
    assert_eq!(r.data()["license"]["entitlements"]["export-4k"], true);

    assert_eq!(
        v(json!({ "product": "other" })).await.data()["code"],
        "PRODUCT_MISMATCH"
    );
    assert_eq!(
        v(json!({ "fingerprint": "m1" })).await.data()["code"],
        "NO_ACTIVATION"
    );
    assert_eq!(
        v(json!({ "entitlements": ["export-8k"] })).await.data()["code"],
        "ENTITLEMENTS_MISSING"
    );
    assert_eq!(
        v(json!({ "entitlements": ["export-4k"] })).await.data()["code"],
        "VALID"
    );

    let a = env.activate(&t, key, "m1").await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(
        v(json!({ "fingerprint": "m1", "product": lic["product"] }))
            .await
            .data()["code"],
        "VALID"
    );

    let id = lic["id"].as_str().unwrap();
    let s = env
        .post(
            &format!("/v1/manage/licenses/{id}/suspend"),
            &t.admin,
            json!({}),
        )
        .await;
    assert_eq!(
        (s.status, s.data()["status"].as_str()),
        (200, Some("suspended")),
        "{s:?}"
    );
    // Suspension outranks everything after it.
    let r = v(json!({ "fingerprint": "nope", "product": "other" })).await;
    assert_eq!(
        (
            r.data()["code"].as_str(),
            r.data()["license"]["status"].as_str()
        ),
        (Some("SUSPENDED"), Some("suspended"))
    );

    assert_eq!(
        env.post(
            &format!("/v1/manage/licenses/{id}/resume"),
            &t.admin,
            json!({})
        )
        .await
        .status,
        200
    );
    let r = env
        .post(
            &format!("/v1/manage/licenses/{id}/renew"),
            &t.admin,
            json!({ "expires_at": "2026-03-02T00:00:00Z" }),
        )
        .await;
    assert_eq!(
        (r.status, r.data()["expires_at"].as_str()),
        (200, Some("2026-03-02T00:00:00.000Z")),
        "{r:?}"
    );
    assert_eq!(v(json!({})).await.data()["code"], "VALID");
    env.clock().set(datetime!(2026-03-02 00:00 UTC));
    let r = v(json!({ "product": "other" })).await;
    assert_eq!(
        (
            r.data()["code"].as_str(),
            r.data()["license"]["status"].as_str()
        ),
        (Some("EXPIRED"), Some("expired"))
    );

    assert_eq!(
        env.post(
            &format!("/v1/manage/licenses/{id}/cancel"),
            &t.admin,
            json!({})
        )
        .await
        .status,
        200
    );
    assert_eq!(v(json!({})).await.data()["code"], "CANCELLED");
}

#[tokio::test]
async fn lifecycle_moves_and_cancel_is_terminal() {
    let env = Env::with_clock(datetime!(2026-03-01 12:00 UTC)).await;
    let t = env.tenant("life").await;
    let (_, lic) = env.license(&t, 1, json!({})).await;
    let id = lic["id"].as_str().unwrap();
    let key = lic["key"].as_str().unwrap();
    let act = |what: &'static str, body| {
        let (env, t) = (&env, &t);
        async move {
            env.post(&format!("/v1/manage/licenses/{id}/{what}"), &t.admin, body)
                .await
        }
    };

    assert_eq!(
        act("resume", json!({})).await.status,
        200,
        "resuming an active license is a no-op"
    );
    assert_eq!(
        act("suspend", json!({})).await.data()["status"],
        "suspended"
    );
    assert_eq!(
        act("suspend", json!({})).await.status,
        200,
        "suspending twice is a no-op"
    );
    // A suspended license takes no new seat.
    let a = env.activate(&t, key, "m").await;
    assert_eq!((a.status, a.code()), (403, "LICENSE_NOT_ACTIVE"), "{a:?}");
    assert_eq!(act("resume", json!({})).await.data()["status"], "active");

    // renew by days: from now when there is no expiry.
    let r = act("renew", json!({ "days": 30 })).await;
    assert_eq!(r.data()["expires_at"], "2026-03-31T12:00:00.000Z", "{r:?}");
    // ... and from the current expiry when it is ahead.
    let r = act("renew", json!({ "days": 1 })).await;
    assert_eq!(r.data()["expires_at"], "2026-04-01T12:00:00.000Z");
    assert_eq!(act("renew", json!({})).await.status, 422);
    assert_eq!(
        act(
            "renew",
            json!({ "days": 1, "expires_at": "2027-01-01T00:00:00Z" })
        )
        .await
        .status,
        422
    );
    assert_eq!(
        act("renew", json!({ "expires_at": "2020-01-01T00:00:00Z" }))
            .await
            .status,
        422
    );

    assert_eq!(act("cancel", json!({})).await.data()["status"], "cancelled");
    assert_eq!(
        act("cancel", json!({})).await.status,
        200,
        "cancelling twice is a no-op"
    );
    for what in ["resume", "suspend"] {
        let r = act(what, json!({})).await;
        assert_eq!(
            (r.status, r.code()),
            (409, "LICENSE_CANCELLED"),
            "{what}: {r:?}"
        );
    }
    let r = act("renew", json!({ "days": 5 })).await;
    assert_eq!((r.status, r.code()), (409, "LICENSE_CANCELLED"));
    let a = env.activate(&t, key, "m").await;
    assert_eq!((a.status, a.code()), (403, "LICENSE_NOT_ACTIVE"));

    // The audit trail has every move, newest first.
    let audit = env.get("/v1/manage/audit-events?limit=100", &t.admin).await;
    let codes: Vec<&str> = audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        &codes[..6],
        [
            "LICENSE.CANCELLED",
            "LICENSE.RENEWED",
            "LICENSE.RENEWED",
            "LICENSE.RESUMED",
            "LICENSE.SUSPENDED",
            "LICENSE.CREATED"
        ],
        "{codes:?}"
    );
    let e = &audit.data()[0];
    assert_eq!(e["target_id"], id);
    assert_eq!(e["severity"], "warning");
    assert!(e["actor"].as_str().unwrap().starts_with("key_"));
    assert!(e["request_id"].as_str().unwrap().starts_with("req_"));
}

#[tokio::test]
async fn activation_restore_and_deactivation() {
    let env = Env::start().await;
    let t = env.tenant("seats").await;
    let (_, lic) = env.license(&t, 1, json!({})).await;
    let key = lic["key"].as_str().unwrap();
    let about =
        json!({ "name": "Ann's laptop", "hostname": "ann-mbp", "metadata": { "os": "macos" } });
    let a = env.activate_with(&t, key, "laptop", about.clone()).await;
    assert_eq!(a.status, 201, "{a:?}");
    let id = a.data()["id"].as_str().unwrap().to_string();
    assert_eq!(a.data()["license_id"], lic["id"]);
    assert_eq!(a.data()["name"], "Ann's laptop");
    // Same fingerprint again: 200, same activation, no second seat.
    let again = env.activate_with(&t, key, "laptop", about).await;
    assert_eq!(
        (again.status, again.data()["id"].as_str()),
        (200, Some(id.as_str()))
    );

    let d = env
        .delete(&format!("/v1/integration/activations/{id}"), &t.integration)
        .await;
    assert_eq!(
        (d.status, d.data()["status"].as_str()),
        (200, Some("deactivated")),
        "{d:?}"
    );
    let d2 = env
        .delete(&format!("/v1/integration/activations/{id}"), &t.integration)
        .await;
    assert_eq!(d2.status, 200, "deactivating twice is 200");
    let by_fp = env.deactivate(&t, key, "laptop").await;
    assert_eq!(by_fp.status, 200);
    let lic_now = env
        .get(
            &format!("/v1/manage/licenses/{}", lic["id"].as_str().unwrap()),
            &t.admin,
        )
        .await;
    assert_eq!(
        lic_now.data()["seats"]["used"],
        0,
        "three deactivations free exactly one seat"
    );

    // Restored: same id and created_at, seat taken again.
    let r = env.activate(&t, key, "laptop").await;
    assert_eq!(
        (r.status, r.data()["id"].as_str()),
        (201, Some(id.as_str())),
        "{r:?}"
    );
    assert_eq!(r.data()["created_at"], a.data()["created_at"]);
    assert_eq!(r.data()["status"], "active");
    assert_eq!(
        r.data()["name"],
        "Ann's laptop",
        "restoring keeps what it is not told to change"
    );
    let full = env.activate(&t, key, "desktop").await;
    assert_eq!((full.status, full.code()), (409, "TOO_MANY_ACTIVATIONS"));
    assert_eq!(full.json["error"]["type"], "conflict_error");

    let list = env
        .get(
            &format!(
                "/v1/manage/licenses/{}/activations",
                lic["id"].as_str().unwrap()
            ),
            &t.admin,
        )
        .await;
    assert_eq!(list.data().as_array().unwrap().len(), 1);

    let missing = env
        .delete(
            "/v1/integration/activations/act_0000000000000000000000000000000000000000000000000000",
            &t.integration,
        )
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (404, "ACTIVATION_NOT_FOUND")
    );
    let bad = env
        .delete("/v1/integration/activations/nonsense", &t.integration)
        .await;
    assert_eq!((bad.status, bad.code()), (404, "ACTIVATION_NOT_FOUND"));
    let nolic = env.activate(&t, "NOPE-NOPE-NOPE", "x").await;
    assert_eq!((nolic.status, nolic.code()), (404, "LICENSE_NOT_FOUND"));
    let nolic = env.deactivate(&t, "NOPE-NOPE-NOPE", "x").await;
    assert_eq!((nolic.status, nolic.code()), (404, "LICENSE_NOT_FOUND"));
    let noact = env.deactivate(&t, key, "never-seen").await;
    assert_eq!((noact.status, noact.code()), (404, "ACTIVATION_NOT_FOUND"));
}

#[tokio::test]
async fn management_api_round_trip() {
    let env = Env::start().await;
    let t = env.tenant("mgmt").await;
    let p = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": "studio", "name": "Studio" }),
        )
        .await;
    assert_eq!(p.status, 201);
    let dup = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": "studio", "name": "Again" }),
        )
        .await;
    assert_eq!((dup.status, dup.code()), (409, "PRODUCT_EXISTS"));
    let renamed = env
        .patch(
            "/v1/manage/products/studio",
            &t.admin,
            json!({ "name": "Studio 2" }),
        )
        .await;
    assert_eq!(renamed.data()["name"], "Studio 2");
    assert_eq!(
        env.get("/v1/manage/products/studio", &t.admin).await.data()["name"],
        "Studio 2"
    );
    assert_eq!(
        env.get("/v1/manage/products/nope", &t.admin).await.code(),
        "PRODUCT_NOT_FOUND"
    );

    let nopol = env
        .post(
            "/v1/manage/policies",
            &t.admin,
            json!({ "product": "ghost", "name": "x", "max_activations": 1 }),
        )
        .await;
    assert_eq!((nopol.status, nopol.code()), (422, "PRODUCT_NOT_FOUND"));
    let pol = env
        .policy(&t, "studio", 3, json!({ "sync": { "type": "boolean" } }))
        .await;
    let got = env
        .get(&format!("/v1/manage/policies/{pol}"), &t.admin)
        .await;
    assert_eq!(got.data()["max_activations"], 3);
    let pp = env
        .patch(
            &format!("/v1/manage/policies/{pol}"),
            &t.admin,
            json!({ "duration_days": 365, "stripe_price_ids": ["price_1"] }),
        )
        .await;
    assert_eq!(
        (
            pp.data()["duration_days"].as_u64(),
            pp.data()["stripe_price_ids"][0].as_str()
        ),
        (Some(365), Some("price_1")),
        "{pp:?}"
    );

    // Paging: 3 products, 2 per page.
    for c in ["a1", "a2"] {
        env.post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": c, "name": c }),
        )
        .await;
    }
    let page1 = env.get("/v1/manage/products?limit=2", &t.admin).await;
    assert_eq!(page1.data().as_array().unwrap().len(), 2);
    let cursor = page1.json["meta"]["next_cursor"]
        .as_str()
        .expect("a next cursor")
        .to_string();
    let page2 = env
        .get(
            &format!("/v1/manage/products?limit=2&cursor={cursor}"),
            &t.admin,
        )
        .await;
    assert_eq!(page2.data().as_array().unwrap().len(), 1, "{page2:?}");
    let tampered = env
        .get(
            &format!("/v1/manage/products?limit=2&cursor=x{cursor}"),
            &t.admin,
        )
        .await;
    assert_eq!((tampered.status, tampered.code()), (400, "INVALID_CURSOR"));

    // Licenses: issue with a chosen key and expiry from the policy's duration.
    let l = env.post("/v1/manage/licenses", &t.admin, json!({ "policy": pol, "customer_email": "Zed@Example.com", "key": "ZED-CUSTOM-KEY-0001", "metadata": { "crm": 7 } })).await;
    assert_eq!(l.status, 201, "{l:?}");
    assert_eq!(l.data()["key"], "ZED-CUSTOM-KEY-0001");
    assert_eq!(l.data()["customer_email"], "zed@example.com");
    assert!(
        l.data()["expires_at"].is_string(),
        "duration_days gives an expiry"
    );
    let dup = env.post("/v1/manage/licenses", &t.admin, json!({ "policy": pol, "customer_email": "x@example.com", "key": "ZED-CUSTOM-KEY-0001" })).await;
    assert_eq!((dup.status, dup.code()), (409, "LICENSE_KEY_EXISTS"));
    let nop = env.post("/v1/manage/licenses", &t.admin, json!({ "policy": "pol_00000000000000000000000000", "customer_email": "x@example.com" })).await;
    assert_eq!((nop.status, nop.code()), (422, "POLICY_NOT_FOUND"));
    env.post(
        "/v1/manage/licenses",
        &t.admin,
        json!({ "policy": pol, "customer_email": "zed@example.com" }),
    )
    .await;
    let list = env
        .get(
            "/v1/manage/licenses?email=ZED@example.com&limit=1",
            &t.admin,
        )
        .await;
    assert_eq!(list.data().as_array().unwrap().len(), 1);
    let next = list.json["meta"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let list2 = env
        .get(
            &format!("/v1/manage/licenses?email=zed@example.com&limit=1&cursor={next}"),
            &t.admin,
        )
        .await;
    assert_eq!(list2.data().as_array().unwrap().len(), 1);
    assert_ne!(list.data()[0]["id"], list2.data()[0]["id"]);
    // Without `email` it is the tenant-wide search (tests/tests/api/search.rs),
    // which holds these two among the tenant's licenses.
    let all = env.get("/v1/manage/licenses?limit=100", &t.admin).await;
    assert_eq!(all.status, 200, "{all:?}");
    let zed = all
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["customer_email"] == "zed@example.com")
        .count();
    assert_eq!(zed, 2);

    // PATCH: per-license seat limit, metadata, entitlement override.
    let id = l.data()["id"].as_str().unwrap();
    let patched = env
        .patch(&format!("/v1/manage/licenses/{id}"), &t.admin, json!({ "max_activations": 10, "metadata": { "crm": 8 }, "entitlements": { "sync": null, "beta": { "type": "boolean" } } }))
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(patched.data()["seats"]["limit"], 10);
    assert_eq!(patched.data()["entitlements"], json!({ "beta": true }));
    assert_eq!(
        env.get(&format!("/v1/manage/licenses/{id}"), &t.admin)
            .await
            .data()["metadata"]["crm"],
        8
    );

    // API keys: created (shown once), listed without secrets, revoked.
    let k = env
        .post(
            "/v1/manage/api-keys",
            &t.admin,
            json!({ "name": "ci", "scopes": ["integration"] }),
        )
        .await;
    assert_eq!(k.status, 201, "{k:?}");
    let secret = k.data()["key"].as_str().unwrap().to_string();
    let kid = k.data()["id"].as_str().unwrap().to_string();
    let listed = env.get("/v1/manage/api-keys", &t.admin).await;
    assert!(
        !listed.text.contains(&secret[secret.len() - 20..]),
        "no secret in listings"
    );
    assert!(!listed.text.contains("hash"));
    assert_eq!(
        env.post(
            "/v1/integration/licenses/ZED-CUSTOM-KEY-0001/validate",
            &secret,
            json!({})
        )
        .await
        .status,
        200
    );
    let rv = env
        .delete(&format!("/v1/manage/api-keys/{kid}"), &t.admin)
        .await;
    assert!(rv.data()["revoked_at"].is_string(), "{rv:?}");
    assert_eq!(
        env.delete(&format!("/v1/manage/api-keys/{kid}"), &t.admin)
            .await
            .status,
        200
    );
    let after = env
        .post(
            "/v1/integration/licenses/ZED-CUSTOM-KEY-0001/validate",
            &secret,
            json!({}),
        )
        .await;
    assert_eq!((after.status, after.code()), (401, "UNAUTHENTICATED"));
}
