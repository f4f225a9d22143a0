//! Tenants, their provisioning records and their API keys.

use super::attrs as a;
use super::write::{from_item, get_s, PutIf, Txn, TxnError, Write};
use super::{keys, Store, TenantStore};
use crate::clock::rfc3339;
use crate::domain::{
    ApiKeyRecord, AuditEvent, SeedRecord, SettingsPatch, StageState, Tenant, TenantSettings,
    TenantStatus,
};
use crate::error::Error;
use crate::ids::{ApiKeyId, TenantId};
use time::OffsetDateTime;

/// What creating a tenant found.
#[derive(Debug)]
pub enum CreateTenant {
    Created,
    /// The same request had already created it.
    AlreadyExists(Box<Tenant>),
    /// Another request had taken the id.
    Conflict,
}

impl Store {
    /// A vendor tenant. A customer organization's tenant item (kind
    /// `customer`) is not one: every vendor code path reads tenants here and
    /// so treats a customer's id as unknown.
    pub async fn get_tenant(&self, t: &TenantId) -> Result<Option<Tenant>, Error> {
        self.get_item(&keys::tenant(t))
            .await?
            .filter(|item| !is_customer(item))
            .map(from_item)
            .transpose()
    }

    /// Create a tenant with its keys in one transaction. The tenant item is
    /// conditional on the id being free.
    pub async fn create_tenant(
        &self,
        tenant: &Tenant,
        api_keys: &[ApiKeyRecord],
    ) -> Result<CreateTenant, Error> {
        let t = &tenant.tenant_id;
        let mut txn = Txn::new();
        txn.put("tenant", &keys::tenant(t), tenant, PutIf::New)?;
        for (i, k) in api_keys.iter().enumerate() {
            const NAMES: [&str; 2] = ["api key 1", "api key 2"];
            let name = NAMES
                .get(i)
                .ok_or_else(|| Error::internal("at most 2 keys at creation"))?;
            txn.put(*name, &keys::api_key(t, &k.id), k, PutIf::New)?;
        }
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(CreateTenant::Created),
            // The id is a customer organization's: taken.
            Err(TxnError::Cancelled(c)) if c.old("tenant").is_some_and(is_customer) => {
                Ok(CreateTenant::Conflict)
            }
            Err(TxnError::Cancelled(c)) => match c.old_as::<Tenant>("tenant")? {
                Some(existing) if existing.request_hash == tenant.request_hash => {
                    Ok(CreateTenant::AlreadyExists(Box::new(existing)))
                }
                Some(_) => Ok(CreateTenant::Conflict),
                None => Err(Error::internal(format!(
                    "tenant creation refused: {}",
                    c.describe()
                ))),
            },
            Err(TxnError::Other(e)) => Err(e),
        }
    }

    /// Set a tenant's status (operator lifecycle), with its audit event.
    /// `from` lists the statuses it may move from. `Ok(false)`: it was not
    /// in one of them (or does not exist).
    pub async fn set_tenant_status(
        &self,
        t: &TenantId,
        from: &[TenantStatus],
        to: TenantStatus,
        now: OffsetDateTime,
        audit: Option<&AuditEvent>,
    ) -> Result<bool, Error> {
        let mut w = Write::to(keys::tenant(t));
        w.set(a::STATUS, &to)
            .set(a::UPDATED_AT, &rfc3339(now))
            .if_exists()
            .if_in(a::STATUS, from);
        self.update_tenant(t, &w, audit).await
    }

    /// `w` on the tenant item, with its audit event, in one transaction.
    /// `Ok(false)`: a condition of `w` did not hold.
    async fn update_tenant(
        &self,
        t: &TenantId,
        w: &Write,
        audit: Option<&AuditEvent>,
    ) -> Result<bool, Error> {
        let mut txn = Txn::new();
        txn.update("tenant", w)?;
        if let Some(audit) = audit {
            self.tenant(t).push_audit(&mut txn, "audit", audit)?;
        }
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(true),
            Err(TxnError::Cancelled(_)) => Ok(false),
            Err(TxnError::Other(e)) => Err(e),
        }
    }

    /// Record one provisioning stage on the tenant (and optionally its
    /// status). A tenant that is no longer provisioning (closed or
    /// suspended meanwhile) keeps its status: `TENANT_NOT_PROVISIONING`.
    pub async fn set_stage(
        &self,
        t: &TenantId,
        stage: &str,
        state: &StageState,
        status: Option<TenantStatus>,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let mut w = Write::to(keys::tenant(t));
        w.set_entry(a::STAGES, stage, state)
            .set(a::UPDATED_AT, &rfc3339(now))
            .if_exists();
        if let Some(st) = status {
            w.set(a::STATUS, &st).if_in(
                a::STATUS,
                &[TenantStatus::Provisioning, TenantStatus::Failed, st],
            );
        }
        if w.run(self.db(), self.table()).await? {
            Ok(())
        } else {
            Err(Error::TenantNotProvisioning)
        }
    }

    /// The tenant's settings (provisioning).
    pub async fn set_tenant_settings(
        &self,
        t: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), Error> {
        let mut w = Write::to(keys::tenant(t));
        w.set(a::SETTINGS, settings).if_exists();
        tenant_must_exist(t, w.run(self.db(), self.table()).await?)
    }

    /// Change some of a tenant's settings, field by field (concurrent
    /// changes of different fields both land). `Ok(false)`: no such tenant.
    pub async fn patch_tenant_settings(
        &self,
        t: &TenantId,
        patch: &SettingsPatch,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<bool, Error> {
        let mut w = Write::to(keys::tenant(t));
        w.set(a::UPDATED_AT, &rfc3339(now)).if_exists();
        for (field, v) in [
            ("rate_limit_per_minute", patch.rate_limit_per_minute),
            (
                "license_rate_limit_per_minute",
                patch.license_rate_limit_per_minute,
            ),
            ("default_grace_days", patch.default_grace_days),
            ("trial_days", patch.trial_days),
            ("public_trials_per_day", patch.public_trials_per_day),
        ] {
            if let Some(v) = v {
                w.set_entry(a::SETTINGS, field, &v);
            }
        }
        self.update_tenant(t, &w, Some(audit)).await
    }

    /// Move the tenant's signing key from version `from` to the next, with
    /// its audit event. `Ok(false)`: it is no longer at `from` (or there is
    /// no such tenant).
    pub async fn rotate_signing_key(
        &self,
        t: &TenantId,
        from: u32,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<bool, Error> {
        let next = crate::domain::SigningKeyVersion {
            version: from + 1,
            created_at: now,
        };
        let mut w = Write::to(keys::tenant(t));
        w.set(a::SIGNING_KEY_VERSION, &next.version)
            .append(a::SIGNING_KEYS, &[next])
            .set(a::UPDATED_AT, &rfc3339(now))
            .if_exists();
        if from == 1 {
            w.if_absent_or_eq(a::SIGNING_KEY_VERSION, &from);
        } else {
            w.if_eq(a::SIGNING_KEY_VERSION, &from);
        }
        self.update_tenant(t, &w, Some(audit)).await
    }

    /// The plan's license limit (`None`: unlimited).
    pub async fn set_license_limit(&self, t: &TenantId, limit: Option<u64>) -> Result<(), Error> {
        let mut w = Write::to(keys::tenant(t));
        match limit {
            Some(l) => w.set(a::LICENSE_LIMIT, &l),
            None => w.remove(a::LICENSE_LIMIT),
        };
        w.if_exists();
        tenant_must_exist(t, w.run(self.db(), self.table()).await?)
    }
}

/// Whether a tenant item is a customer organization's (`kind: customer`);
/// items without `kind` are vendors.
pub(crate) fn is_customer(item: &super::Item) -> bool {
    get_s(item, crate::domain::TenantKind::ATTR)
        == Some(crate::domain::TenantKind::Customer.as_str())
}

fn tenant_must_exist(t: &TenantId, updated: bool) -> Result<(), Error> {
    if updated {
        Ok(())
    } else {
        Err(Error::TenantNotFound(t.to_string()))
    }
}

impl TenantStore {
    /// One BatchGetItem: the API key record and its tenant.
    pub async fn resolve_key(
        &self,
        id: &ApiKeyId,
    ) -> Result<(Option<ApiKeyRecord>, Option<Tenant>), Error> {
        let t = self.tenant_id();
        let found = self
            .batch_get(&[keys::api_key(t, id), keys::tenant(t)])
            .await?;
        let (mut key, mut tenant) = (None, None);
        for item in found {
            match get_s(&item, keys::SK) {
                // A customer organization's key is no vendor key (and has
                // another shape): neither is read.
                Some(keys::TENANT_SK) if is_customer(&item) => return Ok((None, None)),
                Some(keys::TENANT_SK) => tenant = Some(from_item(item)?),
                _ => key = Some(item),
            }
        }
        Ok((key.map(from_item).transpose()?, tenant))
    }

    /// Record when a key was last used (at most once per key per cache window).
    pub async fn touch_key(&self, id: &ApiKeyId, now: OffsetDateTime) -> Result<(), Error> {
        let mut w = Write::to(keys::api_key(self.tenant_id(), id));
        w.set(a::LAST_USED_AT, &rfc3339(now)).if_exists();
        w.run(self.db(), self.table()).await?;
        Ok(())
    }

    pub async fn create_api_key(
        &self,
        rec: &ApiKeyRecord,
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

    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, Error> {
        let items = self
            .query_all(keys::api_keys_pk(self.tenant_id()), None)
            .await?;
        items.into_iter().map(from_item).collect()
    }

    /// Revoke a key: conditional on it existing; revoking again is a no-op.
    pub async fn revoke_api_key(
        &self,
        id: &ApiKeyId,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<ApiKeyRecord, Error> {
        let mut w = Write::to(keys::api_key(self.tenant_id(), id));
        w.set(a::REVOKED_AT, &rfc3339(now))
            .if_exists()
            .if_absent(a::REVOKED_AT);
        let mut txn = Txn::new();
        txn.update("key", &w)?;
        self.push_audit(&mut txn, "audit", audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => {
                let rec = self.get_api_key(id).await?;
                rec.ok_or_else(|| Error::internal("revoked key vanished"))
            }
            Err(TxnError::Cancelled(c)) => match c.old_as::<ApiKeyRecord>("key")? {
                Some(rec) => Ok(rec),
                None => Err(Error::ApiKeyNotFound),
            },
            Err(TxnError::Other(e)) => Err(e),
        }
    }

    pub async fn get_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>, Error> {
        self.get_as(&keys::api_key(self.tenant_id(), id)).await
    }

    // ------------------------------------------------ provisioning

    /// Write a seed record unless it exists (idempotent). `Ok(false)`: it existed.
    pub async fn seed<T: serde::Serialize>(
        &self,
        what: SeedRecord,
        value: &T,
    ) -> Result<bool, Error> {
        self.put_once(&keys::seed(self.tenant_id(), what), value)
            .await
    }

    /// Write an audit event unless one with its id exists.
    pub async fn put_audit_once(&self, audit: &AuditEvent) -> Result<bool, Error> {
        self.put_once(&keys::audit(self.tenant_id(), &audit.id), audit)
            .await
    }

    pub(crate) async fn put_once<T: serde::Serialize>(
        &self,
        key: &keys::Key,
        value: &T,
    ) -> Result<bool, Error> {
        let res = self
            .db()
            .put_item()
            .table_name(self.table())
            .set_item(Some(super::write::to_item(key, value)?))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        super::conditional("PutItem", res)
    }

    /// Mark the tenant's first admin key activated (once).
    pub async fn activate_key(&self, id: &ApiKeyId, now: OffsetDateTime) -> Result<(), Error> {
        let mut w = Write::to(keys::api_key(self.tenant_id(), id));
        w.set_if_absent(a::ACTIVATED_AT, &rfc3339(now)).if_exists();
        if !w.run(self.db(), self.table()).await? {
            return Err(Error::internal(format!("the admin key {id} is missing")));
        }
        Ok(())
    }

    /// Which of a provisioned tenant's records are missing (one
    /// BatchGetItem): the tenant, its admin key, its audit event and seeds.
    pub async fn missing_records(
        &self,
        admin_key: &ApiKeyId,
        audit_id: &str,
        seeds: &[SeedRecord],
    ) -> Result<Vec<String>, Error> {
        let t = self.tenant_id();
        let mut wanted = vec![
            keys::tenant(t),
            keys::api_key(t, admin_key),
            keys::audit(t, audit_id),
        ];
        wanted.extend(seeds.iter().map(|s| keys::seed(t, *s)));
        let found = self.batch_get(&wanted).await?;
        let present = |k: &keys::Key| {
            found.iter().any(|i| {
                get_s(i, keys::PK) == Some(k.pk.as_str())
                    && get_s(i, keys::SK) == Some(k.sk.as_str())
            })
        };
        Ok(wanted
            .iter()
            .filter(|k| !present(k))
            .map(|k| format!("{}/{}", k.pk, k.sk))
            .collect())
    }
}
