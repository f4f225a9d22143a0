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
    webhook_secret: String,
}

/// `PUT /v1/manage/integrations/stripe`: store the webhook signing secret.
/// The answer never contains it.
pub async fn put_secret(ctx: &Ctx<'_>, c: &Caller) -> Result<Reply, Error> {
    let b: SecretBody = request::json(ctx.body)?;
    ctx.app
        .webhook_secrets
        .set(&c.store, &c.actor, &b.webhook_secret, ctx.now)
        .await?;
    let t = c.store.tenant_id();
    Ok(Reply::ok(json!({
        "integration": "stripe",
        "configured": true,
        "webhook_url_path": format!("/v1/stripe/webhook/{t}"),
        "updated_at": rfc3339(ctx.now),
    })))
}
