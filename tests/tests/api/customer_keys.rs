//! Customer organizations, part A (identity): tenant kinds, app keys and
//! their bindings, member sessions, and the wall between the vendor API and
//! the customer API.

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

/// The SHA-256 of the DER of the certificate in `events/customer-mtls.json`.
const EVENT_CERT_SHA256: &str = "99edbe52e285f839080df968117a1eb774225b3e1f1c5f2618f0046e60a76aa5";

#[tokio::test]
async fn the_admin_makes_lists_and_revokes_app_keys() {
    let env = Env::start().await;
    let org = env.customer_org("keys").await;
    let who = env
        .org_send("GET", "/v1/customer/session", &org.session, None)
        .await;
    assert_eq!(who.status, 200, "{who:?}");
    assert_eq!(who.data()["customer_id"], org.id.as_str());
    assert_eq!(who.data()["email"], org.admin_email.as_str());
    assert_eq!(who.data()["role"], "admin");
    assert_eq!(who.data()["csrf_token"], org.session.csrf.as_str());

    let body = json!({
        "app_name": "CAD workstation", "app_type": "desktop",
        "scopes": ["license:checkout", "license:return"],
        "expires_in_days": 30, "allowed_hostnames": ["WS-17.corp"],
        "allowed_cidrs": ["10.20.0.0/16"],
    });
    let made = env
        .org_send("POST", "/v1/customer/api-keys", &org.session, Some(&body))
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let key = made.data()["key"].as_str().unwrap().to_string();
    assert!(key.starts_with(&format!("lk_{}_", org.id)), "{key}");
    assert_eq!(made.data()["allowed_hostnames"], json!(["ws-17.corp"]));
    assert_eq!(made.data()["allowed_cidrs"], json!(["10.20.0.0/16"]));
    assert!(made.data()["expires_at"].is_string());
    let id = made.data()["id"].as_str().unwrap().to_string();

    let list = env
        .org_send("GET", "/v1/customer/api-keys", &org.session, None)
        .await;
    assert_eq!(list.status, 200, "{list:?}");
    let ids: Vec<&str> = list
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&id.as_str()), "{ids:?}");
    assert!(
        !list.text.contains(&key[key.len() - 64..]),
        "a secret leaked"
    );
    assert!(!list.text.contains("\"hash\""), "a hash leaked");

    let gone = env
        .org_send(
            "DELETE",
            &format!("/v1/customer/api-keys/{id}"),
            &org.session,
            None,
        )
        .await;
    assert_eq!(gone.status, 200, "{gone:?}");
    assert!(gone.data()["revoked_at"].is_string());
    // The revoked key is an unknown credential.
    let r = env.get("/v1/customer/session", &key).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHENTICATED"), "{r:?}");
    // Unknown key ids are 404.
    let r = env
        .org_send(
            "DELETE",
            "/v1/customer/api-keys/key_01ARZ3NDEKTSV4RRFFQ69G5FAV",
            &org.session,
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "API_KEY_NOT_FOUND"), "{r:?}");

    // Bad bodies are clear 4xx.
    for bad in [
        json!({"app_name": "x", "app_type": "server", "scopes": ["license:read"]}),
        json!({"app_name": "x", "app_type": "desktop", "scopes": []}),
        json!({"app_name": "x", "app_type": "desktop", "scopes": ["admin"]}),
        json!({"app_name": "x", "app_type": "desktop", "scopes": ["license:read"], "allowed_cidrs": ["10.0.0.0/33"]}),
        json!({"app_name": "x", "app_type": "desktop", "scopes": ["license:read"], "client_cert_sha256": "abc"}),
        json!({"app_name": "x", "app_type": "desktop", "scopes": ["license:read"], "expires_in_days": 0}),
    ] {
        let r = env
            .org_send("POST", "/v1/customer/api-keys", &org.session, Some(&bad))
            .await;
        assert!(matches!(r.status, 400 | 422), "{bad} → {r:?}");
    }

    // The audit trail has both.
    let audit = env
        .org_send("GET", "/v1/customer/audit-events", &org.session, None)
        .await;
    assert_eq!(audit.status, 200, "{audit:?}");
    let codes: Vec<&str> = audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"APIKEY.CREATED") && codes.contains(&"APIKEY.REVOKED"),
        "{codes:?}"
    );
    assert!(codes.contains(&"CUSTOMER.VERIFIED"), "{codes:?}");
}

