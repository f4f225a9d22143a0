//! The directory of verified organizations as vendors search it, and each
//! vendor's links of its CRM accounts to organizations. The links live in
//! the vendor's partition (`T#<vendor>#CRM#<crm id>` → organization,
//! `T#<vendor>#CUST#<organization>` → crm id) and change together in one
//! transaction, so each CRM id names one organization and each
//! organization has one CRM id per vendor.

use super::write::{from_item, Txn, TxnError, Write};
use super::{keys, sdk_error, Store, TenantStore};
use crate::domain::{AuditEvent, DirectoryEntry};
use crate::error::Error;
use crate::ids::{CrmAccountId, Domain, TenantId};
use aws_sdk_dynamodb::types::AttributeValue;

const CUSTOMER_ID: &str = "customer_id";
const CRM_ACCOUNT_ID: &str = "crm_account_id";

/// Why a link was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum CrmLink {
    Linked,
    /// The CRM id is linked to another organization.
    InUse,
    /// The organization's link changed meanwhile.
    Raced,
}

impl Store {
    /// A verified organization's directory entry.
    pub async fn directory_entry(&self, c: &TenantId) -> Result<Option<DirectoryEntry>, Error> {
        self.get_item(&keys::directory_entry(c))
            .await?
            .map(from_item)
            .transpose()
    }

    /// The verified organization that claimed `domain`.
    pub async fn directory_by_domain(&self, d: &Domain) -> Result<Option<DirectoryEntry>, Error> {
        let Some(claim) = self.get_item(&keys::domain_claim(d)).await? else {
            return Ok(None);
        };
        let Some(AttributeValue::S(id)) = claim.get(CUSTOMER_ID) else {
            return Ok(None);
        };
        match TenantId::parse(id.clone()) {
            Ok(c) => self.directory_entry(&c).await,
            Err(_) => Ok(None),
        }
    }

    /// Verified organizations whose lowercase name begins with `prefix`
    /// (already lowercase), at most `limit`.
    pub async fn directory_by_name(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<DirectoryEntry>, Error> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .db()
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk")
                .filter_expression("begins_with(#n, :p)")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_names("#n", "name_lc")
                .expression_attribute_values(":pk", AttributeValue::S(keys::DIRECTORY_PK.into()))
                .expression_attribute_values(":p", AttributeValue::S(prefix.into()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item(item)?);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            match page.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }
}

impl TenantStore {
    /// The organization this vendor linked to its CRM account `crm`.
    pub async fn customer_by_crm(&self, crm: &CrmAccountId) -> Result<Option<TenantId>, Error> {
        let key = keys::vendor_crm(self.tenant_id(), crm.as_str());
        let Some(item) = self.get(&key).await? else {
            return Ok(None);
        };
        match item.get(CUSTOMER_ID) {
            Some(AttributeValue::S(id)) => Ok(TenantId::parse(id.clone()).ok()),
            _ => Ok(None),
        }
    }

    /// This vendor's CRM id of organization `c`.
    pub async fn crm_of(&self, c: &TenantId) -> Result<Option<CrmAccountId>, Error> {
        let Some(item) = self
            .get(&keys::vendor_customer(self.tenant_id(), c))
            .await?
        else {
            return Ok(None);
        };
        match item.get(CRM_ACCOUNT_ID) {
            Some(AttributeValue::S(id)) => Ok(CrmAccountId::parse(id.clone()).ok()),
            _ => Ok(None),
        }
    }

    /// Link CRM id `crm` to organization `c`, replacing the organization's
    /// previous CRM id `old` (as read), in one transaction: the new CRM
    /// item (free or already this organization's), the organization's item
    /// (still `old`), the old CRM item's deletion, the audit event.
    pub async fn link_crm(
        &self,
        c: &TenantId,
        crm: &CrmAccountId,
        old: Option<&CrmAccountId>,
        audit: &AuditEvent,
    ) -> Result<CrmLink, Error> {
        let v = self.tenant_id();
        let mut new = Write::to(keys::vendor_crm(v, crm.as_str()));
        new.set(CUSTOMER_ID, c.as_str())
            .if_absent_or_eq(CUSTOMER_ID, c.as_str());
        let mut cust = Write::to(keys::vendor_customer(v, c));
        cust.set(CRM_ACCOUNT_ID, crm.as_str());
        match old {
            Some(o) => cust.if_eq(CRM_ACCOUNT_ID, o.as_str()),
            None => cust.if_absent(CRM_ACCOUNT_ID),
        };
        let mut txn = Txn::new();
        txn.update("crm", &new)?;
        txn.update("cust", &cust)?;
        if let Some(o) = old.filter(|o| *o != crm) {
            let mut del = Write::to(keys::vendor_crm(v, o.as_str()));
            del.if_eq(CUSTOMER_ID, c.as_str());
            txn.delete("old", &del)?;
        }
        self.push_audit(&mut txn, "audit", audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(CrmLink::Linked),
            Err(TxnError::Cancelled(x)) if x.failed("crm") => Ok(CrmLink::InUse),
            Err(TxnError::Cancelled(x)) if x.failed("cust") || x.failed("old") => {
                Ok(CrmLink::Raced)
            }
            Err(e) => {
                Err(e.or_else(|x| Error::internal(format!("CRM link refused: {}", x.describe()))))
            }
        }
    }
}
