//! The DynamoDB store: one table, keys from [`keys`], items (de)serialised
//! with `serde_dynamo`. Tenant data is only reachable through [`TenantStore`],
//! which cannot be built without a [`TenantId`].

pub mod audit;
pub mod catalog;
pub mod cursor;
pub mod keys;
pub mod licenses;
pub mod stripe;
pub mod tenants;
pub mod usage;

use crate::error::Error;
use crate::ids::TenantId;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use keys::Key;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

pub type Item = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct Store {
    client: Client,
    table: Arc<str>,
}

impl Store {
    pub fn new(client: Client, table: impl Into<Arc<str>>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
    pub fn client(&self) -> &Client {
        &self.client
    }
    pub fn table(&self) -> &str {
        &self.table
    }
    /// One UpdateItem of `key` under `condition` (placeholders from `e`).
    /// `Ok(false)`: the condition did not hold.
    pub(crate) async fn update_one(
        &self,
        key: &Key,
        update: String,
        condition: &str,
        e: &Expr,
    ) -> Result<bool, Error> {
        let res = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(key_item(key)))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
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
            Err(err) => Err(sdk_error("UpdateItem", err)),
        }
    }

    /// The only way to reach tenant data.
    pub fn tenant(&self, tenant: &TenantId) -> TenantStore {
        TenantStore {
            store: self.clone(),
            tenant: tenant.clone(),
        }
    }
}

/// The store, bound to one tenant: every key it builds begins with it.
#[derive(Clone)]
pub struct TenantStore {
    store: Store,
    tenant: TenantId,
}

impl TenantStore {
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant
    }
    pub(crate) fn db(&self) -> &Client {
        &self.store.client
    }
    pub(crate) fn table(&self) -> &str {
        &self.store.table
    }
    pub fn store(&self) -> &Store {
        &self.store
    }
}

// ---------------------------------------------------------------- items

pub fn key_item(key: &Key) -> Item {
    HashMap::from([
        (keys::PK.to_string(), AttributeValue::S(key.pk.clone())),
        (keys::SK.to_string(), AttributeValue::S(key.sk.clone())),
    ])
}

/// A record as an item under `key`.
pub fn to_item<T: Serialize>(key: &Key, value: &T) -> Result<Item, Error> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(Error::internal)?;
    item.extend(key_item(key));
    Ok(item)
}

pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, Error> {
    serde_dynamo::from_item(item)
        .map_err(|e| Error::internal(format!("stored item does not deserialise: {e}")))
}

pub fn av<T: Serialize>(v: &T) -> Result<AttributeValue, Error> {
    serde_dynamo::to_attribute_value(v).map_err(Error::internal)
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Expression attribute names and values, collected as an expression is
/// written: `e.name("status")` → `#status`, `e.val(..)` → `:v3`.
#[derive(Default, Debug)]
pub struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn name(&mut self, attr: &str) -> String {
        let placeholder = format!(
            "#{}",
            attr.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        self.names.insert(placeholder.clone(), attr.to_string());
        placeholder
    }
    /// A placeholder for an arbitrary name (a map key such as a feature
    /// name): always a fresh `#k<n>`, so names that differ only in
    /// punctuation never share one.
    pub fn key(&mut self, name: &str) -> String {
        let placeholder = format!("#k{}", self.names.len());
        self.names.insert(placeholder.clone(), name.to_string());
        placeholder
    }
    pub fn val(&mut self, v: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), v);
        placeholder
    }
    pub fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }
    pub fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

// ---------------------------------------------------------------- errors

/// Any SDK failure that is not a domain outcome: throttling and transport are
/// retryable (503), anything else is a bug or misconfiguration (500).
pub fn sdk_error<E, R>(op: &str, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let code = e.code().unwrap_or("").to_string();
    let retryable = matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_))
        || matches!(
            code.as_str(),
            "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "TransactionInProgressException"
        );
    let detail = format!("{op}: {code} {}", e.message().unwrap_or(""));
    if retryable {
        Error::Unavailable(detail)
    } else {
        Error::Internal(format!("{detail} ({e:?})"))
    }
}

/// Why one item of a cancelled transaction failed.
#[derive(Debug, Clone)]
pub struct Reason {
    pub code: String,
    /// The item as it was (ReturnValuesOnConditionCheckFailure = ALL_OLD).
    pub item: Option<Item>,
}

impl Reason {
    pub fn failed(&self) -> bool {
        self.code == "ConditionalCheckFailed"
    }
}

#[derive(Debug)]
pub enum TxnError {
    /// A condition failed; one reason per transaction item, in order.
    Cancelled(Vec<Reason>),
    Other(Error),
}

