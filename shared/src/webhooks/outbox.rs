//! The table's stream → events → one SQS message per subscribed endpoint.
//!
//! Only committed writes reach the stream, and every change writes its
//! audit item in its own transaction: an event is emitted if and only if
//! its change committed. Event ids derive from the audit item (or the usage
//! counter), so a stream batch that is processed twice yields the same ids.

use super::tenant;
use crate::clock::rfc3339;
use crate::domain::meter_events::MeterRef;
use crate::domain::webhook::{counter_event_id, event_id_of_audit, EventType, OutboundEvent};
use crate::domain::{AuditCode, AuditEvent, UsageCounter};
use crate::error::Error;
use crate::ids::{ActivationId, LicenseId, TenantId, WebhookEndpointId};
use crate::store::keys::{stream_source, StreamSource};
use crate::store::{sdk_error, Store};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use time::OffsetDateTime;

/// One committed change, from a Lambda stream event or a local poller.
#[derive(Debug, Clone)]
pub struct StreamChange {
    pub pk: String,
    pub sk: String,
    pub new: Option<Value>,
    pub old: Option<Value>,
}

impl StreamChange {
    /// From an image of any kind `serde_dynamo` reads.
    pub fn from_images<I: Into<serde_dynamo::Item>>(
        keys: I,
        new: Option<I>,
        old: Option<I>,
    ) -> Option<Self> {
        let json = |i: I| -> Option<Value> {
            let item: serde_dynamo::Item = i.into();
            if item.is_empty() {
                return None;
            }
            serde_dynamo::from_item(item).ok()
        };
        let keys = json(keys)?;
        Some(Self {
            pk: keys.get("PK")?.as_str()?.to_string(),
            sk: keys.get("SK")?.as_str()?.to_string(),
            new: new.and_then(json),
            old: old.and_then(json),
        })
    }
}

/// A Lambda DynamoDB stream event as changes.
pub fn from_lambda(event: aws_lambda_events::event::dynamodb::Event) -> Vec<StreamChange> {
    event
        .records
        .into_iter()
        .filter_map(|r| {
            StreamChange::from_images(
                r.change.keys,
                Some(r.change.new_image),
                Some(r.change.old_image),
            )
        })
        .collect()
}

/// What goes on the delivery queue: one event for one endpoint, with the
/// exact body to sign and send.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryMessage {
    pub tenant_id: TenantId,
    pub endpoint_id: WebhookEndpointId,
    pub event_id: String,
    pub event_type: EventType,
    pub payload: String,
}

/// The webhook delivery queue.
#[derive(Clone)]
pub struct DeliveryQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl DeliveryQueue {
    pub fn new(sqs: aws_sdk_sqs::Client, url: String) -> Self {
        Self { sqs, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    async fn send<M: Serialize>(&self, msgs: &[M]) -> Result<(), Error> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry as Entry;
        for chunk in msgs.chunks(10) {
            let mut entries = Vec::new();
            for (i, m) in chunk.iter().enumerate() {
                let body = serde_json::to_string(m).map_err(Error::internal)?;
                let entry = Entry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .map_err(Error::internal)?;
                entries.push(entry);
            }
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sdk_error("SendMessageBatch", e))?;
            if !out.failed.is_empty() {
                return Err(Error::Unavailable(format!(
                    "SendMessageBatch: {} of {} entries failed",
                    out.failed.len(),
                    chunk.len()
                )));
            }
        }
        Ok(())
    }
}

/// The events in a batch of changes, in order, each once.
pub async fn events(store: &Store, changes: &[StreamChange]) -> Result<Vec<OutboundEvent>, Error> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut licenses = Licenses::default();
    for c in changes {
        let Some(ev) = event_of(store, c, &mut licenses).await? else {
            continue;
        };
        if seen.insert(ev.id.clone()) {
            out.push(ev);
        }
    }
    Ok(out)
}

/// The licenses a batch's events show, each read once per batch: a
/// batch's events name few licenses many times (a round of activations, the
/// leases of one floating license), and reading each event's license on its
/// own made the fan-out fall minutes behind the writes under load. Read at
/// the same moment as before (when the batch is handled), so the events
/// show the same thing.
type Licenses = HashMap<(TenantId, LicenseId), Value>;

