//! The response envelope: the one place domain errors become HTTP.

use crate::error::Error;
use crate::ratelimit::RateState;
use lambda_http::{Body, Response};
use serde_json::{json, Value};

pub const API_VERSION: &str = "v1";

/// What a use case hands back to be rendered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: ReplyBody,
    /// Extra response headers.
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Debug)]
pub enum ReplyBody {
    /// `{ "data": ..., "meta": ... }`
    Data(Value),
    /// A list: `meta.next_cursor` is always present.
    List(Value, Option<String>),
    /// A non-JSON body (CSV export): content type and text.
    Raw(&'static str, String),
    /// A binary body (the PDF export): content type and bytes.
    Bytes(&'static str, Vec<u8>),
}

impl Reply {
    pub fn ok(data: Value) -> Self {
        Reply {
            status: 200,
            body: ReplyBody::Data(data),
            headers: Vec::new(),
        }
    }
    pub fn created(data: Value) -> Self {
        Reply {
            status: 201,
            body: ReplyBody::Data(data),
            headers: Vec::new(),
        }
    }
    pub fn accepted(data: Value) -> Self {
        Reply {
            status: 202,
            body: ReplyBody::Data(data),
            headers: Vec::new(),
        }
    }
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub fn list(items: Vec<Value>, next: Option<String>) -> Self {
        Reply {
            status: 200,
            body: ReplyBody::List(Value::Array(items), next),
            headers: Vec::new(),
        }
    }
}

fn meta(request_id: &str) -> Value {
    json!({ "request_id": request_id, "api_version": API_VERSION })
}

pub fn render(reply: Reply, request_id: &str, rate: Option<&RateState>) -> Response<Body> {
    let extra = reply.headers;
    let (content_type, body) = match reply.body {
        ReplyBody::Data(data) => (
            "application/json",
            Body::Text(json!({ "data": data, "meta": meta(request_id) }).to_string()),
        ),
        ReplyBody::List(data, next) => {
            let mut m = meta(request_id);
            m["next_cursor"] = json!(next);
            (
                "application/json",
                Body::Text(json!({ "data": data, "meta": m }).to_string()),
            )
        }
        ReplyBody::Raw(ct, text) => (ct, Body::Text(text)),
        ReplyBody::Bytes(ct, bytes) => (ct, Body::Binary(bytes)),
    };
    let mut resp = build(reply.status, content_type, body, request_id, rate);
    for (name, value) in extra {
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

/// Every error, as the contract's envelope. Internal details are logged here
/// and never returned.
pub fn render_error(err: &Error, request_id: &str, rate: Option<&RateState>) -> Response<Body> {
    let (status, code, kind) = err.parts();
    match err {
        Error::Internal(detail) => tracing::error!(code, detail = %detail, "internal error"),
        Error::Unavailable(detail) => {
            tracing::warn!(code, detail = %detail, "dependency unavailable")
        }
        _ => tracing::info!(status, code, "request refused"),
    }
    let mut error =
        json!({ "code": code, "message": err.public_message(), "type": kind, "status": status });
    match err {
        Error::TooManyActivations { limit } => error["limit"] = json!(limit),
        Error::QuotaExceeded {
            metric,
            limit,
            used,
            ..
        } => {
            error["metric"] = json!(metric);
            error["limit"] = json!(limit);
            error["used"] = json!(used);
        }
        // Machine-readable details of an error, under `data`.
        Error::TrialAlreadyUsed { retry_after } => {
            error["data"] = json!({ "retry_after": crate::clock::rfc3339(*retry_after) });
        }
        Error::TrialCapReached { limit, .. } => {
            error["limit"] = json!(limit);
        }
        _ => {}
    }
    let body = json!({ "error": error, "meta": meta(request_id) }).to_string();
    let mut resp = build(
        status,
        "application/json",
        Body::Text(body),
        request_id,
        rate,
    );
    let retry = match err {
        Error::RateLimited { retry_after_secs }
        | Error::TrialCapReached {
            retry_after_secs, ..
        } => Some(*retry_after_secs),
        Error::DeactivationLimitReached {
            retry_after_secs, ..
        } => *retry_after_secs,
        Error::Unavailable(_) => Some(1),
        _ => None,
    };
    if let Some(secs) = retry {
        resp.headers_mut().insert("retry-after", secs.into());
    }
    if let Error::MethodNotAllowed { allow, .. } = err {
        if let Ok(v) = http::HeaderValue::from_str(&allow.join(", ")) {
            resp.headers_mut().insert("allow", v);
        }
    }
    resp
}

fn build(
    status: u16,
    content_type: &str,
    body: Body,
    request_id: &str,
    rate: Option<&RateState>,
) -> Response<Body> {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-request-id", request_id)
        .header("cache-control", "no-store");
    if let Some(r) = rate {
        b = b
            .header("x-ratelimit-limit", r.limit)
            .header("x-ratelimit-remaining", r.remaining)
            .header("x-ratelimit-reset", r.reset_epoch);
    }
    b.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(Body::Text("{}".into()));
        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}
