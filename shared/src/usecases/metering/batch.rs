//! `POST /v1/integration/usage/batch`: up to 500 records, each answered on
//! its own. Records of one counter go in chunks of 33 (3 items each, plus
//! the counter's one write for their sum: 100 items) into one
//! TransactWriteItems; a chunk the counter or an id refuses falls back to
//! one record at a time, which finds which ones fail and why.

use super::record::{metered_spec, record, usage_time, with_meter, Terms};
use super::{not_in_force, UsageInput, UsageRecorded, IDEMPOTENCY_TTL, MAX_QUANTITY};
use crate::cache::Policies;
use crate::domain::metering::{openings, plan, Plan};
use crate::domain::*;
use crate::error::Error;
use crate::ids::{LicenseId, LicenseKey, Metric};
use crate::store::counters::{total, CounterRef};
use crate::store::usage::{ChunkOutcome, ChunkRecord, IdempotencyRecord, UsageEvent};
use crate::store::{keys, TenantStore};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};
use time::OffsetDateTime;

/// The most events one batch may hold.
pub const MAX_BATCH: usize = 500;
/// Records per transaction: 3 items each, plus the counter's write.
pub(super) const CHUNK: usize = 33;

/// One event of a batch, as parsed.
pub struct BatchEvent {
    pub id: String,
    pub license_key: LicenseKey,
    pub metric: Metric,
    pub quantity: u64,
    pub timestamp: Option<OffsetDateTime>,
    pub properties: Map<String, Value>,
    /// Digest of the event's own JSON: the same id with another body is
    /// refused (`IDEMPOTENCY_KEY_REUSED`), as a replayed record would be.
    pub body_hash: String,
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Recorded {
        used: u64,
        /// `None` for `max` / `last`.
        limit: Option<u64>,
    },
    /// Its id was recorded before (in an earlier request or earlier in this one).
    Duplicate,
    Rejected {
        code: String,
        used: Option<u64>,
        limit: Option<u64>,
    },
}

pub(super) fn rejected(e: &Error) -> Outcome {
    match e {
        Error::QuotaExceeded { used, limit, .. } => Outcome::Rejected {
            code: "QUOTA_EXCEEDED".into(),
            used: Some(*used),
            limit: Some(*limit),
        },
        e => Outcome::Rejected {
            code: e.parts().1.to_string(),
            used: None,
            limit: None,
        },
    }
}

/// Record a batch. `own`: a client app's own license (it may batch only
/// that one: others' events are rejected `LICENSE_SCOPE_MISMATCH`).
pub async fn batch(
    policies: &Policies,
    ts: &TenantStore,
    actor: &Actor,
    own: Option<&LicenseId>,
    events: Vec<BatchEvent>,
    now: OffsetDateTime,
) -> Result<Vec<(String, Outcome)>, Error> {
    if events.is_empty() || events.len() > MAX_BATCH {
        return Err(Error::validation(format!(
            "events must hold 1 to {MAX_BATCH} events"
        )));
    }
    let mut out: Vec<Option<Outcome>> = vec![None; events.len()];
    let mut by_license: BTreeMap<LicenseId, Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        let lid = LicenseId::derive(ts.tenant_id(), &e.license_key);
        let bad = if own.is_some_and(|o| o != &lid) {
            Some(Error::denied(
                "LICENSE_SCOPE_MISMATCH",
                "a license key may record usage of its own license only",
            ))
        } else if e.id.is_empty() || e.id.len() > 255 || e.id.chars().any(char::is_control) {
            Some(Error::validation(
                "id must be 1 to 255 printable characters",
            ))
        } else if e.quantity == 0 || e.quantity > MAX_QUANTITY {
            Some(Error::validation(format!(
                "quantity must be an integer from 1 to {MAX_QUANTITY}"
            )))
        } else {
            usage_time(e.timestamp, now).err()
        };
        match bad {
            Some(err) => out[i] = Some(rejected(&err)),
            None => by_license.entry(lid).or_default().push(i),
        }
    }
    for (lid, idx) in by_license {
        let answers = license_batch(policies, ts, actor, &lid, &events, &idx, now).await?;
        for (i, o) in answers {
            out[i] = Some(o);
        }
    }
    Ok(events
        .into_iter()
        .zip(out)
        .map(|(e, o)| {
            let o = o.unwrap_or(Outcome::Rejected {
                code: "INTERNAL_ERROR".into(),
                used: None,
                limit: None,
            });
            (e.id, o)
        })
        .collect())
}