impl From<Error> for TxnError {
    fn from(e: Error) -> Self {
        TxnError::Other(e)
    }
}

impl TxnError {
    /// Turn "cancelled" into a domain error with `f`; pass others through.
    pub fn or_else(self, f: impl FnOnce(Vec<Reason>) -> Error) -> Error {
        match self {
            TxnError::Cancelled(r) => f(r),
            TxnError::Other(e) => e,
        }
    }
}

/// Run a transaction. A `TransactionConflict` (another transaction on the same
/// item at the same moment) is retried with jittered backoff; condition
/// failures come back as [`TxnError::Cancelled`].
pub async fn transact(
    client: &Client,
    items: Vec<TransactWriteItem>,
    token: Option<String>,
) -> Result<(), TxnError> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let res = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .set_client_request_token(token.clone())
            .send()
            .await;
        let err = match res {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let service = match &err {
            SdkError::ServiceError(se) => Some(se.err()),
            _ => None,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(tc)) = service {
            let reasons: Vec<Reason> = tc
                .cancellation_reasons()
                .iter()
                .map(|r| Reason {
                    code: r.code().unwrap_or("None").to_string(),
                    item: r.item().cloned(),
                })
                .collect();
            let conflict = reasons.iter().any(|r| r.code == "TransactionConflict");
            let condition = reasons.iter().any(|r| r.failed());
            if conflict && !condition && attempt < 6 {
                backoff(attempt).await;
                continue;
            }
            if condition {
                return Err(TxnError::Cancelled(reasons));
            }
            return Err(TxnError::Other(Error::Unavailable(format!(
                "transaction cancelled: {reasons:?}"
            ))));
        }
        let e = sdk_error("TransactWriteItems", err);
        if matches!(e, Error::Unavailable(_)) && attempt < 4 {
            backoff(attempt).await;
            continue;
        }
        return Err(TxnError::Other(e));
    }
}

async fn backoff(attempt: u32) {
    use rand::Rng;
    let base = 10u64 << attempt.min(6);
    let jitter = rand::rng().random_range(0..base);
    tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
}

/// A Put of `value` at `key`, optionally conditional.
pub fn put_item<T: Serialize>(
    table: &str,
    key: &Key,
    value: &T,
    condition: Option<&str>,
) -> Result<Put, Error> {
    put_builder(table, key, value, condition)?
        .build()
        .map_err(Error::internal)
}

/// A conditional Put that hands back the item it found when the condition fails.
pub fn put_returning_old<T: Serialize>(
    table: &str,
    key: &Key,
    value: &T,
    condition: &str,
) -> Result<Put, Error> {
    put_builder(table, key, value, Some(condition))?
        .return_values_on_condition_check_failure(
            aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
        )
        .build()
        .map_err(Error::internal)
}

fn put_builder<T: Serialize>(
    table: &str,
    key: &Key,
    value: &T,
    condition: Option<&str>,
) -> Result<aws_sdk_dynamodb::types::builders::PutBuilder, Error> {
    Ok(Put::builder()
        .table_name(table)
        .set_item(Some(to_item(key, value)?))
        .set_condition_expression(condition.map(str::to_string)))
}

/// A transaction item that updates `key` with `update` when `condition`
/// holds, both written with `e`'s placeholders. When the condition fails the
/// item as it was comes back with the cancellation reason (`ALL_OLD`).
pub fn update_item(
    table: &str,
    key: &Key,
    update: String,
    condition: Option<String>,
    e: &Expr,
) -> Result<TransactWriteItem, Error> {
    let u = aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .set_key(Some(key_item(key)))
        .update_expression(update)
        .set_condition_expression(condition)
        .set_expression_attribute_names(e.names())
        .set_expression_attribute_values(e.values())
        .return_values_on_condition_check_failure(
            aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
        )
        .build()
        .map_err(Error::internal)?;
    Ok(TransactWriteItem::builder().update(u).build())
}

pub fn put_new<T: Serialize>(
    table: &str,
    key: &Key,
    value: &T,
) -> Result<TransactWriteItem, Error> {
    let p = put_item(table, key, value, Some("attribute_not_exists(PK)"))?;
    Ok(TransactWriteItem::builder().put(p).build())
}

pub fn put_any(put: Put) -> TransactWriteItem {
    TransactWriteItem::builder().put(put).build()
}

pub fn get_s<'a>(item: &'a Item, attr: &str) -> Option<&'a str> {
    item.get(attr)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn get_n(item: &Item, attr: &str) -> Option<i64> {
    item.get(attr)
        .and_then(|v| v.as_n().ok())
        .and_then(|s| s.parse().ok())
}
