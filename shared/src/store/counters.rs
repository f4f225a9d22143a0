//! Sharded usage counters (see `domain::metering` for the rules and
//! `docs/data-model.md` for why the hard limit stays exact): reading the
//! shards, an atomic snapshot of them, budgeting and gathering room, and the
//! write that takes a record's quantity from one shard.

use super::attrs as a;
use super::write::{from_item, get_n, get_s, key_item, Txn, TxnError, Write};
use super::{keys, sdk_error, Item, TenantStore};
use crate::domain::aggregation::{combine, Reading};
use crate::domain::metering::Shard;
use crate::domain::{Aggregation, UsageCounter};
use crate::error::Error;
use crate::ids::{Email, LicenseId, Metric};
use aws_sdk_dynamodb::types::{Get, TransactGetItem};
use std::collections::HashMap;
use time::OffsetDateTime;

/// `room`: a shard's unused budget under a hard limit.
pub const ROOM: &str = "room";
/// `shard`: a shard's number.
pub const SHARD: &str = "shard";
/// `aggregation`: how the counter's shards combine (absent: `sum`).
pub const AGGREGATION: &str = "aggregation";
/// `at`: `max` / `last` shards, epoch milliseconds of the record whose
/// quantity the shard holds.
pub const AT: &str = "at";

/// Which counter, and what its head shard's index rows say about it.
#[derive(Debug, Clone)]
pub struct CounterRef<'a> {
    pub license: &'a LicenseId,
    pub customer_email: &'a Email,
    pub metric: &'a Metric,
    pub period: &'a str,
    pub resets_at: Option<OffsetDateTime>,
    /// The limit in force (shown by reports; budgets are made for it);
    /// `None` for `max` / `last`.
    pub limit: Option<u64>,
    pub aggregation: Aggregation,
}

impl CounterRef<'_> {
    /// The limit a budget is made for (only hard limits have budgets).
    fn budget_limit(&self) -> Result<u64, Error> {
        self.limit
            .ok_or_else(|| Error::internal("a counter budget without a limit"))
    }
}

/// A shard as stored.
pub fn shard_of_item(item: &Item) -> Shard {
    Shard {
        used: get_n(item, a::USED).unwrap_or(0),
        room: get_n(item, ROOM),
        limit: get_n(item, a::LIMIT),
    }
}

/// A shard as `max` / `last` combine it.
pub fn reading_of_item(item: &Item) -> Reading {
    Reading {
        used: get_n(item, a::USED).unwrap_or(0),
        at: get_n(item, AT),
    }
}

/// The readings of a counter's shards in shard order (missing: empty).
pub fn readings_from(keys_: &[keys::Key], found: &HashMap<String, Item>) -> Vec<Reading> {
    keys_
        .iter()
        .map(|k| found.get(&k.pk).map(reading_of_item).unwrap_or_default())
        .collect()
}

/// The shards of a counter in shard order from a set of read items (a
/// missing shard is an empty, unbudgeted one).
pub fn shards_from(keys_: &[keys::Key], found: &HashMap<String, Item>) -> Vec<Shard> {
    keys_
        .iter()
        .map(|k| found.get(&k.pk).map(shard_of_item).unwrap_or_default())
        .collect()
}

/// The counter's total over its shards (and a legacy counter's `used`).
pub fn total(shards: &[Shard], carried: u64) -> u64 {
    shards.iter().map(|s| s.used).sum::<u64>() + carried
}

impl TenantStore {
    /// An atomic snapshot of every shard of a counter (TransactGetItems):
    /// what a refusal is proven on.
    pub async fn snapshot_shards(&self, c: &CounterRef<'_>) -> Result<Vec<Shard>, Error> {
        Ok(self.snapshot_with(c, None).await?.0)
    }

