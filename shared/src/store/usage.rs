//! Usage metering: one TransactWriteItems per record holds the license check,
//! the period counter (conditional on a hard limit), the append-only usage
//! event and the idempotency record.

use super::catalog::Page;
use super::licenses::in_force;
use super::{
    cursor, from_item, get_s, key_item, keys, n, put_item, s, sdk_error, transact, Expr, Item,
    TenantStore, TxnError,
};
use crate::clock::ts;
use crate::crypto::Signer;
use crate::domain::{License, UsageCounter};
use crate::error::Error;
use crate::ids::{LicenseId, Metric};
use aws_sdk_dynamodb::types::{
    ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use serde::{Deserialize, Serialize};
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

/// One append-only usage event; it is also the audit entry of the record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageEvent {
    pub id: String,
    pub code: String,
    pub license_id: LicenseId,
    pub metric: Metric,
    pub quantity: u64,
    pub period: String,
    #[serde(with = "ts")]
    pub timestamp: OffsetDateTime,
    #[serde(with = "ts")]
    pub recorded_at: OffsetDateTime,
    pub actor: String,
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// Everything one usage record writes.
pub struct RecordWrite<'a> {
    pub license: &'a License,
    pub metric: &'a Metric,
    pub period_key: &'a str,
    pub resets_at: Option<OffsetDateTime>,
    pub quantity: u64,
    pub limit: u64,
    /// Overage `deny`: the counter may not pass `limit`.
    pub hard_limit: bool,
    pub event: &'a UsageEvent,
    pub idempotency: Option<&'a IdempotencyRecord>,
    pub now: OffsetDateTime,
}

#[derive(Debug)]
pub enum RecordOutcome {
    Recorded,
    /// The idempotency key was used before: its first response.
    Replay(IdempotencyRecord),
    QuotaExceeded {
        used: u64,
    },
    LicenseNotInForce(Option<Box<License>>),
}

const ALL_OLD: ReturnValuesOnConditionCheckFailure = ReturnValuesOnConditionCheckFailure::AllOld;

/// The GSI1 partition a counter is exported from: its month (day counters
/// too) or `total`.
pub fn export_partition(period_key: &str) -> &str {
    if period_key.len() >= 7 && period_key != "total" {
        &period_key[..7]
    } else {
        period_key
    }
}

