//! HTTP ↔ domain. [`handle`] is every HTTP function's whole handler: request
//! id, routing, body limits, authentication, rate limiting, dispatch to a use
//! case, and the envelope.

pub mod envelope;
mod integration;
mod manage;
mod platform;
pub mod request;
mod stripe;
pub mod views;

use crate::app::App;
use crate::cache::KeyPrincipal;
use crate::domain::{Actor, Scope};
use crate::error::Error;
use crate::functions::{Function, Op, PublicOp, Route, Surface, ROUTES};
use crate::ratelimit::{RateState, Subject};
use crate::store::TenantStore;
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

/// The caller of an API-key route, bound to its tenant.
pub struct Caller {
    pub principal: KeyPrincipal,
    pub store: TenantStore,
    pub actor: Actor,
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
                        .insert(path, routes)
                        .unwrap_or_else(|e| panic!("route table: {e}"));
                }
                (key, router)
            })
            .collect()
    })
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
        let mut rate: Option<RateState> = None;
        let mut touch = None;
        // The backstop: a panic anywhere below answers a 500 envelope (and is
        // logged) instead of dropping the connection. Bad input never gets
        // here; it is refused with a 4xx long before.
        let served = serve(app, function, &req, &request_id, &mut rate, &mut touch);
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
        if let Some(t) = touch {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), t).await;
        }
        let resp = match result {
            Ok(reply) => render(reply, &request_id, rate.as_ref()),
            Err(e) => render_error(&e, &request_id, rate.as_ref()),
        };
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

fn request_id(req: &Request) -> String {
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
    rate: &mut Option<RateState>,
    touch: &mut Option<tokio::task::JoinHandle<()>>,
) -> Result<Reply, Error> {
    let path = req.uri().path();
    let method = req.method().as_str();
    let all = routers()
        .get(&None)
        .ok_or_else(|| Error::internal("no route table"))?;
    let matched = routers().get(&function).and_then(|r| r.at(path).ok());
    let route = matched
        .as_ref()
        .and_then(|m| m.value.iter().find(|r| r.method == method).copied());
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
        Op::Public(op) => Ok(public(op)),
        Op::Platform(op) => {
            app.authenticate_operator(ctx.header("authorization"))?;
            platform::serve(&ctx, op).await
        }
        Op::Stripe(op) => stripe::serve(&ctx, op).await,
        Op::Integration(op) => {
            let caller = authenticate(&ctx, Scope::Integration, rate, touch).await?;
            integration::serve(&ctx, &caller, op, rate).await
        }
        Op::Manage(op) => {
            let caller = authenticate(&ctx, Scope::Admin, rate, touch).await?;
            manage::serve(&ctx, &caller, op).await
        }
    }
}

fn public(op: PublicOp) -> Reply {
    match op {
        PublicOp::Health => Reply::ok(serde_json::json!({ "status": "ok" })),
    }
}

/// An API-key caller with `needed` scope, rate limited, of an active tenant.
async fn authenticate(
    ctx: &Ctx<'_>,
    needed: Scope,
    rate: &mut Option<RateState>,
    touch: &mut Option<tokio::task::JoinHandle<()>>,
) -> Result<Caller, Error> {
    let app = ctx.app;
    let (principal, t) = app
        .keys
        .authenticate(&app.store, ctx.header("x-api-key"), ctx.now)
        .await?;
    *touch = t;
    tracing::Span::current().record("tenant", principal.tenant.as_str());
    let store = app.store.tenant(&principal.tenant);
    let subject = Subject::Key(&principal.key_id);
    let limit = principal.rate_limit_per_minute;
    let state = app
        .rate
        .admit(&store, subject, limit, ctx.now.unix_timestamp())
        .await;
    *rate = Some(state);
    state.check()?;
    if !principal.tenant_active {
        return Err(Error::TenantInactive);
    }
    if !principal.scopes.contains(&needed) {
        let name = if needed == Scope::Admin {
            "admin"
        } else {
            "integration"
        };
        return Err(Error::Forbidden(format!(
            "this API key lacks the '{name}' scope"
        )));
    }
    Ok(Caller {
        store,
        actor: Actor {
            actor: principal.key_id.to_string(),
            request_id: ctx.request_id.clone(),
        },
        principal,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// The route a request would take (the dev server uses it to pick the function).
pub fn route_for(method: &str, path: &str) -> Option<&'static Route> {
    let m = routers().get(&None)?.at(path).ok()?;
    m.value
        .iter()
        .find(|r| r.method == method)
        .copied()
        .or_else(|| m.value.first().copied())
}