    /// An atomic snapshot of every shard and, when given, whether a
    /// distinct value exists at that same instant (a `unique_count` record
    /// is refused only when its value is not counted and no shard has room).
    pub async fn snapshot_with(
        &self,
        c: &CounterRef<'_>,
        distinct: Option<&keys::Key>,
    ) -> Result<(Vec<Shard>, bool), Error> {
        let mut wanted = keys::counter_shards(self.tenant_id(), c.license, c.metric, c.period);
        let n = wanted.len();
        wanted.extend(distinct.cloned());
        let mut req = self.db().transact_get_items();
        for k in &wanted {
            let get = Get::builder()
                .table_name(self.table())
                .set_key(Some(key_item(k)))
                .build()
                .map_err(Error::internal)?;
            req = req.transact_items(TransactGetItem::builder().get(get).build());
        }
        let out = req
            .send()
            .await
            .map_err(|e| sdk_error("TransactGetItems", e))?;
        let got = out.responses.unwrap_or_default();
        let shards = (0..n)
            .map(|i| {
                got.get(i)
                    .and_then(|r| r.item.as_ref())
                    .map(shard_of_item)
                    .unwrap_or_default()
            })
            .collect();
        let found = distinct.is_some() && got.get(n).is_some_and(|r| r.item.is_some());
        Ok((shards, found))
    }

    /// The attributes every write of a shard sets (and, on the head shard,
    /// the index keys of the export and of the license's report).
    fn shard_write(&self, c: &CounterRef<'_>, shard: u8) -> Write {
        let t = self.tenant_id();
        let mut w = Write::to(keys::counter_shard(t, c.license, c.metric, c.period, shard));
        w.set(a::METRIC, c.metric)
            .set(a::PERIOD, c.period)
            .set(a::LICENSE_ID, c.license)
            .set(a::CUSTOMER_EMAIL, c.customer_email)
            .set_some(a::LIMIT, c.limit.as_ref())
            .set(AGGREGATION, &c.aggregation)
            .set(SHARD, &shard)
            .set_some(
                a::RESETS_EPOCH,
                c.resets_at.map(|r| r.unix_timestamp()).as_ref(),
            );
        if shard == 0 {
            let export = keys::usage_period_index_pk(
                t,
                super::usage::export_partition(c.period),
                keys::usage_shard(c.license),
            );
            w.set(keys::GSI1PK, &export)
                .set(
                    keys::GSI1SK,
                    &format!("{}#{}#{}", c.license, c.metric, c.period),
                )
                .set(keys::GSI2PK, &keys::license_counters_index_pk(t, c.license))
                .set(keys::GSI2SK, &format!("{}#{}", c.metric, c.period));
        }
        w
    }

    /// A record's share of a hard-limited counter: `quantity` from shard
    /// `shard`, under `room >= quantity` and the budget's own limit, or,
    /// when the shard is untouched, from its `opening` room (see
    /// `domain::metering::openings`), which the write then sets.
    pub(crate) fn take_write(
        &self,
        c: &CounterRef<'_>,
        shard: u8,
        quantity: u64,
        opening: u64,
    ) -> Result<Write, Error> {
        let q = i64::try_from(quantity).map_err(|_| Error::validation("quantity out of range"))?;
        let limit = c.budget_limit()?;
        let mut w = self.shard_write(c, shard);
        w.add(a::USED, q).increment_from(ROOM, opening, -q);
        w.if_expr(|e| {
            let holds = has_room(e, limit, quantity);
            match opening >= quantity {
                true => format!("({}) OR ({holds})", untouched(e)),
                false => holds,
            }
        });
        Ok(w)
    }

    /// A `max` / `last` record's write of one shard: `used = quantity` and
    /// `at = at_ms` if the shard holds nothing yet or something it beats —
    /// a smaller value (`max`), an earlier-or-equal timestamp (`last`).
    /// Failing the condition means the shard already holds a value that
    /// beats this record, so the counter needs nothing from it.
    pub(crate) fn extreme_write(
        &self,
        c: &CounterRef<'_>,
        shard: u8,
        quantity: u64,
        at_ms: i64,
    ) -> Result<Write, Error> {
        let mut w = self.shard_write(c, shard);
        w.set(a::USED, &quantity).set(AT, &at_ms).remove(ROOM);
        match c.aggregation {
            Aggregation::Max => w.if_absent_or_below(a::USED, quantity),
            Aggregation::Last => w.if_absent_or_at_most(AT, at_ms),
            other => {
                return Err(Error::internal(format!(
                    "no extreme write for aggregation {other}"
                )))
            }
        };
        Ok(w)
    }

