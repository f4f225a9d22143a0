//! `/v1/customer/catalog`, `/v1/customer/checkouts`, `/v1/customer/licenses/{id}`:
//! the organization's pool of granted licenses (issue 20, part B).

use crate::clock::rfc3339;
use crate::domain::{Activation, Permission, Standing};
use crate::error::Error;
use crate::functions::PoolOp;
use crate::http::envelope::Reply;
use crate::http::{request, Ctx, CustomerCaller};
use crate::ids::{ActivationId, LicenseId, ProductCode, TenantId};
use crate::usecases::pool::{self, CatalogEntry, CheckoutRequest, Held};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    vendor: Option<String>,
    product: String,
    user: String,
    hostname: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LicensePatch {
    overage_limit: u32,
}

pub async fn serve(ctx: &Ctx<'_>, c: &CustomerCaller, op: PoolOp) -> Result<Reply, Error> {
    let (store, org, now) = (&ctx.app.store, &c.store, ctx.now);
    // Any malformed id in the path is "not found", as an unknown one.
    let checkout_id = || {
        ActivationId::parse(ctx.param("id"))
            .map_err(|_| crate::domain::grants::checkout_not_found())
    };
    match op {
        PoolOp::Catalog => {
            c.require(Permission::Read)?;
            let list = pool::catalog(store, org, now).await?;
            let items = list.iter().map(|e| catalog_view(e, now)).collect();
            Ok(Reply::list(items, None))
        }
        PoolOp::ListCheckouts => {
            c.require(Permission::Read)?;
            let list = pool::checkouts(store, org, now).await?;
            Ok(Reply::list(list.iter().map(held_view).collect(), None))
        }
        PoolOp::Checkout => {
            c.require(Permission::Checkout)?;
            let b: CheckoutBody = request::json(ctx.body)?;
            let vendor = b
                .vendor
                .map(|v| TenantId::parse(v).map_err(|_| Error::validation("vendor is not an id")))
                .transpose()?;
            let product = ProductCode::parse(b.product)
                .map_err(|_| Error::validation("product is not a product code"))?;
            let hostname = b
                .hostname
                .or_else(|| ctx.header("x-hostname").map(String::from));
            let req = CheckoutRequest {
                vendor,
                product,
                user: b.user,
                hostname,
            };
            let terms = &ctx.app.license_terms;
            let a = pool::checkout(store, terms, org, &c.actor, req, now).await?;
            Ok(Reply::created(checkout_view(&a)))
        }
        PoolOp::Heartbeat => {
            c.require(Permission::Checkout)?;
            let a = pool::heartbeat(store, org, &checkout_id()?, now).await?;
            Ok(Reply::ok(checkout_view(&a)))
        }
        PoolOp::Return => {
            c.require(Permission::Return)?;
            let a = pool::give_back(store, org, &c.actor, &checkout_id()?, now).await?;
            let mut v = checkout_view(&a);
            v["returned"] = json!(true);
            Ok(Reply::ok(v))
        }
        PoolOp::SetOverageLimit => {
            c.require(Permission::ManageLicenses)?;
            let id =
                LicenseId::parse(ctx.param("id")).map_err(|_| crate::error::license_not_found())?;
            let b: LicensePatch = request::json(ctx.body)?;
            let e =
                pool::set_overage_limit(store, org, &c.actor, &id, b.overage_limit, now).await?;
            Ok(Reply::ok(catalog_view(&e, now)))
        }
    }
}

fn checkout_view(a: &Activation) -> Value {
    json!({
        "id": a.id,
        "license_id": a.license_id,
        "user": a.user,
        "hostname": a.hostname,
        "overage": a.overage,
        "lease_expires_at": a.lease_expires_at().map(rfc3339),
        "checked_out_at": rfc3339(a.created_at),
    })
}

/// One license of the catalog (also the answer of the cap's PATCH).
pub fn catalog_view(e: &CatalogEntry, now: OffsetDateTime) -> Value {
    let (l, g, live) = (&e.license, &e.grant, &e.leases);
    let status = match l.standing(now) {
        Standing::Valid(s) => s,
        Standing::Suspended(s) => s,
        Standing::Cancelled => "cancelled",
        Standing::Expired => "expired",
    };
    json!({
        "license_id": l.id,
        "vendor": { "id": g.vendor_id, "name": g.vendor_name },
        "product": { "code": g.product, "name": g.product_name },
        "status": status,
        "seats": {
            "total": l.max_activations,
            "in_use": live.used,
            "available": l.max_activations.saturating_sub(live.used),
        },
        "overage": {
            "in_use": live.overage_used,
            "max": l.terms.max_overage,
            "limit": g.overage_limit,
            "cap": g.overage_cap(l.terms.max_overage),
        },
        "lease_seconds": l.terms.lease_seconds(),
        "expires_at": l.expires_at.map(rfc3339),
        "granted_at": rfc3339(g.created_at),
        "cost_this_period": e.cost.as_ref().map(crate::usecases::billing::bill_view),
    })
}

fn held_view(h: &Held) -> Value {
    let a = &h.lease;
    json!({
        "id": a.id,
        "license_id": a.license_id,
        "vendor": { "id": h.grant.vendor_id, "name": h.grant.vendor_name },
        "product": h.grant.product,
        "user": a.user,
        "hostname": a.hostname,
        "overage": a.overage,
        "lease_expires_at": a.lease_expires_at().map(rfc3339),
        "checked_out_at": rfc3339(a.created_at),
    })
}
