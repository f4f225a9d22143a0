//! A second tenant sees nothing of the first, and is told so exactly as if
//! the object did not exist.

use harness::Env;
use serde_json::json;

#[tokio::test]
async fn tenants_cannot_see_each_other() {
    let env = Env::start().await;
    let a = env.tenant("alpha").await;
    let b = env.tenant("beta").await;
    let (pol, lic) = env
        .license(&a, 2, json!({ "f": { "type": "boolean" } }))
        .await;
    let (key, id) = (lic["key"].as_str().unwrap(), lic["id"].as_str().unwrap());
    let act = env.activate(&a, key, "m").await;
    assert_eq!(act.status, 201);
    let act_id = act.data()["id"].as_str().unwrap();
    let product = lic["product"].as_str().unwrap();

    // Lists are empty for b.
    for path in [
        "/v1/manage/products",
        "/v1/manage/policies",
        "/v1/manage/audit-events",
        "/v1/manage/licenses?email=buyer@example.com",
    ] {
        let r = env.get(path, &b.admin).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(
            r.data().as_array().unwrap().len(),
            if path.contains("audit") { 2 } else { 0 },
            "{path}: {r:?}"
        );
        if path.contains("audit") {
            assert!(
                r.data()
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|e| e["tenant_id"] == b.id.as_str()),
                "only b's own bootstrap events"
            );
        }
    }
    // Direct reads answer 404, exactly like a missing object.
    assert_eq!(
        env.get(&format!("/v1/manage/products/{product}"), &b.admin)
            .await
            .code(),
        "PRODUCT_NOT_FOUND"
    );
    assert_eq!(
        env.get(&format!("/v1/manage/policies/{pol}"), &b.admin)
            .await
            .code(),
        "POLICY_NOT_FOUND"
    );
    assert_eq!(
        env.get(&format!("/v1/manage/licenses/{id}"), &b.admin)
            .await
            .code(),
        "LICENSE_NOT_FOUND"
    );
    assert_eq!(
        env.get(&format!("/v1/manage/licenses/{id}/activations"), &b.admin)
            .await
            .code(),
        "LICENSE_NOT_FOUND"
    );
    assert_eq!(
        env.post(
            &format!("/v1/manage/licenses/{id}/suspend"),
            &b.admin,
            json!({})
        )
        .await
        .code(),
        "LICENSE_NOT_FOUND"
    );
    assert_eq!(
        env.patch(
            &format!("/v1/manage/licenses/{id}"),
            &b.admin,
            json!({ "max_activations": 9 })
        )
        .await
        .code(),
        "LICENSE_NOT_FOUND"
    );
    // b cannot issue under a's policy.
    assert_eq!(
        env.post(
            "/v1/manage/licenses",
            &b.admin,
            json!({ "policy": pol, "customer_email": "x@example.com" })
        )
        .await
        .code(),
        "POLICY_NOT_FOUND"
    );
    // Integration API: a's key does not exist for b.
    let v = env
        .post(
            &format!("/v1/integration/licenses/{key}/validate"),
            &b.integration,
            json!({}),
        )
        .await;
    assert_eq!(v.data()["code"], "NOT_FOUND");
    let x = env
        .post(
            "/v1/integration/activations",
            &b.integration,
            json!({ "license_key": key, "fingerprint": "m2" }),
        )
        .await;
    assert_eq!(x.code(), "LICENSE_NOT_FOUND");
    let d = env
        .delete(
            &format!("/v1/integration/activations/{act_id}"),
            &b.integration,
        )
        .await;
    assert_eq!(d.code(), "ACTIVATION_NOT_FOUND");
    // ... and a's state is untouched.
    let l = env
        .get(&format!("/v1/manage/licenses/{id}"), &a.admin)
        .await;
    assert_eq!(
        (
            l.data()["seats"]["used"].as_u64(),
            l.data()["status"].as_str()
        ),
        (Some(1), Some("active"))
    );
    // A key of tenant a with tenant b's name swapped in is unknown.
    let forged = a.integration.replacen(&a.id, &b.id, 1);
    assert_eq!(
        env.post(
            &format!("/v1/integration/licenses/{key}/validate"),
            &forged,
            json!({})
        )
        .await
        .status,
        401
    );
}