async fn event_of(
    store: &Store,
    c: &StreamChange,
    licenses: &mut Licenses,
) -> Result<Option<OutboundEvent>, Error> {
    match stream_source(&c.pk, &c.sk) {
        Some(StreamSource::Audit(t)) => {
            // Audit items are only ever inserted.
            let (Some(new), None) = (&c.new, &c.old) else {
                return Ok(None);
            };
            let audit: AuditEvent = match serde_json::from_value(new.clone()) {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "an audit item of the stream does not read");
                    return Ok(None);
                }
            };
            let Some(kind) = EventType::of_audit(audit.code) else {
                return Ok(None);
            };
            if kind == EventType::InvoiceReady {
                // The invoice as recorded: no license read, the same body
                // however often the stream hands the item over.
                return Ok(Some(OutboundEvent {
                    id: event_id_of_audit(&audit.id),
                    kind,
                    created_at: audit.at,
                    tenant_id: t,
                    data: audit.data,
                }));
            }
            // A stream carries committed writes only (the local emulator
            // too: scripts/moto_patch.py checks a transaction's conditions
            // before it writes, so a refused one leaves no record).
            let license = match kind {
                EventType::ActivationCreated | EventType::ActivationDeleted => {
                    ActivationId::parse(audit.target_id.clone())
                        .ok()
                        .map(|a| a.license_id())
                }
                _ => LicenseId::parse(audit.target_id.clone()).ok(),
            };
            let object = license_object(store, &t, license, licenses).await?;
            let mut data = json!({
                "object": object,
                "actor": audit.actor,
                "request_id": audit.request_id,
                "audit_event_id": audit.id,
                "details": audit.data,
            });
            if matches!(
                kind,
                EventType::ActivationCreated | EventType::ActivationDeleted
            ) {
                data["activation_id"] = json!(audit.target_id);
            }
            Ok(Some(OutboundEvent {
                id: event_id_of_audit(&audit.id),
                kind,
                created_at: audit.at,
                tenant_id: t,
                data,
            }))
        }
        Some(StreamSource::UsageCounter(t, license)) => {
            let Some(new) = &c.new else { return Ok(None) };
            let Ok(now) = serde_json::from_value::<UsageCounter>(new.clone()) else {
                return Ok(None);
            };
            let before = c
                .old
                .as_ref()
                .and_then(|o| serde_json::from_value::<UsageCounter>(o.clone()).ok())
                .map(|o| o.used)
                .unwrap_or(0);
            let Some(limit) = now.limit else {
                return Ok(None);
            };
            // Reached by this change: below the limit before, at or past it now.
            if limit == 0 || before >= limit || now.used < limit {
                return Ok(None);
            }
            let at = OffsetDateTime::now_utc();
            Ok(Some(OutboundEvent {
                id: counter_event_id(&c.pk, &c.sk),
                kind: EventType::UsageQuotaReached,
                created_at: at,
                tenant_id: t,
                data: json!({
                    "license_id": license,
                    "metric": now.metric,
                    "period": now.period,
                    "used": now.used,
                    "limit": limit,
                    "resets_at": now
                        .resets_epoch
                        .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
                        .map(rfc3339),
                }),
            }))
        }
        Some(StreamSource::CounterShard(t, license, metric, period)) => {
            // A shard's budget ran out: the counter reached its limit when
            // every shard's did (summed now; the event id is the counter's,
            // so shards running out together give one event). A shard with
            // no room before was untouched: its first record may have spent
            // all of its opening room at once.
            let room = |v: &Option<Value>| {
                v.as_ref()
                    .and_then(|v| v.get(crate::store::counters::ROOM))
                    .and_then(Value::as_u64)
            };
            let (Some(0), before) = (room(&c.new), room(&c.old)) else {
                return Ok(None);
            };
            let before = before.unwrap_or(u64::MAX);
            let limit = c
                .new
                .as_ref()
                .and_then(|v| v.get("limit"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if before == 0 || limit == 0 {
                return Ok(None);
            }
            let ts = store.tenant(&t);
            let which = [(metric.clone(), period.clone())];
            let Some(now) = ts.sum_counters(&license, &which).await?.pop() else {
                return Ok(None);
            };
            if now.used < limit {
                return Ok(None);
            }
            let head = crate::store::keys::counter_shard(&t, &license, &metric, &period, 0);
            Ok(Some(OutboundEvent {
                id: counter_event_id(&head.pk, &head.sk),
                kind: EventType::UsageQuotaReached,
                created_at: OffsetDateTime::now_utc(),
                tenant_id: t,
                data: json!({
                    "license_id": license,
                    "metric": metric,
                    "period": period,
                    "used": now.used,
                    "limit": limit,
                    "resets_at": now
                        .resets_epoch
                        .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
                        .map(rfc3339),
                }),
            }))
        }
        None => Ok(None),
    }
}

