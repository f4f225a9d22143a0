//! Creating tenants: the records every tenant starts with. The bootstrap CLI
//! and the provisioning pipeline both build them here.

use crate::crypto::{sha256_hex, Pepper};
use crate::domain::*;
use crate::error::Error;
use crate::ids::{Email, TenantId};
use crate::store::tenants::CreateTenant;
use crate::store::Store;
use serde::{Deserialize, Serialize};
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
        crate::http::request::bounded("name", &self.name, 200)?;
        if self.webhook_endpoints.len() > 5 {
            return Err(Error::validation("at most 5 webhook endpoints"));
        }
        for url in &self.webhook_endpoints {
            if !url.starts_with("https://") || url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Error::validation("webhook endpoints must be https:// URLs"));
            }
        }
        Ok(())
    }
}

/// The keys a new tenant is given, shown once.
pub struct IssuedKey {
    pub record: ApiKeyRecord,
    pub key: String,
}

pub fn tenant_record(req: &TenantRequest, admin_key: &ApiKeyRecord, status: TenantStatus, now: OffsetDateTime) -> Tenant {
    Tenant {
        tenant_id: req.tenant_id.clone(),
        name: req.name.clone(),
        admin_email: req.admin_email.clone(),
        plan: req.plan,
        status,
        settings: TenantSettings::for_plan(req.plan),
        license_limit: req.plan.license_limit(),
        licenses_issued: 0,
        admin_key_id: admin_key.id.clone(),
        request_hash: req.digest(),
        stages: vec![],
        webhook_endpoints: req.webhook_endpoints.clone(),
        created_at: now,
        updated_at: now,
    }
}

pub fn issue_key(pepper: &Pepper, tenant: &TenantId, name: &str, scope: Scope, now: OffsetDateTime) -> IssuedKey {
    let (record, key) = super::catalog::new_api_key(pepper, tenant, name.to_string(), vec![scope], None, now);
    IssuedKey { record, key }
}

/// Outcome of a direct (CLI) tenant creation.
pub enum Bootstrap {
    Created { tenant: Box<Tenant>, admin: IssuedKey, integration: IssuedKey },
    AlreadyExists(Box<Tenant>),
}

/// Create an active tenant with an admin and an integration key in one
/// transaction (the operator CLI; the Platform API runs the pipeline).
pub async fn bootstrap(store: &Store, pepper: &Pepper, req: TenantRequest, now: OffsetDateTime) -> Result<Bootstrap, Error> {
    req.validate()?;
    let admin = issue_key(pepper, &req.tenant_id, "admin (bootstrap)", Scope::Admin, now);
    let integration = issue_key(pepper, &req.tenant_id, "integration (bootstrap)", Scope::Integration, now);
    let tenant = tenant_record(&req, &admin.record, TenantStatus::Active, now);
    let audit = [
        AuditEvent::new(&req.tenant_id, AuditCode::TenantProvisioned, "operator", req.tenant_id.as_str(), now, "cli"),
        AuditEvent::new(&req.tenant_id, AuditCode::ApiKeyCreated, "operator", admin.record.id.as_str(), now, "cli"),
        AuditEvent::new(&req.tenant_id, AuditCode::ApiKeyCreated, "operator", integration.record.id.as_str(), now, "cli"),
    ];
    match store.create_tenant(&tenant, &[admin.record.clone(), integration.record.clone()], &audit).await? {
        CreateTenant::Created => Ok(Bootstrap::Created { tenant: Box::new(tenant), admin, integration }),
        CreateTenant::AlreadyExists(t) => Ok(Bootstrap::AlreadyExists(t)),
        CreateTenant::Conflict => Err(Error::conflict("TENANT_EXISTS", format!("tenant '{}' exists with other details", req.tenant_id))),
    }
}
