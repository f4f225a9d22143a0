//! `/v1/customer/api-keys`: the organization's app keys (managers and
//! admins; app keys themselves may not manage keys).

use super::views::key_view;
use crate::domain::{parse_bindings, AppType, CustomerScope, Permission};
use crate::error::Error;
use crate::functions::ApiKeyOp;
use crate::http::envelope::Reply;
use crate::http::{request, Ctx, CustomerCaller};
use crate::ids::ApiKeyId;
use crate::usecases::customers::keys::{self, NewKey};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    app_name: String,
    app_type: AppType,
    scopes: Vec<CustomerScope>,
    #[serde(default)]
    expires_in_days: Option<u32>,
    #[serde(default)]
    allowed_hostnames: Option<Vec<String>>,
    #[serde(default)]
    allowed_cidrs: Option<Vec<String>>,
    #[serde(default)]
    client_cert_sha256: Option<String>,
}

pub async fn serve(ctx: &Ctx<'_>, c: &CustomerCaller, op: ApiKeyOp) -> Result<Reply, Error> {
    let (ts, now) = (&c.store, ctx.now);
    match op {
        ApiKeyOp::Create => {
            c.require(Permission::ManageKeys)?;
            let b: KeyBody = request::json(ctx.body)?;
            let bindings =
                parse_bindings(b.allowed_hostnames, b.allowed_cidrs, b.client_cert_sha256)?;
            let new = NewKey {
                app_name: b.app_name,
                app_type: b.app_type,
                scopes: b.scopes,
                expires_in_days: b.expires_in_days,
                bindings,
            };
            let pepper = ctx.app.keys.pepper()?;
            let (rec, key) = keys::create(pepper, ts, &c.actor, new, now).await?;
            let mut v = key_view(&rec);
            v["key"] = json!(key);
            Ok(Reply::created(v))
        }
        ApiKeyOp::List => {
            c.require(Permission::ManageKeys)?;
            let list = keys::list(ts).await?;
            Ok(Reply::list(list.iter().map(key_view).collect(), None))
        }
        ApiKeyOp::Revoke => {
            c.require(Permission::ManageKeys)?;
            let id = ApiKeyId::parse(ctx.param("id")).map_err(|_| Error::ApiKeyNotFound)?;
            let rec = keys::revoke(ts, &c.actor, &id, now).await?;
            Ok(Reply::ok(key_view(&rec)))
        }
    }
}
