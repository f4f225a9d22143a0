//! `POST /v1/integration/usage/record`: one record, taken from one shard of
//! the metric's counter (see `domain::metering`; other aggregations than
//! `sum` in `aggregate.rs`).

use super::{not_in_force, replay, RecordReply, UsageInput, UsageRecorded};
use super::{FUTURE_SKEW, IDEMPOTENCY_TTL, MAX_BACKDATE, MAX_QUANTITY};
use crate::cache::Policies;
use crate::domain::aggregation::distinct_value;
use crate::domain::metering::{openings, plan, Plan, Shard};
use crate::domain::*;
use crate::error::{license_not_found, Error};
use crate::ids::{Feature, LicenseId, Metric};
use crate::store::counters::{readings_from, shards_from, total, CounterRef};
use crate::store::keys;
use crate::store::usage::{
    DistinctValue, IdempotencyRecord, RecordOutcome, RecordWrite, UsageEvent,
};
use crate::store::write::Write;
use crate::store::TenantStore;
use serde_json::json;
use time::OffsetDateTime;

/// How many times a record re-plans after a shard moved under it before it
/// answers 503 (each re-plan reads an atomic snapshot first).
const MAX_ATTEMPTS: usize = 12;

/// The timestamp of a record, checked against the clock.
pub(crate) fn usage_time(
    at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, Error> {
    let at = at.unwrap_or(now);
    // Checked: a clock at the calendar's end must not panic either.
    if now
        .checked_add(FUTURE_SKEW)
        .is_some_and(|latest| at > latest)
    {
        return Err(Error::invalid(
            "TIMESTAMP_OUT_OF_RANGE",
            "timestamp is in the future",
        ));
    }
    if now
        .checked_sub(MAX_BACKDATE)
        .is_some_and(|earliest| at < earliest)
    {
        return Err(Error::invalid(
            "TIMESTAMP_OUT_OF_RANGE",
            "timestamp is more than 7 days old",
        ));
    }
    Ok(at)
}

/// A metered entitlement's terms as a record uses them.
#[derive(Debug, Clone)]
pub(crate) struct Terms {
    pub limit: Option<u64>,
    pub period: Period,
    /// A hard limit: `overage: deny` on a limited aggregation.
    pub hard: bool,
    pub aggregation: Aggregation,
    pub unique_by: Option<PropertyName>,
}

impl Terms {
    /// The limit a hard-limited counter's budget is made for.
    pub fn hard_limit(&self) -> Option<u64> {
        self.limit.filter(|_| self.hard)
    }

    pub fn overage_policy(&self) -> Overage {
        if self.hard {
            Overage::Deny
        } else {
            Overage::Allow
        }
    }
}

/// The metered spec of `metric` on this license.
pub(crate) fn metered_spec(specs: &Entitlements, metric: &Metric) -> Result<Terms, Error> {
    match specs.get(&Feature::parse(metric.as_str())?) {
        Some(EntitlementSpec::Metered {
            limit,
            period,
            overage,
            aggregation,
            unique_by,
            ..
        }) => Ok(Terms {
            limit: limit.filter(|_| aggregation.limited()),
            period: *period,
            hard: aggregation.limited() && limit.is_some() && *overage == Overage::Deny,
            aggregation: *aggregation,
            unique_by: unique_by.clone(),
        }),
        _ => Err(Error::invalid(
            "UNKNOWN_METRIC",
            format!("'{metric}' is not a metered entitlement of this license"),
        )),
    }
}

/// The audit item of a record, with the Stripe meter it is reported to
/// (`stripe_meter`, read by the outbox) when there is one.
pub(crate) fn with_meter(
    mut audit: AuditEvent,
    specs: &Entitlements,
    metric: &Metric,
    license: &License,
    at: OffsetDateTime,
) -> AuditEvent {
    let spec = Feature::parse(metric.as_str())
        .ok()
        .and_then(|f| specs.get(&f));
    let customer = license.stripe.customer_id.as_deref();
    if let Some(m) = crate::domain::meter_events::meter_ref(spec, customer, at) {
        audit.data["stripe_meter"] = json!(m);
    }
    audit
}

/// One BatchGetItem (license, the counter's shards of each candidate period,
/// idempotency record), then one TransactWriteItems in the common case. The
/// license's standing is judged from that strongly consistent read; the
/// license item is not in the transaction (docs/data-model.md). A
/// `unique_count` record reads its distinct value first; `max` / `last`
/// records go to [`super::aggregate`].
pub async fn record(
    policies: &Policies,
    ts: &TenantStore,
    actor: &Actor,
    input: UsageInput,
    now: OffsetDateTime,
) -> Result<RecordReply, Error> {
    if input.quantity == 0 || input.quantity > MAX_QUANTITY {
        return Err(Error::validation(format!(
            "quantity must be an integer from 1 to {MAX_QUANTITY}"
        )));
    }
    let at = usage_time(input.timestamp, now)?;
    let id = LicenseId::derive(ts.tenant_id(), &input.license_key);
    let candidates: Vec<String> = [Period::Day, Period::Month, Period::Total]
        .iter()
        .map(|p| p.window(at).key)
        .collect();
    let read = ts
        .read_for_record(
            &id,
            &input.metric,
            &candidates,
            input.idempotency_key.as_deref(),
        )
        .await?;
    if let Some(rec) = read.idempotency.filter(|r| r.ttl >= now.unix_timestamp()) {
        return replay(rec, &input.body_hash);
    }
    let license = read.license.ok_or_else(license_not_found)?;
    not_in_force(&license, now)?;
    let policy = policies.of_license(ts, &license.policy).await?;
    let specs = license.effective_entitlements(&policy);
    let terms = metered_spec(&specs, &input.metric)?;
    // A unique_count record without its property is refused before anything.
    let digest = terms
        .unique_by
        .as_ref()
        .map(|by| distinct_value(&input.metadata, by))
        .transpose()?;
    let window = terms.period.window(at);
    // An earlier release's unsharded counter: it summed every metric.
    let carried = read
        .legacy
        .iter()
        .find(|c| c.period == window.key && terms.aggregation.is_sum())
        .map(|c| c.used)
        .unwrap_or(0);
    let shard_keys = keys::counter_shards(ts.tenant_id(), &id, &input.metric, &window.key);
    let shards = shards_from(&shard_keys, &read.shards);
    if let (Some(limit), true) = (terms.hard_limit(), terms.aggregation.is_sum()) {
        if input.quantity > limit {
            return Err(Error::QuotaExceeded {
                metric: input.metric.to_string(),
                limit,
                used: total(&shards, carried),
                quantity: input.quantity,
            });
        }
    }
    let counter = CounterRef {
        license: &id,
        customer_email: &license.customer_email,
        metric: &input.metric,
        period: &window.key,
        resets_at: window.resets_at,
        limit: terms.limit,
        aggregation: terms.aggregation,
    };
    let event = UsageEvent {
        id: format!("use_{}", ulid::Ulid::new()),
        code: "USAGE.RECORDED".into(),
        license_id: id.clone(),
        metric: input.metric.clone(),
        quantity: input.quantity,
        period: window.key.clone(),
        timestamp: at,
        recorded_at: now,
        actor: actor.actor.clone(),
        request_id: actor.request_id.clone(),
        idempotency_key: input.idempotency_key.clone(),
        metadata: input.metadata.clone(),
    };
    // USAGE.RECORDED in the tenant's audit trail (the usage event itself
    // lives in the license's usage partitions, for the export).
    let plain_audit = actor
        .audit(ts.tenant_id(), AuditCode::UsageRecorded, id.as_str(), now)
        .with_data(json!({
            "usage_event_id": event.id,
            "metric": event.metric,
            "quantity": event.quantity,
            "period": event.period,
            "idempotency_key": event.idempotency_key,
        }));
    let mut audit = with_meter(plain_audit.clone(), &specs, &input.metric, &license, at);
    if digest.is_some() && audit.data.get("stripe_meter").is_some() {
        // A new distinct value counts 1 on the meter (repeats report nothing).
        audit.data["meter_quantity"] = json!(1);
    }
    let p = Pending {
        ts,
        id: &id,
        input: &input,
        terms: &terms,
        window: &window,
        event,
        audit,
        plain_audit,
        now,
    };
    // The paths are boxed so that no one future holds them all.
    match (terms.aggregation, digest) {
        (Aggregation::Max | Aggregation::Last, _) => {
            let readings = readings_from(&shard_keys, &read.shards);
            Box::pin(super::aggregate::extreme(&p, &counter, &readings, at)).await
        }
        (Aggregation::UniqueCount, Some(digest)) => {
            Box::pin(super::aggregate::unique(&p, &counter, shards, &digest)).await
        }
        _ => match Box::pin(count(&p, &counter, shards, carried, input.quantity, None)).await? {
            Counted::Reply(r) => Ok(r),
            Counted::Repeat { .. } => Err(Error::internal("a sum record without a value")),
        },
    }
}

/// Everything a record writes but its share of the counter.
pub(crate) struct Pending<'a> {
    pub ts: &'a TenantStore,
    pub id: &'a LicenseId,
    pub input: &'a UsageInput,
    pub terms: &'a Terms,
    pub window: &'a PeriodWindow,
    pub event: UsageEvent,
    /// With the Stripe meter, when the metric names one.
    pub audit: AuditEvent,
    /// Without it (a `unique_count` repeat: the meter counted the value).
    pub plain_audit: AuditEvent,
    pub now: OffsetDateTime,
}

