//! Client apps: license-key authentication, signed answers, offline license
//! files, the client crate, and an independent verifier in Python.

use harness::{Env, Resp, Tenant};
use licensing_client::{verify_answer, verify_license_file, FileError, PinnedKeys, SentRequest};
use serde_json::{json, Value};
use time::macros::datetime;

/// A request as a client app sends it: its license key and tenant, a nonce.
pub(crate) async fn as_client(
    env: &Env,
    tenant: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
    nonce: &str,
) -> Resp {
    env.send_raw(
        method,
        path,
        &[
            ("authorization", &format!("License {key}")),
            ("x-tenant-id", tenant),
            ("x-nonce", nonce),
            ("content-type", "application/json"),
        ],
        body.to_string().into_bytes(),
    )
    .await
}

/// The tenant's public keys, pinned (as an app would ship them).
pub(crate) async fn pinned(env: &Env, t: &Tenant) -> (PinnedKeys, Value) {
    let r = env
        .send(
            "GET",
            &format!("/v1/public/tenants/{}/signing-keys", t.id),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut keys = PinnedKeys::new();
    for k in r.data()["keys"].as_array().unwrap() {
        keys.pin(
            k["kid"].as_str().unwrap(),
            k["public_key"].as_str().unwrap(),
        )
        .unwrap();
    }
    (keys, r.data()["keys"].clone())
}

/// A nonce as a client app sends it (license-key requests need 16 to 128 characters).
pub(crate) const NONCE: &str = "nonce-0123456789abcdef";

/// Whether `r` is the signed answer to this request: tenant, method, path,
/// nonce and the body as sent (`body.to_string()`, what [`as_client`] sends).
fn verifies(
    keys: &PinnedKeys,
    tenant: &str,
    method: &str,
    path: &str,
    nonce: &str,
    body: &Value,
    r: &Resp,
) -> Result<(), String> {
    let sent_body = body.to_string().into_bytes();
    let sent = SentRequest {
        method,
        path_and_query: path,
        tenant,
        nonce: Some(nonce),
        body: &sent_body,
    };
    verify_answer(
        keys,
        sent,
        r.header("x-signature"),
        r.header("x-signature-date"),
        r.text.as_bytes(),
        signed_at(r),
    )
}

/// The answer's own `X-Signature-Date` as the verifier's clock (some of these tests run the
/// service on a manual clock; freshness is tested by the client crate and the conformance
/// cases), or now when it has none.
pub(crate) fn signed_at(r: &Resp) -> time::OffsetDateTime {
    use time::format_description::well_known::Rfc3339;
    r.header("x-signature-date")
        .and_then(|d| time::OffsetDateTime::parse(d, &Rfc3339).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc)
}

fn without_request_id(r: &Resp) -> Value {
    let mut v: Value = serde_json::from_str(&r.text).unwrap();
    v["meta"]["request_id"] = Value::Null;
    v
}

async fn two_licenses(env: &Env, t: &Tenant) -> (Value, Value) {
    let (policy, a) = env
        .license(t, 2, json!({ "f": { "type": "boolean" } }))
        .await;
    let b = env
        .post(
            "/v1/manage/licenses",
            &t.admin,
            json!({ "policy": policy, "customer_email": "b@example.com" }),
        )
        .await;
    assert_eq!(b.status, 201);
    (a, b.data().clone())
}

#[tokio::test]
async fn a_license_key_reaches_its_own_license_and_nothing_else() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("clients").await;
    let (a, b) = two_licenses(&env, &t).await;
    let (ka, kb) = (a["key"].as_str().unwrap(), b["key"].as_str().unwrap());

    let own = as_client(
        &env,
        &t.id,
        ka,
        "POST",
        &format!("/v1/integration/licenses/{ka}/validate"),
        json!({}),
        "nonce-validate-0001",
    )
    .await;
    assert_eq!(
        (own.status, own.data()["code"].as_str()),
        (200, Some("VALID")),
        "{own:?}"
    );
    // Warm: still one DynamoDB call (the license read proves the key).
    env.calls.take();
    let own = as_client(
        &env,
        &t.id,
        ka,
        "POST",
        &format!("/v1/integration/licenses/{ka}/validate"),
        json!({}),
        "nonce-validate-0002",
    )
    .await;
    assert_eq!(own.status, 200);
    assert_eq!(env.calls.take(), ["Query"]);

    // Another license of the same tenant: 403 LICENSE_SCOPE_MISMATCH, nothing written.
    let other_b = env.activate(&t, kb, "bm").await;
    assert_eq!(other_b.status, 201);
    let b_act = other_b.data()["id"].as_str().unwrap().to_string();
    let mut tries = acting_on(kb, &b_act);
    tries.push((
        "POST",
        "/v1/integration/licenses/NOT-A-KEY/validate".to_string(),
        json!({}),
    ));
    for (method, path, body) in tries {
        let r = as_client(&env, &t.id, ka, method, &path, body, NONCE).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "LICENSE_SCOPE_MISMATCH"),
            "{method} {path}: {r:?}"
        );
    }
    let acts = env
        .get(
            &format!(
                "/v1/manage/licenses/{}/activations",
                b["id"].as_str().unwrap()
            ),
            &t.admin,
        )
        .await;
    assert_eq!(acts.data()[0]["status"], "active", "nothing changed on B");

    // No management or platform access.
    for path in ["/v1/manage/products", "/v1/platform/tenants/clients"] {
        let r = as_client(&env, &t.id, ka, "GET", path, json!({}), NONCE).await;
        assert_eq!(
            (r.status, r.code()),
            (401, "UNAUTHENTICATED"),
            "{path}: {r:?}"
        );
    }

    // Unknown tenant, unknown key, another tenant's key: the same 401.
    let t2 = env.tenant("clients-other").await;
    let validate = |k: &str| format!("/v1/integration/licenses/{k}/validate");
    let unknown_key = "ABCDE-FGHJK-MNPQR-STVWX-YZ012";
    let answers = [
        as_client(&env, "nobody", ka, "POST", &validate(ka), json!({}), NONCE).await,
        as_client(
            &env,
            &t.id,
            unknown_key,
            "POST",
            &validate(unknown_key),
            json!({}),
            NONCE,
        )
        .await,
        as_client(&env, &t2.id, ka, "POST", &validate(ka), json!({}), NONCE).await,
    ];
    for r in &answers {
        assert_eq!((r.status, r.code()), (401, "UNAUTHENTICATED"), "{r:?}");
        assert!(
            r.header("x-signature").unwrap().starts_with("keyid=\"v1\""),
            "{r:?}"
        );
        assert!(
            r.header("x-ratelimit-limit").is_none(),
            "a 401 carries no rate-limit state: {r:?}"
        );
        assert_eq!(without_request_id(r), without_request_id(&answers[0]));
    }

    // Malformed credentials are the same 401; bad nonces and ttls are 422.
    for auth in [
        "License",
        "License ",
        "Bearer x",
        "License not a key",
        "license ABCDE",
    ] {
        let r = env
            .send_raw(
                "POST",
                &validate(ka),
                &[("authorization", auth), ("x-tenant-id", &t.id)],
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (401, "UNAUTHENTICATED"),
            "{auth:?}: {r:?}"
        );
    }
    let no_tenant = env
        .send_raw(
            "POST",
            &validate(ka),
            &[("authorization", &format!("License {ka}"))],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(no_tenant.status, 401);
    let long = "n".repeat(129);
    let r = as_client(&env, &t.id, ka, "POST", &validate(ka), json!({}), &long).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");
    for ttl in [0, 3599, 7_776_001] {
        let r = as_client(
            &env,
            &t.id,
            ka,
            "POST",
            &format!("/v1/integration/licenses/{ka}/checkout"),
            json!({ "ttl_seconds": ttl }),
            NONCE,
        )
        .await;
        assert_eq!(
            (r.status, r.code()),
            (422, "VALIDATION_ERROR"),
            "{ttl}: {r:?}"
        );
    }

    // A policy may turn license-key authentication off.
    let product = a["product"].as_str().unwrap();
    let p = env.post("/v1/manage/policies", &t.admin, json!({ "product": product, "name": "no-client", "max_activations": 1, "client_auth": false })).await;
    assert_eq!(
        (p.status, p.data()["client_auth"].as_bool()),
        (201, Some(false))
    );
    let c = env
        .post(
            "/v1/manage/licenses",
            &t.admin,
            json!({ "policy": p.data()["id"], "customer_email": "c@example.com" }),
        )
        .await;
    let kc = c.data()["key"].as_str().unwrap();
    for (path, body) in [
        (validate(kc), json!({})),
        (
            "/v1/integration/activations".to_string(),
            json!({ "license_key": kc, "fingerprint": "m" }),
        ),
    ] {
        let r = as_client(&env, &t.id, kc, "POST", &path, body, NONCE).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "CLIENT_AUTH_DISABLED"),
            "{path}: {r:?}"
        );
    }
}

