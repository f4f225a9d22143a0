//! Records of `unique_count`, `max` and `last` metrics (the rules are in
//! `domain::aggregation`; why they stay exact in `docs/data-model.md`).
//!
//! * `unique_count`: a value already counted (its distinct item exists) is
//!   recorded without touching the counter, and is never refused by the
//!   limit. A new value takes 1 from a shard exactly like a sum record of
//!   quantity 1, in the same transaction as the conditional put of its
//!   distinct item; when that put fails, a concurrent record counted the
//!   value first, and this one is recorded as a repeat.
//! * `max` / `last`: a record that the shards as read already beat writes
//!   no shard; otherwise one shard is set under the condition that it does
//!   not hold something better, and a refusal means it does.

use super::batch::{one, record_parts, rejected, BatchEvent, Outcome, CHUNK};
use super::record::{count, shard_no, Counted, Pending, Terms, Written};
use super::RecordReply;
use crate::cache::Policies;
use crate::domain::aggregation::{applied, distinct_value, dominated, Reading};
use crate::domain::metering::Shard;
use crate::domain::{Actor, Aggregation, PeriodWindow};
use crate::error::Error;
use crate::store::counters::{total, CounterRef};
use crate::store::usage::{ChunkOutcome, ChunkRecord, DistinctValue};
use crate::store::{keys, TenantStore};
use time::{Duration, OffsetDateTime};

/// How long after its period ends a distinct value is kept: past the last
/// record the period can take (7 days of backdating), with room to spare.
const DISTINCT_KEPT: Duration = Duration::days(40);

/// A record of a `unique_count` metric whose value has this digest.
pub(crate) async fn unique(
    p: &Pending<'_>,
    counter: &CounterRef<'_>,
    shards: Vec<Shard>,
    digest: &str,
) -> Result<RecordReply, Error> {
    let key = keys::distinct_value(
        p.ts.tenant_id(),
        p.id,
        &p.input.metric,
        &p.window.key,
        digest,
    );
    let used = total(&shards, 0);
    // Counted before: a repeat (strongly consistent; distinct items are
    // never deleted while their period can take records).
    if p.ts.get(&key).await?.is_some() {
        return repeat(p, used).await;
    }
    let d = DistinctValue {
        key,
        license_id: p.id.clone(),
        metric: p.input.metric.clone(),
        period: p.window.key.clone(),
        usage_event_id: p.event.id.clone(),
        created_at: p.now,
        ttl: p
            .window
            .resets_at
            .and_then(|r| r.checked_add(DISTINCT_KEPT))
            .map(|t| t.unix_timestamp()),
    };
    match count(p, counter, shards, 0, 1, Some(&d)).await? {
        Counted::Reply(r) => Ok(r),
        Counted::Repeat { used } => repeat(p, used).await,
    }
}

/// A record that moves no counter: the event, its audit item (without the
/// meter) and its idempotency record.
async fn repeat(p: &Pending<'_>, used: u64) -> Result<RecordReply, Error> {
    match p.write(None, None, used, true).await? {
        Written::Done(r) => Ok(r),
        _ => Err(Error::internal(
            "a record without a counter write was refused",
        )),
    }
}

/// Epoch milliseconds (the order `last` keeps).
pub(crate) fn millis(at: OffsetDateTime) -> Result<i64, Error> {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(Error::internal)
}

/// A record of a `max` or `last` metric (no limit: never refused).
pub(crate) async fn extreme(
    p: &Pending<'_>,
    counter: &CounterRef<'_>,
    readings: &[Reading],
    at: OffsetDateTime,
) -> Result<RecordReply, Error> {
    let (agg, q, at_ms) = (p.terms.aggregation, p.input.quantity, millis(at)?);
    let used = applied(agg, readings, q, at_ms);
    if !dominated(agg, readings, q, at_ms) {
        // The head shard carries the counter's index rows: the first record
        // of a period goes to it; later ones spread over the shards.
        let shard = if readings.first() == Some(&Reading::default()) {
            0
        } else {
            rand::random_range(0..readings.len().max(1))
        };
        let w = p.ts.extreme_write(counter, shard_no(shard)?, q, at_ms)?;
        match p.write(Some(&w), None, used, false).await? {
            Written::Done(r) => return Ok(r),
            // That shard holds a value that beats this record: the counter
            // needs nothing from it (values only ever move that way).
            Written::ShardRefused => {}
            Written::Repeat => return Err(Error::internal("no distinct value here")),
        }
    }
    match p.write(None, None, used, false).await? {
        Written::Done(r) => Ok(r),
        _ => Err(Error::internal(
            "a record without a counter write was refused",
        )),
    }
}