    /// A record of a metric without a hard limit: `used += quantity` on any
    /// shard (the room is dropped: a later hard limit budgets afresh).
    pub(crate) fn add_write(
        &self,
        c: &CounterRef<'_>,
        shard: u8,
        quantity: u64,
    ) -> Result<Write, Error> {
        let q = i64::try_from(quantity).map_err(|_| Error::validation("quantity out of range"))?;
        let mut w = self.shard_write(c, shard);
        w.add(a::USED, q).remove(ROOM);
        Ok(w)
    }

    /// Give every shard the room `rooms[i]` for `c.limit`, conditioned on
    /// each shard being exactly as `before` (so Σ room + Σ used is what the
    /// caller computed from an exact picture). `false`: a shard moved.
    pub async fn budget_shards(
        &self,
        c: &CounterRef<'_>,
        before: &[Shard],
        rooms: &[u64],
    ) -> Result<bool, Error> {
        c.budget_limit()?;
        let mut txn = Txn::new();
        for (i, (b, room)) in before.iter().zip(rooms).enumerate() {
            let shard = u8::try_from(i).map_err(Error::internal)?;
            let mut w = self.shard_write(c, shard);
            w.set(ROOM, room);
            if b.untouched() {
                w.if_expr(untouched);
            } else {
                // A shard that only ever had room moved into it has no
                // `used` yet.
                w.if_absent_or_eq(a::USED, &b.used);
                match b.room {
                    Some(r) => w.if_eq(ROOM, &r),
                    None => w.if_absent(ROOM),
                };
            }
            txn.update(format!("shard {i}"), &w)?;
        }
        settle(txn.run(self.db(), self.table()).await)
    }

    /// Move room from donors into `into` (each donor conditioned on having
    /// it): Σ room is unchanged. An untouched shard gives or receives from
    /// its opening room (`openings[i]`). `false`: a donor no longer had it.
    pub async fn gather_room(
        &self,
        c: &CounterRef<'_>,
        into: u8,
        moves: &[(u8, u64)],
        openings: &[u64],
    ) -> Result<bool, Error> {
        let limit = c.budget_limit()?;
        let opening = |i: u8| openings.get(usize::from(i)).copied().unwrap_or(0);
        let mut txn = Txn::new();
        let mut sum: i64 = 0;
        for &(d, m) in moves {
            let m_i = i64::try_from(m).map_err(Error::internal)?;
            let mut w = self.shard_write(c, d);
            w.increment_from(ROOM, opening(d), -m_i);
            w.if_expr(|e| {
                let holds = has_room(e, limit, m);
                match opening(d) >= m {
                    true => format!("({}) OR ({holds})", untouched(e)),
                    false => holds,
                }
            });
            txn.update(format!("donor {d}"), &w)?;
            sum = sum.saturating_add(m_i);
        }
        let mut w = self.shard_write(c, into);
        w.increment_from(ROOM, opening(into), sum);
        w.if_expr(|e| {
            let (room, lim) = (e.name(ROOM), e.name(a::LIMIT));
            let l = e.val(super::write::n(limit));
            format!(
                "({}) OR (attribute_exists({room}) AND {lim} = {l})",
                untouched(e)
            )
        });
        txn.update("into", &w)?;
        settle(txn.run(self.db(), self.table()).await)
    }

