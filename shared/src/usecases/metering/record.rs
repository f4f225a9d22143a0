//! `POST /v1/integration/usage/record`: one record, taken from one shard of
//! the metric's counter (see `domain::metering`).

use super::{not_in_force, replay, RecordReply, UsageInput, UsageRecorded};
use super::{FUTURE_SKEW, IDEMPOTENCY_TTL, MAX_BACKDATE, MAX_QUANTITY};
use crate::cache::Policies;
use crate::domain::metering::{plan, Plan, Shard};
use crate::domain::*;
use crate::error::{license_not_found, Error};
use crate::ids::{Feature, LicenseId, Metric};
use crate::store::counters::{shards_from, total, CounterRef};
use crate::store::keys;
use crate::store::usage::{IdempotencyRecord, RecordOutcome, RecordWrite, UsageEvent};
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

/// The metered spec of `metric` on this license: (limit, period, hard).
pub(crate) fn metered_spec(
    specs: &Entitlements,
    metric: &Metric,
) -> Result<(u64, Period, bool), Error> {
    match specs.get(&Feature::parse(metric.as_str())?) {
        Some(EntitlementSpec::Metered {
            limit,
            period,
            overage,
            ..
        }) => Ok((*limit, *period, *overage == Overage::Deny)),
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
/// license item is not in the transaction (docs/data-model.md).
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
    let (limit, period, hard) = metered_spec(&specs, &input.metric)?;
    let window = period.window(at);
    let carried = read
        .legacy
        .iter()
        .find(|c| c.period == window.key)
        .map(|c| c.used)
        .unwrap_or(0);
    let shard_keys = keys::counter_shards(ts.tenant_id(), &id, &input.metric, &window.key);
    let shards = shards_from(&shard_keys, &read.shards);
    if hard && input.quantity > limit {
        return Err(Error::QuotaExceeded {
            metric: input.metric.to_string(),
            limit,
            used: total(&shards, carried),
            quantity: input.quantity,
        });
    }
    let counter = CounterRef {
        license: &id,
        customer_email: &license.customer_email,
        metric: &input.metric,
        period: &window.key,
        resets_at: window.resets_at,
        limit,
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
        metadata: input.metadata,
    };
    // USAGE.RECORDED in the tenant's audit trail (the usage event itself
    // lives in the license's usage partitions, for the export).
    let audit = actor
        .audit(ts.tenant_id(), AuditCode::UsageRecorded, id.as_str(), now)
        .with_data(json!({
            "usage_event_id": event.id,
            "metric": event.metric,
            "quantity": event.quantity,
            "period": event.period,
            "idempotency_key": event.idempotency_key,
        }));
    let audit = with_meter(audit, &specs, &input.metric, &license, at);
    let answer = |used: u64| UsageRecorded {
        metric: input.metric.clone(),
        quantity: input.quantity,
        period: window.key.clone(),
        period_type: period,
        timestamp: at,
        used,
        limit,
        remaining: limit.saturating_sub(used),
        overage: used.saturating_sub(limit),
        overage_policy: if hard { Overage::Deny } else { Overage::Allow },
        resets_at: window.resets_at,
        license_id: id.clone(),
    };
    let idem_of = |recorded: &UsageRecorded| -> Result<Option<IdempotencyRecord>, Error> {
        let response = serde_json::to_string(recorded).map_err(Error::internal)?;
        Ok(input.idempotency_key.as_ref().map(|k| IdempotencyRecord {
            key: k.clone(),
            body_hash: input.body_hash.clone(),
            status: 201,
            response,
            created_at: now,
            ttl: now
                .unix_timestamp()
                .saturating_add(IDEMPOTENCY_TTL.whole_seconds()),
        }))
    };
    let n = shard_keys.len();
    let start = rand::random_range(0..n);
    let done = |outcome: RecordOutcome, recorded: UsageRecorded| match outcome {
        RecordOutcome::Recorded => Ok(Some(RecordReply {
            recorded,
            replayed: false,
        })),
        RecordOutcome::Replay(rec) => replay(rec, &input.body_hash).map(Some),
        RecordOutcome::ShardRefused => Ok(None),
    };

    if !hard {
        // No budget to respect: any shard takes it.
        let recorded = answer(total(&shards, carried).saturating_add(input.quantity));
        let idem = idem_of(&recorded)?;
        // The head shard carries the counter's index rows: the first
        // records of a period (no head yet, as read) go to it.
        let shard = if read.shards.contains_key(&shard_keys[0].pk) {
            start
        } else {
            0
        };
        let w = ts.add_write(&counter, shard_no(shard)?, input.quantity)?;
        let outcome = ts
            .record_usage(RecordWrite {
                license_id: &id,
                counter: Some(&w),
                event: &event,
                audit: &audit,
                idempotency: idem.as_ref(),
                now,
            })
            .await?;
        return done(outcome, recorded)?
            .ok_or_else(|| Error::Unavailable("the usage counter moved; retry".into()));
    }

    // Hard limit: plan on the read, re-plan on an atomic snapshot whenever
    // a shard moved under us; refuse only on a snapshot.
    let (mut shards, mut exact): (Vec<Shard>, bool) = (shards, false);
    for _ in 0..MAX_ATTEMPTS {
        match plan(&shards, carried, limit, input.quantity, start) {
            Plan::Take(i) => {
                let used = total(&shards, carried).saturating_add(input.quantity);
                let recorded = answer(used.min(limit));
                let idem = idem_of(&recorded)?;
                let w = ts.take_write(&counter, shard_no(i)?, input.quantity)?;
                let outcome = ts
                    .record_usage(RecordWrite {
                        license_id: &id,
                        counter: Some(&w),
                        event: &event,
                        audit: &audit,
                        idempotency: idem.as_ref(),
                        now,
                    })
                    .await?;
                if let Some(reply) = done(outcome, recorded)? {
                    return Ok(reply);
                }
            }
            Plan::Gather { into, moves } => {
                let moves: Vec<(u8, u64)> = moves
                    .into_iter()
                    .map(|(d, m)| shard_no(d).map(|d| (d, m)))
                    .collect::<Result<_, _>>()?;
                ts.gather_room(&counter, shard_no(into)?, &moves).await?;
            }
            Plan::Budget(rooms) => {
                if ts.budget_shards(&counter, &shards, &rooms).await? {
                    // Conditioned on every shard as read: now exactly this.
                    for (s, r) in shards.iter_mut().zip(&rooms) {
                        (s.room, s.limit) = (Some(*r), Some(limit));
                    }
                    exact = true;
                    continue;
                }
            }
            Plan::Exhausted { used } if exact => {
                return Err(Error::QuotaExceeded {
                    metric: input.metric.to_string(),
                    limit,
                    used,
                    quantity: input.quantity,
                });
            }
            Plan::Exhausted { .. } => {}
        }
        shards = ts.snapshot_shards(&counter).await?;
        exact = true;
    }
    Err(Error::Unavailable(
        "the usage counter is too busy; retry".into(),
    ))
}

fn shard_no(i: usize) -> Result<u8, Error> {
    u8::try_from(i).map_err(Error::internal)
}
