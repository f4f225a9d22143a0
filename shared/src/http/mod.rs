//! HTTP ↔ domain. [`handle`] is every HTTP function's whole handler: request
//! id, routing, body limits, authentication, rate limiting, dispatch to a use
//! case, and the envelope.

mod auth;
pub mod envelope;
mod integration;
mod manage;
mod platform;
pub mod request;
mod stripe;
pub mod views;

pub use auth::Caller;

use crate::app::App;
use crate::domain::Scope;
use crate::error::Error;
use crate::functions::{Function, Op, PublicOp, Route, Surface, ROUTES};
use crate::ids::TenantId;
use crate::ratelimit::RateState;
use auth::Credential;
use envelope::{render, render_error, Reply};
use futures::FutureExt;
use lambda_http::{Body, Request, RequestExt, Response};
use request::Query;
use std::collections::HashMap;
use std::sync::OnceLock;
use time::OffsetDateTime;
use tracing::Instrument;

/// What a use case gets from the HTTP edge.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub request_id: String,
    pub now: OffsetDateTime,
    pub params: HashMap<String, String>,
    pub query: Query,
    pub body: &'a [u8],
    pub headers: &'a http::HeaderMap,
}

impl Ctx<'_> {
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the edge learns while serving a request, for the response.
#[derive(Default)]
struct Edge {
    rate: Option<RateState>,
    touch: Option<tokio::task::JoinHandle<()>>,
    /// Whose key signs an Integration answer, and which version.
    signer: Option<(TenantId, u32)>,
}

type Routers = HashMap<Option<Function>, matchit::Router<Vec<&'static Route>>>;

fn routers() -> &'static Routers {
    static R: OnceLock<Routers> = OnceLock::new();
    R.get_or_init(|| {
        // Group routes by (function, path), then build one router per function.
        let mut grouped: HashMap<Option<Function>, Vec<(&'static str, Vec<&'static Route>)>> =
            HashMap::new();
        for route in ROUTES {
            for key in [None, route.function]
                .into_iter()
                .collect::<std::collections::HashSet<_>>()
            {
                let paths = grouped.entry(key).or_default();
                match paths.iter_mut().find(|(p, _)| *p == route.path) {
                    Some((_, v)) => v.push(route),
                    None => paths.push((route.path, vec![route])),
                }
            }
        }
        grouped
            .into_iter()
            .map(|(key, paths)| {
                let mut router = matchit::Router::new();
                for (path, routes) in paths {
                    router
                        .insert(matchit_path(path), routes)
                        .unwrap_or_else(|e| panic!("route table: {e}"));
                }
                (key, router)
            })
            .collect()
    })
}

/// API Gateway's greedy `{name+}` (the rest of the path) as matchit writes it.
fn matchit_path(path: &str) -> String {
    match path.strip_suffix("+}").and_then(|p| p.rsplit_once('{')) {
        Some((head, name)) => format!("{head}{{*{name}}}"),
        None => path.to_string(),
    }
}

/// Serve one HTTP request as `function` would (`None`: every route, as the
/// dev server does). Never fails: every error is an envelope.
pub async fn handle(app: &App, function: Option<Function>, req: Request) -> Response<Body> {
    let request_id = request_id(&req);
    // The route's pattern is logged, never the raw path: a path can carry a
    // license key, which is a customer's credential.
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        route = "unmatched",
        tenant = tracing::field::Empty,
        status = tracing::field::Empty
    );
    async move {
        let started = std::time::Instant::now();
        let mut edge = Edge::default();
        // The backstop: a panic anywhere below answers a 500 envelope (and is
        // logged) instead of dropping the connection. Bad input never gets
        // here; it is refused with a 4xx long before.
        let served = serve(app, function, &req, &request_id, &mut edge);
        let result = match std::panic::AssertUnwindSafe(served).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %what, "a handler panicked");
                Err(Error::internal(format!("panic: {what}")))
            }
        };
        // The last_used_at write ran alongside the request; finish it before
        // answering, since Lambda freezes the environment after the response.
        // Every 401 looks the same, whatever was unknown (the tenant, the
        // key, or whose key it is): no rate-limit headers, and a signature by
        // version 1 of the named tenant's key.
        if matches!(result, Err(Error::Unauthenticated)) {
            edge.rate = None;
            edge.signer = None;
        }
        if let Some(t) = edge.touch.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), t).await;
        }
        let mut resp = match result {
            Ok(reply) => render(reply, &request_id, edge.rate.as_ref()),
            Err(e) => render_error(&e, &request_id, edge.rate.as_ref()),
        };
        if surface_of(req.method().as_str(), req.uri().path()) == Some(Surface::Integration) {
            sign_answer(app, &req, &mut resp, edge.signer.take());
        }
        tracing::Span::current().record("status", resp.status().as_u16());
        tracing::info!(
            status = resp.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "response"
        );
        resp
    }
    .instrument(span)
    .await
}

