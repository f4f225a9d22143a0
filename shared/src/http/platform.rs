//! The Platform API (operator): tenants and their provisioning.

use super::envelope::Reply;
use super::request;
use super::Ctx;
use crate::domain::Plan;
use crate::error::Error;
use crate::functions::Op;
use crate::ids::{Email, TenantId};
use crate::usecases::tenants::{self, TenantMove, TenantRequest};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantBody {
    tenant_id: TenantId,
    name: String,
    admin_email: String,
    plan: Plan,
    #[serde(default)]
    webhook_endpoints: Vec<String>,
}

fn tenant_not_found() -> Error {
    Error::not_found("TENANT_NOT_FOUND", "no tenant with that id")
}

pub async fn route(ctx: &Ctx<'_>, op: Op) -> Result<Reply, Error> {
    let app = ctx.app;
    match op {
        Op::TenantCreate => {
            let b: TenantBody = request::json(ctx.body)?;
            let req = TenantRequest {
                tenant_id: b.tenant_id,
                name: b.name,
                admin_email: Email::normalise(&b.admin_email)?,
                plan: b.plan,
                webhook_endpoints: b.webhook_endpoints,
            };
            let reserved = tenants::reserve(&app.store, app.pepper()?, &req, ctx.now).await?;
            // Enqueue on every call: a repeated request also resumes a stuck pipeline.
            let queue = app
                .config
                .provisioning_queue_url
                .as_deref()
                .ok_or_else(|| Error::internal("no provisioning queue configured"))?;
            if !matches!(
                reserved.tenant.status,
                crate::domain::TenantStatus::Active | crate::domain::TenantStatus::Closed
            ) {
                crate::provisioning::enqueue(&app.clients.sqs, queue, &req.tenant_id).await?;
            }
            let mut data = tenants::tenant_view(&reserved.tenant);
            data["admin_api_key"] = serde_json::json!(reserved.admin_key);
            data["created"] = serde_json::json!(reserved.created);
            Ok(Reply::accepted(data))
        }
        Op::TenantGet => {
            let t = TenantId::parse(ctx.param("id")).map_err(|_| tenant_not_found())?;
            let tenant = app
                .store
                .get_tenant(&t)
                .await?
                .ok_or_else(tenant_not_found)?;
            Ok(Reply::ok(tenants::tenant_view(&tenant)))
        }
        Op::TenantSuspend | Op::TenantReactivate | Op::TenantClose => {
            let t = TenantId::parse(ctx.param("id")).map_err(|_| tenant_not_found())?;
            let what = match op {
                Op::TenantSuspend => TenantMove::Suspend,
                Op::TenantReactivate => TenantMove::Reactivate,
                _ => TenantMove::Close,
            };
            let tenant = tenants::lifecycle(&app.store, &t, what, &ctx.request_id, ctx.now).await?;
            Ok(Reply::ok(tenants::tenant_view(&tenant)))
        }
        _ => Err(Error::internal(format!(
            "{op:?} is not a platform operation"
        ))),
    }
}