/// A batch's events of one counter that is not a `sum`.
pub(crate) struct Group<'a> {
    pub policies: &'a Policies,
    pub ts: &'a TenantStore,
    pub actor: &'a Actor,
    pub terms: &'a Terms,
    pub window: &'a PeriodWindow,
    pub counter: &'a CounterRef<'a>,
    pub now: OffsetDateTime,
}

impl Group<'_> {
    /// `max` / `last`: each event through the single-record path.
    /// `unique_count`: events without the property are rejected
    /// (`UNIQUE_BY_REQUIRED`); events whose value is counted already are
    /// recorded in chunks with no counter write; the others one at a time
    /// (each new value's count and distinct item in one transaction, so a
    /// value that comes twice in the batch counts once).
    pub(crate) async fn batch(
        &self,
        events: &[BatchEvent],
        members: &[usize],
    ) -> Result<Vec<(usize, Outcome)>, Error> {
        let mut out = Vec::new();
        let mut singles = members.to_vec();
        if let (Aggregation::UniqueCount, Some(by)) =
            (self.terms.aggregation, self.terms.unique_by.as_ref())
        {
            let c = self.counter;
            let mut keyed = Vec::new();
            for &i in members {
                match distinct_value(&events[i].properties, by) {
                    Err(e) => out.push((i, rejected(&e))),
                    Ok(d) => {
                        let t = self.ts.tenant_id();
                        keyed.push((
                            i,
                            keys::distinct_value(t, c.license, c.metric, c.period, &d),
                        ));
                    }
                }
            }
            let mut unique: Vec<keys::Key> = keyed.iter().map(|(_, k)| k.clone()).collect();
            unique.sort_by(|a, b| a.pk.cmp(&b.pk));
            unique.dedup();
            let counted = self.ts.existing(&unique).await?;
            let (repeats, fresh): (Vec<_>, Vec<_>) = keyed
                .into_iter()
                .partition(|(_, k)| counted.contains(&k.pk));
            singles = fresh.into_iter().map(|(i, _)| i).collect();
            let repeats: Vec<usize> = repeats.into_iter().map(|(i, _)| i).collect();
            let used = total(&self.ts.snapshot_shards(c).await?, 0);
            for chunk in repeats.chunks(CHUNK) {
                out.extend(self.repeats(events, chunk, used).await?);
            }
        }
        for i in singles {
            let o = one(self.policies, self.ts, self.actor, &events[i], self.now).await;
            out.push((i, o));
        }
        Ok(out)
    }

    /// Events of values counted already, in one transaction (no counter
    /// write, no meter); a taken id makes them go one at a time.
    async fn repeats(
        &self,
        events: &[BatchEvent],
        chunk: &[usize],
        used: u64,
    ) -> Result<Vec<(usize, Outcome)>, Error> {
        let lid = self.counter.license;
        let parts = chunk
            .iter()
            .map(|&i| {
                let e = &events[i];
                record_parts(
                    self.ts,
                    self.actor,
                    lid,
                    e,
                    self.window,
                    self.terms,
                    used,
                    self.now,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let records: Vec<ChunkRecord<'_>> = parts
            .iter()
            .map(|(event, audit, idempotency)| ChunkRecord {
                event,
                audit,
                idempotency,
            })
            .collect();
        let limit = self.terms.limit;
        Ok(
            match self.ts.record_chunk(lid, None, &records, self.now).await? {
                ChunkOutcome::Recorded => chunk
                    .iter()
                    .map(|&i| (i, Outcome::Recorded { used, limit }))
                    .collect(),
                ChunkOutcome::Cancelled { .. } => {
                    let mut out = Vec::new();
                    for &i in chunk {
                        let o = one(self.policies, self.ts, self.actor, &events[i], self.now).await;
                        out.push((i, o));
                    }
                    out
                }
            },
        )
    }
}