/// `YYYY-MM` of a time (UTC).
pub fn month_of(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

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
        let start = cursor_
            .map(|c| cursor::decode(signer, self.tenant_id(), &listing, c))
            .transpose()?;
        let (items, lek) = self
            .query_page(
                keys::usage_events_pk(self.tenant_id(), id, month),
                None,
                true,
                limit,
                start,
                None,
            )
            .await?;
        Ok(Page {
            items: items.into_iter().map(from_item).collect::<Result<_, _>>()?,
            next_cursor: lek.and_then(|k| cursor::encode(signer, self.tenant_id(), &listing, &k)),
        })
    }

    /// One BatchGetItem: the license, the metric's counters for the given
    /// period keys (the record does not know the metric's period until it has
    /// read the license, so it asks for each candidate) and, when given, the
    /// idempotency record.
    pub async fn read_for_record(
        &self,
        id: &LicenseId,
        metric: &Metric,
        period_keys: &[String],
        idempotency_key: Option<&str>,
    ) -> Result<
        (
            Option<License>,
            Vec<UsageCounter>,
            Option<IdempotencyRecord>,
        ),
        Error,
    > {
        let t = self.tenant_id();
        let mut wanted = vec![keys::license(t, id)];
        wanted.extend(
            period_keys
                .iter()
                .map(|p| keys::usage_counter(t, id, metric, p)),
        );
        if let Some(k) = idempotency_key {
            wanted.push(keys::idempotency(t, k));
        }
        let (mut license, mut counters, mut idem) = (None, Vec::new(), None);
        for item in self.batch_get(&wanted).await? {
            match get_s(&item, keys::SK) {
                Some(keys::LICENSE_SK) => license = Some(from_item(item)?),
                Some("IDEM") => idem = Some(from_item(item)?),
                _ => counters.push(from_item(item)?),
            }
        }
        Ok((license, counters, idem))
    }

    pub async fn get_idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, Error> {
        self.get(&keys::idempotency(self.tenant_id(), key))
            .await?
            .map(from_item)
            .transpose()
    }

    pub async fn record_usage(&self, w: RecordWrite<'_>) -> Result<RecordOutcome, Error> {
        let t = self.tenant_id();
        let lid = &w.license.id;

        // 1. The license is (still) in force.
        let mut e = Expr::new();
        let cond = format!("attribute_exists(PK) AND {}", in_force(&mut e, w.now));
        let check = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&keys::license(t, lid))))
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values_on_condition_check_failure(ALL_OLD)
            .build()
            .map_err(Error::internal)?;

        // 2. The period counter, conditional on the hard limit.
        let mut e = Expr::new();
        let used = e.name("used");
        let mut sets = vec![
            format!("{} = {}", e.name("metric"), e.val(s(w.metric.as_str()))),
            format!("{} = {}", e.name("period"), e.val(s(w.period_key))),
            format!("{} = {}", e.name("license_id"), e.val(s(lid.as_str()))),
            format!(
                "{} = {}",
                e.name("customer_email"),
                e.val(s(w.license.customer_email.as_str()))
            ),
            format!("{} = {}", e.name("limit"), e.val(n(w.limit as i64))),
            format!(
                "{} = {}",
                e.name(keys::GSI1PK),
                e.val(s(keys::usage_period_index_pk(
                    t,
                    export_partition(w.period_key),
                    keys::usage_shard(lid)
                )))
            ),
            format!(
                "{} = {}",
                e.name(keys::GSI1SK),
                e.val(s(format!("{lid}#{}#{}", w.metric, w.period_key)))
            ),
        ];
        if let Some(r) = w.resets_at {
            sets.push(format!(
                "{} = {}",
                e.name("resets_epoch"),
                e.val(n(r.unix_timestamp()))
            ));
        }
        let update = format!(
            "SET {} ADD {used} {}",
            sets.join(", "),
            e.val(n(w.quantity as i64))
        );
        // used + quantity <= limit, written without arithmetic in the condition.
        let hard_limit = w.hard_limit.then(|| {
            let max_before = w.limit.saturating_sub(w.quantity) as i64;
            format!(
                "attribute_not_exists({used}) OR {used} <= {}",
                e.val(n(max_before))
            )
        });
        let counter = super::update_item(
            self.table(),
            &keys::usage_counter(t, lid, w.metric, w.period_key),
            update,
            hard_limit,
            &e,
        )?;

        // 3. The append-only event.
        let ev_key = keys::Key {
            pk: keys::usage_events_pk(t, lid, &month_of(w.event.timestamp)),
            sk: format!(
                "{}#{}",
                w.event.timestamp.unix_timestamp_nanos() / 1_000_000,
                w.event.id
            ),
        };
        let event = put_item(self.table(), &ev_key, w.event, None)?;

        let mut items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            counter,
            TransactWriteItem::builder().put(event).build(),
        ];
        // 4. The idempotency record: new, or void (past its TTL; DynamoDB's
        //    TTL deletion is lazy, so an expired record may still be there).
        if let Some(idem) = w.idempotency {
            let mut e = Expr::new();
            let ttl = e.name(keys::TTL);
            let put = Put::builder()
                .table_name(self.table())
                .set_item(Some(super::to_item(
                    &keys::idempotency(t, &idem.key),
                    idem,
                )?))
                .condition_expression(format!(
                    "attribute_not_exists(PK) OR {ttl} < {}",
                    e.val(n(w.now.unix_timestamp()))
                ))
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .return_values_on_condition_check_failure(ALL_OLD)
                .build()
                .map_err(Error::internal)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }

        match transact(self.db(), items, None).await {
            Ok(()) => Ok(RecordOutcome::Recorded),
            Err(TxnError::Other(e)) => Err(e),
            Err(TxnError::Cancelled(r)) => {
                if let Some(idem) = r.get(3).filter(|r| r.failed()) {
                    let rec = idem.item.clone().ok_or_else(|| {
                        Error::internal("idempotency conflict without the record")
                    })?;
                    return Ok(RecordOutcome::Replay(from_item(rec)?));
                }
                if r[0].failed() {
                    let l = r[0].item.clone().map(from_item).transpose()?.map(Box::new);
                    return Ok(RecordOutcome::LicenseNotInForce(l));
                }
                if r[1].failed() {
                    let used = r[1]
                        .item
                        .as_ref()
                        .and_then(|i| super::get_n(i, "used"))
                        .unwrap_or(0) as u64;
                    return Ok(RecordOutcome::QuotaExceeded { used });
                }
                Err(Error::internal(format!("usage record cancelled: {r:?}")))
            }
        }
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
                .ok_or_else(|| Error::BadRequest {
                    code: "INVALID_CURSOR",
                    message: "cursor is not valid for this listing".into(),
                })?,
            None => 0,
        };
        if start.as_ref().is_some_and(|k| k.is_empty()) {
            start = None;
        }
        let mut items = Vec::new();
        loop {
            let mut e = Expr::new();
            let cond = format!(
                "{} = {}",
                e.name(keys::GSI1PK),
                e.val(s(keys::usage_period_index_pk(
                    self.tenant_id(),
                    partition,
                    shard
                )))
            );
            let filter = metric.map(|m| format!("{} = {}", e.name("metric"), e.val(s(m.as_str()))));
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
                items.push(from_item::<UsageCounter>(item)?);
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
