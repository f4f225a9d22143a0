//! Stripe: the webhook endpoint and the management API's secret setting.

use super::envelope::Reply;
use super::request;
use super::{Caller, Ctx};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::functions::Op;
use crate::usecases::stripe;
use serde::Deserialize;
use serde_json::json;

/// `POST /v1/stripe/webhook/{tenant_id}`: the body is verified as received,
/// before it is parsed.
pub async fn route(ctx: &Ctx<'_>, op: Op) -> Result<Reply, Error> {
    match op {
        Op::StripeWebhook => {
            let receipt = stripe::receive(
                ctx.app,
                ctx.param("tenant_id"),
                ctx.header("stripe-signature"),
                ctx.body,
                ctx.now,
                &ctx.request_id,
            )
            .await?;
            Ok(Reply::ok(receipt.view()))
        }
        _ => Err(Error::internal(format!("{op:?} is not a Stripe operation"))),
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
    stripe::set_webhook_secret(ctx.app, &c.store, &c.actor, &b.webhook_secret, ctx.now).await?;
    let t = c.store.tenant_id();
    Ok(Reply::ok(json!({
        "integration": "stripe",
        "configured": true,
        "webhook_url_path": format!("/v1/stripe/webhook/{t}"),
        "updated_at": rfc3339(ctx.now),
    })))
}
