//! Products and policies.

use super::{av, cursor, from_item, keys, put_new, transact, Expr, Item, TenantStore, TxnError};
use crate::crypto::Signer;
use crate::domain::{AuditEvent, Policy, Product};
use crate::error::Error;
use crate::ids::{PolicyId, ProductCode};
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};
use serde::de::DeserializeOwned;

/// One page of a listing.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Fields to SET on an existing record, as (attribute, value) pairs.
pub type Changes = Vec<(&'static str, aws_sdk_dynamodb::types::AttributeValue)>;

impl TenantStore {
    pub async fn create_product(&self, p: &Product, audit: &AuditEvent) -> Result<(), Error> {
        let items = vec![
            put_new(self.table(), &keys::product(self.tenant_id(), &p.code), p)?,
            self.audit_item(audit)?,
        ];
        transact(self.db(), items, None).await.map_err(|e| {
            e.or_else(|_| {
                Error::conflict(
                    "PRODUCT_EXISTS",
                    format!("a product with code '{}' exists", p.code),
                )
            })
        })
    }

    pub async fn get_product(&self, code: &ProductCode) -> Result<Option<Product>, Error> {
        self.get(&keys::product(self.tenant_id(), code))
            .await?
            .map(from_item)
            .transpose()
    }

    pub async fn list_products(
        &self,
        signer: &Signer,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Product>, Error> {
        self.page(
            signer,
            "products",
            keys::products_pk(self.tenant_id()),
            limit,
            cursor,
        )
        .await
    }

    pub async fn create_policy(&self, p: &Policy, audit: &AuditEvent) -> Result<(), Error> {
        let t = self.tenant_id();
        let product = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(super::key_item(&keys::product(t, &p.product))))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(Error::internal)?;
        let items = vec![
            TransactWriteItem::builder()
                .condition_check(product)
                .build(),
            put_new(self.table(), &keys::policy(t, &p.id), p)?,
            self.audit_item(audit)?,
        ];
        transact(self.db(), items, None).await.map_err(|e| {
            e.or_else(|r| {
                if r.first().is_some_and(|r| r.failed()) {
                    Error::invalid(
                        "PRODUCT_NOT_FOUND",
                        format!("no product with code '{}'", p.product),
                    )
                } else {
                    Error::internal(format!("policy id collision: {r:?}"))
                }
            })
        })
    }

    pub async fn get_policy(&self, id: &PolicyId) -> Result<Option<Policy>, Error> {
        self.get(&keys::policy(self.tenant_id(), id))
            .await?
            .map(from_item)
            .transpose()
    }

    pub async fn list_policies(
        &self,
        signer: &Signer,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Policy>, Error> {
        self.page(
            signer,
            "policies",
            keys::policies_pk(self.tenant_id()),
            limit,
            cursor,
        )
        .await
    }

    /// SET the given attributes on an existing record, with its audit event, in
    /// one transaction. `Ok(false)`: no such record.
    pub(crate) async fn update_existing(
        &self,
        key: &keys::Key,
        changes: Changes,
        audit: &AuditEvent,
    ) -> Result<bool, Error> {
        let mut e = Expr::new();
        let sets: Vec<String> = changes
            .into_iter()
            .map(|(attr, v)| format!("{} = {}", e.name(attr), e.val(v)))
            .collect();
        let update = super::update_item(
            self.table(),
            key,
            format!("SET {}", sets.join(", ")),
            Some("attribute_exists(PK)".to_string()),
            &e,
        )?;
        let items = vec![update, self.audit_item(audit)?];
        match transact(self.db(), items, None).await {
            Ok(()) => Ok(true),
            Err(TxnError::Cancelled(_)) => Ok(false),
            Err(TxnError::Other(e)) => Err(e),
        }
    }

    pub async fn update_product(
        &self,
        code: &ProductCode,
        changes: Changes,
        audit: &AuditEvent,
    ) -> Result<Option<Product>, Error> {
        if !self
            .update_existing(&keys::product(self.tenant_id(), code), changes, audit)
            .await?
        {
            return Ok(None);
        }
        self.get_product(code).await
    }

    pub async fn update_policy(
        &self,
        id: &PolicyId,
        changes: Changes,
        audit: &AuditEvent,
    ) -> Result<Option<Policy>, Error> {
        if !self
            .update_existing(&keys::policy(self.tenant_id(), id), changes, audit)
            .await?
        {
            return Ok(None);
        }
        self.get_policy(id).await
    }

    /// A cursor page of one partition, oldest first.
    pub(crate) async fn page<T: DeserializeOwned>(
        &self,
        signer: &Signer,
        listing: &str,
        pk: String,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<T>, Error> {
        let start: Option<Item> = cursor
            .map(|c| cursor::decode(signer, self.tenant_id(), listing, c))
            .transpose()?;
        let (items, lek) = self.query_page(pk, None, false, limit, start, None).await?;
        Ok(Page {
            items: items.into_iter().map(from_item).collect::<Result<_, _>>()?,
            next_cursor: lek.and_then(|k| cursor::encode(signer, self.tenant_id(), listing, &k)),
        })
    }
}

/// Serialise one changed field.
pub fn change<T: serde::Serialize>(
    attr: &'static str,
    v: &T,
) -> Result<(&'static str, aws_sdk_dynamodb::types::AttributeValue), Error> {
    Ok((attr, av(v)?))
}
