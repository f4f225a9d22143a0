//! Products: `/v1/manage/products`.

use super::{double_option, R};
use crate::domain::*;
use crate::error::Error;
use crate::functions::ProductOp;
use crate::http::envelope::Reply;
use crate::http::request::{self, bounded};
use crate::http::{Caller, Ctx};
use crate::ids::*;
use crate::usecases::catalog;
use crate::views;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductBody {
    code: ProductCode,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductPatchBody {
    name: Option<String>,
    /// Absent: unchanged; `null`: no trial; an object: the trial.
    #[serde(default, deserialize_with = "double_option")]
    trial: Option<Option<TrialSettings>>,
}

fn product_code(ctx: &Ctx<'_>) -> Result<ProductCode, Error> {
    ProductCode::parse(ctx.param("code")).map_err(|_| catalog::product_not_found())
}

pub async fn serve(ctx: &Ctx<'_>, c: &Caller, op: ProductOp) -> R {
    let (ts, now) = (&c.store, ctx.now);
    match op {
        ProductOp::Create => {
            let b: ProductBody = request::json(ctx.body)?;
            bounded("name", &b.name, 200)?;
            let p = catalog::create_product(ts, &c.actor, b.code, b.name, now).await?;
            Ok(Reply::created(views::product_view(&p)))
        }
        ProductOp::List => {
            let (limit, cursor) = (ctx.query.limit()?, ctx.query.cursor());
            let page = catalog::list_products(ts, ctx.app.signer()?, limit, cursor).await?;
            Ok(Reply::list(
                page.items.iter().map(views::product_view).collect(),
                page.next_cursor,
            ))
        }
        ProductOp::Get => {
            let p = catalog::get_product(ts, &product_code(ctx)?).await?;
            Ok(Reply::ok(views::product_view(&p)))
        }
        ProductOp::Patch => {
            let code = product_code(ctx)?;
            let b: ProductPatchBody = request::json(ctx.body)?;
            if let Some(n) = &b.name {
                bounded("name", n, 200)?;
            }
            let patch = ProductPatch {
                name: b.name,
                trial: b.trial,
            };
            let p = catalog::update_product(ts, &c.actor, &code, patch, now).await?;
            Ok(Reply::ok(views::product_view(&p)))
        }
    }
}