/// The events `idx` of one license.
async fn license_batch(
    policies: &Policies,
    ts: &TenantStore,
    actor: &Actor,
    lid: &LicenseId,
    events: &[BatchEvent],
    idx: &[usize],
    now: OffsetDateTime,
) -> Result<Vec<(usize, Outcome)>, Error> {
    let mut out = Vec::new();
    let license = match ts.get_license(lid).await? {
        None => {
            let e = crate::error::license_not_found();
            return Ok(idx.iter().map(|&i| (i, rejected(&e))).collect());
        }
        Some(l) => l,
    };
    if let Err(e) = not_in_force(&license, now) {
        return Ok(idx.iter().map(|&i| (i, rejected(&e))).collect());
    }
    let policy = policies.of_license(ts, &license.policy).await?;
    let specs = license.effective_entitlements(&policy);
    let ids: Vec<&str> = idx.iter().map(|&i| events[i].id.as_str()).collect();
    let known = ts.idempotency_records(lid, &ids).await?;
    let mut seen = HashSet::new();
    // (metric, period) → the events to write, in request order.
    let mut groups: BTreeMap<(Metric, String), Vec<usize>> = BTreeMap::new();
    for &i in idx {
        let e = &events[i];
        if !seen.insert(e.id.as_str()) {
            out.push((i, Outcome::Duplicate));
            continue;
        }
        if let Some(rec) = known.get(&e.id).filter(|r| r.ttl >= now.unix_timestamp()) {
            let o = if rec.body_hash == e.body_hash {
                Outcome::Duplicate
            } else {
                rejected(&Error::conflict("IDEMPOTENCY_KEY_REUSED", ""))
            };
            out.push((i, o));
            continue;
        }
        match metered_spec(&specs, &e.metric) {
            Err(err) => out.push((i, rejected(&err))),
            Ok(terms) => {
                let at = e.timestamp.unwrap_or(now);
                let key = (e.metric.clone(), terms.period.window(at).key);
                groups.entry(key).or_default().push(i);
            }
        }
    }
    for ((metric, period_key), members) in groups {
        let terms = metered_spec(&specs, &metric)?;
        let window = terms
            .period
            .window(events[members[0]].timestamp.unwrap_or(now));
        let counter = CounterRef {
            license: lid,
            customer_email: &license.customer_email,
            metric: &metric,
            period: &period_key,
            resets_at: window.resets_at,
            limit: terms.limit,
            aggregation: terms.aggregation,
        };
        if !terms.aggregation.is_sum() {
            let g = super::aggregate::Group {
                policies,
                ts,
                actor,
                terms: &terms,
                window: &window,
                counter: &counter,
                now,
            };
            out.extend(Box::pin(g.batch(events, &members)).await?);
            continue;
        }
        let (hard, limit) = (terms.hard, terms.limit.unwrap_or(0));
        let carried = ts
            .get_as::<UsageCounter>(&keys::usage_counter(
                ts.tenant_id(),
                lid,
                &metric,
                &period_key,
            ))
            .await?
            .map(|c| c.used)
            .unwrap_or(0);
        let mut shards = ts.snapshot_shards(&counter).await?;
        let n = shards.len();
        let open = openings(limit, carried, n);
        for chunk in members.chunks(CHUNK) {
            let sum: u64 = chunk.iter().map(|&i| events[i].quantity).sum();
            let mut written = false;
            for _ in 0..6 {
                let planned = match hard {
                    true => plan(&shards, carried, limit, sum, rand::random_range(0..n)),
                    false if shards[0] == Default::default() => Plan::Take(0),
                    false => Plan::Take(rand::random_range(0..n)),
                };
                let shard = match planned {
                    Plan::Take(s) => s,
                    Plan::Budget(rooms) => {
                        if ts.budget_shards(&counter, &shards, &rooms).await? {
                            for (s, r) in shards.iter_mut().zip(&rooms) {
                                (s.room, s.limit) = (Some(*r), Some(limit));
                            }
                        } else {
                            shards = ts.snapshot_shards(&counter).await?;
                        }
                        continue;
                    }
                    Plan::Gather { into, moves } => {
                        let moves: Vec<(u8, u64)> = moves
                            .into_iter()
                            .filter_map(|(d, m)| u8::try_from(d).ok().map(|d| (d, m)))
                            .collect();
                        let into = u8::try_from(into).map_err(Error::internal)?;
                        ts.gather_room(&counter, into, &moves, &open).await?;
                        shards = ts.snapshot_shards(&counter).await?;
                        continue;
                    }
                    // Not all of them fit: one at a time finds which do.
                    Plan::Exhausted { .. } => break,
                };
                let shard_no = u8::try_from(shard).map_err(Error::internal)?;
                let w = if hard {
                    ts.take_write(&counter, shard_no, sum, open[shard])?
                } else {
                    ts.add_write(&counter, shard_no, sum)?
                };
                // What each answers: the usage as read, plus the chunk's
                // records up to and including it.
                let mut used = total(&shards, carried);
                let (mut parts, mut useds) = (Vec::new(), Vec::new());
                for &i in chunk {
                    used = used.saturating_add(events[i].quantity);
                    let shown = if hard { used.min(limit) } else { used };
                    let (ev, au, idem) =
                        record_parts(ts, actor, lid, &events[i], &window, &terms, shown, now)?;
                    let au = with_meter(au, &specs, &metric, &license, ev.timestamp);
                    parts.push((ev, au, idem));
                    useds.push(shown);
                }
                let records: Vec<ChunkRecord<'_>> = parts
                    .iter()
                    .map(|(ev, au, idem)| ChunkRecord {
                        event: ev,
                        audit: au,
                        idempotency: idem,
                    })
                    .collect();
                match ts.record_chunk(lid, Some(&w), &records, now).await? {
                    ChunkOutcome::Recorded => {
                        match hard {
                            true => shards[shard].after_take(sum, open[shard], limit),
                            false => shards[shard].used += sum,
                        }
                        for (&i, &used) in chunk.iter().zip(&useds) {
                            let limit = terms.limit;
                            out.push((i, Outcome::Recorded { used, limit }));
                        }
                        written = true;
                        break;
                    }
                    ChunkOutcome::Cancelled { taken, .. } if !taken.is_empty() => break,
                    ChunkOutcome::Cancelled { .. } => {
                        shards = ts.snapshot_shards(&counter).await?;
                    }
                }
            }
            if written {
                continue;
            }
            for &i in chunk {
                out.push((i, one(policies, ts, actor, &events[i], now).await));
            }
            shards = ts.snapshot_shards(&counter).await?;
        }
    }
    Ok(out)
}