/// The license as the Management API shows it (without usage), read now.
/// Each license once per batch (`licenses`).
async fn license_object(
    store: &Store,
    t: &TenantId,
    id: Option<LicenseId>,
    licenses: &mut Licenses,
) -> Result<Value, Error> {
    let Some(id) = id else { return Ok(Value::Null) };
    let key = (t.clone(), id);
    if let Some(known) = licenses.get(&key) {
        return Ok(known.clone());
    }
    let ts = store.tenant(t);
    let object = match ts.get_license(&key.1).await? {
        Some(l) => {
            let now = OffsetDateTime::now_utc();
            crate::views::license_view_parts(&l, None, None, None, now)
        }
        None => json!({ "id": key.1 }),
    };
    licenses.insert(key, object.clone());
    Ok(object)
}

/// Fan `events` out to every enabled endpoint that subscribes to them.
/// Returns how many messages were queued.
pub async fn fan_out(
    store: &Store,
    queue: &DeliveryQueue,
    events: &[OutboundEvent],
) -> Result<usize, Error> {
    let mut by_tenant: BTreeMap<&str, Vec<&OutboundEvent>> = BTreeMap::new();
    for e in events {
        by_tenant.entry(e.tenant_id.as_str()).or_default().push(e);
    }
    let mut msgs = Vec::new();
    for (t, evs) in by_tenant {
        let ts = store.tenant(&tenant(t)?);
        let endpoints = ts.list_webhook_endpoints().await?;
        for e in evs {
            let payload = serde_json::to_string(e).map_err(Error::internal)?;
            for ep in endpoints
                .iter()
                .filter(|ep| ep.enabled && ep.events.matches(e.kind))
            {
                msgs.push(DeliveryMessage {
                    tenant_id: e.tenant_id.clone(),
                    endpoint_id: ep.id.clone(),
                    event_id: e.id.clone(),
                    event_type: e.kind,
                    payload: payload.clone(),
                });
            }
        }
    }
    queue.send(&msgs).await?;
    Ok(msgs.len())
}

/// A Stripe billing meter event on the delivery queue (the same queue,
/// DLQ and function as webhook deliveries): one recorded usage event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterMessage {
    pub tenant_id: TenantId,
    /// Stripe's `identifier`: a retry is billed once.
    pub usage_event_id: String,
    pub quantity: u64,
    pub stripe_meter: MeterRef,
}

/// The meter events in a batch of changes: `USAGE.RECORDED` audit items
/// that name a Stripe meter (see `domain::meter_events`), each once.
pub fn meter_messages(changes: &[StreamChange]) -> Vec<MeterMessage> {
    #[derive(Deserialize)]
    struct Data {
        usage_event_id: String,
        quantity: u64,
        /// What the meter counts when it is not the quantity (a new
        /// distinct value of a `unique_count` metric: 1).
        #[serde(default)]
        meter_quantity: Option<u64>,
        stripe_meter: MeterRef,
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for c in changes {
        let Some(StreamSource::Audit(t)) = stream_source(&c.pk, &c.sk) else {
            continue;
        };
        let (Some(new), None) = (&c.new, &c.old) else {
            continue;
        };
        let Ok(audit) = serde_json::from_value::<AuditEvent>(new.clone()) else {
            continue;
        };
        if audit.code != AuditCode::UsageRecorded || audit.data.get("stripe_meter").is_none() {
            continue;
        }
        let Ok(d) = serde_json::from_value::<Data>(audit.data) else {
            tracing::warn!(audit = %audit.id, "a usage audit item's stripe_meter does not read");
            continue;
        };
        if seen.insert(d.usage_event_id.clone()) {
            out.push(MeterMessage {
                tenant_id: t,
                usage_event_id: d.usage_event_id,
                quantity: d.meter_quantity.unwrap_or(d.quantity),
                stripe_meter: d.stripe_meter,
            });
        }
    }
    out
}

/// One stream batch: events, then messages (webhook deliveries and meter
/// events). An error fails the batch, and the stream hands it over again
/// (the same event ids and usage event ids).
pub async fn handle_changes(
    store: &Store,
    queue: &DeliveryQueue,
    changes: &[StreamChange],
) -> Result<usize, Error> {
    let meters = meter_messages(changes);
    queue.send(&meters).await?;
    let evs = events(store, changes).await?;
    if evs.is_empty() {
        return Ok(meters.len());
    }
    Ok(meters.len() + fan_out(store, queue, &evs).await?)
}
