//! Usage metering: one TransactWriteItems per record holds its share of a
//! sharded counter (conditional on the shard's budget under a hard limit),
//! the append-only usage event, the audit event and the idempotency record.

use super::attrs as a;
use super::write::{from_item, get_s, s, Expr, PutIf, Txn, TxnError, Write};
use super::{cursor, keys, sdk_error, Item, Page, TenantStore};
use crate::clock::ts;
use crate::crypto::Signer;
use crate::domain::{License, UsageCounter};
use crate::error::Error;
use crate::ids::{LicenseId, Metric};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;

/// The stored first response of an idempotent request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub key: String,
    pub body_hash: String,
    pub status: u16,
    /// The response's `data`, as JSON text.
    pub response: String,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    /// Epoch seconds after which the record is void (DynamoDB TTL deletes it).
    pub ttl: i64,
}

pub use crate::domain::UsageEvent;

/// What a usage record reads first (one BatchGetItem).
#[derive(Debug, Default)]
pub struct RecordRead {
    pub license: Option<License>,
    /// Unsharded counters of an earlier release, of the candidate periods.
    pub legacy: Vec<UsageCounter>,
    /// Counter shards of the candidate periods, by partition key.
    pub shards: HashMap<String, Item>,
    pub idempotency: Option<IdempotencyRecord>,
}

/// Everything one usage record writes.
pub(crate) struct RecordWrite<'a> {
    pub license_id: &'a LicenseId,
    /// The record's share of the counter.
    pub counter: Option<&'a Write>,
    pub event: &'a UsageEvent,
    /// USAGE.RECORDED, in the same transaction.
    pub audit: &'a crate::domain::AuditEvent,
    pub idempotency: Option<&'a IdempotencyRecord>,
    /// A `unique_count` record's new value: put only if absent.
    pub distinct: Option<&'a DistinctValue>,
    pub now: OffsetDateTime,
}

/// A counted distinct value of a `unique_count` counter (its key names
/// license, metric, period and the value's digest; the value itself is not
/// stored).
#[derive(Debug, Clone, Serialize)]
pub struct DistinctValue {
    #[serde(skip)]
    pub key: keys::Key,
    pub license_id: LicenseId,
    pub metric: Metric,
    pub period: String,
    /// The usage event that counted it.
    pub usage_event_id: String,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    /// Epoch seconds: well after the last record its period can take
    /// (DynamoDB deletes it lazily; nothing relies on that).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
}

#[derive(Debug)]
pub enum RecordOutcome {
    Recorded,
    /// The idempotency key was used before: its first response.
    Replay(IdempotencyRecord),
    /// The shard's condition failed (no room, or budgeted for another limit;
    /// for `max` / `last`: the shard holds a value that beats the record).
    ShardRefused,
    /// The distinct value was counted already (by a concurrent record):
    /// nothing was written.
    Repeat,
}

/// One record of a batch's chunk.
pub(crate) struct ChunkRecord<'a> {
    pub event: &'a UsageEvent,
    pub audit: &'a crate::domain::AuditEvent,
    pub idempotency: &'a IdempotencyRecord,
}

#[derive(Debug)]
pub(crate) enum ChunkOutcome {
    Recorded,
    Cancelled { taken: Vec<usize> },
}

/// The GSI1 partition a counter is exported from: its month (day counters
/// too) or `total`.
pub fn export_partition(period_key: &str) -> &str {
    if period_key.len() >= 7 && period_key != "total" {
        &period_key[..7]
    } else {
        period_key
    }
}

pub use crate::clock::month_of;

impl TenantStore {
    /// Usage events of one license in one month, newest first.
    pub async fn list_usage_events(
        &self,
        signer: &Signer,
        id: &LicenseId,
        month: &str,
        limit: i32,
        cursor_: Option<&str>,
    ) -> Result<Page<UsageEvent>, Error> {
        let listing = format!("usage-events:{id}:{month}");
        let pks = keys::usage_event_pks(self.tenant_id(), id, month);
        self.merged_page(signer, &listing, pks, None, limit, cursor_)
            .await
    }

