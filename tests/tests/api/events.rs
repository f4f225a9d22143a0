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
    let (_, lic) = env
        .license(&t, 2, json!({ "export-4k": { "type": "boolean" } }))
        .await;
    let key = lic["key"].as_str().unwrap();
    let vars = [
        ("LICENSE_KEY", key),
        ("INTEGRATION_KEY", t.integration.as_str()),
        ("ADMIN_KEY", t.admin.as_str()),
        ("FINGERPRINT", "evt-machine"),
    ];

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
    assert_eq!(
        (
            resp.status().as_u16(),
            resp.headers().get("allow").and_then(|v| v.to_str().ok())
        ),
        (405, Some("POST"))
    );

    // deactivate by id.
    let id = act["data"]["id"].as_str().unwrap();
    let req = lambda_http::request::from_str(&event(
        "deactivate.json",
        &[("ACTIVATION_ID", id), ("INTEGRATION_KEY", &t.integration)],
    ))
    .unwrap();
    let resp = activate::handler(&env.app, req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body_json(resp.body())["data"]["status"], "deactivated");

    // manage, with a base64-encoded body.
    let req = lambda_http::request::from_str(&event("manage-create-product.json", &vars)).unwrap();
    let resp = manage::handler(&env.app, req).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(body_json(resp.body())["data"]["code"], "from-event");
}

#[tokio::test]
async fn provision_worker_answers_an_sqs_event_with_partial_failures() {
    let env = Env::start().await;
    // Reserve a tenant as POST /v1/platform/tenants does, then hand the worker the SQS event.
    let id = format!(
        "sqs-{}",
        &ulid::Ulid::new().to_string().to_lowercase()[18..]
    );
    let req: shared::usecases::tenants::TenantRequest =
        serde_json::from_value(json!({ "tenant_id": id, "name": "From SQS", "admin_email": "ops@sqs.example", "plan": "free" })).unwrap();
    let reserved = shared::usecases::tenants::reserve(
        &env.app.store,
        env.app.pepper().unwrap(),
        &req,
        env.app.now(),
    )
    .await
    .unwrap();
    let event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(&event("sqs-provision.json", &[("TENANT_ID", &id)])).unwrap();
    let resp = provision_worker::handler(&env.app, event).await;
    let failed: Vec<_> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        ["2e1424d4-f796-459a-8184-9c92662be6da"],
        "only the poison message is reported failed"
    );
    let tenant = env
        .app
        .store
        .get_tenant(&shared::ids::TenantId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tenant.status, shared::domain::TenantStatus::Active);
    assert_eq!(
        env.get(
            "/v1/manage/api-keys",
            reserved.admin_key.as_deref().unwrap()
        )
        .await
        .status,
        200
    );
}

/// `webhook-fanout` fed `events/dynamodb-stream-audit.json` (an audit item
/// that is a webhook event and one that is not), then `webhook-deliver` fed
/// `events/sqs-webhook.json` (the queued delivery and a poison message),
/// each read into its typed Lambda event as the runtime reads it.
#[tokio::test]
async fn webhook_fanout_and_deliver_answer_stream_and_queue_events() {
    use crate::webhooks::{endpoint, Receiver};
    let env = Env::with_webhook_queue().await;
    let t = env.tenant("evt-wh").await;
    let (_, lic) = env.license(&t, 1, json!({})).await;
    let id = lic["id"].as_str().unwrap();
    let (recv, url) = Receiver::start(&[]).await;
    endpoint(
        &env,
        &t,
        &url,
        json!(["license.suspended", "license.cancelled"]),
    )
    .await;
    let r = env
        .post(
            &format!("/v1/manage/licenses/{id}/suspend"),
            &t.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    let audit = env.get("/v1/manage/audit-events", &t.admin).await;
    let suspended = audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["code"] == "LICENSE.SUSPENDED");
    let audit_id = suspended.unwrap()["id"].as_str().unwrap().to_string();

    // The stream batch: one message for the suspension, none for the product.
    let vars = [
        ("TENANT_ID", t.id.as_str()),
        ("AUDIT_ID", audit_id.as_str()),
        ("LICENSE_ID", id),
    ];
    let ev: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_str(&event("dynamodb-stream-audit.json", &vars)).unwrap();
    webhook_fanout::handler(&env.app, ev).await.unwrap();
    let msgs = env.webhook_messages(1).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let body = msgs[0].body.clone().unwrap();
    let handle = msgs[0].receipt_handle.clone().unwrap();
    let queued: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(queued["event_type"], "license.suspended");
    assert_eq!(
        queued["event_id"],
        format!("evt_{}", audit_id[4..].to_lowercase())
    );

    // The queue batch: delivered; the poison message is the one failure.
    let escaped = serde_json::to_string(&body).unwrap();
    let vars = [
        ("BODY", &escaped[1..escaped.len() - 1]),
        ("RECEIPT_HANDLE", handle.as_str()),
    ];
    let ev: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(&event("sqs-webhook.json", &vars)).unwrap();
    let resp = serde_json::to_value(webhook_deliver::handler(&env.app, ev).await).unwrap();
    assert_eq!(
        resp["batchItemFailures"],
        json!([{ "itemIdentifier": "9f86d081-884c-4d63-9e2b-dbf4e2f4a3c1" }])
    );
    let got = recv.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["type"], "license.suspended");
    assert_eq!(got[0].json()["data"]["object"]["status"], "suspended");
}

/// `usage` fed `events/usage-batch.json`: a batch of four events, one of
/// them a repeat of an earlier id and one past a hard limit, each answered
/// on its own in request order.
#[tokio::test]
async fn usage_answers_a_gateway_batch_event() {
    let env = Env::start().await;
    let t = env.tenant("evt-batch").await;
    let (_, lic) = env
        .license(
            &t,
            1,
            json!({ "api-calls": { "type": "metered", "limit": 100, "period": "month", "overage": "deny" } }),
        )
        .await;
    let key = lic["key"].as_str().unwrap();
    let vars = [
        ("LICENSE_KEY", key),
        ("INTEGRATION_KEY", t.integration.as_str()),
    ];
    let req = lambda_http::request::from_str(&event("usage-batch.json", &vars)).unwrap();
    let resp = usage::handler(&env.app, req).await;
    let body = body_json(resp.body());
    assert_eq!(resp.status(), 200, "{body}");
    assert_eq!(body["meta"]["request_id"], "req_Jx2nHb7LoAMEV4Q=");
    let results: Vec<(String, String, Value)> = body["data"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("evt-1".into(), "recorded".into(), Value::Null),
            ("evt-2".into(), "recorded".into(), Value::Null),
            ("evt-1".into(), "duplicate".into(), Value::Null),
            ("evt-3".into(), "rejected".into(), json!("QUOTA_EXCEEDED")),
        ]
    );
    // The counter holds exactly the two recorded events.
    let ents = env
        .get(
            &format!(
                "/v1/manage/usage?license_id={}&metric=api-calls",
                lic["id"].as_str().unwrap()
            ),
            &t.admin,
        )
        .await;
    assert_eq!(ents.status, 200, "{}", ents.text);
    assert!(ents.text.contains("\"used\":15"), "{}", ents.text);
}
