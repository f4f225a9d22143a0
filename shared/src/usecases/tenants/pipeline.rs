//! The provisioning pipeline: every stage idempotent and recorded on the
//! tenant, run (or resumed) by the SQS worker and the bootstrap CLI.

use crate::domain::*;
use crate::error::Error;
use crate::ids::TenantId;
use crate::store::Store;
use serde_json::json;
use time::OffsetDateTime;

/// The pipeline, in order. Each stage is idempotent and recorded on the tenant.
pub const STAGES: [&str; 12] = [
    "validate_request",
    "reserve_tenant_id",
    "seed_settings",
    "plan_limits",
    "entitlements_catalogue",
    "usage_counters",
    "branding",
    "activate_admin_key",
    "webhook_endpoints",
    "audit",
    "health_check",
    "activate",
];

/// Test and operations hook: consulted before every stage; an error fails it.
pub trait StageHook: Send + Sync {
    fn before(&self, tenant: &TenantId, stage: &str) -> Result<(), Error>;
}

/// No hook (production).
pub struct NoHook;
impl StageHook for NoHook {
    fn before(&self, _: &TenantId, _: &str) -> Result<(), Error> {
        Ok(())
    }
}

pub(super) fn stage(
    state: &str,
    attempts: u32,
    err: Option<String>,
    now: OffsetDateTime,
) -> StageState {
    StageState {
        state: state.into(),
        attempts,
        last_error: err,
        updated_at: now,
    }
}