    /// One BatchGetItem: the license, the metric's counters for the given
    /// period keys (the record does not know the metric's period until it has
    /// read the license, so it asks for each candidate): every shard, and
    /// the unsharded counter of an earlier release (in the license's
    /// partition, read by key, never written again), and, when given, the
    /// idempotency record.
    pub async fn read_for_record(
        &self,
        id: &LicenseId,
        metric: &Metric,
        period_keys: &[String],
        idempotency_key: Option<&str>,
    ) -> Result<RecordRead, Error> {
        let t = self.tenant_id();
        let mut wanted = vec![keys::license(t, id)];
        for p in period_keys {
            wanted.push(keys::usage_counter(t, id, metric, p));
            wanted.extend(keys::counter_shards(t, id, metric, p));
        }
        if let Some(k) = idempotency_key {
            wanted.push(keys::idempotency(t, id, k));
        }
        let mut read = RecordRead::default();
        for item in self.batch_get(&wanted).await? {
            match get_s(&item, keys::SK) {
                Some(keys::LICENSE_SK) => read.license = Some(from_item(item)?),
                Some(keys::IDEMPOTENCY_SK) => read.idempotency = Some(from_item(item)?),
                Some(keys::COUNTER_SK) => {
                    if let Some(pk) = get_s(&item, keys::PK) {
                        read.shards.insert(pk.to_string(), item);
                    }
                }
                _ => read.legacy.push(from_item(item)?),
            }
        }
        Ok(read)
    }

