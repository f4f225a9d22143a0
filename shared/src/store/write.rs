//! Writing items: one builder for update and condition expressions, and
//! transactions whose items are named where they are pushed and whose
//! failures are read by name.
//!
//! Attribute names come from [`super::attrs`]; values are serialised with
//! `serde_dynamo`. Nothing outside `store/` sees an expression.

use super::attrs as a;
use super::keys::{self, Key};
use super::{sdk_error, Item};
use crate::error::Error;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashMap;

const ALL_OLD: ReturnValuesOnConditionCheckFailure = ReturnValuesOnConditionCheckFailure::AllOld;

/// A value as DynamoDB stores it.
pub(crate) fn av<T: Serialize + ?Sized>(v: &T) -> Result<AttributeValue, Error> {
    serde_dynamo::to_attribute_value(v).map_err(Error::internal)
}

/// Expression attribute names and values, collected as an expression is
/// written: `e.name("status")` → `#status`, `e.val(..)` → `:v3`.
#[derive(Default, Debug, Clone)]
pub(crate) struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    pub fn name(&mut self, attr: &str) -> String {
        let safe = attr.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let placeholder = format!("#{safe}");
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

/// A string value.
pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number value (any integer type: u64 limits never wrap).
pub(crate) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An update of one item: `SET`, `ADD` and `REMOVE` clauses and the
/// conditions it is written under, sharing one set of placeholders. A value
/// that does not serialise is reported when the write is built.
#[derive(Debug, Clone)]
pub(crate) struct Write {
    key: Key,
    e: Expr,
    set: Vec<String>,
    add: Vec<String>,
    remove: Vec<String>,
    conditions: Vec<String>,
    error: Option<String>,
}

impl Write {
    pub fn to(key: Key) -> Self {
        Self {
            key,
            e: Expr::default(),
            set: Vec::new(),
            add: Vec::new(),
            remove: Vec::new(),
            conditions: Vec::new(),
            error: None,
        }
    }

    fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> String {
        match av(v) {
            Ok(v) => self.e.val(v),
            Err(err) => {
                self.error.get_or_insert_with(|| err.to_string());
                self.e.val(AttributeValue::Null(true))
            }
        }
    }

    /// `SET attr = v`.
    pub fn set<T: Serialize + ?Sized>(&mut self, attr: &str, v: &T) -> &mut Self {
        let (name, val) = (self.e.name(attr), self.value(v));
        self.set.push(format!("{name} = {val}"));
        self
    }

    /// `SET attr = v` when `v` is `Some`.
    pub fn set_some<T: Serialize>(&mut self, attr: &str, v: Option<&T>) -> &mut Self {
        if let Some(v) = v {
            self.set(attr, v);
        }
        self
    }

    /// `SET attr = if_not_exists(attr, v)`: keeps a value already there.
    pub fn set_if_absent<T: Serialize + ?Sized>(&mut self, attr: &str, v: &T) -> &mut Self {
        let (name, val) = (self.e.name(attr), self.value(v));
        self.set
            .push(format!("{name} = if_not_exists({name}, {val})"));
        self
    }

    /// `SET map.key = v`: one entry of a map, so concurrent writes of
    /// different entries never overwrite each other.
    pub fn set_entry<T: Serialize + ?Sized>(&mut self, map: &str, key: &str, v: &T) -> &mut Self {
        let path = format!("{}.{}", self.e.name(map), self.e.key(key));
        let val = self.value(v);
        self.set.push(format!("{path} = {val}"));
        self
    }

    /// `ADD attr delta` (a number).
    pub fn add(&mut self, attr: &str, delta: i64) -> &mut Self {
        let (name, val) = (self.e.name(attr), self.e.val(n(delta)));
        self.add.push(format!("{name} {val}"));
        self
    }

    pub fn remove(&mut self, attr: &str) -> &mut Self {
        let name = self.e.name(attr);
        self.remove.push(name);
        self
    }

    /// `REMOVE map.key`.
    pub fn remove_entry(&mut self, map: &str, key: &str) -> &mut Self {
        let path = format!("{}.{}", self.e.name(map), self.e.key(key));
        self.remove.push(path);
        self
    }

    // ------------------------------------------------ conditions (ANDed)

    /// The item exists.
    pub fn if_exists(&mut self) -> &mut Self {
        let pk = self.e.name(keys::PK);
        self.conditions.push(format!("attribute_exists({pk})"));
        self
    }

    /// `attr` is absent.
    pub fn if_absent(&mut self, attr: &str) -> &mut Self {
        let name = self.e.name(attr);
        self.conditions
            .push(format!("attribute_not_exists({name})"));
        self
    }

    pub fn if_eq<T: Serialize + ?Sized>(&mut self, attr: &str, v: &T) -> &mut Self {
        let (name, val) = (self.e.name(attr), self.value(v));
        self.conditions.push(format!("{name} = {val}"));
        self
    }

    /// `attr IN (vs)`.
    pub fn if_in<T: Serialize>(&mut self, attr: &str, vs: &[T]) -> &mut Self {
        let name = self.e.name(attr);
        let vals: Vec<String> = vs.iter().map(|v| self.value(v)).collect();
        self.conditions
            .push(format!("{name} IN ({})", vals.join(", ")));
        self
    }

    /// `attr` is absent or at most `v`.
    pub fn if_absent_or_at_most(&mut self, attr: &str, v: impl std::fmt::Display) -> &mut Self {
        let (name, val) = (self.e.name(attr), self.e.val(n(v)));
        self.conditions
            .push(format!("(attribute_not_exists({name}) OR {name} <= {val})"));
        self
    }

    /// `SET attr = list_append(if_not_exists(attr, []), vs)`.
    pub fn append<T: Serialize>(&mut self, attr: &str, vs: &[T]) -> &mut Self {
        let name = self.e.name(attr);
        let empty = self.e.val(AttributeValue::L(Vec::new()));
        let val = self.value(vs);
        self.set.push(format!(
            "{name} = list_append(if_not_exists({name}, {empty}), {val})"
        ));
        self
    }

    /// `SET attr = if_not_exists(attr, 0) + v`: a counter that may be absent.
    pub fn increment(&mut self, attr: &str, v: i64) -> &mut Self {
        self.increment_from(attr, 0, v)
    }

    /// `SET attr = if_not_exists(attr, start) + v`: a number that, while
    /// absent, counts as `start`.
    pub fn increment_from(&mut self, attr: &str, start: u64, v: i64) -> &mut Self {
        let (name, from, val) = (self.e.name(attr), self.e.val(n(start)), self.e.val(n(v)));
        self.set
            .push(format!("{name} = if_not_exists({name}, {from}) + {val}"));
        self
    }

    /// `attr` is absent, or less than `v`.
    pub fn if_absent_or_below(&mut self, attr: &str, v: impl std::fmt::Display) -> &mut Self {
        let (name, val) = (self.e.name(attr), self.e.val(n(v)));
        self.conditions
            .push(format!("(attribute_not_exists({name}) OR {name} < {val})"));
        self
    }

    /// `left <= right`, two attributes of the item (absent counts as 0).
    pub fn if_at_most_attr(&mut self, left: &str, right: &str) -> &mut Self {
        let (l, r) = (self.e.name(left), self.e.name(right));
        self.conditions
            .push(format!("(attribute_not_exists({l}) OR {l} <= {r})"));
        self
    }

    /// `attr` is absent or equals `v` (a field with a serde default).
    pub fn if_absent_or_eq<T: Serialize + ?Sized>(&mut self, attr: &str, v: &T) -> &mut Self {
        let (name, val) = (self.e.name(attr), self.value(v));
        self.conditions
            .push(format!("(attribute_not_exists({name}) OR {name} = {val})"));
        self
    }

    /// `attr <= v` (a number).
    pub fn if_at_most(&mut self, attr: &str, v: impl std::fmt::Display) -> &mut Self {
        let (name, val) = (self.e.name(attr), self.e.val(n(v)));
        self.conditions.push(format!("{name} <= {val}"));
        self
    }

    /// `attr > v` (a number).
    pub fn if_greater(&mut self, attr: &str, v: impl std::fmt::Display) -> &mut Self {
        let (name, val) = (self.e.name(attr), self.e.val(n(v)));
        self.conditions.push(format!("{name} > {val}"));
        self
    }

    /// `left < right`, two attributes of the item.
    pub fn if_less_than_attr(&mut self, left: &str, right: &str) -> &mut Self {
        let (l, r) = (self.e.name(left), self.e.name(right));
        self.conditions.push(format!("{l} < {r}"));
        self
    }

    /// A condition written with this write's placeholders (for the few
    /// that are more than a conjunction, such as "in force").
    pub fn if_expr(&mut self, f: impl FnOnce(&mut Expr) -> String) -> &mut Self {
        let c = f(&mut self.e);
        self.conditions.push(format!("({c})"));
        self
    }

    fn expression(&self) -> Result<Option<String>, Error> {
        if let Some(err) = &self.error {
            return Err(Error::internal(format!(
                "a value does not serialise: {err}"
            )));
        }
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            parts.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.add.is_empty() {
            parts.push(format!("ADD {}", self.add.join(", ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        Ok((!parts.is_empty()).then(|| parts.join(" ")))
    }

    fn condition(&self) -> Option<String> {
        (!self.conditions.is_empty()).then(|| self.conditions.join(" AND "))
    }

    fn update(&self) -> Result<Update, Error> {
        let expression = self
            .expression()?
            .ok_or_else(|| Error::internal("an update that changes nothing"))?;
        Update::builder()
            .table_name("")
            .set_key(Some(key_item(&self.key)))
            .update_expression(expression)
            .set_condition_expression(self.condition())
            .set_expression_attribute_names(self.e.names())
            .set_expression_attribute_values(self.e.values())
            .return_values_on_condition_check_failure(ALL_OLD)
            .build()
            .map_err(Error::internal)
    }

    /// A condition check (no change) with this write's conditions.
    fn check(&self) -> Result<ConditionCheck, Error> {
        self.expression()?;
        let condition = self
            .condition()
            .ok_or_else(|| Error::internal("a condition check without a condition"))?;
        ConditionCheck::builder()
            .table_name("")
            .set_key(Some(key_item(&self.key)))
            .condition_expression(condition)
            .set_expression_attribute_names(self.e.names())
            .set_expression_attribute_values(self.e.values())
            .return_values_on_condition_check_failure(ALL_OLD)
            .build()
            .map_err(Error::internal)
    }

    /// Run this update on its own and read back `returning` (the updated
    /// attributes, or the item as it was): `Ok(Ok(values))`, or
    /// `Ok(Err(old))` when a condition did not hold (the item as it was, if
    /// there was one).
    pub async fn run_returning(
        &self,
        db: &Client,
        table: &str,
        returning: aws_sdk_dynamodb::types::ReturnValue,
    ) -> Result<Result<Item, Option<Item>>, Error> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        let expression = self
            .expression()?
            .ok_or_else(|| Error::internal("an update that changes nothing"))?;
        let res = db
            .update_item()
            .table_name(table)
            .set_key(Some(key_item(&self.key)))
            .update_expression(expression)
            .set_condition_expression(self.condition())
            .set_expression_attribute_names(self.e.names())
            .set_expression_attribute_values(self.e.values())
            .return_values(returning)
            .return_values_on_condition_check_failure(ALL_OLD)
            .send()
            .await;
        match res {
            Ok(out) => Ok(Ok(out.attributes.unwrap_or_default())),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    Ok(Err(c.item().cloned()))
                }
                _ => Err(sdk_error("UpdateItem", e)),
            },
        }
    }

    /// Run this update on its own (UpdateItem). `Ok(false)`: a condition
    /// did not hold.
    pub async fn run(&self, db: &Client, table: &str) -> Result<bool, Error> {
        let expression = self
            .expression()?
            .ok_or_else(|| Error::internal("an update that changes nothing"))?;
        let res = db
            .update_item()
            .table_name(table)
            .set_key(Some(key_item(&self.key)))
            .update_expression(expression)
            .set_condition_expression(self.condition())
            .set_expression_attribute_names(self.e.names())
            .set_expression_attribute_values(self.e.values())
            .send()
            .await;
        super::conditional("UpdateItem", res)
    }
}

pub(crate) fn key_item(key: &Key) -> Item {
    HashMap::from([
        (keys::PK.to_string(), AttributeValue::S(key.pk.clone())),
        (keys::SK.to_string(), AttributeValue::S(key.sk.clone())),
    ])
}

/// A record as an item under `key`.
pub(crate) fn to_item<T: Serialize>(key: &Key, value: &T) -> Result<Item, Error> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(Error::internal)?;
    item.extend(key_item(key));
    Ok(item)
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, Error> {
    serde_dynamo::from_item(item)
        .map_err(|e| Error::internal(format!("stored item does not deserialise: {e}")))
}

/// What a put requires of the item it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutIf {
    /// Unconditional (the content is the same every time).
    Always,
    /// The key is unused.
    New,
    /// The key is unused, or its item has this attribute (e.g. a returned
    /// lease, `deactivated_at`, is replaced by a new one).
    NewOrAttr(&'static str),
    /// The key is unused, or its item's `ttl` has passed (DynamoDB deletes
    /// expired items lazily, so an expired one may still be there).
    NewOrExpired { now_epoch: i64 },
    /// The key is unused, or its item's number `attr` is at most `now_epoch`
    /// (a claim whose hold has ended is taken over).
    NewOrLapsed { attr: &'static str, now_epoch: i64 },
}

/// One transaction, its items named where they are pushed. Failures are
/// read by those names, never by position.
#[derive(Default)]
pub(crate) struct Txn {
    items: Vec<TransactWriteItem>,
    names: Vec<Cow<'static, str>>,
    token: Option<String>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, name: impl Into<Cow<'static, str>>, item: TransactWriteItem) {
        let name = name.into();
        debug_assert!(
            !self.names.contains(&name),
            "transaction item {name} pushed twice"
        );
        self.names.push(name);
        self.items.push(item);
    }

    pub fn update(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        w: &Write,
    ) -> Result<&mut Self, Error> {
        self.push(
            name,
            TransactWriteItem::builder().update(w.update()?).build(),
        );
        Ok(self)
    }

    /// A condition check of `w`'s conditions (it changes nothing).
    pub fn check(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        w: &Write,
    ) -> Result<&mut Self, Error> {
        self.push(
            name,
            TransactWriteItem::builder()
                .condition_check(w.check()?)
                .build(),
        );
        Ok(self)
    }

    /// Delete the item at `w`'s key when `w`'s conditions hold.
    pub fn delete(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        w: &Write,
    ) -> Result<&mut Self, Error> {
        w.expression()?;
        let d = Delete::builder()
            .table_name("")
            .set_key(Some(key_item(&w.key)))
            .set_condition_expression(w.condition())
            .set_expression_attribute_names(w.e.names())
            .set_expression_attribute_values(w.e.values())
            .return_values_on_condition_check_failure(ALL_OLD)
            .build()
            .map_err(Error::internal)?;
        self.push(name, TransactWriteItem::builder().delete(d).build());
        Ok(self)
    }

    /// The item at `key` exists.
    pub fn exists(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        key: Key,
    ) -> Result<&mut Self, Error> {
        self.check(name, Write::to(key).if_exists())
    }

    /// Put `value` at `key` (plus `extra` storage-only attributes).
    pub fn put<T: Serialize>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        key: &Key,
        value: &T,
        when: PutIf,
    ) -> Result<&mut Self, Error> {
        self.put_with(name, key, value, Vec::new(), when)
    }

    pub fn put_with<T: Serialize>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        key: &Key,
        value: &T,
        extra: Vec<(&'static str, AttributeValue)>,
        when: PutIf,
    ) -> Result<&mut Self, Error> {
        let mut item = to_item(key, value)?;
        item.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
        let mut e = Expr::default();
        let condition = match when {
            PutIf::Always => None,
            PutIf::New => Some(format!("attribute_not_exists({})", e.name(keys::PK))),
            PutIf::NewOrAttr(attr) => Some(format!(
                "attribute_not_exists({}) OR attribute_exists({})",
                e.name(keys::PK),
                e.name(attr)
            )),
            PutIf::NewOrExpired { now_epoch } => Some(format!(
                "attribute_not_exists({}) OR {} < {}",
                e.name(keys::PK),
                e.name(a::TTL),
                e.val(n(now_epoch))
            )),
            PutIf::NewOrLapsed { attr, now_epoch } => Some(format!(
                "attribute_not_exists({}) OR {} <= {}",
                e.name(keys::PK),
                e.name(attr),
                e.val(n(now_epoch))
            )),
        };
        let put = Put::builder()
            .table_name("")
            .set_item(Some(item))
            .set_condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values_on_condition_check_failure(ALL_OLD)
            .build()
            .map_err(Error::internal)?;
        self.push(name, TransactWriteItem::builder().put(put).build());
        Ok(self)
    }

    /// Run it against `table`. A `TransactionConflict` (another transaction
    /// on the same item at the same moment) is retried with jittered
    /// backoff; condition failures come back as [`TxnError::Cancelled`].
    pub async fn run(self, db: &Client, table: &str) -> Result<(), TxnError> {
        use aws_sdk_dynamodb::error::SdkError;
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let items: Vec<TransactWriteItem> = self
            .items
            .into_iter()
            .map(|i| with_table(i, table))
            .collect();
        // One token for every attempt of this commit: on AWS a retry of a
        // commit whose answer was lost (a timeout, a 500) is then a no-op
        // that answers success, not a second commit.
        let token = self.token.or_else(|| Some(ulid::Ulid::new().to_string()));
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let res = db
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
                let condition = reasons.iter().any(Reason::failed);
                if conflict && !condition && attempt < 6 {
                    backoff(attempt).await;
                    continue;
                }
                if condition {
                    let named = self.names.iter().cloned().zip(reasons).collect();
                    return Err(TxnError::Cancelled(Cancelled { reasons: named }));
                }
                let detail = format!("transaction cancelled: {reasons:?}");
                // A value DynamoDB refuses will be refused again: not a 503.
                if reasons.iter().any(|r| r.code == "ValidationError") {
                    return Err(TxnError::Other(Error::Internal(detail)));
                }
                return Err(TxnError::Other(Error::Unavailable(detail)));
            }
            // Throttling, 5xx and timeouts were already retried by the SDK
            // (within its operation timeout): retrying again here could
            // outlast the function's own timeout. Answer 503 instead.
            return Err(TxnError::Other(sdk_error("TransactWriteItems", err)));
        }
    }
}

