//! Signed answers, version 2: the signature covers the request body as
//! received and the tenant, so a man in the middle who rewrites what a client
//! app asked and forwards the genuine answer is caught; license-key requests
//! must carry a nonce (docs/signing.md § 3).

use super::clients::{as_client, pinned, signed_at, NONCE};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use harness::{Env, Resp, Tenant};
use licensing_client::{verify_answer, Client, Error, PinnedKeys, SentRequest};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Whether `r` verifies as the answer to exactly this request.
fn verify(
    keys: &PinnedKeys,
    tenant: &str,
    path: &str,
    nonce: Option<&str>,
    sent: &[u8],
    r: &Resp,
) -> Result<(), String> {
    let request = SentRequest {
        method: "POST",
        path_and_query: path,
        tenant,
        nonce,
        body: sent,
    };
    verify_answer(
        keys,
        request,
        r.header("x-signature"),
        r.header("x-signature-date"),
        r.text.as_bytes(),
        signed_at(r),
    )
}

/// Who sends a request.
#[derive(Clone, Copy)]
enum Caller<'a> {
    /// A client app: tenant and license key.
    License(&'a str, &'a str),
    ApiKey(&'a str),
}

async fn send_as(env: &Env, caller: Caller<'_>, path: &str, nonce: &str, body: Value) -> Resp {
    let auth;
    let mut headers = vec![("x-nonce", nonce), ("content-type", "application/json")];
    match caller {
        Caller::License(tenant, key) => {
            auth = format!("License {key}");
            headers.push(("authorization", &auth));
            headers.push(("x-tenant-id", tenant));
        }
        Caller::ApiKey(k) => headers.push(("x-api-key", k)),
    }
    let body = body.to_string().into_bytes();
    env.send_raw("POST", path, &headers, body).await
}

