//! The operator's request: validating it and reserving the tenant id, from
//! the Platform API (then queued) or the bootstrap CLI (then run inline).

use super::pipeline::{provision, stage, NoHook, STAGES};
use crate::crypto::{sha256_hex, Pepper};
use crate::domain::*;
use crate::error::Error;
use crate::ids::{Email, TenantId};
use crate::sqs::ProvisioningQueue;
use crate::store::tenants::CreateTenant;
use crate::store::Store;
use serde::{Deserialize, Serialize};
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

pub struct Reserved {
    pub tenant: Tenant,
    /// The first admin key, shown once: only when this request created the
    /// tenant. It is random and stored only as its hash, so it can never be
    /// derived or read again ([`new_admin_key`](super::new_admin_key) makes another).
    pub admin_key: Option<String>,
    /// False when the same request had already reserved it.
    pub created: bool,
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
    let (admin, secret) = crate::usecases::catalog::new_api_key(
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
    let (rec, integration_key) = crate::usecases::catalog::new_api_key(
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