    /// The usage of the current period of each metered entitlement of
    /// `specs`, summed over its shards, plus what a counter of an earlier
    /// release holds in the license partition (`U#<metric>#<period>`): one
    /// BatchGetItem of exactly those keys ([`keys::COUNTER_SHARDS`] + 1 per
    /// metered entitlement), whatever the license's history — past periods
    /// are never read. Nothing is read when no entitlement is metered.
    pub async fn current_usage(
        &self,
        id: &LicenseId,
        specs: &crate::domain::Entitlements,
        now: OffsetDateTime,
    ) -> Result<crate::domain::UsageSnapshot, Error> {
        let mut usage = crate::domain::UsageSnapshot::new();
        let which = crate::domain::current_periods(specs, now);
        if which.is_empty() {
            return Ok(usage);
        }
        let t = self.tenant_id();
        let mut wanted: Vec<keys::Key> = Vec::new();
        for (m, p) in &which {
            wanted.extend(keys::counter_shards(t, id, m, p));
            wanted.push(keys::usage_counter(t, id, m, p));
        }
        let mut shards = HashMap::new();
        let mut legacy = Vec::new();
        for chunk in wanted.chunks(100) {
            for item in self.batch_get(chunk).await? {
                let is_legacy =
                    get_s(&item, keys::SK).is_some_and(|sk| sk.starts_with(keys::USAGE_SK_PREFIX));
                if is_legacy {
                    legacy.push(from_item::<UsageCounter>(item)?);
                } else if let Some(pk) = get_s(&item, keys::PK) {
                    shards.insert(pk.to_string(), item);
                }
            }
        }
        for (m, p) in &which {
            if let Some(c) = sum_items(&keys::counter_shards(t, id, m, p), &shards)? {
                usage.insert((c.metric.to_string(), c.period.clone()), c);
            }
        }
        for c in legacy {
            let key = (c.metric.to_string(), c.period.clone());
            match usage.get_mut(&key) {
                // An earlier release summed every metric.
                Some(new) if new.aggregation.is_sum() => new.used += c.used,
                Some(_) => {}
                None => {
                    usage.insert(key, c);
                }
            }
        }
        Ok(usage)
    }

    /// Counters of one license of every period, from the head shards' GSI2
    /// rows, each summed over its shards.
    pub async fn sharded_counters_of_license(
        &self,
        id: &LicenseId,
    ) -> Result<Vec<UsageCounter>, Error> {
        let mut heads = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut e = super::write::Expr::default();
            let cond = format!(
                "{} = {}",
                e.name(keys::GSI2PK),
                e.val(super::write::s(keys::license_counters_index_pk(
                    self.tenant_id(),
                    id
                )))
            );
            let page = self
                .db()
                .query()
                .table_name(self.table())
                .index_name(keys::GSI2)
                .key_condition_expression(cond)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in page.items.unwrap_or_default() {
                let Some(sk) = get_s(&item, keys::GSI2SK) else {
                    continue;
                };
                if let Some((m, p)) = sk.split_once('#') {
                    heads.push((Metric::parse(m)?, p.to_string()));
                }
            }
            match page.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        self.sum_counters(id, &heads).await
    }

    /// The counters `(metric, period)` of a license, each summed over its
    /// shards (counters with no shard are left out).
    pub async fn sum_counters(
        &self,
        id: &LicenseId,
        which: &[(Metric, String)],
    ) -> Result<Vec<UsageCounter>, Error> {
        let t = self.tenant_id();
        let wanted: Vec<keys::Key> = which
            .iter()
            .flat_map(|(m, p)| keys::counter_shards(t, id, m, p))
            .collect();
        let mut found = HashMap::new();
        for chunk in wanted.chunks(100) {
            for item in self.batch_get(chunk).await? {
                if let Some(pk) = get_s(&item, keys::PK) {
                    found.insert(pk.to_string(), item);
                }
            }
        }
        let mut out = Vec::new();
        for (m, p) in which {
            let ks = keys::counter_shards(t, id, m, p);
            if let Some(c) = sum_items(&ks, &found)? {
                out.push(c);
            }
        }
        Ok(out)
    }
}