/// One event through the single-record path (idempotent by its id).
pub(super) async fn one(
    policies: &Policies,
    ts: &TenantStore,
    actor: &Actor,
    e: &BatchEvent,
    now: OffsetDateTime,
) -> Outcome {
    let input = UsageInput {
        license_key: e.license_key.clone(),
        metric: e.metric.clone(),
        quantity: e.quantity,
        timestamp: e.timestamp,
        metadata: e.properties.clone(),
        idempotency_key: Some(e.id.clone()),
        body_hash: e.body_hash.clone(),
    };
    // Boxed: the single-record future is large, and a batch awaits it
    // inside its own (debug builds would overflow a worker's stack).
    match Box::pin(record(policies, ts, actor, input, now)).await {
        Ok(r) if r.replayed => Outcome::Duplicate,
        Ok(r) => Outcome::Recorded {
            used: r.recorded.used,
            limit: r.recorded.limit,
        },
        Err(e) => rejected(&e),
    }
}

/// The event, audit event and idempotency record of one batched record
/// that answers `used`.
#[allow(clippy::too_many_arguments)]
pub(super) fn record_parts(
    ts: &TenantStore,
    actor: &Actor,
    lid: &LicenseId,
    e: &BatchEvent,
    window: &PeriodWindow,
    terms: &Terms,
    used: u64,
    now: OffsetDateTime,
) -> Result<(UsageEvent, AuditEvent, IdempotencyRecord), Error> {
    let at = e.timestamp.unwrap_or(now);
    let event = UsageEvent {
        id: format!("use_{}", ulid::Ulid::new()),
        code: "USAGE.RECORDED".into(),
        license_id: lid.clone(),
        metric: e.metric.clone(),
        quantity: e.quantity,
        period: window.key.clone(),
        timestamp: at,
        recorded_at: now,
        actor: actor.actor.clone(),
        request_id: actor.request_id.clone(),
        idempotency_key: Some(e.id.clone()),
        metadata: e.properties.clone(),
    };
    let audit = actor
        .audit(ts.tenant_id(), AuditCode::UsageRecorded, lid.as_str(), now)
        .with_data(json!({
            "usage_event_id": event.id,
            "metric": event.metric,
            "quantity": event.quantity,
            "period": event.period,
            "idempotency_key": event.idempotency_key,
        }));
    let recorded = UsageRecorded {
        metric: e.metric.clone(),
        quantity: e.quantity,
        period: window.key.clone(),
        period_type: terms.period,
        timestamp: at,
        used,
        limit: terms.limit,
        remaining: terms.limit.map(|l| l.saturating_sub(used)),
        overage: terms.limit.map(|l| used.saturating_sub(l)).unwrap_or(0),
        overage_policy: terms.overage_policy(),
        aggregation: terms.aggregation,
        resets_at: window.resets_at,
        license_id: lid.clone(),
    };
    let idem = IdempotencyRecord {
        key: e.id.clone(),
        body_hash: e.body_hash.clone(),
        status: 201,
        response: serde_json::to_string(&recorded).map_err(Error::internal)?,
        created_at: now,
        ttl: now
            .unix_timestamp()
            .saturating_add(IDEMPOTENCY_TTL.whole_seconds()),
    };
    Ok((event, audit, idem))
}