/// Every way a license-key caller can name license `kb` (activation `b_act`
/// is one of its seats): the path, the body, an activation id.
fn acting_on(kb: &str, b_act: &str) -> Vec<(&'static str, String, Value)> {
    vec![
        (
            "POST",
            format!("/v1/integration/licenses/{kb}/validate"),
            json!({}),
        ),
        (
            "POST",
            "/v1/integration/activations".to_string(),
            json!({ "license_key": kb, "fingerprint": "x" }),
        ),
        (
            "POST",
            "/v1/integration/activations/deactivate".to_string(),
            json!({ "license_key": kb, "fingerprint": "bm" }),
        ),
        (
            "DELETE",
            format!("/v1/integration/activations/{b_act}"),
            json!({}),
        ),
        (
            "POST",
            format!("/v1/integration/activations/{b_act}/heartbeat"),
            json!({}),
        ),
        (
            "POST",
            "/v1/integration/entitlements/check".to_string(),
            json!({ "license_key": kb, "features": ["f"] }),
        ),
        (
            "POST",
            "/v1/integration/usage/record".to_string(),
            json!({ "license_key": kb, "metric": "m", "quantity": 1 }),
        ),
        (
            "POST",
            format!("/v1/integration/licenses/{kb}/checkout"),
            json!({}),
        ),
    ]
}

