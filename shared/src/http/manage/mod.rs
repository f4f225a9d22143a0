//! The Management API: request bodies → use cases → views, one module per
//! resource, each matching its operations exhaustively.

mod billing;
mod customers;
mod keys;
mod licenses;
mod policies;
mod products;
mod usage;
mod webhooks;

use super::envelope::Reply;
use super::{Caller, Ctx};
use crate::error::Error;
use crate::functions::ManageOp;
use crate::ids::Email;
use crate::usecases::{audit, portal, tenants};
use crate::views;
use serde::Deserialize;
use serde_json::json;

type R = Result<Reply, Error>;

pub async fn serve(ctx: &Ctx<'_>, caller: &Caller, op: ManageOp) -> R {
    match op {
        ManageOp::Product(op) => products::serve(ctx, caller, op).await,
        ManageOp::Policy(op) => policies::serve(ctx, caller, op).await,
        ManageOp::License(op) => licenses::serve(ctx, caller, op).await,
        ManageOp::Usage(op) => usage::serve(ctx, caller, op).await,
        ManageOp::ApiKey(op) => keys::serve(ctx, caller, op).await,
        ManageOp::AuditList => {
            let since = ctx.query.timestamp("since")?;
            let (limit, cursor) = (ctx.query.limit()?, ctx.query.cursor());
            let signer = ctx.app.signer()?;
            let page = audit::list(&caller.store, signer, since, limit, cursor).await?;
            Ok(Reply::list(
                page.items.iter().map(views::audit_view).collect(),
                page.next_cursor,
            ))
        }
        ManageOp::StripeIntegrationPut => super::stripe::put_secret(ctx, caller).await,
        ManageOp::Webhook(op) => webhooks::serve(ctx, caller, op).await,
        ManageOp::BillingOverage => billing::overage(ctx, caller).await,
        ManageOp::CustomerSearch => customers::search(ctx, caller).await,
        ManageOp::CustomerCrmPut => customers::put_crm(ctx, caller).await,
        ManageOp::StaffRemove => {
            // A malformed e-mail in the path is "not found", as any malformed id.
            let email =
                Email::normalise(ctx.param("email")).map_err(|_| portal::staff_not_found())?;
            let t = caller.store.tenant_id();
            let tenant = ctx
                .app
                .store
                .get_tenant(t)
                .await?
                .ok_or(Error::TenantInactive)?;
            portal::remove_staff(&caller.store, &tenant, &caller.actor, &email, ctx.now).await?;
            Ok(Reply::ok(json!({ "email": email, "removed": true })))
        }
        ManageOp::SigningKeyRotate => {
            let keys = ctx.app.signing_keys()?;
            let t = caller.store.tenant_id();
            let (tenant, version) =
                tenants::rotate_signing_key(&ctx.app.store, t, &caller.actor, ctx.now).await?;
            // This instance signs with the new key at once; the others
            // within the API-key freshness (5 s).
            ctx.app.keys.forget_tenant(t);
            ctx.app.tenants.forget(t);
            let made = tenant
                .signing_key_versions()
                .into_iter()
                .find(|(v, _, _)| *v == version);
            let at = made.map(|(_, at, _)| at).unwrap_or(ctx.now);
            Ok(Reply::created(views::signing_key_view(
                t, keys, version, at, true,
            )))
        }
    }
}

/// `Some(None)` distinguishes an explicit `null` from an absent field.
fn double_option<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}