/// Run (or resume) the pipeline of a reserved tenant: every unfinished
/// stage, in order. A failing stage is recorded (state, attempts, error) and
/// the tenant shows `failed` until a later attempt gets past it.
pub async fn provision(
    store: &Store,
    tenant_id: &TenantId,
    hook: &dyn StageHook,
    clock: &dyn crate::clock::Clock,
) -> Result<TenantStatus, Error> {
    let now_fn = || clock.now();
    let tenant = store
        .get_tenant(tenant_id)
        .await?
        .ok_or_else(|| Error::not_found("TENANT_NOT_FOUND", format!("no tenant '{tenant_id}'")))?;
    if !matches!(
        tenant.status,
        TenantStatus::Provisioning | TenantStatus::Failed
    ) {
        // Active, suspended or closed: nothing to do (a duplicate message).
        return Ok(tenant.status);
    }
    for name in STAGES {
        let prev = tenant
            .stages
            .get(name)
            .cloned()
            .unwrap_or_else(|| stage("pending", 0, None, now_fn()));
        if prev.state == "done" || prev.state == "skipped" {
            continue;
        }
        let attempts = prev.attempts + 1;
        let result = match hook.before(tenant_id, name) {
            Ok(()) => run_stage(store, &tenant, name, now_fn()).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(state) => {
                let status = (name == "activate")
                    .then_some(TenantStatus::Active)
                    .or(Some(TenantStatus::Provisioning));
                match store
                    .set_stage(
                        tenant_id,
                        name,
                        &stage(state, attempts, None, now_fn()),
                        status,
                        now_fn(),
                    )
                    .await
                {
                    Ok(()) => {}
                    // Closed (or suspended) while provisioning: stop, nothing is left to do.
                    Err(Error::Conflict {
                        code: "TENANT_NOT_PROVISIONING",
                        ..
                    }) => {
                        let now_status = store
                            .get_tenant(tenant_id)
                            .await?
                            .map(|t| t.status)
                            .unwrap_or(TenantStatus::Closed);
                        return Ok(now_status);
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => {
                let detail = match &e {
                    Error::Internal(d) | Error::Unavailable(d) => d.clone(),
                    other => other.to_string(),
                };
                tracing::warn!(
                    tenant = %tenant_id,
                    stage = name,
                    attempts,
                    error = %detail,
                    "provisioning stage failed"
                );
                store
                    .set_stage(
                        tenant_id,
                        name,
                        &stage("failed", attempts, Some(detail), now_fn()),
                        Some(TenantStatus::Failed),
                        now_fn(),
                    )
                    .await?;
                return Err(e);
            }
        }
    }
    Ok(TenantStatus::Active)
}

/// The audit event of a tenant's provisioning has a fixed id, so a retried
/// stage writes it once.
fn provisioned_event(tenant: &Tenant) -> AuditEvent {
    let mut a = AuditEvent::new(
        &tenant.tenant_id,
        AuditCode::TenantProvisioned,
        "operator",
        tenant.tenant_id.as_str(),
        tenant.created_at,
        "provisioning",
    );
    // The smallest ULID of the tenant's creation millisecond: stable across
    // retries, and never after an event that really happened later.
    let ms = (tenant.created_at.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    a.id = format!("aud_{}", ulid::Ulid::from_parts(ms, 0));
    a.data = json!({ "plan": tenant.plan, "name": tenant.name });
    a
}

async fn run_stage(
    store: &Store,
    tenant: &Tenant,
    name: &str,
    now: OffsetDateTime,
) -> Result<&'static str, Error> {
    let t = &tenant.tenant_id;
    let ts = store.tenant(t);
    let created_at = crate::clock::rfc3339(now);
    match name {
        "validate_request" | "reserve_tenant_id" => Ok("done"),
        "seed_settings" => {
            store
                .set_tenant_settings(t, &TenantSettings::for_plan(tenant.plan))
                .await?;
            Ok("done")
        }
        "plan_limits" => {
            store
                .set_license_limit(t, tenant.plan.license_limit())
                .await?;
            Ok("done")
        }
        "entitlements_catalogue" => {
            let catalogue = json!({
                "features": {
                    "api-calls": {
                        "type": "metered", "limit": 10000, "period": "month", "overage": "deny",
                    },
                    "seats": {
                        "type": "metered", "limit": 5, "period": "total", "overage": "deny",
                    },
                    "priority-support": { "type": "boolean" },
                    "sso": { "type": "boolean" },
                },
                "created_at": created_at,
            });
            ts.seed(SeedRecord::Catalogue, &catalogue).await?;
            Ok("done")
        }
        "usage_counters" => {
            let totals = json!({
                "licenses_issued": 0,
                "activations": 0,
                "usage_records": 0,
                "created_at": created_at,
            });
            ts.seed(SeedRecord::UsageTotals, &totals).await?;
            Ok("done")
        }
        "branding" => {
            let branding = json!({
                "display_name": tenant.name,
                "support_email": tenant.admin_email,
                "logo_url": null,
                "accent_color": "#2F6FEB",
            });
            ts.seed(SeedRecord::Branding, &branding).await?;
            Ok("done")
        }
        "activate_admin_key" => {
            ts.activate_key(&tenant.admin_key_id, now).await?;
            Ok("done")
        }
        "webhook_endpoints" => {
            if tenant.webhook_endpoints.is_empty() {
                return Ok("skipped");
            }
            let hooks = json!({ "endpoints": tenant.webhook_endpoints, "created_at": created_at });
            ts.seed(SeedRecord::Webhooks, &hooks).await?;
            Ok("done")
        }
        "audit" => {
            ts.put_audit_once(&provisioned_event(tenant)).await?;
            Ok("done")
        }
        "health_check" => {
            let seeds: Vec<SeedRecord> = SeedRecord::ALL
                .into_iter()
                .filter(|s| *s != SeedRecord::Webhooks || !tenant.webhook_endpoints.is_empty())
                .collect();
            let audit_id = provisioned_event(tenant).id;
            let missing = ts
                .missing_records(&tenant.admin_key_id, &audit_id, &seeds)
                .await?;
            if !missing.is_empty() {
                return Err(Error::internal(format!(
                    "health check: missing {}",
                    missing.join(", ")
                )));
            }
            Ok("done")
        }
        "activate" => Ok("done"),
        other => Err(Error::internal(format!("unknown stage {other}"))),
    }
}
