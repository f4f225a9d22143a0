//! Bad input is a 4xx in the envelope, never a 500.

use harness::Env;
use serde_json::json;

fn assert_envelope(r: &harness::Resp, status: u16) {
    assert_eq!(r.status, status, "{r:?}");
    let e = &r.json["error"];
    assert!(
        e["code"].is_string() && e["message"].is_string() && e["type"].is_string(),
        "{r:?}"
    );
    assert_eq!(e["status"], status);
    let rid = r.json["meta"]["request_id"].as_str().unwrap();
    assert!(rid.starts_with("req_"));
    assert_eq!(r.header("x-request-id"), Some(rid));
    assert_eq!(r.json["meta"]["api_version"], "v1");
}

#[tokio::test]
async fn malformed_requests() {
    let env = Env::start().await;
    let t = env.tenant("bad").await;
    let (pol, lic) = env.license(&t, 1, json!({})).await;
    let key = lic["key"].as_str().unwrap();
    let i = t.integration.as_str();
    let a = t.admin.as_str();
    let raw = |path: &str, k: &str, body: &str| {
        let (path, k, body) = (path.to_string(), k.to_string(), body.as_bytes().to_vec());
        let env = &env;
        async move {
            env.send_raw(
                "POST",
                &path,
                &[("x-api-key", &k), ("content-type", "application/json")],
                body,
            )
            .await
        }
    };

    // Malformed JSON → 400 INVALID_JSON.
    for (path, k) in [
        ("/v1/integration/activations", i),
        ("/v1/manage/products", a),
        (&*format!("/v1/integration/licenses/{key}/validate"), i),
    ] {
        let r = raw(path, k, "{\"license_key\": ").await;
        assert_envelope(&r, 400);
        assert_eq!(r.code(), "INVALID_JSON");
    }
    // Wrong types, missing fields, unknown fields, unknown enum values → 422.
    let cases = [
        (
            "/v1/integration/activations",
            i,
            json!({ "license_key": 5, "fingerprint": "x" }),
        ),
        (
            "/v1/integration/activations",
            i,
            json!({ "license_key": key }),
        ),
        (
            "/v1/integration/activations",
            i,
            json!({ "license_key": key, "fingerprint": "x", "seats": 3 }),
        ),
        (
            "/v1/integration/activations",
            i,
            json!({ "license_key": key, "fingerprint": "" }),
        ),
        (
            "/v1/integration/activations",
            i,
            json!({ "license_key": "bad key!", "fingerprint": "x" }),
        ),
        (
            "/v1/integration/activations",
            i,
            json!({ "license_key": key, "fingerprint": "x", "metadata": "no" }),
        ),
        (
            "/v1/manage/products",
            a,
            json!({ "code": "Has Spaces", "name": "x" }),
        ),
        (
            "/v1/manage/products",
            a,
            json!({ "code": "ok", "name": "" }),
        ),
        (
            "/v1/manage/policies",
            a,
            json!({ "product": "p", "name": "x", "max_activations": -1 }),
        ),
        (
            "/v1/manage/policies",
            a,
            json!({ "product": "p", "name": "x", "max_activations": 1, "entitlements": { "f": { "type": "quantum" } } }),
        ),
        (
            "/v1/manage/policies",
            a,
            json!({ "product": "p", "name": "x", "max_activations": 1, "entitlements": { "f": { "type": "metered", "limit": 5, "period": "week" } } }),
        ),
        (
            "/v1/manage/licenses",
            a,
            json!({ "policy": pol, "customer_email": "not-an-email" }),
        ),
        (
            "/v1/manage/licenses",
            a,
            json!({ "policy": pol, "customer_email": "a@b.co", "expires_at": "tomorrow" }),
        ),
        (
            "/v1/manage/licenses",
            a,
            json!({ "policy": "nope", "customer_email": "a@b.co" }),
        ),
        (
            "/v1/manage/api-keys",
            a,
            json!({ "name": "k", "scopes": ["root"] }),
        ),
        (
            "/v1/manage/api-keys",
            a,
            json!({ "name": "k", "scopes": [] }),
        ),
        (
            &*format!("/v1/integration/licenses/{key}/validate"),
            i,
            json!({ "fingerprint": 7 }),
        ),
        (
            &*format!("/v1/integration/licenses/{key}/validate"),
            i,
            json!({ "entitlements": "export" }),
        ),
        (
            &*format!("/v1/integration/licenses/{key}/validate"),
            i,
            json!({ "colour": "red" }),
        ),
    ];
    for (path, k, body) in cases {
        let r = env.post(path, k, body.clone()).await;
        assert_envelope(&r, 422);
        assert!(r.code() == "VALIDATION_ERROR", "{path} {body}: {r:?}");
    }
    // Oversized body → 400 BODY_TOO_LARGE.
    let big = format!(
        "{{\"license_key\":\"{key}\",\"fingerprint\":\"x\",\"metadata\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(70 * 1024)
    );
    let r = raw("/v1/integration/activations", i, &big).await;
    assert_envelope(&r, 400);
    assert_eq!(r.code(), "BODY_TOO_LARGE");
    // Metadata too large but under the body limit → 422.
    let r = env.post("/v1/integration/activations", i, json!({ "license_key": key, "fingerprint": "x", "metadata": { "pad": "y".repeat(9000) } })).await;
    assert_envelope(&r, 422);
    assert_eq!(r.code(), "METADATA_TOO_LARGE");
    // Bad query parameters.
    for q in ["limit=0", "limit=101", "limit=ten"] {
        assert_envelope(&env.get(&format!("/v1/manage/products?{q}"), a).await, 422);
    }
    assert_envelope(
        &env.get("/v1/manage/audit-events?since=yesterday", a).await,
        422,
    );
    // Unknown route and wrong method.
    let r = env.get("/v1/nope", a).await;
    assert_envelope(&r, 404);
    assert_eq!(r.code(), "ROUTE_NOT_FOUND");
    let r = env
        .send(
            "PUT",
            "/v1/integration/activations",
            Some(i),
            Some(&json!({})),
        )
        .await;
    assert_envelope(&r, 405);
    assert_eq!(r.code(), "METHOD_NOT_ALLOWED");
    assert_eq!(r.header("allow"), Some("POST"));
    let r = env
        .send("DELETE", "/v1/manage/products/x", Some(a), None)
        .await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, PATCH")));
    // Non-UTF-8 body.
    let r = env
        .send_raw(
            "POST",
            "/v1/manage/products",
            &[("x-api-key", a)],
            vec![0xff, 0xfe, 0x00],
        )
        .await;
    assert_envelope(&r, 400);
}
