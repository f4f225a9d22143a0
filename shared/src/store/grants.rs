//! Grants (see [`crate::domain::grants`]): written by a VENDOR's store into
//! the ORGANIZATION's partition in the license's issue transaction, and read
//! by the organization's store from its own partition. Nothing else of one
//! tenant is reachable from another: an organization's request builds the
//! vendor's [`TenantStore`] from a grant it found in its own partition.

use super::attrs as a;
use super::licenses::{plan_refusal, AUDIT_ITEM, LICENSE_ITEM};
use super::write::{from_item, get_s, PutIf, Txn, TxnError, Write};
use super::{keys, TenantStore};
use crate::domain::grants::Grant;
use crate::domain::{AuditEvent, CustomerStatus, License, TenantKind};
use crate::error::Error;
use crate::ids::LicenseId;

mod item {
    pub const ORG: &str = "organization";
    pub const GRANT: &str = "grant";
    pub const ORG_AUDIT: &str = "organization audit";
}

/// The organization named in an issue request is not one a license can be
/// granted to (absent, or not verified).
pub fn customer_not_found() -> Error {
    Error::invalid(
        "CUSTOMER_NOT_FOUND",
        "no verified customer organization with that id",
    )
}

pub fn customer_not_active() -> Error {
    Error::invalid(
        "CUSTOMER_NOT_ACTIVE",
        "the customer organization has not verified its domain yet, or is suspended",
    )
}

impl TenantStore {
    /// Issue a license granted to an organization: the license (as
    /// [`TenantStore::issue_license`] does), a `ConditionCheck` that the
    /// organization exists, is a customer and is active, and the grant in
    /// the organization's partition — one transaction.
    pub async fn issue_granted_license(
        &self,
        l: &License,
        grant: &Grant,
        audit: &AuditEvent,
    ) -> Result<(), Error> {
        debug_assert_eq!(&grant.vendor_id, self.tenant_id());
        let mut txn = Txn::new();
        self.push_issue(&mut txn, l)?;
        self.push_audit(&mut txn, AUDIT_ITEM, audit)?;
        let mut org = Write::to(keys::tenant(&grant.customer_id));
        org.if_exists()
            .if_eq(TenantKind::ATTR, TenantKind::Customer.as_str())
            .if_eq(a::STATUS, &CustomerStatus::Active);
        txn.check(item::ORG, &org)?;
        txn.put(
            item::GRANT,
            &keys::grant(&grant.customer_id, &grant.license_id),
            grant,
            PutIf::New,
        )?;
        txn.run(self.db(), self.table()).await.map_err(|e| {
            e.or_else(|c| {
                if c.failed(LICENSE_ITEM) {
                    Error::LicenseKeyExists
                } else if c.failed(item::ORG) {
                    let is_org = c
                        .old(item::ORG)
                        .is_some_and(|i| get_s(i, TenantKind::ATTR) == Some("customer"));
                    match is_org {
                        true => customer_not_active(),
                        false => customer_not_found(),
                    }
                } else if c.failed(item::GRANT) {
                    Error::internal("a new license's grant already existed")
                } else {
                    plan_refusal(&c).unwrap_or(Error::TenantInactive)
                }
            })
        })
    }

    /// The organization's grants (this store is the organization's).
    pub async fn list_grants(&self) -> Result<Vec<Grant>, Error> {
        let pk = keys::grants_pk(self.tenant_id());
        let items = self.query_all(pk, Some(keys::GRANT_SK_PREFIX)).await?;
        items.into_iter().map(from_item).collect()
    }

    /// One activation (a checkout's lease) of this vendor's license.
    pub async fn get_activation(
        &self,
        id: &crate::ids::ActivationId,
    ) -> Result<Option<crate::domain::Activation>, Error> {
        self.get_as(&keys::activation(self.tenant_id(), id)).await
    }

    /// One grant of the organization, by license id.
    pub async fn get_grant(&self, license: &LicenseId) -> Result<Option<Grant>, Error> {
        self.get_as(&keys::grant(self.tenant_id(), license)).await
    }

    /// Set the organization's overage cap on a grant, bumping its version
    /// (checkouts that read the old cap are refused and read again), with
    /// the organization's audit event. `Ok(None)`: no such grant.
    pub async fn set_grant_cap(
        &self,
        license: &LicenseId,
        limit: u32,
        audit: &AuditEvent,
    ) -> Result<Option<Grant>, Error> {
        let key = keys::grant(self.tenant_id(), license);
        let mut w = Write::to(key.clone());
        w.set(a::OVERAGE_LIMIT, &limit)
            .add(a::CAP_VERSION, 1)
            .if_exists();
        let mut txn = Txn::new();
        txn.update(item::GRANT, &w)?;
        self.push_audit(&mut txn, item::ORG_AUDIT, audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => self.get_as(&key).await,
            Err(TxnError::Cancelled(c)) if c.failed(item::GRANT) => Ok(None),
            Err(e) => Err(e.or_else(|c| Error::internal(c.describe()))),
        }
    }

    /// The condition a checkout through `grant` puts in its transaction:
    /// the grant still exists with the cap version it was read with.
    pub(crate) fn grant_unchanged(&self, grant: &Grant) -> Write {
        let mut w = Write::to(keys::grant(self.tenant_id(), &grant.license_id));
        w.if_exists().if_eq(a::CAP_VERSION, &grant.cap_version);
        w
    }
}
