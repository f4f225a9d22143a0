//! The Platform API (operator): tenants and their provisioning.

use super::envelope::Reply;
use super::request;
use super::Ctx;
use crate::domain::Plan;
use crate::error::Error;
use crate::functions::PlatformOp;
use crate::ids::{Email, TenantId};
use crate::usecases::tenants::{self, TenantMove, TenantRequest};
use crate::views;
use serde::Deserialize;
use serde_json::json;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantPatchBody {
    /// Read as an object first: serde would take a struct from a JSON array.
    settings: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClosePeriodBody {
    /// `YYYY-MM`.
    period: String,
}

fn tenant_not_found() -> Error {
    Error::not_found("TENANT_NOT_FOUND", "no tenant with that id")
}

pub async fn serve(ctx: &Ctx<'_>, op: PlatformOp) -> Result<Reply, Error> {
    let app = ctx.app;
    let tenant_id = || TenantId::parse(ctx.param("id")).map_err(|_| tenant_not_found());
    match op {
        PlatformOp::BillingClosePeriod => {
            let b: ClosePeriodBody = request::json(ctx.body)?;
            let period = crate::domain::billing::Period::parse(&b.period)?;
            let summary = crate::usecases::billing::close_period(
                &app.store,
                period,
                "operator",
                &ctx.request_id,
                ctx.now,
            )
            .await?;
            Ok(Reply::ok(json!(summary)))
        }
        PlatformOp::TenantCreate => {
            let b: TenantBody = request::json(ctx.body)?;
            let req = TenantRequest {
                tenant_id: b.tenant_id,
                name: b.name,
                admin_email: Email::normalise(&b.admin_email)?,
                plan: b.plan,
                webhook_endpoints: b.webhook_endpoints,
            };
            let queue = app
                .provisioning
                .as_ref()
                .ok_or_else(|| Error::internal("no provisioning queue configured"))?;
            let reserved =
                tenants::request(&app.store, app.pepper()?, queue, &req, ctx.now).await?;
            let mut data = views::tenant_view(&reserved.tenant);
            data["admin_api_key"] = json!(reserved.admin_key);
            if reserved.admin_key.is_none() {
                data["admin_api_key_note"] = json!(format!(
                    "the first admin key is shown once, when the tenant is created; \
                     POST /v1/platform/tenants/{}/admin-keys makes a new one",
                    req.tenant_id
                ));
            }
            data["created"] = json!(reserved.created);
            Ok(Reply::accepted(data))
        }
        PlatformOp::TenantPatch => {
            let b: TenantPatchBody = request::json(ctx.body)?;
            let settings: crate::domain::SettingsPatch =
                serde_json::from_value(serde_json::Value::Object(b.settings))
                    .map_err(|e| Error::validation(format!("settings: {e}")))?;
            let t = tenant_id()?;
            let tenant =
                tenants::patch_settings(&app.store, &t, &settings, &ctx.request_id, ctx.now)
                    .await?;
            // This instance applies them at once; the others within 5 s.
            app.keys.forget_tenant(&t);
            Ok(Reply::ok(views::tenant_view(&tenant)))
        }
        PlatformOp::AdminKeyCreate => {
            let t = tenant_id()?;
            let pepper = app.pepper()?;
            let (rec, key) =
                tenants::new_admin_key(&app.store, pepper, &t, &ctx.request_id, ctx.now).await?;
            let mut v = views::api_key_view(&rec);
            v["key"] = json!(key);
            Ok(Reply::created(v))
        }
        PlatformOp::TenantGet => {
            let tenant = tenants::get(&app.store, &tenant_id()?)
                .await?
                .ok_or_else(tenant_not_found)?;
            Ok(Reply::ok(views::tenant_view(&tenant)))
        }
        PlatformOp::TenantSuspend | PlatformOp::TenantReactivate | PlatformOp::TenantClose => {
            let what = match op {
                PlatformOp::TenantSuspend => TenantMove::Suspend,
                PlatformOp::TenantReactivate => TenantMove::Reactivate,
                _ => TenantMove::Close,
            };
            let t = tenant_id()?;
            let tenant = tenants::lifecycle(&app.store, &t, what, &ctx.request_id, ctx.now).await?;
            // This instance drops the tenant's keys at once; the others
            // re-read them within KEY_FRESHNESS.
            app.keys.forget_tenant(&t);
            Ok(Reply::ok(views::tenant_view(&tenant)))
        }
    }
}
