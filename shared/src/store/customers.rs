//! Customer organizations (tenants of kind `customer`): the tenant item,
//! its members and its apps' API keys. The tenant item shares the vendor
//! tenants' key (`T#<id>` / `TENANT`), so one conditional put keeps ids
//! unique across both kinds; vendor reads ([`Store::get_tenant`]) skip it.

use super::attrs as a;
use super::tenants::is_customer;
use super::write::{from_item, get_s, PutIf, Txn, TxnError, Write};
use super::{keys, Store, TenantStore};
use crate::clock::rfc3339;
use crate::domain::{AuditEvent, CustomerKeyRecord, CustomerOrg, Member, MemberRole, Session};
use crate::error::Error;
use crate::ids::{ApiKeyId, Email, TenantId};
use time::OffsetDateTime;

/// The counter item of an organization's admins.
#[derive(serde::Serialize, serde::Deserialize)]
struct AdminCount {
    admins: u64,
}
const ADMINS: &str = "admins";

impl Store {
    /// Create a customer organization with its first member (its admin)
    /// and its audit event, in one transaction conditional on the tenant id
    /// being free (of vendors and customers alike). `Ok(false)`: it was not.
    pub async fn create_customer(
        &self,
        org: &CustomerOrg,
        admin: &Member,
        audit: &AuditEvent,
    ) -> Result<bool, Error> {
        let t = &org.tenant_id;
        let mut txn = Txn::new();
        txn.put("tenant", &keys::tenant(t), org, PutIf::New)?;
        txn.put(
            "member",
            &keys::member(t, &admin.email),
            admin,
            PutIf::Always,
        )?;
        let count = AdminCount { admins: 1 };
        txn.put("admins", &keys::admin_count(t), &count, PutIf::Always)?;
        self.tenant(t).push_audit(&mut txn, "audit", audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(true),
            Err(TxnError::Cancelled(c)) if c.failed("tenant") => Ok(false),
            Err(e) => Err(e.or_else(|c| {
                Error::internal(format!("customer creation refused: {}", c.describe()))
            })),
        }
    }

    /// A customer organization (`None` for an unknown id or a vendor's).
    pub async fn get_customer(&self, t: &TenantId) -> Result<Option<CustomerOrg>, Error> {
        self.get_item(&keys::tenant(t))
            .await?
            .filter(is_customer)
            .map(from_item)
            .transpose()
    }
}

/// What an organization's credential resolved to.
pub struct ResolvedCustomerKey {
    pub key: Option<CustomerKeyRecord>,
    pub org: Option<CustomerOrg>,
}

impl TenantStore {
    /// One BatchGetItem: an app key of this organization and the
    /// organization. A vendor tenant's id gives neither.
    pub async fn resolve_customer_key(&self, id: &ApiKeyId) -> Result<ResolvedCustomerKey, Error> {
        let t = self.tenant_id();
        let found = self
            .batch_get(&[keys::api_key(t, id), keys::tenant(t)])
            .await?;
        let (mut key, mut org, mut vendor) = (None, None, false);
        for item in found {
            match get_s(&item, keys::SK) {
                Some(keys::TENANT_SK) if is_customer(&item) => org = Some(from_item(item)?),
                Some(keys::TENANT_SK) => vendor = true,
                _ => key = Some(item),
            }
        }
        if vendor {
            return Ok(ResolvedCustomerKey {
                key: None,
                org: None,
            });
        }
        Ok(ResolvedCustomerKey {
            key: key.map(from_item).transpose()?,
            org,
        })
    }

    /// One BatchGetItem: a signed-in person's member item and the
    /// organization (the role is read on every request, so a change of role
    /// or a removal takes effect at once).
    pub async fn resolve_member(
        &self,
        email: &Email,
    ) -> Result<(Option<Member>, Option<CustomerOrg>), Error> {
        let t = self.tenant_id();
        let found = self
            .batch_get(&[keys::member(t, email), keys::tenant(t)])
            .await?;
        let (mut member, mut org) = (None, None);
        for item in found {
            match get_s(&item, keys::SK) {
                Some(keys::TENANT_SK) if is_customer(&item) => org = Some(from_item(item)?),
                Some(keys::TENANT_SK) => return Ok((None, None)),
                _ => member = Some(from_item(item)?),
            }
        }
        Ok((member, org))
    }

    /// A session of this tenant (for the `/v1/customer` API).
    pub async fn get_org_session(&self, digest: &str) -> Result<Option<Session>, Error> {
        self.get_session(digest).await
    }