    /// The record's transaction: its share of the counter (`w.counter`,
    /// conditioned on the shard's room under a hard limit), the append-only
    /// event, the audit event and the idempotency record. The license item
    /// is not part of it (see `docs/data-model.md`, usage records at scale).
    pub(crate) async fn record_usage(&self, w: RecordWrite<'_>) -> Result<RecordOutcome, Error> {
        let t = self.tenant_id();
        let lid = w.license_id;
        let mut txn = Txn::new();
        if let Some(counter) = w.counter {
            txn.update("counter", counter)?;
        }
        if let Some(d) = w.distinct {
            txn.put("distinct", &d.key, d, PutIf::New)?;
        }
        let ev_key = keys::usage_event(t, lid, w.event.timestamp, &w.event.id);
        txn.put("event", &ev_key, w.event, PutIf::Always)?;
        self.push_audit(&mut txn, "audit", w.audit)?;
        // The idempotency record: new, or void (past its TTL; DynamoDB's TTL
        // deletion is lazy, so an expired record may still be there).
        if let Some(idem) = w.idempotency {
            let when = PutIf::NewOrExpired {
                now_epoch: w.now.unix_timestamp(),
            };
            let key = keys::idempotency(t, lid, &idem.key);
            txn.put("idempotency", &key, idem, when)?;
        }
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(RecordOutcome::Recorded),
            Err(TxnError::Other(e)) => Err(e),
            Err(TxnError::Cancelled(c)) => {
                if w.idempotency.is_some() && c.failed("idempotency") {
                    let rec = c.old_as("idempotency")?;
                    let rec = rec.ok_or_else(|| {
                        Error::internal("idempotency conflict without the record")
                    })?;
                    return Ok(RecordOutcome::Replay(rec));
                }
                if w.distinct.is_some() && c.failed("distinct") {
                    return Ok(RecordOutcome::Repeat);
                }
                if w.counter.is_some() && c.failed("counter") {
                    return Ok(RecordOutcome::ShardRefused);
                }
                Err(Error::internal(format!(
                    "usage record refused: {}",
                    c.describe()
                )))
            }
        }
    }

    /// Several records of one counter in one transaction (a batch's chunk):
    /// one counter write for their sum (none for repeats of counted
    /// distinct values), and per record its event, audit
    /// event and idempotency record (3 items: at most 33 records, 100
    /// items). Cancelled: which records' ids were taken (none: the counter
    /// refused).
    pub(crate) async fn record_chunk(
        &self,
        license_id: &LicenseId,
        counter: Option<&Write>,
        records: &[ChunkRecord<'_>],
        now: OffsetDateTime,
    ) -> Result<ChunkOutcome, Error> {
        let t = self.tenant_id();
        let mut txn = Txn::new();
        if let Some(counter) = counter {
            txn.update("counter", counter)?;
        }
        for (i, r) in records.iter().enumerate() {
            let ev_key = keys::usage_event(t, license_id, r.event.timestamp, &r.event.id);
            txn.put(format!("event {i}"), &ev_key, r.event, PutIf::Always)?;
            self.push_audit(&mut txn, format!("audit {i}"), r.audit)?;
            let key = keys::idempotency(t, license_id, &r.idempotency.key);
            let when = PutIf::NewOrExpired {
                now_epoch: now.unix_timestamp(),
            };
            txn.put(format!("idem {i}"), &key, r.idempotency, when)?;
        }
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(ChunkOutcome::Recorded),
            Err(TxnError::Other(e)) => Err(e),
            Err(TxnError::Cancelled(c)) => Ok(ChunkOutcome::Cancelled {
                taken: (0..records.len())
                    .filter(|i| c.failed(&format!("idem {i}")))
                    .collect(),
            }),
        }
    }

    /// Which of `wanted` (distinct values) exist: their partition keys
    /// (strongly consistent, batched by 100 keys).
    pub async fn existing(&self, wanted: &[keys::Key]) -> Result<HashSet<String>, Error> {
        let mut out = HashSet::new();
        for chunk in wanted.chunks(100) {
            for item in self.batch_get(chunk).await? {
                if let Some(pk) = get_s(&item, keys::PK) {
                    out.insert(pk.to_string());
                }
            }
        }
        Ok(out)
    }

    /// The idempotency records of `ids` on one license that exist (batched
    /// by 100 keys).
    pub async fn idempotency_records(
        &self,
        license_id: &LicenseId,
        ids: &[&str],
    ) -> Result<HashMap<String, IdempotencyRecord>, Error> {
        let t = self.tenant_id();
        let wanted: Vec<keys::Key> = ids
            .iter()
            .map(|k| keys::idempotency(t, license_id, k))
            .collect();
        let mut out = HashMap::new();
        for chunk in wanted.chunks(100) {
            for item in self.batch_get(chunk).await? {
                let rec: IdempotencyRecord = from_item(item)?;
                out.insert(rec.key.clone(), rec);
            }
        }
        Ok(out)
    }

    /// Counters of one license (optionally one metric / one period key).
    pub async fn usage_of_license(
        &self,
        id: &LicenseId,
        metric: Option<&Metric>,
        period: Option<&str>,
    ) -> Result<Vec<UsageCounter>, Error> {
        let prefix = match metric {
            Some(m) => format!("{}{m}#", keys::USAGE_SK_PREFIX),
            None => keys::USAGE_SK_PREFIX.to_string(),
        };
        let items = self
            .query_all(keys::license_pk(self.tenant_id(), id), Some(&prefix))
            .await?;
        let mut out: Vec<UsageCounter> =
            items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        // Sharded counters (every metered record since sharding), added to
        // an earlier release's counter of the same period if there is one.
        for c in self.sharded_counters_of_license(id).await? {
            if metric.is_some_and(|m| m != &c.metric) {
                continue;
            }
            match out
                .iter_mut()
                .find(|o| o.metric == c.metric && o.period == c.period)
            {
                Some(o) => {
                    o.used += c.used;
                    o.limit = c.limit;
                }
                None => out.push(c),
            }
        }
        if let Some(p) = period {
            out.retain(|c| c.period == p || (p.len() == 7 && c.period.starts_with(p)));
        }
        Ok(out)
    }

    /// Every counter of the tenant for a month (`YYYY-MM`, day counters
    /// included) or for `total`, a page at a time. The rows live in
    /// [`keys::USAGE_SHARDS`] index partitions; one page reads them in turn
    /// until it is full, and the cursor says where it stopped.
    pub async fn usage_by_period(
        &self,
        signer: &Signer,
        partition: &str,
        metric: Option<&Metric>,
        limit: i32,
        cursor_: Option<&str>,
    ) -> Result<Page<UsageCounter>, Error> {
        let listing = format!("usage:{partition}");
        let mut start: Option<Item> = cursor_
            .map(|c| cursor::decode(signer, self.tenant_id(), &listing, c))
            .transpose()?;
        // The shard being read rides in the cursor as an extra attribute.
        let mut shard: u8 = match start.as_mut().and_then(|k| k.remove("shard")) {
            Some(v) => v
                .as_s()
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|s| *s < keys::USAGE_SHARDS)
                .ok_or(Error::InvalidCursor)?,
            None => 0,
        };
        if start.as_ref().is_some_and(|k| k.is_empty()) {
            start = None;
        }
        let mut items = Vec::new();
        loop {
            let mut e = Expr::default();
            let cond = format!(
                "{} = {}",
                e.name(keys::GSI1PK),
                e.val(s(keys::usage_period_index_pk(
                    self.tenant_id(),
                    partition,
                    shard
                )))
            );
            let filter =
                metric.map(|m| format!("{} = {}", e.name(a::METRIC), e.val(s(m.as_str()))));
            let page = self
                .db()
                .query()
                .table_name(self.table())
                .index_name(keys::GSI1)
                .key_condition_expression(cond)
                .set_filter_expression(filter)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .set_exclusive_start_key(start.take())
                .limit(limit - items.len() as i32)
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in page.items.unwrap_or_default() {
                items.push(self.counter_of_row(item).await?);
            }
            let lek = page.last_evaluated_key.filter(|k| !k.is_empty());
            let next = match lek {
                Some(k) => Some((shard, k)),
                None if shard + 1 < keys::USAGE_SHARDS => Some((shard + 1, Item::new())),
                None => None,
            };
            match next {
                None => {
                    return Ok(Page {
                        items,
                        next_cursor: None,
                    })
                }
                Some((sh, mut k)) if items.len() as i32 >= limit => {
                    k.insert("shard".into(), s(sh.to_string()));
                    return Ok(Page {
                        items,
                        next_cursor: cursor::encode(signer, self.tenant_id(), &listing, &k),
                    });
                }
                Some((sh, k)) => {
                    shard = sh;
                    start = (!k.is_empty()).then_some(k);
                }
            }
        }
    }
}

