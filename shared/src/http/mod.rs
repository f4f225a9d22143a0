//! HTTP ↔ domain. [`handle`] is every HTTP function's whole handler: request
//! id, routing, body limits, authentication, rate limiting, dispatch to a use
//! case, and the envelope.

mod auth;
mod customer;
mod customer_register;
pub mod envelope;
mod integration;
mod manage;
mod platform;
pub mod request;
mod route;
mod sign;
mod stripe;

pub use auth::{Caller, CustomerCaller, CustomerCredential, CUSTOMER_COOKIE};
pub use customer::views as customer_views;
pub use route::route_for;

use crate::app::App;
use crate::domain::Scope;
use crate::error::Error;
use crate::functions::{Function, Op, PublicOp, Surface};
use crate::ids::TenantId;
use crate::ratelimit::RateState;
use crate::usecases::tenants;
use crate::views;
use auth::Credential;
use envelope::{render, render_error, Reply};
use futures::FutureExt;
use lambda_http::{Body, Request, RequestExt, Response};
use request::Query;
use std::collections::HashMap;
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
        if route::surface_of(req.method().as_str(), req.uri().path()) == Some(Surface::Integration)
        {
            sign::sign_answer(app, &req, &mut resp, edge.signer.take());
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
    let (route, params) = route::resolve(function, method, path)?;

    let body: &[u8] = req.body().as_ref();
    let max = if route.surface() == Surface::Stripe {
        request::MAX_WEBHOOK_BYTES
    } else if route.path == request::BATCH_PATH {
        request::MAX_BATCH_BYTES
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
        Op::Public(op) => public(&ctx, req, op).await,
        Op::Platform(op) => {
            app.authenticate_operator(ctx.header("authorization"))?;
            platform::serve(&ctx, op).await
        }
        Op::Stripe(op) => stripe::serve(&ctx, op).await,
        Op::Integration(op) => {
            nonce(&ctx)?;
            let credential = Credential::of_integration(&ctx, req, op)?;
            let caller = auth::authenticate(&ctx, credential, edge).await?;
            integration::serve(&ctx, &caller, op).await
        }
        Op::Manage(op) => {
            let caller = auth::authenticate(&ctx, Credential::ApiKey(Scope::Admin), edge).await?;
            manage::serve(&ctx, &caller, op).await
        }
        Op::Customer(op) => {
            let caller = auth::authenticate_customer(&ctx, req, edge).await?;
            customer::serve(&ctx, &caller, op).await
        }
        // Served by crate::portal::handle, never through the JSON edge.
        Op::Portal => Err(Error::not_found(
            "ROUTE_NOT_FOUND",
            "the portal is served by its own function",
        )),
    }
}

async fn public(ctx: &Ctx<'_>, req: &Request, op: PublicOp) -> Result<Reply, Error> {
    match op {
        PublicOp::CustomerRegister | PublicOp::CustomerVerify => {
            customer_register::serve(ctx, req, op).await
        }
        PublicOp::Health => Ok(Reply::ok(serde_json::json!({ "status": "ok" }))),
        PublicOp::SigningKeys => {
            let not_found = || Error::not_found("TENANT_NOT_FOUND", "no tenant with that id");
            let t = TenantId::parse(ctx.param("tenant_id")).map_err(|_| not_found())?;
            let tenant = tenants::get(&ctx.app.store, &t)
                .await?
                .ok_or_else(not_found)?;
            let keys = ctx.app.signing_keys()?;
            Ok(Reply::ok(
                serde_json::json!({ "keys": views::signing_keys_view(&tenant, keys) }),
            ))
        }
    }
}

/// `X-Nonce`: 1 to 128 printable ASCII characters, or absent (a license-key
/// request must send one of at least 16: `auth::client_nonce`).
fn nonce(ctx: &Ctx<'_>) -> Result<(), Error> {
    match ctx.headers.get("x-nonce").map(|v| v.as_bytes()) {
        Some(n) if n.is_empty() || n.len() > 128 || !n.iter().all(u8::is_ascii_graphic) => Err(
            Error::validation("X-Nonce must be 1 to 128 printable ASCII characters"),
        ),
        _ => Ok(()),
    }
}