    pub async fn create_customer_key(
        &self,
        rec: &CustomerKeyRecord,
        audit: &AuditEvent,
    ) -> Result<(), Error> {
        let mut txn = Txn::new();
        txn.put(
            "key",
            &keys::api_key(self.tenant_id(), &rec.id),
            rec,
            PutIf::New,
        )?;
        self.push_audit(&mut txn, "audit", audit)?;
        txn.run(self.db(), self.table()).await.map_err(|e| {
            e.or_else(|c| Error::internal(format!("api key id collision: {}", c.describe())))
        })
    }

    pub async fn list_customer_keys(&self) -> Result<Vec<CustomerKeyRecord>, Error> {
        let items = self
            .query_all(keys::api_keys_pk(self.tenant_id()), None)
            .await?;
        items.into_iter().map(from_item).collect()
    }

    pub async fn get_customer_key(
        &self,
        id: &ApiKeyId,
    ) -> Result<Option<CustomerKeyRecord>, Error> {
        self.get_as(&keys::api_key(self.tenant_id(), id)).await
    }

    /// Revoke an app key (conditional on it existing; again is a no-op).
    /// `Ok(None)`: no such key.
    pub async fn revoke_customer_key(
        &self,
        id: &ApiKeyId,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<Option<CustomerKeyRecord>, Error> {
        let mut w = Write::to(keys::api_key(self.tenant_id(), id));
        w.set(a::REVOKED_AT, &rfc3339(now))
            .if_exists()
            .if_absent(a::REVOKED_AT);
        let mut txn = Txn::new();
        txn.update("key", &w)?;
        self.push_audit(&mut txn, "audit", audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => self.get_customer_key(id).await,
            Err(TxnError::Cancelled(c)) => c.old_as::<CustomerKeyRecord>("key"),
            Err(TxnError::Other(e)) => Err(e),
        }
    }

    /// Record when an app key was last used.
    pub async fn touch_customer_key(
        &self,
        id: &ApiKeyId,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        self.touch_key(id, now).await
    }

    // ------------------------------------------------ members

    pub async fn get_member(&self, email: &Email) -> Result<Option<Member>, Error> {
        self.get_as(&keys::member(self.tenant_id(), email)).await
    }

    /// Every member (the admin counter item left out).
    pub async fn list_members(&self) -> Result<Vec<Member>, Error> {
        let items = self
            .query_all(keys::members_pk(self.tenant_id()), None)
            .await?;
        items
            .into_iter()
            .filter(|i| get_s(i, keys::SK) != Some(keys::admin_count(self.tenant_id()).sk.as_str()))
            .map(from_item)
            .collect()
    }

    /// Add a member with its audit event (and count an admin).
    /// `Ok(false)`: already a member.
    pub async fn add_member(&self, m: &Member, audit: &AuditEvent) -> Result<bool, Error> {
        let t = self.tenant_id();
        let mut txn = Txn::new();
        txn.put("member", &keys::member(t, &m.email), m, PutIf::New)?;
        if m.role == MemberRole::Admin {
            let mut c = Write::to(keys::admin_count(t));
            c.add(ADMINS, 1);
            txn.update("admins", &c)?;
        }
        self.push_audit(&mut txn, "audit", audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(true),
            Err(TxnError::Cancelled(c)) if c.failed("member") => Ok(false),
            Err(e) => {
                Err(e.or_else(|c| Error::internal(format!("member add refused: {}", c.describe()))))
            }
        }
    }

    /// Change a member's role from `from` to `to`, keeping at least one
    /// admin: demoting an admin holds only while another admin remains.
    pub async fn change_member_role(
        &self,
        email: &Email,
        from: MemberRole,
        to: MemberRole,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<MemberChange, Error> {
        let t = self.tenant_id();
        let mut w = Write::to(keys::member(t, email));
        w.set(a::ROLE, &to)
            .set(a::UPDATED_AT, &rfc3339(now))
            .if_exists()
            .if_eq(a::ROLE, &from);
        let mut txn = Txn::new();
        txn.update("member", &w)?;
        self.count_admins(&mut txn, from, Some(to))?;
        self.push_audit(&mut txn, "audit", audit)?;
        self.member_change(txn).await
    }

    /// Remove a member whose role is `role`, keeping at least one admin.
    pub async fn remove_member(
        &self,
        email: &Email,
        role: MemberRole,
        audit: &AuditEvent,
    ) -> Result<MemberChange, Error> {
        let t = self.tenant_id();
        let mut w = Write::to(keys::member(t, email));
        w.if_exists().if_eq(a::ROLE, &role);
        let mut txn = Txn::new();
        txn.delete("member", &w)?;
        self.count_admins(&mut txn, role, None)?;
        self.push_audit(&mut txn, "audit", audit)?;
        self.member_change(txn).await
    }

    /// The admin counter's part of a role change (`to: None`: removal).
    fn count_admins(
        &self,
        txn: &mut Txn,
        from: MemberRole,
        to: Option<MemberRole>,
    ) -> Result<(), Error> {
        let t = self.tenant_id();
        let was = from == MemberRole::Admin;
        let is = to == Some(MemberRole::Admin);
        if was && !is {
            let mut c = Write::to(keys::admin_count(t));
            c.add(ADMINS, -1).if_greater(ADMINS, 1);
            txn.update("admins", &c)?;
        } else if is && !was {
            let mut c = Write::to(keys::admin_count(t));
            c.add(ADMINS, 1);
            txn.update("admins", &c)?;
        }
        Ok(())
    }

    async fn member_change(&self, txn: Txn) -> Result<MemberChange, Error> {
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(MemberChange::Done),
            Err(TxnError::Cancelled(c)) if c.failed("member") => Ok(MemberChange::Moved),
            Err(TxnError::Cancelled(c)) if c.failed("admins") => Ok(MemberChange::LastAdmin),
            Err(e) => {
                Err(e.or_else(|c| {
                    Error::internal(format!("member change refused: {}", c.describe()))
                }))
            }
        }
    }
}

/// What a conditional member change found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Done,
    /// The member is gone or its role changed meanwhile.
    Moved,
    /// It would leave the organization without an admin.
    LastAdmin,
}