#[tokio::test]
async fn session_writes_need_the_csrf_token_and_the_origin() {
    let env = Env::start().await;
    let org = env.customer_org("csrf").await;
    let body = json!({"app_name": "ci", "app_type": "ci_cd", "scopes": ["license:read"]});
    let post = |headers: Vec<(&'static str, String)>| {
        let env = &env;
        let body = body.clone();
        async move {
            let mut h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            h.push(("content-type", "application/json"));
            env.send_raw(
                "POST",
                "/v1/customer/api-keys",
                &h,
                body.to_string().into_bytes(),
            )
            .await
        }
    };
    let cookie = ("cookie", org.session.cookie.clone());
    let origin = ("origin", org.session.origin.clone());
    let csrf = ("x-csrf-token", org.session.csrf.clone());
    let r = post(vec![cookie.clone(), origin.clone()]).await;
    assert_eq!((r.status, r.code()), (403, "CSRF_FAILED"), "{r:?}");
    let r = post(vec![
        cookie.clone(),
        csrf.clone(),
        ("origin", "https://evil.example".into()),
    ])
    .await;
    assert_eq!((r.status, r.code()), (403, "CSRF_FAILED"), "{r:?}");
    let r = post(vec![
        cookie.clone(),
        origin.clone(),
        ("x-csrf-token", "wrong".into()),
    ])
    .await;
    assert_eq!((r.status, r.code()), (403, "CSRF_FAILED"), "{r:?}");
    let r = post(vec![cookie.clone(), origin.clone(), csrf.clone()]).await;
    assert_eq!(r.status, 201, "{r:?}");
    // A forged or foreign cookie is no session at all.
    let forged = (
        "cookie",
        format!("customer_session={}.{}", org.id, "x".repeat(43)),
    );
    let r = post(vec![forged, origin, csrf]).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHENTICATED"), "{r:?}");
}