/// What one attempt of a record's transaction came to.
pub(crate) enum Written {
    Done(RecordReply),
    ShardRefused,
    Repeat,
}

impl Pending<'_> {
    /// The record's answer when the counter shows `used`.
    pub fn answer(&self, used: u64) -> UsageRecorded {
        let limit = self.terms.limit;
        UsageRecorded {
            metric: self.input.metric.clone(),
            quantity: self.input.quantity,
            period: self.window.key.clone(),
            period_type: self.terms.period,
            timestamp: self.event.timestamp,
            used,
            limit,
            remaining: limit.map(|l| l.saturating_sub(used)),
            overage: limit.map(|l| used.saturating_sub(l)).unwrap_or(0),
            overage_policy: self.terms.overage_policy(),
            aggregation: self.terms.aggregation,
            resets_at: self.window.resets_at,
            license_id: self.id.clone(),
        }
    }

    /// One transaction: `counter` (if any), `distinct` (if any), the event,
    /// the audit item (`plain`: without the meter) and the idempotency record.
    pub async fn write(
        &self,
        counter: Option<&Write>,
        distinct: Option<&DistinctValue>,
        used: u64,
        plain: bool,
    ) -> Result<Written, Error> {
        let recorded = self.answer(used);
        let response = serde_json::to_string(&recorded).map_err(Error::internal)?;
        let idem = self
            .input
            .idempotency_key
            .as_ref()
            .map(|k| IdempotencyRecord {
                key: k.clone(),
                body_hash: self.input.body_hash.clone(),
                status: 201,
                response,
                created_at: self.now,
                ttl: self
                    .now
                    .unix_timestamp()
                    .saturating_add(IDEMPOTENCY_TTL.whole_seconds()),
            });
        let outcome = self
            .ts
            .record_usage(RecordWrite {
                license_id: self.id,
                counter,
                event: &self.event,
                audit: if plain {
                    &self.plain_audit
                } else {
                    &self.audit
                },
                idempotency: idem.as_ref(),
                distinct,
                now: self.now,
            })
            .await?;
        Ok(match outcome {
            RecordOutcome::Recorded => Written::Done(RecordReply {
                recorded,
                replayed: false,
            }),
            RecordOutcome::Replay(rec) => Written::Done(replay(rec, &self.input.body_hash)?),
            RecordOutcome::ShardRefused => Written::ShardRefused,
            RecordOutcome::Repeat => Written::Repeat,
        })
    }
}