/// The builders above leave the table name empty; it is filled in here so
/// item builders need not carry it.
fn with_table(item: TransactWriteItem, table: &str) -> TransactWriteItem {
    let mut item = item;
    if let Some(u) = item.update.as_mut() {
        u.table_name = table.to_string();
    }
    if let Some(p) = item.put.as_mut() {
        p.table_name = table.to_string();
    }
    if let Some(c) = item.condition_check.as_mut() {
        c.table_name = table.to_string();
    }
    if let Some(d) = item.delete.as_mut() {
        d.table_name = table.to_string();
    }
    item
}

async fn backoff(attempt: u32) {
    use rand::Rng;
    let base = 10u64 << attempt.min(6);
    let jitter = rand::rng().random_range(0..base);
    tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
}

/// Why one item of a cancelled transaction failed.
#[derive(Debug, Clone)]
struct Reason {
    code: String,
    /// The item as it was (ReturnValuesOnConditionCheckFailure = ALL_OLD).
    item: Option<Item>,
}

impl Reason {
    fn failed(&self) -> bool {
        self.code == "ConditionalCheckFailed"
    }
}

/// A transaction a condition refused, its items' reasons by name.
#[derive(Debug)]
pub(crate) struct Cancelled {
    reasons: Vec<(Cow<'static, str>, Reason)>,
}

impl Cancelled {
    fn reason(&self, name: &str) -> Option<&Reason> {
        let found = self
            .reasons
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| r);
        debug_assert!(found.is_some(), "no transaction item named {name}");
        found
    }