pub(crate) fn request_id(req: &Request) -> String {
    use lambda_http::request::RequestContext;
    let from_gateway = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
        _ => None,
    };
    match from_gateway
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic()))
    {
        Some(id) => format!("req_{id}"),
        None => format!("req_{}", ulid::Ulid::new()),
    }
}

async fn serve(
    app: &App,
    function: Option<Function>,
    req: &Request,
    request_id: &str,
    edge: &mut Edge,
) -> Result<Reply, Error> {
    let path = req.uri().path();
    let method = req.method().as_str();
    let all = routers()
        .get(&None)
        .ok_or_else(|| Error::internal("no route table"))?;
    let matched = routers().get(&function).and_then(|r| r.at(path).ok());
    let route = matched.as_ref().and_then(|m| {
        m.value
            .iter()
            .find(|r| r.method == method || r.method == "ANY")
            .copied()
    });
    let Some(route) = route else {
        // Not this function's: answer from the whole table, so a deployment's
        // catch-all route gives 405 for a known path and 404 for the rest.
        return Err(match all.at(path) {
            Ok(m) => {
                let mut allow: Vec<&'static str> = m.value.iter().map(|r| r.method).collect();
                allow.sort_unstable();
                allow.dedup();
                if allow.contains(&method) {
                    Error::not_found(
                        "ROUTE_NOT_FOUND",
                        format!("no route for {method} {path} in this function"),
                    )
                } else {
                    Error::MethodNotAllowed {
                        method: method.to_string(),
                        allow,
                    }
                }
            }
            Err(_) => Error::not_found("ROUTE_NOT_FOUND", format!("no route for {path}")),
        });
    };
    let Some(matched) = matched else {
        return Err(Error::internal("route matched without a match"));
    };
    tracing::Span::current().record("route", route.path);
    // Path parameters arrive percent-encoded; decode them once here.
    let mut params = HashMap::new();
    for (k, v) in matched.params.iter() {
        let decoded = percent_decode(v)
            .ok_or_else(|| Error::validation(format!("path parameter {k} is not valid UTF-8")))?;
        params.insert(k.to_string(), decoded);
    }

    let body: &[u8] = req.body().as_ref();
    let max = if route.surface() == Surface::Stripe {
        request::MAX_WEBHOOK_BYTES
    } else {
        request::MAX_BODY_BYTES
    };
    if body.len() > max {
        return Err(Error::BadRequest {
            code: "BODY_TOO_LARGE",
            message: format!("the body exceeds {} KiB", max / 1024),
        });
    }
    let query = Query(
        req.query_string_parameters_ref()
            .map(|q| {
                q.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default(),
    );
    let ctx = Ctx {
        app,
        request_id: request_id.to_string(),
        now: app.now(),
        params,
        query,
        body,
        headers: req.headers(),
    };

    match route.op {
        Op::Public(op) => public(&ctx, op).await,
        Op::Platform(op) => {
            app.authenticate_operator(ctx.header("authorization"))?;
            platform::serve(&ctx, op).await
        }
        Op::Stripe(op) => stripe::serve(&ctx, op).await,
        Op::Integration(op) => {
            nonce(&ctx)?;
            let credential = Credential::of_integration(&ctx, req, op)?;
            let caller = auth::authenticate(&ctx, credential, edge).await?;
            integration::serve(&ctx, &caller, op, &mut edge.rate).await
        }
        Op::Manage(op) => {
            let caller = auth::authenticate(&ctx, Credential::ApiKey(Scope::Admin), edge).await?;
            manage::serve(&ctx, &caller, op).await
        }
        // Served by crate::portal::handle, never through the JSON edge.
        Op::Portal => Err(Error::not_found(
            "ROUTE_NOT_FOUND",
            "the portal is served by its own function",
        )),
    }
}

async fn public(ctx: &Ctx<'_>, op: PublicOp) -> Result<Reply, Error> {
    match op {
        PublicOp::Health => Ok(Reply::ok(serde_json::json!({ "status": "ok" }))),
        PublicOp::SigningKeys => {
            let not_found = || Error::not_found("TENANT_NOT_FOUND", "no tenant with that id");
            let t = TenantId::parse(ctx.param("tenant_id")).map_err(|_| not_found())?;
            let tenant = ctx.app.store.get_tenant(&t).await?.ok_or_else(not_found)?;
            let keys = ctx.app.signing_keys()?;
            Ok(Reply::ok(
                serde_json::json!({ "keys": views::signing_keys_view(&tenant, keys) }),
            ))
        }
    }
}

/// `X-Nonce`: 1 to 128 printable ASCII characters, or absent.
fn nonce(ctx: &Ctx<'_>) -> Result<(), Error> {
    match ctx.headers.get("x-nonce").map(|v| v.as_bytes()) {
        Some(n) if n.is_empty() || n.len() > 128 || !n.iter().all(u8::is_ascii_graphic) => Err(
            Error::validation("X-Nonce must be 1 to 128 printable ASCII characters"),
        ),
        _ => Ok(()),
    }
}

/// Sign an Integration answer with the tenant's key (`signer`), or — before
/// any credential was accepted — with version 1 of the key of the tenant the
/// request names, so a 401 looks the same whether or not the tenant exists.
fn sign_answer(
    app: &App,
    req: &Request,
    resp: &mut Response<Body>,
    signer: Option<(TenantId, u32)>,
) {
    let Some((tenant, version)) = signer.or_else(|| claimed_tenant(req).map(|t| (t, 1))) else {
        return; // a request that names no tenant: nothing to sign with
    };
    let keys = match app.signing_keys() {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "cannot sign the answer");
            return;
        }
    };
    let body: &[u8] = match resp.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let nonce = req
        .headers()
        .get("x-nonce")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let nonce = if nonce.len() <= 128 { nonce } else { "" };
    let date = crate::clock::rfc3339(app.now());
    let message = crate::crypto::answer_message(req.method().as_str(), path, &date, nonce, body);
    let signature = keys.sign(tenant.as_str(), version, message.as_bytes());
    use base64::Engine as _;
    let header = format!(
        "keyid=\"{}\", algorithm=\"ed25519\", signature=\"{}\"",
        crate::crypto::kid(version),
        base64::engine::general_purpose::STANDARD.encode(signature)
    );
    for (name, value) in [("x-signature", header), ("x-signature-date", date)] {
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
}

/// The tenant a request names: `X-Tenant-Id`, or the one in an API key.
fn claimed_tenant(req: &Request) -> Option<TenantId> {
    let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    if let Some(t) = h("x-tenant-id").and_then(|t| TenantId::parse(t.trim()).ok()) {
        return Some(t);
    }
    h("x-api-key")
        .and_then(|k| crate::ids::ApiKeySecret::parse(k.trim()))
        .map(|s| s.tenant)
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// The surface whose answer this is: the route's, or — when no route serves
/// the path (404, 405) — that of the routes in the same section of the table.
fn surface_of(method: &str, path: &str) -> Option<Surface> {
    route_for(method, path)
        .map(Route::surface)
        .or_else(|| Surface::of_unrouted(path))
}

/// The route a request would take (the dev server uses it to pick the function).
pub fn route_for(method: &str, path: &str) -> Option<&'static Route> {
    let m = routers().get(&None)?.at(path).ok()?;
    m.value
        .iter()
        .find(|r| r.method == method || r.method == "ANY")
        .copied()
        .or_else(|| m.value.first().copied())
}
