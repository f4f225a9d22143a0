//! Signed answers: every Integration answer carries an Ed25519 signature
//! by its tenant's key over the request (method, path, tenant, nonce and
//! body) and the answer (date and body): version 2 of the format
//! (docs/signing.md).

use crate::app::App;
use crate::ids::TenantId;
use lambda_http::{Body, Request, Response};

/// Sign an Integration answer with the tenant's key (`signer`), or — before
/// any credential was accepted — with version 1 of the key of the tenant the
/// request names, so a 401 looks the same whether or not the tenant exists.
pub(super) fn sign_answer(
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
    let response_body: &[u8] = match resp.body() {
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
    let exchange = crate::crypto::Exchange {
        method: req.method().as_str(),
        path,
        tenant: tenant.as_str(),
        date: &date,
        nonce,
        request_body: req.body().as_ref(),
        response_body,
    };
    let header = keys.answer_signature(tenant.as_str(), version, &exchange);
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