    /// Did the condition of the item named `name` fail?
    pub fn failed(&self, name: &str) -> bool {
        self.reason(name).is_some_and(Reason::failed)
    }

    /// The item as it was when `name`'s condition failed (`None`: it did
    /// not fail, or there was no item).
    pub fn old(&self, name: &str) -> Option<&Item> {
        self.reason(name)
            .filter(|r| r.failed())
            .and_then(|r| r.item.as_ref())
    }

    /// [`Self::old`], deserialised.
    pub fn old_as<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        self.old(name).cloned().map(from_item).transpose()
    }

    /// For logs: which items failed, by name.
    pub fn describe(&self) -> String {
        let failed: Vec<&str> = self
            .reasons
            .iter()
            .filter(|(_, r)| r.failed())
            .map(|(n, _)| n.as_ref())
            .collect();
        format!("condition failed on: {}", failed.join(", "))
    }
}

#[derive(Debug)]
pub(crate) enum TxnError {
    Cancelled(Cancelled),
    Other(Error),
}

impl From<Error> for TxnError {
    fn from(e: Error) -> Self {
        TxnError::Other(e)
    }
}

impl TxnError {
    /// Turn "cancelled" into a domain error with `f`; pass others through.
    pub fn or_else(self, f: impl FnOnce(Cancelled) -> Error) -> Error {
        match self {
            TxnError::Cancelled(c) => f(c),
            TxnError::Other(e) => e,
        }
    }
}

