//! Tenants: the operator's request, reserving the id, and the provisioning
//! pipeline that seeds every record a tenant starts with. The Platform API,
//! the SQS worker and the bootstrap CLI all go through this code.

use crate::crypto::{sha256_hex, Pepper};
use crate::domain::*;
use crate::error::Error;
use crate::ids::{Email, TenantId};
use crate::provisioning::ProvisioningQueue;
use crate::store::tenants::CreateTenant;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// What an operator asks for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantRequest {
    pub tenant_id: TenantId,
    pub name: String,
    pub admin_email: Email,
    pub plan: Plan,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_endpoints: Vec<String>,
}

impl TenantRequest {
    /// Digest of the request's content: the same request again is the same tenant.
    pub fn digest(&self) -> String {
        sha256_hex(serde_json::to_string(self).unwrap_or_default().as_bytes())
    }

    pub fn validate(&self) -> Result<(), Error> {
        crate::domain::bounded("name", &self.name, 200)?;
        if self.webhook_endpoints.len() > 5 {
            return Err(Error::validation("at most 5 webhook endpoints"));
        }
        for url in &self.webhook_endpoints {
            if !url.starts_with("https://")
                || url.len() < 12
                || url.len() > 2048
                || url.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(Error::validation("webhook endpoints must be https:// URLs"));
            }
        }
        Ok(())
    }
}

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

pub struct Reserved {
    pub tenant: Tenant,
    /// The first admin key, shown once: only when this request created the
    /// tenant. It is random and stored only as its hash, so it can never be
    /// derived or read again ([`new_admin_key`] makes another).
    pub admin_key: Option<String>,
    /// False when the same request had already reserved it.
    pub created: bool,
}

fn stage(state: &str, attempts: u32, err: Option<String>, now: OffsetDateTime) -> StageState {
    StageState {
        state: state.into(),
        attempts,
        last_error: err,
        updated_at: now,
    }
}