/// An unknown key, and another tenant's, are 401 whatever license the path
/// or body names: a 403 `LICENSE_SCOPE_MISMATCH` would tell the caller its
/// credential was taken, and only an authenticated caller may learn that.
#[tokio::test]
async fn an_unknown_or_foreign_license_key_is_401_whatever_license_it_names() {
    let env = Env::with_clock(datetime!(2026-11-02 10:00:05 UTC)).await;
    let t = env.tenant("clients401").await;
    let (_, b) = two_licenses(&env, &t).await;
    let kb = b["key"].as_str().unwrap();
    let b_act = env.activate(&t, kb, "bm").await;
    assert_eq!(b_act.status, 201, "{b_act:?}");
    let b_act = b_act.data()["id"].as_str().unwrap().to_string();
    let other = env.tenant("clients401-other").await;
    let (_, foreign) = env.license(&other, 1, json!({})).await;
    let foreign = foreign["key"].as_str().unwrap().to_string();
    let unknown = "ABCDE-FGHJK-MNPQR-STVWX-YZ012".to_string();

    let mut tries = acting_on(kb, &b_act);
    tries.extend([
        (
            "POST",
            "/v1/integration/licenses/NOT-A-KEY/validate".to_string(),
            json!({}),
        ),
        (
            "POST",
            "/v1/integration/licenses/NOT-A-KEY/checkout".to_string(),
            json!({}),
        ),
        (
            "POST",
            "/v1/integration/activations/act_nonsense/heartbeat".to_string(),
            json!({}),
        ),
        (
            "DELETE",
            "/v1/integration/activations/act_nonsense".to_string(),
            json!({}),
        ),
        (
            "POST",
            "/v1/integration/trials".to_string(),
            json!({ "product": "app", "customer_email": "x@example.com", "fingerprint": "x" }),
        ),
    ]);
    // The 401 every unknown credential gets.
    let plain = as_client(
        &env,
        &t.id,
        &unknown,
        "POST",
        &format!("/v1/integration/licenses/{unknown}/validate"),
        json!({}),
        "nonce-of-sixteen-chars",
    )
    .await;
    assert_eq!((plain.status, plain.code()), (401, "UNAUTHENTICATED"));
    for caller in [&unknown, &foreign] {
        for (method, path, body) in &tries {
            let r = as_client(
                &env,
                &t.id,
                caller,
                method,
                path,
                body.clone(),
                "nonce-of-sixteen-chars",
            )
            .await;
            assert_eq!(
                (r.status, r.code()),
                (401, "UNAUTHENTICATED"),
                "{caller} {method} {path}: {r:?}"
            );
            assert!(r.header("x-ratelimit-limit").is_none(), "{r:?}");
            assert_eq!(without_request_id(&r), without_request_id(&plain));
        }
    }
    let acts = env
        .get(
            &format!(
                "/v1/manage/licenses/{}/activations",
                b["id"].as_str().unwrap()
            ),
            &t.admin,
        )
        .await;
    assert_eq!(acts.data()[0]["status"], "active", "nothing changed on B");

    // A genuine key naming another license is still 403.
    let (_, c) = env.license(&t, 1, json!({})).await;
    let kc = c["key"].as_str().unwrap();
    let r = as_client(
        &env,
        &t.id,
        kc,
        "POST",
        &format!("/v1/integration/licenses/{kb}/validate"),
        json!({}),
        "nonce-of-sixteen-chars",
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "LICENSE_SCOPE_MISMATCH"),
        "{r:?}"
    );
}

#[tokio::test]
async fn every_integration_answer_is_signed_and_a_changed_byte_fails() {
    let env = Env::start().await;
    let t = env.tenant("signed").await;
    let (a, _) = two_licenses(&env, &t).await;
    let ka = a["key"].as_str().unwrap();
    let (keys, list) = pinned(&env, &t).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        (list[0]["kid"].as_str(), list[0]["status"].as_str()),
        (Some("v1"), Some("active"))
    );

    // 2xx and 4xx, by license key and by API key.
    let validate = format!("/v1/integration/licenses/{ka}/validate");
    let cases: Vec<(&str, String, Value)> = vec![
        ("POST", validate.clone(), json!({})),
        ("POST", validate.clone(), json!({ "fingerprint": "none" })),
        (
            "POST",
            "/v1/integration/activations".into(),
            json!({ "license_key": ka, "fingerprint": "m1" }),
        ),
        (
            "POST",
            "/v1/integration/activations".into(),
            json!({ "license_key": ka }),
        ),
        (
            "POST",
            "/v1/integration/entitlements/check".into(),
            json!({ "license_key": ka, "features": ["f", "g"] }),
        ),
        ("POST", format!("{validate}?x=1&y=%20"), json!({})),
        (
            "POST",
            format!("/v1/integration/licenses/{ka}/checkout"),
            json!({}),
        ),
    ];
    for (i, (method, path, body)) in cases.iter().enumerate() {
        let nonce = format!("nonce-{i}-0123456789abcdef");
        let r = as_client(&env, &t.id, ka, method, path, body.clone(), &nonce).await;
        assert!(r.status < 500, "{r:?}");
        verifies(&keys, &t.id, method, path, &nonce, body, &r)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}: {r:?}"));
        let by_key = env
            .send_raw(
                method,
                path,
                &[("x-api-key", &t.integration), ("x-nonce", &nonce)],
                body.to_string().into_bytes(),
            )
            .await;
        verifies(&keys, &t.id, method, path, &nonce, body, &by_key)
            .unwrap_or_else(|e| panic!("API key {path}: {e}"));
    }

    // One byte changed anywhere: refused. A replayed answer: refused for a new nonce.
    const FRESH: &str = "fresh-0123456789-1";
    let r = as_client(&env, &t.id, ka, "POST", &validate, json!({}), FRESH).await;
    assert!(verifies(&keys, &t.id, "POST", &validate, FRESH, &json!({}), &r).is_ok());
    let mut flipped = r.text.clone().into_bytes();
    let i = flipped.iter().position(|b| *b == b't').unwrap();
    flipped[i] = b'f';
    let tampered = Resp {
        text: String::from_utf8(flipped).unwrap(),
        ..r.clone()
    };
    assert!(
        verifies(
            &keys,
            &t.id,
            "POST",
            &validate,
            FRESH,
            &json!({}),
            &tampered
        )
        .is_err(),
        "body"
    );
    assert!(
        verifies(
            &keys,
            &t.id,
            "POST",
            &format!("{validate}x"),
            FRESH,
            &json!({}),
            &r
        )
        .is_err(),
        "path"
    );
    assert!(
        verifies(&keys, &t.id, "GET", &validate, FRESH, &json!({}), &r).is_err(),
        "method"
    );
    assert!(
        verifies(
            &keys,
            &t.id,
            "POST",
            &validate,
            "fresh-0123456789-2",
            &json!({}),
            &r
        )
        .is_err(),
        "a replay under a new nonce"
    );
    let sent = SentRequest {
        method: "POST",
        path_and_query: &validate,
        tenant: &t.id,
        nonce: Some(FRESH),
        body: b"{}",
    };
    let date = r.header("x-signature-date").unwrap().replace(".", ",");
    assert!(
        verify_answer(
            &keys,
            sent,
            r.header("x-signature"),
            Some(&date),
            r.text.as_bytes(),
            signed_at(&r)
        )
        .is_err(),
        "date"
    );
}

