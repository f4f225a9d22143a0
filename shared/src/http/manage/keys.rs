//! API keys: `/v1/manage/api-keys`.

use super::R;
use crate::domain::*;
use crate::error::Error;
use crate::functions::ApiKeyOp;
use crate::http::envelope::Reply;
use crate::http::request::{self, bounded};
use crate::http::{Caller, Ctx};
use crate::ids::*;
use crate::usecases::catalog;
use crate::views;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeyBody {
    name: String,
    scopes: Vec<Scope>,
    #[serde(default, with = "crate::clock::ts::option")]
    expires_at: Option<OffsetDateTime>,
}

pub async fn serve(ctx: &Ctx<'_>, c: &Caller, op: ApiKeyOp) -> R {
    let (ts, now) = (&c.store, ctx.now);
    match op {
        ApiKeyOp::Create => {
            let b: ApiKeyBody = request::json(ctx.body)?;
            bounded("name", &b.name, 200)?;
            let pepper = ctx.app.keys.pepper()?;
            let (rec, key) =
                catalog::create_api_key(pepper, ts, &c.actor, b.name, b.scopes, b.expires_at, now)
                    .await?;
            let mut v = views::api_key_view(&rec);
            v["key"] = json!(key);
            Ok(Reply::created(v))
        }
        ApiKeyOp::List => {
            let keys = catalog::list_api_keys(ts).await?;
            Ok(Reply::list(
                keys.iter().map(views::api_key_view).collect(),
                None,
            ))
        }
        ApiKeyOp::Revoke => {
            let id = ApiKeyId::parse(ctx.param("id"))
                .map_err(|_| Error::not_found("API_KEY_NOT_FOUND", "no API key with that id"))?;
            let rec = catalog::revoke_api_key(&ctx.app.keys, ts, &c.actor, &id, now).await?;
            Ok(Reply::ok(views::api_key_view(&rec)))
        }
    }
}
