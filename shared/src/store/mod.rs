//! The DynamoDB store: one table, keys from [`keys`], attribute names from
//! [`attrs`], items (de)serialised with `serde_dynamo`, writes built with
//! [`write`]. Tenant data is only reachable through [`TenantStore`], which
//! cannot be built without a [`TenantId`].
//!
//! The store speaks domain types: nothing above this module names an
//! attribute, a key format, an expression or an SDK type.

pub(crate) mod attrs;
pub mod audit;
pub mod billing;
pub mod catalog;
pub mod counters;
pub mod crm;
pub mod cursor;
pub mod customers;
pub mod grants;
pub mod keys;
pub mod licenses;
pub mod portal;
pub mod rate;
#[cfg(feature = "dev")]
pub mod schema;
pub mod search;
pub mod seats;
pub mod seats_migrate;
pub mod stripe;
pub mod tenants;
pub mod trials;
pub mod usage;
pub mod webhooks;
pub(crate) mod write;

use crate::error::Error;
use crate::ids::TenantId;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use keys::Key;
use std::collections::HashMap;
use std::sync::Arc;
use write::{from_item, key_item, s, Expr};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// One page of a listing.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

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

    /// The only way to reach tenant data.
    pub fn tenant(&self, tenant: &TenantId) -> TenantStore {
        TenantStore {
            store: self.clone(),
            tenant: tenant.clone(),
        }
    }

    pub(crate) fn db(&self) -> &Client {
        &self.client
    }

    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// One strongly consistent GetItem.
    pub(crate) async fn get_item(&self, key: &Key) -> Result<Option<Item>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(self.table())
            .set_key(Some(key_item(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(out.item)
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

    fn owns(&self, key: &Key) -> bool {
        key.pk.starts_with(&format!("T#{}", self.tenant))
    }

    pub(crate) async fn get(&self, key: &Key) -> Result<Option<Item>, Error> {
        debug_assert!(self.owns(key));
        self.store.get_item(key).await
    }

    pub(crate) async fn get_as<T: serde::de::DeserializeOwned>(
        &self,
        key: &Key,
    ) -> Result<Option<T>, Error> {
        self.get(key).await?.map(from_item).transpose()
    }

    /// Strongly consistent BatchGetItem of a few keys of this tenant
    /// (one round trip unless DynamoDB hands back unprocessed keys). A key
    /// named twice is asked for once: DynamoDB refuses a request that
    /// repeats a key (a batch of usage events may repeat an id).
    pub(crate) async fn batch_get(&self, wanted: &[Key]) -> Result<Vec<Item>, Error> {
        let mut req = KeysAndAttributes::builder().consistent_read(true);
        let mut asked = std::collections::HashSet::with_capacity(wanted.len());
        for k in wanted {
            debug_assert!(self.owns(k));
            if asked.insert(k) {
                req = req.keys(key_item(k));
            }
        }
        let req = req.build().map_err(Error::internal)?;
        let mut pending = Some(HashMap::from([(self.table().to_string(), req)]));
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

    /// Every item of a partition (small partitions only).
    pub(crate) async fn query_all(
        &self,
        pk: String,
        sk_prefix: Option<&str>,
    ) -> Result<Vec<Item>, Error> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let (items, lek) = self
                .query(&pk, sk_prefix, None, false, None, start, true)
                .await?;
            out.extend(items);
            match lek {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    /// One page of a partition, newest or oldest first, optionally from
    /// `sk_from` on (inclusive).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn query(
        &self,
        pk: &str,
        sk_prefix: Option<&str>,
        sk_from: Option<&str>,
        newest_first: bool,
        limit: Option<i32>,
        start: Option<Item>,
        consistent: bool,
    ) -> Result<(Vec<Item>, Option<Item>), Error> {
        let mut e = Expr::default();
        let mut cond = format!("{} = {}", e.name(keys::PK), e.val(s(pk)));
        if let Some(p) = sk_prefix {
            cond.push_str(&format!(
                " AND begins_with({}, {})",
                e.name(keys::SK),
                e.val(s(p))
            ));
        } else if let Some(from) = sk_from {
            cond.push_str(&format!(" AND {} >= {}", e.name(keys::SK), e.val(s(from))));
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
            .set_limit(limit)
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        let lek = page.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((page.items.unwrap_or_default(), lek))
    }

    /// A cursor page of one partition. The cursor is signed and bound to the
    /// tenant and `listing`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn page<T: serde::de::DeserializeOwned>(
        &self,
        signer: &crate::crypto::Signer,
        listing: &str,
        pk: String,
        newest_first: bool,
        sk_from: Option<&str>,
        limit: i32,
        cursor_: Option<&str>,
    ) -> Result<Page<T>, Error> {
        let start = cursor_
            .map(|c| cursor::decode(signer, self.tenant_id(), listing, c))
            .transpose()?;
        let (items, lek) = self
            .query(&pk, None, sk_from, newest_first, Some(limit), start, false)
            .await?;
        Ok(Page {
            items: items.into_iter().map(from_item).collect::<Result<_, _>>()?,
            next_cursor: lek.and_then(|k| cursor::encode(signer, self.tenant_id(), listing, &k)),
        })
    }
}

impl TenantStore {
    /// A cursor page of several partitions merged newest first, for
    /// listings spread over shards. Sort keys must be unique and totally
    /// ordered across the partitions (ULIDs, or a time then an id); the
    /// signed cursor is the sort key of the last item handed out, so a page
    /// never repeats or skips an item however the shards interleave.
    pub(crate) async fn merged_page<T: serde::de::DeserializeOwned>(
        &self,
        signer: &crate::crypto::Signer,
        listing: &str,
        pks: Vec<String>,
        sk_from: Option<&str>,
        limit: i32,
        cursor_: Option<&str>,
    ) -> Result<Page<T>, Error> {
        let before = match cursor_ {
            Some(c) => {
                let mut k = cursor::decode(signer, self.tenant_id(), listing, c)?;
                let sk = k.remove(keys::SK).ok_or(Error::InvalidCursor)?;
                Some(sk.as_s().map_err(|_| Error::InvalidCursor)?.clone())
            }
            None => None,
        };
        let limit = limit.max(1);
        let reads = pks
            .iter()
            .map(|pk| self.query_below(pk, sk_from, before.as_deref(), limit));
        let mut more = false;
        let mut items: Vec<(String, Item)> = Vec::new();
        for read in futures::future::join_all(reads).await {
            let (page, lek) = read?;
            more |= lek.is_some();
            items.extend(page.into_iter().filter_map(|i| {
                let sk = write::get_s(&i, keys::SK)?.to_string();
                Some((sk, i))
            }));
        }
        items.sort_by(|a, b| b.0.cmp(&a.0));
        let limit = usize::try_from(limit).unwrap_or(1);
        more |= items.len() > limit;
        items.truncate(limit);
        let next_cursor = match items.last() {
            Some((sk, _)) if more => {
                let k: Item = [(keys::SK.to_string(), write::s(sk.clone()))].into();
                cursor::encode(signer, self.tenant_id(), listing, &k)
            }
            _ => None,
        };
        Ok(Page {
            items: items
                .into_iter()
                .map(|(_, i)| from_item(i))
                .collect::<Result<_, _>>()?,
            next_cursor,
        })
    }

    /// Newest first: up to `limit` items of `pk` with `from <= SK < below`.
    async fn query_below(
        &self,
        pk: &str,
        from: Option<&str>,
        below: Option<&str>,
        limit: i32,
    ) -> Result<(Vec<Item>, Option<Item>), Error> {
        let mut e = Expr::default();
        let mut cond = format!("{} = {}", e.name(keys::PK), e.val(s(pk)));
        // (Named only when used: an unused name is a ValidationException.)
        let sk = if from.is_some() || below.is_some() {
            e.name(keys::SK)
        } else {
            String::new()
        };
        match (from, below) {
            (Some(f), Some(b)) => cond.push_str(&format!(
                " AND {sk} BETWEEN {} AND {}",
                e.val(s(f)),
                e.val(s(b))
            )),
            (Some(f), None) => cond.push_str(&format!(" AND {sk} >= {}", e.val(s(f)))),
            (None, Some(b)) => cond.push_str(&format!(" AND {sk} < {}", e.val(s(b)))),
            (None, None) => {}
        }
        let page = self
            .db()
            .query()
            .table_name(self.table())
            .key_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .scan_index_forward(false)
            // BETWEEN is inclusive: one more, and the cursor's own item dropped.
            .limit(limit.saturating_add(1))
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        let lek = page.last_evaluated_key.filter(|k| !k.is_empty());
        let mut items = page.items.unwrap_or_default();
        if let Some(b) = below {
            items.retain(|i| write::get_s(i, keys::SK).is_some_and(|sk| sk < b));
        }
        Ok((items, lek))
    }
}

// ---------------------------------------------------------------- errors

/// A single-item conditional write's result: `Ok(false)` when its
/// condition did not hold.
pub(crate) fn conditional<O, E, R>(op: &str, res: Result<O, SdkError<E, R>>) -> Result<bool, Error>
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match res {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(sdk_error(op, e)),
    }
}

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