#[tokio::test]
async fn vendor_and_customer_credentials_do_not_cross() {
    let env = Env::start().await;
    let vendor = env.tenant("vendor").await;
    let org = env.customer_org("wall").await;
    // A vendor's keys on the customer API: unknown credentials.
    for key in [&vendor.admin, &vendor.integration] {
        for path in [
            "/v1/customer/session",
            "/v1/customer/api-keys",
            "/v1/customer/members",
        ] {
            let r = env.get(path, key).await;
            assert_eq!(
                (r.status, r.code()),
                (401, "UNAUTHENTICATED"),
                "{path} {r:?}"
            );
        }
    }
    // A customer's app key on the vendor APIs: unknown too.
    for (method, path) in [
        ("GET", "/v1/manage/products"),
        ("GET", "/v1/manage/api-keys"),
        ("GET", "/v1/manage/audit-events"),
    ] {
        let r = env.send(method, path, Some(&org.admin_key), None).await;
        assert_eq!(
            (r.status, r.code()),
            (401, "UNAUTHENTICATED"),
            "{path} {r:?}"
        );
    }
    let r = env
        .post(
            "/v1/integration/entitlements/check",
            &org.admin_key,
            json!({"license_key": "AAAA-BBBB-CCCC", "features": ["x"]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHENTICATED"), "{r:?}");
    // The customer's id as a license key's tenant, or a public trial's.
    let r = env
        .send_raw(
            "POST",
            "/v1/integration/licenses/AAAA-BBBB-CCCC-DDDD/validate",
            &[
                ("authorization", "License AAAA-BBBB-CCCC-DDDD"),
                ("x-tenant-id", &org.id),
                ("x-nonce", "0123456789abcdef0123"),
                ("content-type", "application/json"),
            ],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHENTICATED"), "{r:?}");
    // The operator cannot provision a vendor over a customer's id, and sees
    // no vendor there.
    let token = env.operator_token().await;
    let r = env
        .operator(
            "GET",
            &format!("/v1/platform/tenants/{}", org.id),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let body =
        json!({"tenant_id": org.id, "name": "x", "admin_email": "ops@x.example", "plan": "free"});
    let r = env
        .operator("POST", "/v1/platform/tenants", &token, Some(&body))
        .await;
    assert_eq!((r.status, r.code()), (409, "TENANT_EXISTS"), "{r:?}");
    // A customer's portal is its own: no vendor pages behind it.
    let v = harness::Visitor::new(&env, &org.id);
    assert_eq!(v.get("/login").await.status, 200);
    for page in ["/staff", "/staff/api-keys", "/me"] {
        assert_eq!(v.get(page).await.status, 404, "{page}");
    }
    // App keys do not manage keys or members, nor read the audit trail (403).
    for path in [
        "/v1/customer/api-keys",
        "/v1/customer/audit-events",
        "/v1/customer/session",
    ] {
        let r = env.get(path, &org.admin_key).await;
        assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{path} {r:?}");
    }
}

/// Make an app key with `bindings` and return it.
async fn bound_key(env: &Env, org: &harness::Org, bindings: Value) -> String {
    let mut body =
        json!({"app_name": "bound", "app_type": "cloud_service", "scopes": ["license:read"]});
    for (k, v) in bindings.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = env
        .org_send("POST", "/v1/customer/api-keys", &org.session, Some(&body))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.data()["key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn key_bindings_are_checked_on_every_call() {
    let env = Env::start().await;
    let org = env.customer_org("bind").await;
    let get = |key: String, host: Option<&'static str>| {
        let env = &env;
        async move {
            let mut h = vec![("x-api-key", key.as_str())];
            if let Some(host) = host {
                h.push(("x-hostname", host));
            }
            env.send_raw("GET", "/v1/customer/session", &h, Vec::new())
                .await
        }
    };
    // Past authentication and bindings, an app key meets the session
    // route's 403 FORBIDDEN; a binding that fails is KEY_BINDING_MISMATCH.
    let mismatch = (403, "KEY_BINDING_MISMATCH");
    let passes = (403, "FORBIDDEN");
    let host_key = bound_key(
        &env,
        &org,
        json!({"allowed_hostnames": ["build-01", "build-02"]}),
    )
    .await;
    let r = get(host_key.clone(), Some("BUILD-02")).await;
    assert_eq!((r.status, r.code()), passes, "{r:?}");
    let r = get(host_key.clone(), Some("build-03")).await;
    assert_eq!((r.status, r.code()), mismatch, "{r:?}");
    let r = get(host_key.clone(), None).await;
    assert_eq!((r.status, r.code()), mismatch, "{r:?}");
    assert!(
        r.header("x-ratelimit-limit").is_some(),
        "an authenticated refusal carries the rate limit"
    );

    // The dev server passes the peer's address (loopback) as sourceIp.
    let near = bound_key(
        &env,
        &org,
        json!({"allowed_cidrs": ["127.0.0.0/8", "::1/128"]}),
    )
    .await;
    let r = get(near, None).await;
    assert_eq!((r.status, r.code()), passes, "{r:?}");
    let far = bound_key(&env, &org, json!({"allowed_cidrs": ["10.0.0.0/8"]})).await;
    let r = get(far, None).await;
    assert_eq!((r.status, r.code()), mismatch, "{r:?}");

    // Over plain HTTP there is no client certificate: a key bound to one fails.
    let cert_key = bound_key(&env, &org, json!({"client_cert_sha256": EVENT_CERT_SHA256})).await;
    let r = get(cert_key, None).await;
    assert_eq!((r.status, r.code()), mismatch, "{r:?}");
}

/// API Gateway's mutual TLS hands the client certificate to the function in
/// the request context; the handler hashes its DER.
#[tokio::test]
async fn client_certificates_come_from_the_gateway_event() {
    let env = Env::start().await;
    let org = env.customer_org("mtls").await;
    let bound = bound_key(
        &env,
        &org,
        json!({"client_cert_sha256": EVENT_CERT_SHA256.to_uppercase(), "allowed_cidrs": ["198.51.100.0/24"]}),
    )
    .await;
    let other = bound_key(&env, &org, json!({"client_cert_sha256": "ab".repeat(32)})).await;
    let call = |key: &str, strip_cert: bool| {
        let mut v: Value =
            serde_json::from_str(&event("customer-mtls.json", &[("CUSTOMER_KEY", key)])).unwrap();
        if strip_cert {
            v["requestContext"]
                .as_object_mut()
                .unwrap()
                .remove("authentication");
        }
        lambda_http::request::from_str(&v.to_string()).unwrap()
    };
    let resp = customer::handler(&env.app, call(&bound, false)).await;
    let b = body_json(resp.body());
    assert_eq!(
        (resp.status().as_u16(), b["error"]["code"].as_str()),
        (403, Some("FORBIDDEN")),
        "{b}"
    );
    assert_eq!(b["meta"]["request_id"], "req_Kq3mTtM2oAMEV4B=");
    for (key, strip) in [(&bound, true), (&other, false)] {
        let resp = customer::handler(&env.app, call(key, strip)).await;
        let b = body_json(resp.body());
        assert_eq!(
            (resp.status().as_u16(), b["error"]["code"].as_str()),
            (403, Some("KEY_BINDING_MISMATCH")),
            "{b}"
        );
    }
}

/// Org A's session names B's keys and members: each refusal is the same as
/// for something that does not exist; lists show only A's own.
#[tokio::test]
async fn one_organization_reaches_nothing_of_another() {
    let env = Env::start().await;
    let a = env.customer_org("iso-a").await;
    let b = env.customer_org("iso-b").await;
    let body = json!({"app_name": "b app", "app_type": "desktop", "scopes": ["license:read"]});
    let bk = env
        .org_send("POST", "/v1/customer/api-keys", &b.session, Some(&body))
        .await;
    let b_key_id = bk.data()["id"].as_str().unwrap().to_string();
    let r = env
        .org_send(
            "DELETE",
            &format!("/v1/customer/api-keys/{b_key_id}"),
            &a.session,
            None,
        )
        .await;
    let missing = env
        .org_send(
            "DELETE",
            "/v1/customer/api-keys/key_01ARZ3NDEKTSV4RRFFQ69G5FAV",
            &a.session,
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (missing.status, missing.code()),
        "{r:?}"
    );
    assert_eq!(r.status, 404);
    let list = env
        .org_send("GET", "/v1/customer/api-keys", &a.session, None)
        .await;
    assert!(!list.text.contains(&b_key_id), "{list:?}");
    for (method, body) in [("PATCH", Some(json!({"role": "viewer"}))), ("DELETE", None)] {
        let path = format!("/v1/customer/members/{}", b.admin_email);
        let r = env.org_send(method, &path, &a.session, body.as_ref()).await;
        assert_eq!(
            (r.status, r.code()),
            (404, "MEMBER_NOT_FOUND"),
            "{method} {r:?}"
        );
    }
    let members = env
        .org_send("GET", "/v1/customer/members", &a.session, None)
        .await;
    assert!(!members.text.contains(&b.admin_email), "{members:?}");
    let audit = env
        .org_send("GET", "/v1/customer/audit-events", &a.session, None)
        .await;
    assert!(
        !audit.text.contains(&b.id) && !audit.text.contains(&b_key_id),
        "{audit:?}"
    );
    // B's session cookie with A's id in it is no session.
    let forged = b.session.cookie.replace(&b.id, &a.id);
    let r = env
        .send_raw(
            "GET",
            "/v1/customer/session",
            &[("cookie", &forged)],
            Vec::new(),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHENTICATED"), "{r:?}");
    // B's app key is B's: bound to B whatever it names.
    let r = env.get("/v1/customer/api-keys", &b.admin_key).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{r:?}");
}
