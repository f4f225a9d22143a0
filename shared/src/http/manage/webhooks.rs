//! Outbound webhook endpoints and their deliveries:
//! `/v1/manage/webhook-endpoints`.

use super::{double_option, R};
use crate::error::Error;
use crate::functions::WebhookOp;
use crate::http::envelope::Reply;
use crate::http::request;
use crate::http::{Caller, Ctx};
use crate::ids::*;
use crate::views;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointBody {
    url: String,
    events: Vec<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointPatchBody {
    url: Option<String>,
    events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
    enabled: Option<bool>,
}

fn endpoint_id(ctx: &Ctx<'_>) -> Result<WebhookEndpointId, Error> {
    WebhookEndpointId::parse(ctx.param("id")).map_err(|_| {
        Error::not_found(
            "WEBHOOK_ENDPOINT_NOT_FOUND",
            "no webhook endpoint with that id",
        )
    })
}

pub async fn serve(ctx: &Ctx<'_>, c: &Caller, op: WebhookOp) -> R {
    use crate::domain::webhook::{EndpointPatch, EventFilter};
    use crate::usecases::webhooks as wh;
    let (ts, now) = (&c.store, ctx.now);
    match op {
        WebhookOp::Create => {
            let b: EndpointBody = request::json(ctx.body)?;
            let req = wh::NewEndpoint {
                url: b.url,
                events: EventFilter::parse(&b.events)?,
                description: b.description,
            };
            let (ep, secret) =
                wh::create_endpoint(ts, ctx.app.webhooks()?, req, &c.actor, now).await?;
            let mut v = views::webhook_endpoint_view(&ep);
            v["secret"] = json!(secret);
            Ok(Reply::created(v))
        }
        WebhookOp::List => {
            let eps = wh::list_endpoints(ts).await?;
            let items = eps.iter().map(views::webhook_endpoint_view).collect();
            Ok(Reply::list(items, None))
        }
        WebhookOp::Get => {
            let ep = wh::get_endpoint(ts, &endpoint_id(ctx)?).await?;
            Ok(Reply::ok(views::webhook_endpoint_view(&ep)))
        }
        WebhookOp::Patch => {
            let id = endpoint_id(ctx)?;
            let b: EndpointPatchBody = request::json(ctx.body)?;
            let patch = EndpointPatch {
                url: b.url,
                events: b.events.as_deref().map(EventFilter::parse).transpose()?,
                description: b.description,
                enabled: b.enabled,
            };
            if patch.url.is_none()
                && patch.events.is_none()
                && patch.description.is_none()
                && patch.enabled.is_none()
            {
                return Err(Error::validation(
                    "nothing to change: give url, events, description or enabled",
                ));
            }
            let ep = wh::patch_endpoint(ts, ctx.app.webhooks()?, &id, patch, &c.actor, now).await?;
            Ok(Reply::ok(views::webhook_endpoint_view(&ep)))
        }
        WebhookOp::Delete => {
            let id = endpoint_id(ctx)?;
            wh::delete_endpoint(ts, &id, &c.actor, now).await?;
            Ok(Reply::ok(json!({ "id": id, "deleted": true })))
        }
        WebhookOp::Deliveries => {
            let id = endpoint_id(ctx)?;
            let (limit, cursor) = (ctx.query.limit()?, ctx.query.cursor());
            let page = wh::deliveries(ts, ctx.app.signer()?, &id, limit, cursor).await?;
            Ok(Reply::list(
                page.items.iter().map(views::delivery_view).collect(),
                page.next_cursor,
            ))
        }
        WebhookOp::Retry => {
            let id = endpoint_id(ctx)?;
            let delivery = DeliveryId::parse(ctx.param("delivery_id"))
                .map_err(|_| Error::not_found("DELIVERY_NOT_FOUND", "no delivery with that id"))?;
            let d = wh::retry_delivery(ts, ctx.app.webhooks()?, &id, &delivery, now).await?;
            Ok(Reply::created(views::delivery_view(&d)))
        }
        WebhookOp::Test => {
            let d = wh::send_test(ts, ctx.app.webhooks()?, &endpoint_id(ctx)?, now).await?;
            Ok(Reply::created(views::delivery_view(&d)))
        }
    }
}