/// The claim of a domain by the organization that proved it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DomainClaim {
    pub domain: crate::ids::Domain,
    pub customer_id: TenantId,
    #[serde(with = "crate::clock::ts")]
    pub claimed_at: OffsetDateTime,
}

/// What verifying an organization found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyOutcome {
    Verified,
    /// It was verified before (nothing changed).
    AlreadyVerified,
    /// Another organization verified this domain first.
    DomainTaken,
    /// No such organization, or it is suspended.
    NotPending,
}

impl Store {
    /// Activate a pending organization whose domain was proven, in one
    /// transaction: its status, the domain's claim (conditional: one
    /// verified organization per domain), its entry in the directory of
    /// verified organizations, and its audit event.
    pub async fn verify_customer(
        &self,
        org: &CustomerOrg,
        entry: &crate::domain::DirectoryEntry,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<VerifyOutcome, Error> {
        use crate::domain::CustomerStatus;
        let t = &org.tenant_id;
        let mut w = Write::to(keys::tenant(t));
        w.set(a::STATUS, &CustomerStatus::Active)
            .set(a::UPDATED_AT, &rfc3339(now))
            .set(a::VERIFIED_AT, &rfc3339(now))
            .if_exists()
            .if_eq(a::STATUS, &CustomerStatus::PendingVerification);
        let claim = DomainClaim {
            domain: org.domain.clone(),
            customer_id: t.clone(),
            claimed_at: now,
        };
        let mut txn = Txn::new();
        txn.update("tenant", &w)?;
        txn.put(
            "claim",
            &keys::domain_claim(&org.domain),
            &claim,
            PutIf::New,
        )?;
        txn.put("entry", &keys::directory_entry(t), entry, PutIf::Always)?;
        self.tenant(t).push_audit(&mut txn, "audit", audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(VerifyOutcome::Verified),
            Err(TxnError::Cancelled(c)) => {
                let current = self.get_customer(t).await?;
                let status = current.map(|o| o.status);
                if status == Some(CustomerStatus::Active) {
                    return Ok(VerifyOutcome::AlreadyVerified);
                }
                if status != Some(CustomerStatus::PendingVerification) {
                    return Ok(VerifyOutcome::NotPending);
                }
                if c.failed("claim") {
                    return Ok(VerifyOutcome::DomainTaken);
                }
                Err(Error::internal(format!(
                    "customer verification refused: {}",
                    c.describe()
                )))
            }
            Err(e) => Err(e.or_else(|c| Error::internal(c.describe()))),
        }
    }
}