/// What [`count`] came to.
pub(crate) enum Counted {
    Reply(RecordReply),
    /// `distinct` was counted already (`used`: the counter as last seen).
    Repeat {
        used: u64,
    },
}

/// A record that adds `adds` to the counter (a sum record its quantity, a
/// new distinct value 1, with `distinct` put in the same transaction).
pub(crate) async fn count(
    p: &Pending<'_>,
    counter: &CounterRef<'_>,
    shards: Vec<Shard>,
    carried: u64,
    adds: u64,
    distinct: Option<&DistinctValue>,
) -> Result<Counted, Error> {
    let ts = p.ts;
    let n = shards.len();
    let start = rand::random_range(0..n);
    let written = |w: Written, used: u64| -> Option<Counted> {
        match w {
            Written::Done(r) => Some(Counted::Reply(r)),
            Written::Repeat => Some(Counted::Repeat { used }),
            Written::ShardRefused => None,
        }
    };

    let Some(limit) = p.terms.hard_limit() else {
        // No budget to respect: any shard takes it. The head shard carries
        // the counter's index rows: the first records of a period (no head
        // yet, as read) go to it.
        let used = total(&shards, carried);
        let shard = if shards[0] == Shard::default() {
            0
        } else {
            start
        };
        let w = ts.add_write(counter, shard_no(shard)?, adds)?;
        let res = p.write(Some(&w), distinct, used.saturating_add(adds), false);
        return written(res.await?, used)
            .ok_or_else(|| Error::Unavailable("the usage counter moved; retry".into()));
    };

    // Hard limit: plan on the read, re-plan on an atomic snapshot whenever
    // a shard moved under us; refuse only on a snapshot (which, for a new
    // distinct value, also shows the value still uncounted).
    let (mut shards, mut exact): (Vec<Shard>, bool) = (shards, false);
    let open = openings(limit, carried, n);
    for _ in 0..MAX_ATTEMPTS {
        match plan(&shards, carried, limit, adds, start) {
            Plan::Take(i) => {
                let used = total(&shards, carried);
                let shown = used.saturating_add(adds).min(limit);
                let w = ts.take_write(counter, shard_no(i)?, adds, open[i])?;
                let res = p.write(Some(&w), distinct, shown, false).await?;
                if let Some(done) = written(res, used) {
                    return Ok(done);
                }
            }
            Plan::Gather { into, moves } => {
                let moves: Vec<(u8, u64)> = moves
                    .into_iter()
                    .map(|(d, m)| shard_no(d).map(|d| (d, m)))
                    .collect::<Result<_, _>>()?;
                ts.gather_room(counter, shard_no(into)?, &moves, &open)
                    .await?;
            }
            Plan::Budget(rooms) => {
                if ts.budget_shards(counter, &shards, &rooms).await? {
                    // Conditioned on every shard as read: now exactly this.
                    for (s, r) in shards.iter_mut().zip(&rooms) {
                        (s.room, s.limit) = (Some(*r), Some(limit));
                    }
                    // (A distinct value's state is proven by snapshots only.)
                    exact = distinct.is_none();
                    continue;
                }
            }
            Plan::Exhausted { used } if exact => {
                return Err(Error::QuotaExceeded {
                    metric: p.input.metric.to_string(),
                    limit,
                    used,
                    quantity: adds,
                });
            }
            Plan::Exhausted { .. } => {}
        }
        let (now, counted) = ts.snapshot_with(counter, distinct.map(|d| &d.key)).await?;
        if counted {
            return Ok(Counted::Repeat {
                used: total(&now, carried),
            });
        }
        (shards, exact) = (now, true);
    }
    Err(Error::Unavailable(
        "the usage counter is too busy; retry".into(),
    ))
}

pub(crate) fn shard_no(i: usize) -> Result<u8, Error> {
    u8::try_from(i).map_err(Error::internal)
}