#[tokio::test]
async fn license_files_verify_offline_and_rotation_keeps_them_verifiable() {
    let env = Env::start().await;
    let t = env.tenant("files").await;
    let (a, b) = two_licenses(&env, &t).await;
    let (ka, kb) = (a["key"].as_str().unwrap(), b["key"].as_str().unwrap());
    let (keys, _) = pinned(&env, &t).await;
    let checkout = |k: &str| format!("/v1/integration/licenses/{k}/checkout");

    // Bound to a machine: it must be activated there.
    let r = as_client(
        &env,
        &t.id,
        ka,
        "POST",
        &checkout(ka),
        json!({ "fingerprint": "laptop" }),
        NONCE,
    )
    .await;
    assert_eq!((r.status, r.code()), (409, "NO_ACTIVATION"), "{r:?}");
    let act = as_client(
        &env,
        &t.id,
        ka,
        "POST",
        "/v1/integration/activations",
        json!({ "license_key": ka, "fingerprint": "laptop" }),
        NONCE,
    )
    .await;
    assert_eq!(act.status, 201, "{act:?}");
    let r = as_client(
        &env,
        &t.id,
        ka,
        "POST",
        &checkout(ka),
        json!({ "fingerprint": "laptop", "ttl_seconds": 7200 }),
        NONCE,
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.data()["kid"], "v1");
    let file = r.data()["certificate"].as_str().unwrap().to_string();
    assert!(
        file.starts_with("-----BEGIN LICENSE FILE-----\n")
            && file.ends_with("-----END LICENSE FILE-----\n")
    );
    let now = time::OffsetDateTime::now_utc();
    let ok =
        verify_license_file(&file, &keys, &t.id, Some("laptop"), now).expect("verifies offline");
    assert_eq!(ok.license.key, ka);
    assert_eq!(ok.activation.as_ref().unwrap().fingerprint, "laptop");

    // Refused, each for its own reason.
    let err = |r: Result<licensing_client::LicenseFile, FileError>| {
        r.err().map(|e| format!("{e:?}")).unwrap_or_default()
    };
    assert!(err(verify_license_file(
        &file,
        &keys,
        &t.id,
        Some("desktop"),
        now
    ))
    .starts_with("WrongFingerprint"));
    assert!(err(verify_license_file(
        &file,
        &keys,
        &t.id,
        None,
        now + time::Duration::hours(3)
    ))
    .starts_with("Expired"));
    assert!(err(verify_license_file(&file, &keys, "another", None, now)).starts_with("WrongTenant"));
    let body_start = file.find('\n').unwrap() + 1;
    let mut tampered = file.clone().into_bytes();
    tampered[body_start + 10] = if tampered[body_start + 10] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(
        err(verify_license_file(&tampered, &keys, &t.id, None, now)).starts_with("BadSignature"),
        "{}",
        err(verify_license_file(&tampered, &keys, &t.id, None, now))
    );
    let mut strangers = PinnedKeys::new();
    strangers
        .pin("v1", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
        .unwrap();
    assert!(
        err(verify_license_file(&file, &strangers, &t.id, None, now)).starts_with("BadSignature")
    );
    assert!(err(verify_license_file(
        &file,
        &PinnedKeys::new(),
        &t.id,
        None,
        now
    ))
    .starts_with("UnknownKey"));

    // A file never outlives its license; a license not in force gets none.
    let soon = (now + time::Duration::hours(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let short = env
        .post(
            "/v1/manage/licenses",
            &t.admin,
            json!({ "policy": a["policy"], "customer_email": "s@example.com", "expires_at": soon }),
        )
        .await;
    let ks = short.data()["key"].as_str().unwrap();
    // (An API key may check out an unbound file; a license key only a bound one.)
    let r = env
        .post(
            &checkout(ks),
            &t.integration,
            json!({ "ttl_seconds": 7_776_000 }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.data()["expires_at"], short.data()["expires_at"]);
    let suspend = env
        .post(
            &format!("/v1/manage/licenses/{}/suspend", b["id"].as_str().unwrap()),
            &t.admin,
            json!({}),
        )
        .await;
    assert_eq!(suspend.status, 200);
    let body = json!({ "fingerprint": "bm" });
    let r = as_client(&env, &t.id, kb, "POST", &checkout(kb), body, NONCE).await;
    assert_eq!((r.status, r.code()), (403, "LICENSE_NOT_ACTIVE"), "{r:?}");
    let v = as_client(
        &env,
        &t.id,
        kb,
        "POST",
        &format!("/v1/integration/licenses/{kb}/validate"),
        json!({}),
        NONCE,
    )
    .await;
    assert_eq!(
        (v.status, v.data()["code"].as_str()),
        (200, Some("SUSPENDED")),
        "a suspended license still authenticates for validate"
    );

    // Rotation: new answers use v2; the v1 file still verifies (v1 is listed, retired).
    let rot = env
        .post("/v1/manage/signing-keys/rotate", &t.admin, json!({}))
        .await;
    assert_eq!(
        (
            rot.status,
            rot.data()["kid"].as_str(),
            rot.data()["status"].as_str()
        ),
        (201, Some("v2"), Some("active")),
        "{rot:?}"
    );
    let (keys2, list) = pinned(&env, &t).await;
    let statuses: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_string(),
                k["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("v2".to_string(), "active".to_string()),
            ("v1".to_string(), "retired".to_string())
        ]
    );
    assert!(
        verify_license_file(&file, &keys2, &t.id, Some("laptop"), now).is_ok(),
        "the old file still verifies"
    );
    let validate = format!("/v1/integration/licenses/{ka}/validate");
    let r = as_client(
        &env,
        &t.id,
        ka,
        "POST",
        &validate,
        json!({}),
        "after-rotation-0123",
    )
    .await;
    assert!(
        r.header("x-signature").unwrap().starts_with("keyid=\"v2\""),
        "{r:?}"
    );
    assert!(verifies(
        &keys2,
        &t.id,
        "POST",
        &validate,
        "after-rotation-0123",
        &json!({}),
        &r
    )
    .is_ok());
    assert!(
        verifies(
            &keys,
            &t.id,
            "POST",
            &validate,
            "after-rotation-0123",
            &json!({}),
            &r
        )
        .is_err(),
        "v2 answers are not v1's"
    );
    let audit = env.get("/v1/manage/audit-events", &t.admin).await;
    assert!(audit
        .data()
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["code"] == "SIGNING_KEY.ROTATED"));
}

#[tokio::test]
async fn a_license_key_checks_out_only_files_bound_to_an_activated_machine() {
    let env = Env::start().await;
    let t = env.tenant("bound-files").await;
    let (a, _) = two_licenses(&env, &t).await;
    let ka = a["key"].as_str().unwrap();
    let (keys, _) = pinned(&env, &t).await;
    let checkout = format!("/v1/integration/licenses/{ka}/checkout");
    let by_client = |body: Value| as_client(&env, &t.id, ka, "POST", &checkout, body, NONCE);

    // No fingerprint: 422 FINGERPRINT_REQUIRED (signed; after the ttl's own range check).
    for body in [
        json!({}),
        json!({ "ttl_seconds": 7200 }),
        json!({ "fingerprint": null }),
    ] {
        let r = by_client(body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "FINGERPRINT_REQUIRED"),
            "{body}: {r:?}"
        );
        verifies(&keys, &t.id, "POST", &checkout, NONCE, &body, &r).unwrap();
    }
    let r = by_client(json!({ "ttl_seconds": 60 })).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");

    // A machine that is not activated (never, or no more): refused.
    let r = by_client(json!({ "fingerprint": "never-seen" })).await;
    assert_eq!((r.status, r.code()), (409, "NO_ACTIVATION"), "{r:?}");
    assert_eq!(env.activate(&t, ka, "old-box").await.status, 201);
    assert_eq!(env.deactivate(&t, ka, "old-box").await.status, 200);
    let r = by_client(json!({ "fingerprint": "old-box" })).await;
    assert_eq!((r.status, r.code()), (409, "NO_ACTIVATION"), "{r:?}");

    // An activated one: a file bound to it.
    assert_eq!(env.activate(&t, ka, "ann-box").await.status, 201);
    let r = by_client(json!({ "fingerprint": "ann-box" })).await;
    assert_eq!(r.status, 201, "{r:?}");
    let file = r.data()["certificate"].as_str().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let f = verify_license_file(file, &keys, &t.id, Some("ann-box"), now).unwrap();
    assert_eq!(f.activation.unwrap().fingerprint, "ann-box");

    // Unbound files stay available to API-key callers; a client given its
    // fingerprint refuses one, as it refuses a file bound to another machine.
    let r = env.post(&checkout, &t.integration, json!({})).await;
    assert_eq!(r.status, 201, "{r:?}");
    let unbound = r.data()["certificate"].as_str().unwrap();
    let f = verify_license_file(unbound, &keys, &t.id, None, now).unwrap();
    assert!(f.activation.is_none());
    assert_eq!(
        verify_license_file(unbound, &keys, &t.id, Some("ann-box"), now).unwrap_err(),
        FileError::Unbound
    );
    assert_eq!(
        verify_license_file(file, &keys, &t.id, Some("bob-box"), now).unwrap_err(),
        FileError::WrongFingerprint
    );
}

#[tokio::test]
async fn license_files_are_cut_to_the_policys_max_file_ttl() {
    let at = datetime!(2026-11-02 10:00:00 UTC);
    let env = Env::with_clock(at).await;
    let t = env.tenant("file-ttl").await;
    let (a, _) = two_licenses(&env, &t).await;
    let ka = a["key"].as_str().unwrap();
    let (keys, _) = pinned(&env, &t).await;
    assert_eq!(env.activate(&t, ka, "box").await.status, 201);
    let checkout = format!("/v1/integration/licenses/{ka}/checkout");
    let file_for = |ttl: Option<u32>| {
        let mut body = json!({ "fingerprint": "box" });
        if let Some(ttl) = ttl {
            body["ttl_seconds"] = json!(ttl);
        }
        as_client(&env, &t.id, ka, "POST", &checkout, body, NONCE)
    };
    let expect = |r: &Resp, seconds: i64| {
        assert_eq!(r.status, 201, "{r:?}");
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        let shown = r.data()["expires_at"].as_str().unwrap();
        let shown = time::OffsetDateTime::parse(shown, rfc3339).unwrap();
        let ends = at + time::Duration::seconds(seconds);
        assert_eq!(shown, ends, "the answer shows the real expiry");
        let certificate = r.data()["certificate"].as_str().unwrap();
        let f = verify_license_file(certificate, &keys, &t.id, Some("box"), at).unwrap();
        assert_eq!(f.expires_at, ends);
        assert_eq!(f.ttl_seconds, Some(seconds), "the payload's ttl_seconds");
    };

    // The default cap: 14 days. Shorter asks are kept; longer ones are cut.
    let policy = env
        .get(
            &format!("/v1/manage/policies/{}", a["policy"].as_str().unwrap()),
            &t.admin,
        )
        .await;
    assert_eq!(
        policy.data()["max_file_ttl_seconds"],
        1_209_600,
        "{policy:?}"
    );
    expect(&file_for(None).await, 86_400);
    expect(&file_for(Some(1_209_600)).await, 1_209_600);
    expect(&file_for(Some(7_776_000)).await, 1_209_600);

    // A policy's own cap, set and changed.
    let id = a["policy"].as_str().unwrap();
    let p = env
        .patch(
            &format!("/v1/manage/policies/{id}"),
            &t.admin,
            json!({ "max_file_ttl_seconds": 3_600 }),
        )
        .await;
    assert_eq!(p.data()["max_file_ttl_seconds"], 3_600, "{p:?}");
    expect(&file_for(None).await, 3_600);
    expect(&file_for(Some(7_200)).await, 3_600);
    expect(&file_for(Some(3_600)).await, 3_600);
    let p = env
        .patch(
            &format!("/v1/manage/policies/{id}"),
            &t.admin,
            json!({ "max_file_ttl_seconds": 7_776_000 }),
        )
        .await;
    assert_eq!(p.status, 200, "{p:?}");
    expect(&file_for(Some(7_776_000)).await, 7_776_000);
    // ttl_seconds itself keeps its range.
    let r = file_for(Some(7_776_001)).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");
}

#[tokio::test]
async fn max_file_ttl_seconds_is_validated_on_policies() {
    let env = Env::start().await;
    let t = env.tenant("file-ttl-policy").await;
    let product = env
        .post(
            "/v1/manage/products",
            &t.admin,
            json!({ "code": "app", "name": "App" }),
        )
        .await;
    assert_eq!(product.status, 201, "{product:?}");
    let create = |cap: Value| {
        let body = json!({ "product": "app", "name": "p", "max_activations": 1, "max_file_ttl_seconds": cap });
        env.post("/v1/manage/policies", &t.admin, body)
    };
    for bad in [
        json!(0),
        json!(3_599),
        json!(7_776_001),
        json!(-1),
        json!(1.5),
        json!("86400"),
        json!(u64::MAX),
    ] {
        let r = create(bad.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "VALIDATION_ERROR"),
            "{bad}: {r:?}"
        );
        let message = r.json["error"]["message"].as_str().unwrap();
        assert!(message.contains("max_file_ttl_seconds"), "{bad}: {message}");
    }
    for (cap, shown) in [
        (json!(null), 1_209_600),
        (json!(3_600), 3_600),
        (json!(7_776_000), 7_776_000),
    ] {
        let r = create(cap.clone()).await;
        assert_eq!(r.status, 201, "{cap}: {r:?}");
        assert_eq!(r.data()["max_file_ttl_seconds"], shown, "{cap}");
    }
    let r = env
        .post(
            "/v1/manage/policies",
            &t.admin,
            json!({ "product": "app", "name": "default", "max_activations": 1 }),
        )
        .await;
    assert_eq!(r.data()["max_file_ttl_seconds"], 1_209_600);

    // PATCH: the same range; null or absent leaves it as it is.
    let path = format!("/v1/manage/policies/{}", r.data()["id"].as_str().unwrap());
    for bad in [json!(3_599), json!(7_776_001), json!("x")] {
        let p = env
            .patch(&path, &t.admin, json!({ "max_file_ttl_seconds": bad }))
            .await;
        assert_eq!(
            (p.status, p.code()),
            (422, "VALIDATION_ERROR"),
            "{bad}: {p:?}"
        );
    }
    let p = env
        .patch(&path, &t.admin, json!({ "max_file_ttl_seconds": 86_400 }))
        .await;
    assert_eq!(p.data()["max_file_ttl_seconds"], 86_400, "{p:?}");
    for unchanged in [
        json!({ "max_file_ttl_seconds": null }),
        json!({ "name": "renamed" }),
    ] {
        let p = env.patch(&path, &t.admin, unchanged.clone()).await;
        assert_eq!(p.status, 200, "{p:?}");
        assert_eq!(p.data()["max_file_ttl_seconds"], 86_400, "{unchanged}");
    }
    let g = env.get(&path, &t.admin).await;
    assert_eq!(g.data()["max_file_ttl_seconds"], 86_400);
}

