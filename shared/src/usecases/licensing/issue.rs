//! Issuing a license through the management API, and reading licenses.

use super::LicenseState;
use crate::cache::Policies;
use crate::domain::seats::LiveLeases;
use crate::domain::*;
use crate::error::{license_not_found, Error};
use crate::ids::{Email, LicenseId, LicenseKey, PolicyId};
use crate::store::TenantStore;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

pub struct NewLicense {
    pub policy: PolicyId,
    pub customer_email: Email,
    pub expires_at: Option<OffsetDateTime>,
    pub key: Option<LicenseKey>,
    pub metadata: Map<String, Value>,
    /// Commit and overage terms (`docs/billing.md`).
    pub commercial: Option<billing::CommercialTerms>,
    /// Granted to a customer organization (the grant is written with the
    /// license, in the organization's partition).
    pub grant_to: Option<GrantTo>,
}

/// The organization a license is issued to, with the vendor's CRM ids.
#[derive(Debug, Clone)]
pub struct GrantTo {
    pub customer: crate::ids::TenantId,
    pub crm_account_id: Option<String>,
    pub crm_opportunity_id: Option<String>,
    /// The vendor's display name (copied: it names the vendor in the
    /// organization's catalog).
    pub vendor_name: String,
    /// The organization's name (copied onto the license: the overage
    /// export names the customer by it).
    pub customer_name: String,
}

/// Issue a license through the management API.
pub async fn issue(
    policies: &Policies,
    ts: &TenantStore,
    actor: &Actor,
    req: NewLicense,
    now: OffsetDateTime,
) -> Result<LicenseState, Error> {
    if req.expires_at.is_some_and(|e| e <= now) {
        return Err(Error::validation("expires_at must be in the future"));
    }
    let policy = policies.get(ts, &req.policy).await?.ok_or_else(|| {
        Error::invalid(
            "POLICY_NOT_FOUND",
            format!("no policy with id '{}'", req.policy),
        )
    })?;
    if let Some(t) = &req.commercial {
        t.check()?;
    }
    let mut license = License::issue(LicenseDraft {
        tenant: ts.tenant_id(),
        policy: &policy,
        key: req.key,
        customer_email: req.customer_email,
        status: LicenseStatus::Active,
        expires_at: req.expires_at,
        grace_until: None,
        metadata: req.metadata,
        stripe: StripeLink::default(),
        stripe_event_at: 0,
        now,
    })?;
    license.commercial = req.commercial;
    license.organization = req.grant_to.as_ref().map(|to| billing::GrantedOrg {
        id: to.customer.clone(),
        name: to.customer_name.clone(),
    });
    let audit = actor
        .audit(
            ts.tenant_id(),
            AuditCode::LicenseCreated,
            license.id.as_str(),
            now,
        )
        .with_data(json!({
            "policy": license.policy,
            "customer_email": license.customer_email,
            "commercial": license.commercial,
        }));
    match req.grant_to {
        None => ts.issue_license(&license, &audit).await?,
        Some(to) => {
            let product_name = ts.get_product(&license.product).await?.map(|p| p.name);
            let grant = crate::domain::grants::Grant {
                customer_id: to.customer,
                vendor_id: ts.tenant_id().clone(),
                vendor_name: to.vendor_name,
                license_id: license.id.clone(),
                product: license.product.clone(),
                product_name,
                crm_account_id: to.crm_account_id,
                crm_opportunity_id: to.crm_opportunity_id,
                overage_limit: None,
                cap_version: 0,
                created_at: now,
            };
            let audit = audit.with_data(json!({
                "policy": license.policy,
                "customer_email": license.customer_email,
                "customer_id": grant.customer_id,
                "commercial": license.commercial,
            }));
            ts.issue_granted_license(&license, &grant, &audit).await?
        }
    }
    // A new license has used nothing yet.
    Ok(LicenseState {
        license,
        policy: Some(policy),
        usage: UsageSnapshot::new(),
        leases: LiveLeases::default(),
    })
}

/// One page of the tenant's licenses matching `filter`, newest first.
pub async fn search(
    ts: &TenantStore,
    signer: &crate::crypto::Signer,
    filter: &LicenseFilter,
    limit: usize,
    cursor: Option<&str>,
    now: OffsetDateTime,
) -> Result<crate::store::Page<License>, Error> {
    filter.check()?;
    ts.search_licenses(signer, filter, limit, cursor, now).await
}

/// One page of the licenses issued to `email` (the e-mail index).
pub async fn by_email(
    ts: &TenantStore,
    signer: &crate::crypto::Signer,
    email: &Email,
    limit: i32,
    cursor: Option<&str>,
) -> Result<crate::store::Page<License>, Error> {
    ts.list_licenses_by_email(signer, email, limit, cursor)
        .await
}

/// A license with its policy and usage, or `LICENSE_NOT_FOUND`.
pub async fn get(
    policies: &Policies,
    ts: &TenantStore,
    id: &LicenseId,
    now: OffsetDateTime,
) -> Result<LicenseState, Error> {
    let read = ts.read_license(id, None, now).await?;
    let license = read.license.ok_or_else(license_not_found)?;
    LicenseState::of(policies, ts, license, read.leases, now).await
}

/// A license's activations (`LICENSE_NOT_FOUND` when there is no license).
pub async fn activations(ts: &TenantStore, id: &LicenseId) -> Result<Vec<Activation>, Error> {
    if ts.get_license(id).await?.is_none() {
        return Err(license_not_found());
    }
    ts.list_activations(id).await
}
