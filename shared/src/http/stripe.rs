//! Stripe: the webhook endpoint and the management API's secret setting.

use super::envelope::Reply;
use super::request;
use super::{Caller, Ctx};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::functions::StripeOp;
use crate::usecases::stripe;
use crate::views;
use serde::Deserialize;
use serde_json::json;

/// `POST /v1/stripe/webhook/{tenant_id}`: the body is verified as received,
/// before it is parsed.
pub async fn serve(ctx: &Ctx<'_>, op: StripeOp) -> Result<Reply, Error> {
    match op {
        StripeOp::Webhook => {
            let app = ctx.app;
            let deps = stripe::Webhooks {
                store: &app.store,
                policies: &app.policies,
                secrets: &app.webhook_secrets,
            };
            let (tenant, signature) = (ctx.param("tenant_id"), ctx.header("stripe-signature"));
            let receipt =
                stripe::receive(deps, tenant, signature, ctx.body, ctx.now, &ctx.request_id)
                    .await?;
            Ok(Reply::ok(views::receipt_view(&receipt)))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    webhook_secret: Option<String>,
    /// The tenant's Stripe API key (`sk_...` / `rk_...`), for billing
    /// meters (docs/billing.md).
    api_key: Option<String>,
}

/// `PUT /v1/manage/integrations/stripe`: store the webhook signing secret
/// and/or the API key (at least one). The answer never contains either.
pub async fn put_secret(ctx: &Ctx<'_>, c: &Caller) -> Result<Reply, Error> {
    let b: SecretBody = request::json(ctx.body)?;
    if b.webhook_secret.is_none() && b.api_key.is_none() {
        return Err(Error::validation("give webhook_secret, api_key or both"));
    }
    // Both are checked before either is stored.
    if let Some(s) = &b.webhook_secret {
        stripe::secret::check_secret_format(s)?;
    }
    if let Some(k) = &b.api_key {
        stripe::secret::check_api_key_format(k)?;
    }
    let secrets = &ctx.app.webhook_secrets;
    if let Some(s) = &b.webhook_secret {
        secrets.set(&c.store, &c.actor, s, ctx.now).await?;
    }
    if let Some(k) = &b.api_key {
        secrets.set_api_key(&c.store, &c.actor, k, ctx.now).await?;
    }
    let t = c.store.tenant_id();
    Ok(Reply::ok(json!({
        "integration": "stripe",
        "configured": true,
        "webhook_secret_updated": b.webhook_secret.is_some(),
        "api_key_updated": b.api_key.is_some(),
        "webhook_url_path": format!("/v1/stripe/webhook/{t}"),
        "updated_at": rfc3339(ctx.now),
    })))
}
