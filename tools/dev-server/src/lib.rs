//! The local stand-in for API Gateway: every request on loopback becomes the
//! same HTTP API (payload v2) event API Gateway would deliver, and goes to the
//! handler of the function the route belongs to.

#![recursion_limit = "256"]

use axum::body::Bytes;
use axum::response::IntoResponse;
use base64::Engine;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Map, Value};
use shared::app::App;
use shared::functions::Function;
use std::sync::Arc;

/// Bodies larger than this are refused here, as API Gateway refuses bodies
/// over its own limit; the handlers then apply theirs (64 KiB, 512 KiB for
/// Stripe webhooks).
const READ_LIMIT: usize = 1024 * 1024;

pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(move |req: axum::extract::Request| {
        let app = app.clone();
        async move { serve_one(&app, req).await }
    })
}

/// Serve on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer's address becomes the event's sourceIp, as API Gateway's would.
    let service = router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn serve_one(app: &App, req: axum::extract::Request) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, READ_LIMIT).await else {
        // API Gateway itself refuses payloads over its limit; answer in the envelope.
        let err = shared::Error::BadRequest {
            code: "BODY_TOO_LARGE",
            message: "the body exceeds 1 MiB".into(),
        };
        return to_axum(shared::http::envelope::render_error(
            &err,
            &format!("req_{}", ulid::Ulid::new()),
            None,
        ));
    };
    let event = gateway_event(&parts, &bytes);
    let lambda_req = match lambda_http::request::from_str(&event.to_string()) {
        Ok(r) => r,
        Err(e) => {
            return (
                http::StatusCode::BAD_REQUEST,
                format!("cannot form an API Gateway event: {e}"),
            )
                .into_response()
        }
    };
    let resp = dispatch(app, lambda_req).await;
    to_axum(resp)
}

/// Hand the request to the function that owns its route, as API Gateway would.
pub async fn dispatch(app: &App, req: Request) -> Response<Body> {
    let function =
        shared::http::route_for(req.method().as_str(), req.uri().path()).and_then(|r| r.function);
    match function {
        Some(Function::Validate) => validate::handler(app, req).await,
        Some(Function::Activate) => activate::handler(app, req).await,
        Some(Function::Entitlements) => entitlements::handler(app, req).await,
        Some(Function::Usage) => usage::handler(app, req).await,
        Some(Function::Manage) => manage::handler(app, req).await,
        Some(Function::StripeWebhook) => stripe_webhook::handler(app, req).await,
        Some(Function::ProvisionTenant) => provision_tenant::handler(app, req).await,
        Some(Function::Portal) => portal::handler(app, req).await,
        Some(Function::Customer) => customer::handler(app, req).await,
        Some(Function::CustomerRegister) => customer_register::handler(app, req).await,
        // Health, unknown paths: the shared router answers (404 envelope for unknown).
        Some(
            Function::ProvisionWorker
            | Function::WebhookFanout
            | Function::WebhookDeliver
            | Function::BillingClose,
        )
        | None => shared::http::handle(app, None, req).await,
    }
}

/// The HTTP API payload v2 event for a plain HTTP request.
pub fn gateway_event(parts: &http::request::Parts, body: &Bytes) -> Value {
    let mut headers = Map::new();
    for (name, value) in parts.headers.iter() {
        let v = String::from_utf8_lossy(value.as_bytes()).to_string();
        let key = name.as_str().to_ascii_lowercase();
        match headers.get_mut(&key) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                headers.insert(key, Value::String(v));
            }
        }
    }
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let mut query = Map::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        match query.get_mut(k.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query.insert(k.to_string(), Value::String(v.to_string()));
            }
        }
    }
    let (body_value, is_b64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(s) => (Value::String(s.to_string()), false),
        Err(_) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let path = parts.uri.path();
    let method = parts.method.as_str();
    let source_ip = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query) },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers
                    .get("user-agent")
                    .cloned()
                    .unwrap_or(Value::String(String::new())),
            },
            "requestId": ulid::Ulid::new().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": "",
            "timeEpoch": now,
        },
        "body": body_value,
        "isBase64Encoded": is_b64,
    })
}

fn to_axum(resp: Response<Body>) -> axum::response::Response {
    let (parts, body) = resp.into_parts();
    let bytes: Vec<u8> = match body {
        Body::Empty => Vec::new(),
        Body::Text(t) => t.into_bytes(),
        Body::Binary(b) => b,
        _ => Vec::new(),
    };
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}