/// A license of a fresh policy (2 seats, entitlement `f`): its key and product.
async fn license(env: &Env, t: &Tenant) -> (String, String) {
    let (_, l) = env
        .license(t, 2, json!({ "f": { "type": "boolean" } }))
        .await;
    let key = l["key"].as_str().unwrap().to_string();
    (key, l["product"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_rewritten_request_body_no_longer_verifies_the_genuine_answer() {
    let env = Env::start().await;
    let t = env.tenant("sig-rewrite").await;
    let (key, product) = license(&env, &t).await;
    let (keys, _) = pinned(&env, &t).await;
    let path = format!("/v1/integration/licenses/{key}/validate");

    // What the app asked, and what a man in the middle forwards instead: each
    // turns a refusal into VALID.
    let cases = [
        (json!({ "fingerprint": "never-activated" }), "NO_ACTIVATION"),
        (json!({ "product": "another-product" }), "PRODUCT_MISMATCH"),
        (
            json!({ "entitlements": ["not-granted"] }),
            "ENTITLEMENTS_MISSING",
        ),
        (
            json!({ "fingerprint": "never-activated", "product": product, "entitlements": ["f"] }),
            "NO_ACTIVATION",
        ),
    ];
    let rewritten = json!({});
    for (asked, refused) in cases {
        for by_license_key in [true, false] {
            let nonce = format!("nonce-{}", ulid::Ulid::new());
            let send = |body: &Value| {
                let caller = if by_license_key {
                    Caller::License(&t.id, &key)
                } else {
                    Caller::ApiKey(&t.integration)
                };
                send_as(&env, caller, &path, &nonce, body.clone())
            };
            let honest = send(&asked).await;
            assert_eq!(honest.data()["code"], refused, "{asked}: {honest:?}");
            let forwarded = send(&rewritten).await;
            assert_eq!(forwarded.data()["code"], "VALID", "{forwarded:?}");
            assert!(
                forwarded
                    .header("x-signature")
                    .unwrap()
                    .contains("version=\"2\""),
                "{forwarded:?}"
            );
            let asked_bytes = asked.to_string().into_bytes();
            let rewritten_bytes = rewritten.to_string().into_bytes();
            let (tenant, n) = (t.id.as_str(), Some(nonce.as_str()));
            // The service signed the body it received: the rewritten one.
            assert_eq!(
                verify(&keys, tenant, &path, n, &rewritten_bytes, &forwarded),
                Ok(()),
                "{asked}"
            );
            assert_eq!(
                verify(&keys, tenant, &path, n, &asked_bytes, &honest),
                Ok(())
            );
            // Checked against what the app sent, the genuine VALID is refused.
            let err = verify(&keys, tenant, &path, n, &asked_bytes, &forwarded).unwrap_err();
            assert!(err.contains("does not verify"), "{asked}: {err}");
            // And the answer is bound to the tenant the request was made for.
            assert!(verify(&keys, "another-tenant", &path, n, &asked_bytes, &honest).is_err());
        }
    }
}

#[tokio::test]
async fn license_key_requests_need_a_nonce() {
    let env = Env::start().await;
    let t = env.tenant("sig-nonce").await;
    let (key, _) = license(&env, &t).await;
    let (keys, _) = pinned(&env, &t).await;
    let validate = format!("/v1/integration/licenses/{key}/validate");
    let auth = format!("License {key}");
    let send = |path: String, nonce: Option<&'static str>, body: Value| {
        let (env, auth, tenant) = (&env, auth.clone(), t.id.clone());
        async move {
            let mut headers = vec![("authorization", auth.as_str()), ("x-tenant-id", &tenant)];
            if let Some(n) = nonce {
                headers.push(("x-nonce", n));
            }
            env.send_raw("POST", &path, &headers, body.to_string().into_bytes())
                .await
        }
    };

    // None, or shorter than 16 characters: 400 NONCE_REQUIRED, before anything is read.
    env.calls.take();
    for nonce in [None, Some("n"), Some("fifteen-chars-x")] {
        let r = send(validate.clone(), nonce, json!({})).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "NONCE_REQUIRED"),
            "{nonce:?}: {r:?}"
        );
        // Still a signed answer (v1 of the named tenant's key, over the nonce as sent).
        let sent = b"{}";
        assert_eq!(verify(&keys, &t.id, &validate, nonce, sent, &r), Ok(()));
    }
    assert_eq!(env.calls.take(), Vec::<String>::new(), "no DynamoDB call");
    // Every license-key operation, and nothing is written.
    let others = [
        (
            "/v1/integration/activations".to_string(),
            json!({ "license_key": key, "fingerprint": "no-nonce" }),
        ),
        (
            format!("/v1/integration/licenses/{key}/checkout"),
            json!({ "fingerprint": "no-nonce" }),
        ),
        (
            "/v1/integration/entitlements/check".to_string(),
            json!({ "license_key": key, "features": ["f"] }),
        ),
    ];
    for (path, body) in others {
        let r = send(path.clone(), None, body).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "NONCE_REQUIRED"),
            "{path}: {r:?}"
        );
    }
    let acts = env
        .validate(&t, &key, json!({ "fingerprint": "no-nonce" }))
        .await;
    assert_eq!(
        acts.data()["code"],
        "NO_ACTIVATION",
        "nothing was activated"
    );
    // An unknown tenant gets the same 400: it says nothing about tenants.
    let r = env
        .send_raw(
            "POST",
            &validate,
            &[("authorization", &auth), ("x-tenant-id", "nobody-here")],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "NONCE_REQUIRED"), "{r:?}");

    // 16 and 128 characters are fine; 129 is a malformed header (422, as before).
    let r = send(validate.clone(), Some("sixteen-chars-xx"), json!({})).await;
    assert_eq!(
        (r.status, r.data()["code"].as_str()),
        (200, Some("VALID")),
        "{r:?}"
    );
    let longest: &'static str = "n".repeat(128).leak();
    let r = send(validate.clone(), Some(longest), json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let too_long: &'static str = "n".repeat(129).leak();
    let r = send(validate.clone(), Some(too_long), json!({})).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{r:?}");

    // With an API key the nonce stays optional (an empty line in the message).
    let r = env
        .send_raw(
            "POST",
            &validate,
            &[("x-api-key", &t.integration)],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(verify(&keys, &t.id, &validate, None, b"{}", &r), Ok(()));
    let r = env
        .send_raw(
            "POST",
            &validate,
            &[("x-api-key", &t.integration), ("x-nonce", "n")],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn no_answer_carries_a_version_1_signature() {
    let env = Env::start().await;
    let t = env.tenant("sig-version").await;
    let (key, _) = license(&env, &t).await;
    let (keys, _) = pinned(&env, &t).await;
    let validate = format!("/v1/integration/licenses/{key}/validate");
    const UNKNOWN: &str = "ABCDE-FGHJK-MNPQR-STVWX-YZ012";
    let unknown = format!("/v1/integration/licenses/{UNKNOWN}/validate");
    let answers = [
        as_client(&env, &t.id, &key, "POST", &validate, json!({}), NONCE).await,
        as_client(&env, &t.id, UNKNOWN, "POST", &unknown, json!({}), NONCE).await,
        as_client(
            &env,
            &t.id,
            &key,
            "POST",
            "/v1/integration/nowhere",
            json!({}),
            NONCE,
        )
        .await,
        as_client(
            &env,
            &t.id,
            &key,
            "POST",
            &validate,
            json!({ "x": 1 }),
            NONCE,
        )
        .await,
        env.post(&validate, &t.integration, json!({})).await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 401, 404, 422, 200]);
    for r in &answers {
        let header = r.header("x-signature").unwrap();
        assert!(header.contains(", version=\"2\", "), "{header}");
    }
    // A version-1 header (the same signature, no version) is refused by the client.
    let r = &answers[0];
    let v1 = r
        .header("x-signature")
        .unwrap()
        .replace(" version=\"2\",", "");
    let request = SentRequest {
        method: "POST",
        path_and_query: &validate,
        tenant: &t.id,
        nonce: Some(NONCE),
        body: b"{}",
    };
    let date = r.header("x-signature-date");
    assert_eq!(
        verify_answer(
            &keys,
            request,
            r.header("x-signature"),
            date,
            r.text.as_bytes(),
            signed_at(r)
        ),
        Ok(())
    );
    let now = signed_at(r);
    let err = verify_answer(&keys, request, Some(&v1), date, r.text.as_bytes(), now).unwrap_err();
    assert!(err.contains("version"), "{err}");
}

// ------------------------------------------------------- man in the middle

/// What the proxy does to a request body on its way to the service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Rewrite {
    /// Forward the request untouched.
    Nothing,
    /// Drop `fingerprint`, `product` and `entitlements`.
    DropScope,
    /// Put another machine's fingerprint in place of the app's.
    SwapFingerprint,
}

/// The fingerprint [`Rewrite::SwapFingerprint`] puts in.
const MITM_BOX: &str = "mitm-box";

/// A man in the middle between a client app and the service: it forwards
/// every request (path, query and headers as received) with its body
/// rewritten as told, and passes the service's answers on byte for byte,
/// signature headers included.
pub(crate) struct Proxy {
    upstream: String,
    http: reqwest::Client,
    rewrite: Mutex<Rewrite>,
    /// Requests whose body it changed.
    rewritten: AtomicUsize,
    forwarded: AtomicUsize,
}

impl Proxy {
    pub(crate) async fn start(upstream: &str) -> (Arc<Proxy>, String) {
        let proxy = Arc::new(Proxy {
            upstream: upstream.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            rewrite: Mutex::new(Rewrite::Nothing),
            rewritten: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(proxy.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (proxy, base)
    }

    pub(crate) fn set(&self, rewrite: Rewrite) {
        *self.rewrite.lock().unwrap() = rewrite;
    }

    pub(crate) fn rewritten(&self) -> usize {
        self.rewritten.load(Ordering::SeqCst)
    }

    /// Requests it passed on (rewritten or not): the calls the app made.
    pub(crate) fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }
}

/// The body `rewrite` makes of `body` (`None`: left as it was).
fn rewrite_body(rewrite: Rewrite, body: &[u8]) -> Option<Vec<u8>> {
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let changed = match rewrite {
        Rewrite::Nothing => false,
        Rewrite::DropScope => {
            let before = object.len();
            for field in ["fingerprint", "product", "entitlements"] {
                object.remove(field);
            }
            object.len() != before
        }
        Rewrite::SwapFingerprint => match object.get_mut("fingerprint") {
            Some(fp) if fp != MITM_BOX => {
                *fp = Value::String(MITM_BOX.into());
                true
            }
            _ => false,
        },
    };
    changed.then(|| serde_json::to_vec(&object).unwrap())
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rewrite = *proxy.rewrite.lock().unwrap();
    let body = match rewrite_body(rewrite, &body) {
        Some(changed) => {
            proxy.rewritten.fetch_add(1, Ordering::SeqCst);
            changed
        }
        None => body.to_vec(),
    };
    proxy.forwarded.fetch_add(1, Ordering::SeqCst);
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = proxy
        .http
        .request(method, format!("{}{path}", proxy.upstream))
        .body(body);
    for (name, value) in &headers {
        if !matches!(name.as_str(), "host" | "content-length") {
            request = request.header(name, value);
        }
    }
    let answer = request.send().await.expect("the service answers");
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !matches!(name.as_str(), "content-length" | "transfer-encoding") {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.expect("the answer's body");
    response.body(Body::from(bytes)).unwrap()
}

fn unverified<T: std::fmt::Debug>(what: &str, r: Result<T, Error>) {
    match r {
        Err(Error::Unverified(why)) => assert!(why.contains("does not verify"), "{what}: {why}"),
        other => panic!("{what}: the client accepted a rewritten exchange: {other:?}"),
    }
}

#[tokio::test]
async fn the_client_refuses_every_exchange_a_man_in_the_middle_rewrote() {
    let env = Env::start().await;
    let t = env.tenant("sig-mitm").await;
    let (key, product) = license(&env, &t).await;
    let (_, list) = pinned(&env, &t).await;
    let (proxy, via) = Proxy::start(&env.base).await;
    let client = |product: &str| {
        Client::builder()
            .base_url(via.clone())
            .tenant_id(t.id.clone())
            .license_key(key.clone())
            .pin_key("v1", list[0]["public_key"].as_str().unwrap())
            .product(product)
            .build()
            .unwrap()
    };
    let app = client(&product);

    // Untouched, everything through the proxy verifies.
    let v = app.validate(Some("ann-laptop")).await.unwrap();
    assert_eq!(v.code, licensing_client::ValidationCode::NoActivation);
    let act = app.activate("ann-laptop", Some("Ann")).await.unwrap();
    assert_eq!(act.fingerprint, "ann-laptop");
    let v = app.validate(Some("ann-laptop")).await.unwrap();
    assert!(v.valid, "{v:?}");
    let file = app.checkout("ann-laptop", Some(7200)).await.unwrap();
    assert_eq!(file.activation.unwrap().fingerprint, "ann-laptop");
    assert_eq!(proxy.rewritten(), 0);
    let honest = proxy.forwarded.load(Ordering::SeqCst);
    assert_eq!(honest, 4);

    // Dropping what scopes the question: the service answers the easier one
    // (genuinely, and signed), and the client refuses it.
    proxy.set(Rewrite::DropScope);
    unverified(
        "validate of a machine never activated",
        app.validate(Some("bob-desktop")).await,
    );
    unverified(
        "validate for another product",
        client("another-product").validate(Some("ann-laptop")).await,
    );
    unverified(
        "checkout of a bound file",
        app.checkout("ann-laptop", None).await,
    );
    unverified("activate", app.activate("bob-desktop", None).await);
    unverified("deactivate", app.deactivate("ann-laptop").await);
    assert_eq!(proxy.rewritten(), 5, "every one of them was rewritten");
    // The service did answer what it was asked: the rewritten validate is VALID.
    let r = env.validate(&t, &key, json!({})).await;
    assert_eq!(r.data()["code"], "VALID");

    // Another machine's fingerprint on activation: the seat goes to that
    // machine, and the app is not told its own machine is active.
    proxy.set(Rewrite::SwapFingerprint);
    unverified("activate", app.activate("carl-pc", None).await);
    unverified(
        "validate of a machine never activated",
        app.validate(Some("carl-pc")).await,
    );
    assert_eq!(proxy.rewritten(), 7);
    let r = env
        .validate(&t, &key, json!({ "fingerprint": MITM_BOX }))
        .await;
    assert_eq!(
        r.data()["code"],
        "VALID",
        "the swapped machine holds the seat"
    );
    let r = env
        .validate(&t, &key, json!({ "fingerprint": "carl-pc" }))
        .await;
    assert_eq!(r.data()["code"], "NO_ACTIVATION");

    // The same proxy, honest again: the same calls verify.
    proxy.set(Rewrite::Nothing);
    let v = app.validate(Some("carl-pc")).await.unwrap();
    assert_eq!(v.code, licensing_client::ValidationCode::NoActivation);
    let v = app.validate(Some("ann-laptop")).await.unwrap();
    assert!(v.valid, "{v:?}");
    assert_eq!(proxy.rewritten(), 7);
}
