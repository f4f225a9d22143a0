//! Customer organizations as a vendor sees them:
//! `/v1/manage/customers/search` and `/v1/manage/customers/{customer_id}/crm`.
//! Public fields only (never members, keys or e-mail addresses).

use super::R;
use crate::error::Error;
use crate::http::envelope::Reply;
use crate::http::request;
use crate::http::{Caller, Ctx};
use crate::ids::{CrmAccountId, TenantId};
use crate::usecases::customers::crm::{self, Found, Search};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrmBody {
    crm_account_id: String,
}

fn view(f: &Found) -> Value {
    let e = &f.entry;
    json!({
        "id": e.customer_id,
        "name": e.name,
        "domain": e.domain,
        "country": e.country,
        "crm_account_id": f.crm_account_id,
    })
}

pub async fn search(ctx: &Ctx<'_>, c: &Caller) -> R {
    let q = &ctx.query;
    let s = Search::parse(q.get("domain"), q.get("name"), q.get("crm_account_id"))?;
    let found = crm::search(&ctx.app.store, &c.store, s).await?;
    Ok(Reply::list(found.iter().map(view).collect(), None))
}

pub async fn put_crm(ctx: &Ctx<'_>, c: &Caller) -> R {
    // A malformed id in the path is "not found", as any malformed id.
    let customer = TenantId::parse(ctx.param("customer_id").to_string())
        .map_err(|_| crm::customer_not_found())?;
    let b: CrmBody = request::json(ctx.body)?;
    let id = CrmAccountId::parse(b.crm_account_id)
        .map_err(|e| Error::validation(format!("crm_account_id {e}")))?;
    let found = crm::link(&ctx.app.store, &c.store, &c.actor, &customer, &id, ctx.now).await?;
    Ok(Reply::ok(view(&found)))
}