pub(crate) fn get_s<'a>(item: &'a Item, attr: &str) -> Option<&'a str> {
    item.get(attr)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, attr: &str) -> Option<T> {
    item.get(attr)
        .and_then(|v| v.as_n().ok())
        .and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key {
            pk: "T#acme#L#x".into(),
            sk: "L".into(),
        }
    }

    #[test]
    fn clauses_and_conditions_share_placeholders() {
        let mut w = Write::to(key());
        w.set(a::STATUS, "active")
            .add(a::SEATS_USED, 1)
            .remove(a::GRACE_UNTIL);
        w.if_exists().if_in(a::STATUS, &["suspended", "past_due"]);
        let expr = w.expression().unwrap().unwrap();
        assert_eq!(
            expr,
            "SET #status = :v0 ADD #seats_used :v1 REMOVE #grace_until"
        );
        assert_eq!(
            w.condition().unwrap(),
            "attribute_exists(#PK) AND #status IN (:v2, :v3)"
        );
        assert_eq!(w.e.values().unwrap().len(), 4);
    }

    #[test]
    fn map_entries_get_fresh_placeholders() {
        let mut w = Write::to(key());
        w.set_entry(a::ENTITLEMENT_OVERRIDES, "a-b", &1)
            .remove_entry(a::ENTITLEMENT_OVERRIDES, "a_b");
        let expr = w.expression().unwrap().unwrap();
        assert!(expr.contains("#entitlement_overrides.#k1 = :v0"), "{expr}");
        assert!(expr.contains("REMOVE #entitlement_overrides.#k2"), "{expr}");
    }

    #[test]
    fn large_numbers_do_not_wrap() {
        let mut w = Write::to(key());
        w.set(a::LIMIT, &u64::MAX);
        let v = w.e.values().unwrap();
        assert_eq!(v[":v0"], AttributeValue::N(u64::MAX.to_string()));
    }

    #[test]
    fn an_empty_update_is_an_error_not_a_request() {
        assert!(Write::to(key()).update().is_err());
    }

    #[test]
    fn failures_are_read_by_name() {
        let reason = |code: &str| Reason {
            code: code.into(),
            item: Some(Item::new()),
        };
        let c = Cancelled {
            reasons: vec![
                ("seat".into(), reason("None")),
                ("activation".into(), reason("ConditionalCheckFailed")),
            ],
        };
        assert!(c.failed("activation"));
        assert!(!c.failed("seat"));
        assert!(c.old("seat").is_none());
        assert!(c.old("activation").is_some());
        assert_eq!(c.describe(), "condition failed on: activation");
    }
}
