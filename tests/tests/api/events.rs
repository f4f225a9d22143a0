//! Handler tests: each function's handler fed the API Gateway v2 events in
//! `events/` (the same files `cargo lambda invoke --data-file` takes).

use harness::{event, Env};
use lambda_http::Body;
use serde_json::{json, Value};

fn body_json(b: &Body) -> Value {
    match b {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        Body::Binary(b) => serde_json::from_slice(b).unwrap(),
        _ => Value::Null,
    }
}

#[tokio::test]
async fn functions_answer_gateway_events() {
    let env = Env::start().await;
    let t = env.tenant("events").await;
    let (_, lic) = env.license(&t, 2, json!({ "export-4k": { "type": "boolean" } })).await;
    let key = lic["key"].as_str().unwrap();
    let vars = [("LICENSE_KEY", key), ("INTEGRATION_KEY", t.integration.as_str()), ("ADMIN_KEY", t.admin.as_str()), ("FINGERPRINT", "evt-machine")];

    // activate: 201 with the activation.
    let req = lambda_http::request::from_str(&event("activate.json", &vars)).unwrap();
    let resp = activate::handler(&env.app, req).await;
    assert_eq!(resp.status(), 201);
    let act = body_json(resp.body());
    assert_eq!(act["data"]["hostname"], "ann-mbp");
    // API Gateway's request id becomes the envelope's.
    assert_eq!(act["meta"]["request_id"], "req_Jx2nGgM2oAMEV3A=");
    assert_eq!(resp.headers()["x-request-id"], "req_Jx2nGgM2oAMEV3A=");

    // validate: the fingerprint is now activated and the entitlement granted.
    let req = lambda_http::request::from_str(&event("validate.json", &vars)).unwrap();
    let resp = validate::handler(&env.app, req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body_json(resp.body())["data"]["code"], "VALID");

    // A function answers only its own routes; as a deployment's catch-all it
    // still tells a wrong method (405) from an unknown path (404).
    let req = lambda_http::request::from_str(&event("validate.json", &vars)).unwrap();
    assert_eq!(activate::handler(&env.app, req).await.status(), 404);
    let mut wrong = lambda_http::request::from_str(&event("validate.json", &vars)).unwrap();
    *wrong.method_mut() = lambda_http::http::Method::GET;
    let resp = validate::handler(&env.app, wrong).await;
    assert_eq!((resp.status().as_u16(), resp.headers().get("allow").and_then(|v| v.to_str().ok())), (405, Some("POST")));

    // deactivate by id.
    let id = act["data"]["id"].as_str().unwrap();
    let req = lambda_http::request::from_str(&event("deactivate.json", &[("ACTIVATION_ID", id), ("INTEGRATION_KEY", &t.integration)])).unwrap();
    let resp = activate::handler(&env.app, req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body_json(resp.body())["data"]["status"], "deactivated");

    // manage, with a base64-encoded body.
    let req = lambda_http::request::from_str(&event("manage-create-product.json", &vars)).unwrap();
    let resp = manage::handler(&env.app, req).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(body_json(resp.body())["data"]["code"], "from-event");
}