impl TenantStore {
    /// An export row: an earlier release's counter as it is, or a sharded
    /// counter's head, summed over its shards (one BatchGetItem).
    async fn counter_of_row(&self, item: Item) -> Result<UsageCounter, Error> {
        if get_s(&item, keys::SK) != Some(keys::COUNTER_SK) {
            return from_item(item);
        }
        let head: UsageCounter = from_item(item)?;
        let Some(lid) = head.license_id.clone() else {
            return Ok(head);
        };
        let summed = self
            .sum_counters(&lid, &[(head.metric.clone(), head.period.clone())])
            .await?;
        Ok(summed.into_iter().next().unwrap_or(head))
    }

    /// The write that adds `seconds` to a license's floating overage time
    /// this month: a usage counter like any other, so the usage report and
    /// export list it (metric `floating_overage_seconds`).
    pub(crate) fn overage_counter(
        &self,
        lid: &LicenseId,
        seconds: i64,
        now: OffsetDateTime,
    ) -> Result<Write, Error> {
        let t = self.tenant_id();
        let metric = Metric::parse(super::seats::FLOATING_OVERAGE_METRIC)?;
        let month = month_of(now);
        let index_pk = keys::usage_period_index_pk(t, &month, keys::usage_shard(lid));
        let mut w = Write::to(keys::usage_counter(t, lid, &metric, &month));
        w.set(a::METRIC, &metric)
            .set(a::PERIOD, &month)
            .set(a::LICENSE_ID, lid)
            .set(keys::GSI1PK, &index_pk)
            .set(keys::GSI1SK, &format!("{lid}#{metric}#{month}"))
            .add(a::USED, seconds);
        Ok(w)
    }
}