#[tokio::test]
async fn an_independent_python_verifier_accepts_answers_and_files() {
    let python = std::env::var("LICENSING_PYTHON").expect(
        "LICENSING_PYTHON: the test setup's Python with `cryptography` (make test sets it)",
    );
    let script = format!("{}/../scripts/verify_signed.py", env!("CARGO_MANIFEST_DIR"));
    let env = Env::start().await;
    let t = env.tenant("python").await;
    let (a, _) = two_licenses(&env, &t).await;
    let ka = a["key"].as_str().unwrap();
    let (_, list) = pinned(&env, &t).await;
    let public = list[0]["public_key"].as_str().unwrap().to_string();
    let dir = std::env::temp_dir().join(format!("verify-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&python)
            .arg(&script)
            .args(args)
            .output()
            .expect("python");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    };

    // Signed answers (version 2): the request as sent, body included.
    let path = format!("/v1/integration/licenses/{ka}/validate?from=python");
    let asked = json!({ "fingerprint": "py-box", "product": a["product"] });
    let nonce = "py-nonce-0123456789";
    let r = as_client(&env, &t.id, ka, "POST", &path, asked.clone(), nonce).await;
    assert_eq!(r.data()["code"], "NO_ACTIVATION", "{r:?}");
    let (sent, body) = (dir.join("sent"), dir.join("body"));
    std::fs::write(&sent, asked.to_string()).unwrap();
    std::fs::write(&body, &r.text).unwrap();
    let (sig, date) = (
        r.header("x-signature").unwrap(),
        r.header("x-signature-date").unwrap(),
    );
    assert!(sig.contains("version=\"2\""), "{sig}");
    let (s, b) = (sent.to_str().unwrap(), body.to_str().unwrap());
    let answer = |path: &str, tenant: &str, nonce: &str, sent: &str| {
        run(&[
            "answer", &public, "POST", path, tenant, nonce, sig, date, sent, b,
        ])
    };
    assert_eq!(answer(&path, &t.id, nonce, s), (true, "ok".into()));
    assert!(
        !answer(&path, &t.id, "other-nonce-0123456789", s).0,
        "nonce"
    );
    assert!(!answer(&path, "someone-else", nonce, s).0, "tenant");
    assert!(
        !answer(&path.replace("python", "py"), &t.id, nonce, s).0,
        "query"
    );
    assert!(!answer(&path, &t.id, nonce, "-").0, "no request body");
    // The request body a man in the middle forwarded instead (fingerprint dropped).
    let rewritten = dir.join("rewritten");
    std::fs::write(&rewritten, json!({ "product": a["product"] }).to_string()).unwrap();
    assert_eq!(
        answer(&path, &t.id, nonce, rewritten.to_str().unwrap()),
        (false, "the signature does not verify".into()),
        "a rewritten request"
    );
    std::fs::write(&body, r.text.replace("NO_ACTIVATION", "VALID")).unwrap();
    assert!(!answer(&path, &t.id, nonce, s).0, "another answer body");

    // An answer to a request without a body (API key, no nonce: empty lines).
    let bare = env
        .send_raw("POST", &path, &[("x-api-key", &t.integration)], Vec::new())
        .await;
    assert_eq!(bare.status, 200, "{bare:?}");
    std::fs::write(&body, &bare.text).unwrap();
    let ok = run(&[
        "answer",
        &public,
        "POST",
        &path,
        &t.id,
        "",
        bare.header("x-signature").unwrap(),
        bare.header("x-signature-date").unwrap(),
        "-",
        b,
    ]);
    assert_eq!(ok, (true, "ok".into()));

    // License files: bound to an activated machine (a license key's only kind).
    let act = as_client(
        &env,
        &t.id,
        ka,
        "POST",
        "/v1/integration/activations",
        json!({ "license_key": ka, "fingerprint": "py-box" }),
        NONCE,
    )
    .await;
    assert_eq!(act.status, 201, "{act:?}");
    let co = as_client(
        &env,
        &t.id,
        ka,
        "POST",
        &format!("/v1/integration/licenses/{ka}/checkout"),
        json!({ "fingerprint": "py-box" }),
        NONCE,
    )
    .await;
    assert_eq!(co.status, 201, "{co:?}");
    let file = dir.join("license.lic");
    std::fs::write(&file, co.data()["certificate"].as_str().unwrap()).unwrap();
    let f = file.to_str().unwrap();
    assert_eq!(run(&["file", &public, &t.id, f]), (true, "ok".into()));
    assert_eq!(
        run(&["file", &public, &t.id, f, "py-box"]),
        (true, "ok".into())
    );
    assert_eq!(
        run(&["file", &public, &t.id, f, "other-box"]),
        (false, "bound to another machine".into())
    );
    assert_eq!(
        run(&["file", &public, "someone-else", f]),
        (false, "another tenant's file".into())
    );
    let text = co.data()["certificate"]
        .as_str()
        .unwrap()
        .replacen("-----\n", "-----\nA", 1);
    std::fs::write(&file, text).unwrap();
    assert!(!run(&["file", &public, &t.id, f]).0, "tampered");

    // An unbound file (an API key may still check one out): refused for a machine.
    let unbound = env
        .post(
            &format!("/v1/integration/licenses/{ka}/checkout"),
            &t.integration,
            json!({}),
        )
        .await;
    assert_eq!(unbound.status, 201, "{unbound:?}");
    std::fs::write(&file, unbound.data()["certificate"].as_str().unwrap()).unwrap();
    assert_eq!(run(&["file", &public, &t.id, f]), (true, "ok".into()));
    assert_eq!(
        run(&["file", &public, &t.id, f, "py-box"]),
        (false, "not bound to a machine".into())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_client_crate_end_to_end() {
    let env = Env::start().await;
    let t = env.tenant("crate").await;
    let (a, _) = two_licenses(&env, &t).await;
    let ka = a["key"].as_str().unwrap();
    let (_, list) = pinned(&env, &t).await;
    let cache = std::env::temp_dir().join(format!("client-cache-{}", ulid::Ulid::new()));
    let client = licensing_client::Client::builder()
        .base_url(env.base.clone())
        .tenant_id(t.id.clone())
        .license_key(ka)
        .pin_key("v1", list[0]["public_key"].as_str().unwrap())
        .cache_dir(&cache)
        .build()
        .unwrap();
    let v = client.validate(None).await.unwrap();
    assert!(v.valid, "{v:?}");
    let act = client
        .activate("workstation", Some("Ann's PC"))
        .await
        .unwrap();
    assert_eq!(act.fingerprint, "workstation");
    let file = client.checkout("workstation", Some(7200)).await.unwrap();
    assert_eq!(file.license.key, ka);
    let offline = client.offline_license(Some("workstation")).unwrap();
    assert_eq!(
        offline.expires_at, file.expires_at,
        "the cached file answers offline"
    );
    let hb = client.heartbeat(&act.id).await.unwrap();
    assert_eq!(hb.id, act.id);
    let gone = client.deactivate("workstation").await.unwrap();
    assert_eq!(gone.status.as_deref(), Some("deactivated"));
    // A client pinned to the wrong key refuses the service's answers.
    let mut wrong = PinnedKeys::new();
    wrong
        .pin("v1", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
        .unwrap();
    let fooled = licensing_client::Client::builder()
        .base_url(env.base.clone())
        .tenant_id(t.id.clone())
        .license_key(ka)
        .pinned_keys(&wrong)
        .build()
        .unwrap();
    assert!(matches!(
        fooled.validate(None).await,
        Err(licensing_client::Error::Unverified(_))
    ));
}

/// The recommended use (`Client::ensure_licensed`, `Client::lease`) against the real functions,
/// through an honest proxy that counts the calls, on the service's manual clock shared with the
/// client: 2 calls on the first day, none on a relaunch, 1 the next day; offline on the cached
/// file with nothing listening; a man in the middle's rewritten checkout refused, not replaced
/// by the cached file; a released seat activated again; heartbeats only when the policy sets
/// `heartbeat_seconds`; a floating lease renewed at a third of `lease_seconds` and returned.
#[tokio::test]
async fn the_recommended_use_against_the_local_stack() {
    use super::floating::license_with;
    use super::signing::{Proxy, Rewrite};
    use licensing_client::{Client, Error, Source};
    use std::sync::Arc;
    use std::time::Duration;

    let start = datetime!(2026-11-02 09:00 UTC);
    let env = Env::with_clock(start).await;
    let clock = env.clock.clone().expect("a manual clock");
    let t = env.tenant("session").await;
    let (_, lic) = env
        .license(&t, 2, json!({ "export-4k": { "type": "boolean" } }))
        .await;
    let key = lic["key"].as_str().unwrap().to_owned();
    let (_, list) = pinned(&env, &t).await;
    let public = list[0]["public_key"].as_str().unwrap().to_owned();
    let (proxy, via) = Proxy::start(&env.base).await;
    let cache = std::env::temp_dir().join(format!("client-session-{}", ulid::Ulid::new()));
    let app = |base: &str, key: &str, cache: &std::path::Path| {
        let clock = clock.clone();
        Arc::new(
            Client::builder()
                .base_url(base)
                .tenant_id(t.id.clone())
                .license_key(key)
                .pin_key("v1", &public)
                .cache_dir(cache)
                .machine_name("Ann's PC")
                .clock(move || shared::clock::Clock::now(&*clock))
                .build()
                .unwrap(),
        )
    };
    let ann = app(&via, &key, &cache);
    let day = |n: i64| start + time::Duration::days(n);

    // Day 1, 09:00, the first run: activate, check out: 2 calls.
    let s = ann.ensure_licensed("ann-pc").await.unwrap();
    assert_eq!((s.source, proxy.forwarded()), (Source::Service, 2));
    assert!(s.has_entitlement("export-4k"));
    assert_eq!(s.license().activation_mode.as_deref(), Some("node_locked"));
    assert_eq!(s.license().heartbeat_seconds, None);
    assert!(s.heartbeat().is_none(), "no heartbeats for node-locked");
    assert_eq!(s.file.activation.as_ref().unwrap().fingerprint, "ann-pc");
    // 14 days asked, the policy's default cap.
    assert_eq!(
        s.file.expires_at - s.file.issued_at,
        time::Duration::days(14)
    );
    // Relaunched at 13:00: the cached file, no call.
    clock.set(start + time::Duration::hours(4));
    let s = ann.ensure_licensed("ann-pc").await.unwrap();
    assert_eq!((s.source, proxy.forwarded()), (Source::Cache, 2));
    // Day 2, 09:00: one checkout.
    clock.set(day(1));
    let s = ann.ensure_licensed("ann-pc").await.unwrap();
    assert_eq!((s.source, proxy.forwarded()), (Source::Service, 3));
    let refreshed_until = s.file.expires_at;

    // Day 4: no network at all (nothing listens): the cached file, verified offline.
    clock.set(day(3));
    let offline = app(&closed_port(), &key, &cache);
    let s = offline.ensure_licensed("ann-pc").await.unwrap();
    assert_eq!(s.source, Source::Offline);
    assert_eq!(s.file.expires_at, refreshed_until);

    // A man in the middle drops the fingerprint from the checkout: the service's genuine
    // answer (422 FINGERPRINT_REQUIRED) does not verify for the request the app sent, and the
    // still valid cached file does not replace it.
    clock.set(day(4));
    proxy.set(Rewrite::DropScope);
    let err = ann.ensure_licensed("ann-pc").await.unwrap_err();
    assert!(matches!(err, Error::Unverified(_)), "{err:?}");
    assert_eq!(proxy.rewritten(), 1);
    proxy.set(Rewrite::Nothing);
    let s = ann.ensure_licensed("ann-pc").await.unwrap();
    assert_eq!((s.source, proxy.forwarded()), (Source::Service, 5));

    // The seat released (by the vendor): the next refresh activates again.
    let r = env.deactivate(&t, &key, "ann-pc").await;
    assert_eq!(r.status, 200, "{r:?}");
    clock.set(day(5));
    let s = ann.ensure_licensed("ann-pc").await.unwrap();
    assert_eq!((s.source, proxy.forwarded()), (Source::Service, 5 + 3));

    // A policy that requires heartbeats: the file says so, the session heartbeats at a third.
    let beat = license_with(&env, &t, 1, json!({ "heartbeat_seconds": 3600 })).await;
    let beat_key = beat["key"].as_str().unwrap();
    let beat_cache = cache.join("beat");
    let s = app(&via, beat_key, &beat_cache)
        .ensure_licensed("ann-pc")
        .await
        .unwrap();
    assert_eq!(s.license().heartbeat_seconds, Some(3600));
    let every = s.heartbeat().expect("a heartbeat task").every();
    assert_eq!(every, Duration::from_secs(1200));

    // Floating: ensure_licensed refuses (after its first-run activation took a lease, which
    // lapses); a lease heartbeats at a third of lease_seconds and is returned.
    let pool = json!({ "activation_mode": "floating", "lease_seconds": 900 });
    let pool = license_with(&env, &t, 2, pool).await;
    let pool_key = pool["key"].as_str().unwrap();
    let floating = app(&via, pool_key, &cache.join("pool"));
    let err = floating.ensure_licensed("ann-pc").await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let lease = floating.lease("render-1").await.unwrap();
    assert_eq!(lease.every(), Duration::from_secs(300));
    let other = floating.lease("render-2").await.unwrap_err();
    assert_eq!(other.api_code(), Some("TOO_MANY_ACTIVATIONS"), "{other:?}");
    let returned = lease.release().await.unwrap();
    assert_eq!(returned.status.as_deref(), Some("deactivated"));
    let next = floating.lease("render-2").await.unwrap();
    assert_eq!(next.activation.fingerprint, "render-2");

    // Offline, the cached file lasts until it expires, and no longer.
    let offline = app(&closed_port(), &key, &cache);
    let until = offline.offline_license(Some("ann-pc")).unwrap().expires_at;
    clock.set(until - time::Duration::seconds(1));
    let s = offline.ensure_licensed("ann-pc").await.unwrap();
    assert_eq!(s.source, Source::Offline);
    clock.set(until);
    let err = offline.ensure_licensed("ann-pc").await.unwrap_err();
    assert!(
        matches!(err, Error::File(licensing_client::FileError::Expired(_))),
        "{err:?}"
    );
    let _ = std::fs::remove_dir_all(&cache);
}

/// A base URL where nothing listens.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}
