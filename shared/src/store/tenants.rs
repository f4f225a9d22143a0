//! Tenants and API keys.

use super::{
    from_item, keys, put_any, put_item, put_new, sdk_error, transact, Expr, Item, Store,
    TenantStore, TxnError,
};
use crate::domain::{ApiKeyRecord, AuditEvent, Tenant, TenantStatus};
use crate::error::Error;
use crate::ids::{ApiKeyId, TenantId};
use aws_sdk_dynamodb::types::{KeysAndAttributes, TransactWriteItem};
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
    pub async fn get_tenant(&self, t: &TenantId) -> Result<Option<Tenant>, Error> {
        let key = keys::tenant(t);
        let out = self
            .client
            .get_item()
            .table_name(self.table())
            .set_key(Some(super::key_item(&key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    /// Create a tenant with its keys and audit events in one transaction.
    /// The tenant item is conditional on the id being free.
    pub async fn create_tenant(
        &self,
        tenant: &Tenant,
        keys_: &[ApiKeyRecord],
        audit: &[AuditEvent],
    ) -> Result<CreateTenant, Error> {
        let t = &tenant.tenant_id;
        let mut items = vec![TransactWriteItem::builder()
            .put(super::put_returning_old(
                self.table(),
                &keys::tenant(t),
                tenant,
                "attribute_not_exists(PK)",
            )?)
            .build()];
        for k in keys_ {
            items.push(put_new(self.table(), &keys::api_key(t, &k.id), k)?);
        }
        for a in audit {
            items.push(put_new(self.table(), &keys::audit(t, &a.id), a)?);
        }
        match transact(&self.client, items, None).await {
            Ok(()) => Ok(CreateTenant::Created),
            Err(TxnError::Cancelled(reasons)) => {
                let existing = reasons
                    .first()
                    .filter(|r| r.failed())
                    .and_then(|r| r.item.clone());
                match existing {
                    Some(item) => {
                        let existing: Tenant = from_item(item)?;
                        if existing.request_hash == tenant.request_hash {
                            Ok(CreateTenant::AlreadyExists(Box::new(existing)))
                        } else {
                            Ok(CreateTenant::Conflict)
                        }
                    }
                    None => Err(Error::internal(format!(
                        "tenant creation cancelled: {reasons:?}"
                    ))),
                }
            }
            Err(TxnError::Other(e)) => Err(e),
        }
    }

    /// Set a tenant's status (operator lifecycle), with its audit event.
    /// `from` lists the statuses it may move from.
    pub async fn set_tenant_status(
        &self,
        t: &TenantId,
        from: &[TenantStatus],
        to: TenantStatus,
        now: OffsetDateTime,
        audit: Option<&AuditEvent>,
    ) -> Result<bool, Error> {
        let mut e = Expr::new();
        let status = e.name("status");
        let allowed: Vec<String> = from.iter().map(|s| e.val(super::s(s.as_str()))).collect();
        let cond = format!(
            "attribute_exists(PK) AND {status} IN ({})",
            allowed.join(", ")
        );
        let update = format!(
            "SET {status} = {}, {} = {}",
            e.val(super::s(to.as_str())),
            e.name("updated_at"),
            e.val(super::s(crate::clock::rfc3339(now)))
        );
        let mut items = vec![super::update_item(
            self.table(),
            &keys::tenant(t),
            update,
            Some(cond),
            &e,
        )?];
        if let Some(a) = audit {
            items.push(put_new(self.table(), &keys::audit(t, &a.id), a)?);
        }
        match transact(&self.client, items, None).await {
            Ok(()) => Ok(true),
            Err(TxnError::Cancelled(_)) => Ok(false),
            Err(TxnError::Other(e)) => Err(e),
        }
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
            match super::get_s(&item, keys::SK) {
                Some("TENANT") => tenant = Some(from_item(item)?),
                _ => key = Some(from_item(item)?),
            }
        }
        Ok((key, tenant))
    }

    /// Strongly consistent BatchGetItem of a few keys of this tenant
    /// (one round trip unless DynamoDB hands back unprocessed keys).
    pub(crate) async fn batch_get(&self, wanted: &[keys::Key]) -> Result<Vec<Item>, Error> {
        let mut req = KeysAndAttributes::builder().consistent_read(true);
        for k in wanted {
            debug_assert!(k.pk.starts_with(&format!("T#{}", self.tenant_id())));
            req = req.keys(super::key_item(k));
        }
        let req = req.build().map_err(Error::internal)?;
        let mut pending = Some(std::collections::HashMap::from([(
            self.table().to_string(),
            req,
        )]));
        let mut found: Vec<Item> = Vec::new();
        for attempt in 0..5 {
            let Some(request) = pending.take() else { break };
            let out = self
                .db()
                .batch_get_item()
                .set_request_items(Some(request))
                .send()
                .await
                .map_err(|e| sdk_error("BatchGetItem", e))?;
            if let Some(mut r) = out.responses {
                found.extend(r.remove(self.table()).unwrap_or_default());
            }
            pending = out.unprocessed_keys.filter(|u| !u.is_empty());
            if pending.is_some() {
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
        }
        if pending.is_some() {
            return Err(Error::Unavailable(
                "BatchGetItem left keys unprocessed".into(),
            ));
        }
        Ok(found)
    }

    /// Record when a key was last used (called at most once per key per cache window).
    pub async fn touch_key(&self, id: &ApiKeyId, now: OffsetDateTime) -> Result<(), Error> {
        let mut e = Expr::new();
        let update = format!(
            "SET {} = {}",
            e.name("last_used_at"),
            e.val(super::s(crate::clock::rfc3339(now)))
        );
        self.store()
            .update_one(
                &keys::api_key(self.tenant_id(), id),
                update,
                "attribute_exists(PK)",
                &e,
            )
            .await?;
        Ok(())
    }

    pub async fn create_api_key(
        &self,
        rec: &ApiKeyRecord,
        audit: &AuditEvent,
    ) -> Result<(), Error> {
        let t = self.tenant_id();
        let items = vec![
            put_new(self.table(), &keys::api_key(t, &rec.id), rec)?,
            self.audit_item(audit)?,
        ];
        transact(self.db(), items, None)
            .await
            .map_err(|e| e.or_else(|r| Error::internal(format!("api key id collision: {r:?}"))))
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
        let t = self.tenant_id();
        let mut e = Expr::new();
        let revoked = e.name("revoked_at");
        let update = format!(
            "SET {revoked} = {}",
            e.val(super::s(crate::clock::rfc3339(now)))
        );
        let cond = format!("attribute_exists(PK) AND attribute_not_exists({revoked})");
        let items = vec![
            super::update_item(self.table(), &keys::api_key(t, id), update, Some(cond), &e)?,
            self.audit_item(audit)?,
        ];
        match transact(self.db(), items, None).await {
            Ok(()) => self
                .get_api_key(id)
                .await?
                .ok_or_else(|| Error::internal("revoked key vanished")),
            Err(TxnError::Cancelled(r)) => match r.into_iter().next().and_then(|r| r.item) {
                Some(item) => from_item(item),
                None => Err(Error::not_found(
                    "API_KEY_NOT_FOUND",
                    "no API key with that id",
                )),
            },
            Err(TxnError::Other(e)) => Err(e),
        }
    }

    pub async fn get_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>, Error> {
        self.get(&keys::api_key(self.tenant_id(), id))
            .await?
            .map(from_item)
            .transpose()
    }

    // ------------------------------------------------ shared helpers

    pub(crate) fn audit_item(&self, a: &AuditEvent) -> Result<TransactWriteItem, Error> {
        debug_assert_eq!(&a.tenant_id, self.tenant_id());
        Ok(put_any(put_item(
            self.table(),
            &keys::audit(self.tenant_id(), &a.id),
            a,
            None,
        )?))
    }

    pub(crate) async fn get(&self, key: &keys::Key) -> Result<Option<Item>, Error> {
        debug_assert!(key.pk.starts_with(&format!("T#{}", self.tenant_id())));
        let out = self
            .db()
            .get_item()
            .table_name(self.table())
            .set_key(Some(super::key_item(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(out.item)
    }

    /// Every item of a partition (small partitions only).
    pub(crate) async fn query_all(
        &self,
        pk: String,
        sk_prefix: Option<&str>,
    ) -> Result<Vec<Item>, Error> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut e = Expr::new();
            let mut cond = format!("{} = {}", e.name(keys::PK), e.val(super::s(pk.clone())));
            if let Some(p) = sk_prefix {
                cond.push_str(&format!(
                    " AND begins_with({}, {})",
                    e.name(keys::SK),
                    e.val(super::s(p))
                ));
            }
            let page = self
                .db()
                .query()
                .table_name(self.table())
                .key_condition_expression(cond)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// One page of a partition, newest or oldest first.
    pub(crate) async fn query_page(
        &self,
        pk: String,
        sk_prefix: Option<&str>,
        newest_first: bool,
        limit: i32,
        start: Option<Item>,
        sk_after: Option<&str>,
    ) -> Result<(Vec<Item>, Option<Item>), Error> {
        let mut e = Expr::new();
        let mut cond = format!("{} = {}", e.name(keys::PK), e.val(super::s(pk)));
        if let Some(p) = sk_prefix {
            cond.push_str(&format!(
                " AND begins_with({}, {})",
                e.name(keys::SK),
                e.val(super::s(p))
            ));
        } else if let Some(after) = sk_after {
            cond.push_str(&format!(
                " AND {} >= {}",
                e.name(keys::SK),
                e.val(super::s(after))
            ));
        }
        let page = self
            .db()
            .query()
            .table_name(self.table())
            .key_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .set_exclusive_start_key(start)
            .scan_index_forward(!newest_first)
            .limit(limit)
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        let lek = page.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((page.items.unwrap_or_default(), lek))
    }
}

// ---------------------------------------------------------------- provisioning

impl Store {
    /// Record one provisioning stage on the tenant (and optionally its status).
    pub async fn set_stage(
        &self,
        t: &TenantId,
        stage: &str,
        state: &crate::domain::StageState,
        status: Option<TenantStatus>,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let mut e = Expr::new();
        let mut sets = vec![
            format!(
                "{}.{} = {}",
                e.name("stages"),
                e.name(stage),
                e.val(super::av(state)?)
            ),
            format!(
                "{} = {}",
                e.name("updated_at"),
                e.val(super::s(crate::clock::rfc3339(now)))
            ),
        ];
        // A closed or suspended tenant keeps its status.
        let mut cond = "attribute_exists(PK)".to_string();
        if let Some(st) = status {
            let s_name = e.name("status");
            sets.push(format!("{s_name} = {}", e.val(super::s(st.as_str()))));
            cond = format!(
                "attribute_exists(PK) AND {s_name} IN ({}, {}, {})",
                e.val(super::s("provisioning")),
                e.val(super::s("failed")),
                e.val(super::s(st.as_str()))
            );
        }
        if self
            .update_one(
                &keys::tenant(t),
                format!("SET {}", sets.join(", ")),
                &cond,
                &e,
            )
            .await?
        {
            Ok(())
        } else {
            Err(Error::conflict(
                "TENANT_NOT_PROVISIONING",
                "the tenant is no longer being provisioned",
            ))
        }
    }
}

impl TenantStore {
    /// Write a record unless it exists (idempotent seeding). `Ok(false)`: it existed.
    pub async fn put_once<T: serde::Serialize>(
        &self,
        key: &keys::Key,
        value: &T,
    ) -> Result<bool, Error> {
        let res = self
            .db()
            .put_item()
            .table_name(self.table())
            .set_item(Some(super::to_item(key, value)?))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(sdk_error("PutItem", err)),
        }
    }

    /// Mark the tenant's first admin key activated (once).
    pub async fn activate_key(&self, id: &ApiKeyId, now: OffsetDateTime) -> Result<(), Error> {
        let mut e = Expr::new();
        let a = e.name("activated_at");
        let update = format!(
            "SET {a} = if_not_exists({a}, {})",
            e.val(super::s(crate::clock::rfc3339(now)))
        );
        if !self
            .store()
            .update_one(
                &keys::api_key(self.tenant_id(), id),
                update,
                "attribute_exists(PK)",
                &e,
            )
            .await?
        {
            return Err(Error::internal(format!("the admin key {id} is missing")));
        }
        Ok(())
    }

    /// Which of these keys exist (one BatchGetItem).
    pub async fn existing(&self, wanted: &[keys::Key]) -> Result<Vec<keys::Key>, Error> {
        let items = self.batch_get(wanted).await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                Some(keys::Key {
                    pk: super::get_s(i, keys::PK)?.to_string(),
                    sk: super::get_s(i, keys::SK)?.to_string(),
                })
            })
            .collect())
    }
}

/// SET one attribute on the tenant item.
pub async fn set_tenant_field(
    store: &Store,
    t: &TenantId,
    attr: &str,
    v: &serde_json::Value,
) -> Result<(), Error> {
    let mut e = Expr::new();
    let update = format!("SET {} = {}", e.name(attr), e.val(super::av(v)?));
    tenant_must_exist(
        t,
        store
            .update_one(&keys::tenant(t), update, "attribute_exists(PK)", &e)
            .await?,
    )
}

/// REMOVE one attribute from the tenant item.
pub async fn remove_tenant_field(store: &Store, t: &TenantId, attr: &str) -> Result<(), Error> {
    let mut e = Expr::new();
    let update = format!("REMOVE {}", e.name(attr));
    tenant_must_exist(
        t,
        store
            .update_one(&keys::tenant(t), update, "attribute_exists(PK)", &e)
            .await?,
    )
}

fn tenant_must_exist(t: &TenantId, updated: bool) -> Result<(), Error> {
    if updated {
        Ok(())
    } else {
        Err(Error::not_found(
            "TENANT_NOT_FOUND",
            format!("no tenant '{t}'"),
        ))
    }
}