impl TenantStore {
    /// The counters asked, `(license, metric, period key)`, each combined
    /// over its shards (plus a legacy unsharded counter's `used` for `sum`,
    /// as [`TenantStore::current_usage`] reads it); absent: 0. One
    /// BatchGetItem per 100 keys, whatever the licenses' histories.
    pub async fn counter_totals(
        &self,
        which: &[(LicenseId, Metric, String)],
    ) -> Result<HashMap<(LicenseId, Metric, String), u64>, Error> {
        let t = self.tenant_id();
        let mut wanted: Vec<keys::Key> = Vec::new();
        for (l, m, p) in which {
            wanted.extend(keys::counter_shards(t, l, m, p));
            wanted.push(keys::usage_counter(t, l, m, p));
        }
        wanted.sort_by(|a, b| (&a.pk, &a.sk).cmp(&(&b.pk, &b.sk)));
        wanted.dedup_by(|a, b| a.pk == b.pk && a.sk == b.sk);
        let mut shards = HashMap::new();
        let mut legacy: HashMap<(String, String), Item> = HashMap::new();
        for chunk in wanted.chunks(100) {
            for item in self.batch_get(chunk).await? {
                let (Some(pk), Some(sk)) = (get_s(&item, keys::PK), get_s(&item, keys::SK)) else {
                    continue;
                };
                if sk.starts_with(keys::USAGE_SK_PREFIX) {
                    legacy.insert((pk.to_string(), sk.to_string()), item);
                } else {
                    shards.insert(pk.to_string(), item);
                }
            }
        }
        let mut out = HashMap::new();
        for (l, m, p) in which {
            let sharded = sum_items(&keys::counter_shards(t, l, m, p), &shards)?;
            let k = keys::usage_counter(t, l, m, p);
            let old = legacy
                .get(&(k.pk, k.sk))
                .map(|i| from_item::<UsageCounter>(i.clone()))
                .transpose()?;
            let used = match (sharded, old) {
                (Some(c), Some(o)) if c.aggregation.is_sum() => c.used + o.used,
                (Some(c), _) => c.used,
                (None, Some(o)) => o.used,
                (None, None) => 0,
            };
            out.insert((l.clone(), m.clone(), p.clone()), used);
        }
        Ok(out)
    }
}

/// One counter from its shards' items: metric, period, limit, reset and
/// aggregation of the head (or any shard), `used` combined over the shards
/// as the aggregation says (see `domain::aggregation::combine`).
pub fn sum_items(
    ks: &[keys::Key],
    found: &HashMap<String, Item>,
) -> Result<Option<UsageCounter>, Error> {
    let items: Vec<&Item> = ks.iter().filter_map(|k| found.get(&k.pk)).collect();
    let Some(first) = items.first() else {
        return Ok(None);
    };
    let mut c: UsageCounter = from_item((*first).clone())?;
    let readings: Vec<Reading> = items.iter().map(|i| reading_of_item(i)).collect();
    c.used = combine(c.aggregation, &readings);
    Ok(Some(c))
}

// Both conditions below are bare: `Write::if_expr` parenthesises, and
// DynamoDB refuses redundant parentheses.

/// The condition of an untouched shard (`domain::metering::Shard::untouched`):
/// no `room`, and `used` absent or 0.
fn untouched(e: &mut super::write::Expr) -> String {
    let (room, used, zero) = (e.name(ROOM), e.name(a::USED), e.val(super::write::n(0)));
    format!("attribute_not_exists({room}) AND (attribute_not_exists({used}) OR {used} = {zero})")
}

/// The condition of a shard budgeted for `limit` with at least `need` room.
fn has_room(e: &mut super::write::Expr, limit: u64, need: u64) -> String {
    let (room, lim) = (e.name(ROOM), e.name(a::LIMIT));
    let (need, l) = (e.val(super::write::n(need)), e.val(super::write::n(limit)));
    format!("{room} >= {need} AND {lim} = {l}")
}

fn settle(res: Result<(), TxnError>) -> Result<bool, Error> {
    match res {
        Ok(()) => Ok(true),
        Err(TxnError::Cancelled(_)) => Ok(false),
        Err(TxnError::Other(e)) => Err(e),
    }
}