/// Validate the request and reserve the id (one conditional transaction:
/// tenant in `provisioning` + its random admin key). Same request again: the
/// same tenant, without its key; same id with another body: `TENANT_EXISTS`.
pub async fn reserve(
    store: &Store,
    pepper: &Pepper,
    req: &TenantRequest,
    now: OffsetDateTime,
) -> Result<Reserved, Error> {
    req.validate()?;
    let (admin, secret) = super::catalog::new_api_key(
        pepper,
        &req.tenant_id,
        "admin (provisioning)".into(),
        vec![Scope::Admin],
        None,
        now,
    );
    let key_id = admin.id.clone();
    let mut stages = BTreeMap::new();
    for s in STAGES {
        stages.insert(s.to_string(), stage("pending", 0, None, now));
    }
    for s in ["validate_request", "reserve_tenant_id"] {
        stages.insert(s.to_string(), stage("done", 1, None, now));
    }
    let tenant = Tenant {
        tenant_id: req.tenant_id.clone(),
        name: req.name.clone(),
        admin_email: req.admin_email.clone(),
        plan: req.plan,
        status: TenantStatus::Provisioning,
        settings: TenantSettings::for_plan(req.plan),
        license_limit: None,
        licenses_issued: 0,
        admin_key_id: key_id,
        request_hash: req.digest(),
        stages,
        webhook_endpoints: req.webhook_endpoints.clone(),
        signing_key_version: 1,
        signing_keys: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    match store
        .create_tenant(&tenant, std::slice::from_ref(&admin))
        .await?
    {
        CreateTenant::Created => Ok(Reserved {
            tenant,
            admin_key: Some(secret),
            created: true,
        }),
        CreateTenant::AlreadyExists(t) => Ok(Reserved {
            tenant: *t,
            admin_key: None,
            created: false,
        }),
        CreateTenant::Conflict => Err(Error::conflict(
            "TENANT_EXISTS",
            format!("tenant '{}' exists with other details", req.tenant_id),
        )),
    }
}

/// `POST /v1/platform/tenants`: reserve the tenant, then enqueue its
/// pipeline on every call unless it is active or closed, so a repeated
/// request also resumes a stuck pipeline.
pub async fn request(
    store: &Store,
    pepper: &Pepper,
    queue: &ProvisioningQueue,
    req: &TenantRequest,
    now: OffsetDateTime,
) -> Result<Reserved, Error> {
    let reserved = reserve(store, pepper, req, now).await?;
    if !matches!(
        reserved.tenant.status,
        TenantStatus::Active | TenantStatus::Closed
    ) {
        queue.enqueue(&req.tenant_id).await?;
    }
    Ok(reserved)
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

/// Operator lifecycle: suspend, reactivate, close.
#[derive(Debug, Clone, Copy)]
pub enum TenantMove {
    Suspend,
    Reactivate,
    Close,
}

pub async fn lifecycle(
    store: &Store,
    t: &TenantId,
    what: TenantMove,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<Tenant, Error> {
    use TenantStatus::*;
    let (from, to, code): (&[TenantStatus], TenantStatus, AuditCode) = match what {
        TenantMove::Suspend => (&[Active], Suspended, AuditCode::TenantSuspended),
        TenantMove::Reactivate => (&[Suspended], Active, AuditCode::TenantReactivated),
        TenantMove::Close => (
            &[Active, Suspended, Failed, Provisioning],
            Closed,
            AuditCode::TenantClosed,
        ),
    };
    let audit = AuditEvent::new(t, code, "operator", t.as_str(), now, request_id);
    let moved = store
        .set_tenant_status(t, from, to, now, Some(&audit))
        .await?;
    let tenant = store
        .get_tenant(t)
        .await?
        .ok_or_else(|| Error::not_found("TENANT_NOT_FOUND", format!("no tenant '{t}'")))?;
    if moved || tenant.status == to {
        return Ok(tenant);
    }
    if tenant.status == Closed {
        return Err(Error::conflict(
            "TENANT_CLOSED",
            "the tenant is closed; closing is terminal",
        ));
    }
    Err(Error::conflict(
        "INVALID_TRANSITION",
        format!(
            "a {} tenant cannot move to {}",
            tenant.status.as_str(),
            to.as_str()
        ),
    ))
}

/// The keys a CLI-bootstrapped tenant is given, shown once.
pub struct Bootstrapped {
    pub tenant: Tenant,
    pub admin_key: String,
    pub integration_key: String,
}

/// The operator CLI: reserve and run the whole pipeline inline (the same
/// stages the SQS worker runs), then add an integration key.
pub async fn bootstrap(
    store: &Store,
    pepper: &Pepper,
    req: TenantRequest,
    now: OffsetDateTime,
) -> Result<Bootstrapped, Error> {
    let reserved = reserve(store, pepper, &req, now).await?;
    if !reserved.created {
        return Err(Error::conflict(
            "TENANT_EXISTS",
            format!(
                "tenant '{}' already exists (status {})",
                req.tenant_id,
                reserved.tenant.status.as_str()
            ),
        ));
    }
    provision(
        store,
        &req.tenant_id,
        &NoHook,
        &crate::clock::ManualClock::new(now),
    )
    .await?;
    let ts = store.tenant(&req.tenant_id);
    let (rec, integration_key) = super::catalog::new_api_key(
        pepper,
        &req.tenant_id,
        "integration (bootstrap)".into(),
        vec![Scope::Integration],
        None,
        now,
    );
    let audit = AuditEvent::new(
        &req.tenant_id,
        AuditCode::ApiKeyCreated,
        "operator",
        rec.id.as_str(),
        now,
        "cli",
    );
    ts.create_api_key(&rec, &audit).await?;
    let tenant = store
        .get_tenant(&req.tenant_id)
        .await?
        .ok_or_else(|| Error::internal("bootstrapped tenant vanished"))?;
    Ok(Bootstrapped {
        tenant,
        admin_key: reserved
            .admin_key
            .ok_or_else(|| Error::internal("a created tenant without its key"))?,
        integration_key,
    })
}

/// A new admin key for an existing tenant (the operator's way back in when
/// the first key was lost): shown once, audited with actor `operator`.
pub async fn new_admin_key(
    store: &Store,
    pepper: &Pepper,
    t: &TenantId,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<(ApiKeyRecord, String), Error> {
    let tenant = store
        .get_tenant(t)
        .await?
        .ok_or_else(|| Error::not_found("TENANT_NOT_FOUND", format!("no tenant '{t}'")))?;
    if tenant.status == TenantStatus::Closed {
        return Err(Error::conflict("TENANT_CLOSED", "the tenant is closed"));
    }
    let actor = Actor {
        actor: "operator".into(),
        request_id: request_id.to_string(),
    };
    super::catalog::create_api_key(
        pepper,
        &store.tenant(t),
        &actor,
        "admin (operator)".into(),
        vec![Scope::Admin],
        None,
        now,
    )
    .await
}

/// `PATCH /v1/platform/tenants/{id}`: change a tenant's limits and defaults.
/// Every instance applies them within the API-key freshness (5 s).
pub async fn patch_settings(
    store: &Store,
    t: &TenantId,
    patch: &SettingsPatch,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<Tenant, Error> {
    patch.check()?;
    let audit = AuditEvent::new(
        t,
        AuditCode::TenantUpdated,
        "operator",
        t.as_str(),
        now,
        request_id,
    )
    .with_data(serde_json::to_value(patch).map_err(Error::internal)?);
    if !store.patch_tenant_settings(t, patch, now, &audit).await? {
        return Err(Error::not_found(
            "TENANT_NOT_FOUND",
            format!("no tenant '{t}'"),
        ));
    }
    store
        .get_tenant(t)
        .await?
        .ok_or_else(|| Error::internal("a patched tenant vanished"))
}

/// `POST /v1/manage/signing-keys/rotate`: the tenant's next signing key
/// version signs from now on; earlier versions stay listed (retired) so
/// files and answers they signed still verify.
pub async fn rotate_signing_key(
    store: &Store,
    t: &TenantId,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<(Tenant, u32), Error> {
    for _ in 0..3 {
        let tenant = store
            .get_tenant(t)
            .await?
            .ok_or_else(|| Error::not_found("TENANT_NOT_FOUND", format!("no tenant '{t}'")))?;
        let from = tenant.signing_key_version;
        let audit = actor
            .audit(t, AuditCode::SigningKeyRotated, t.as_str(), now)
            .with_data(
                json!({ "from": crate::crypto::kid(from), "to": crate::crypto::kid(from + 1) }),
            );
        if store.rotate_signing_key(t, from, now, &audit).await? {
            let tenant = store
                .get_tenant(t)
                .await?
                .ok_or_else(|| Error::internal("tenant vanished"))?;
            return Ok((tenant, from + 1));
        }
    }
    Err(Error::Unavailable(
        "the signing key kept changing; retry".into(),
    ))
}
