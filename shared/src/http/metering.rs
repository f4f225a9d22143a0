//! Entitlement checks, usage records and usage reports over HTTP.

use super::envelope::{Reply, ReplyBody};
use super::request;
use super::{Caller, Ctx};
use crate::error::Error;
use crate::functions::Op;
use crate::ids::{Feature, LicenseId, LicenseKey, Metric};
use crate::usecases::metering;
use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckBody {
    license_key: LicenseKey,
    features: Vec<Feature>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordBody {
    license_key: LicenseKey,
    metric: Metric,
    quantity: u64,
    #[serde(default, with = "crate::clock::ts::option")]
    timestamp: Option<OffsetDateTime>,
    metadata: Option<Map<String, Value>>,
}

pub async fn route(ctx: &Ctx<'_>, caller: &Caller, op: Op) -> Result<Reply, Error> {
    match op {
        Op::EntitlementsCheck => {
            let b: CheckBody = request::json(ctx.body)?;
            if b.features.is_empty() || b.features.len() > 100 {
                return Err(Error::validation(
                    "features must list 1 to 100 feature names",
                ));
            }
            let data =
                metering::check(ctx.app, &caller.store, &b.license_key, &b.features, ctx.now)
                    .await?;
            Ok(Reply::ok(data))
        }
        Op::UsageRecord => {
            let idempotency_key = match ctx.header("x-idempotency-key") {
                None => None,
                Some(k)
                    if !k.is_empty()
                        && k.len() <= 255
                        && k.bytes().all(|c| c.is_ascii_graphic() || c == b' ') =>
                {
                    Some(k.to_string())
                }
                Some(_) => {
                    return Err(Error::validation(
                        "X-Idempotency-Key must be 1 to 255 printable ASCII characters",
                    ))
                }
            };
            let b: RecordBody = request::json(ctx.body)?;
            // The digest is of the parsed body, so formatting and key order do not matter.
            let canonical: Value =
                serde_json::from_slice(ctx.body).map_err(|e| Error::validation(e.to_string()))?;
            let input = metering::UsageInput {
                license_key: b.license_key,
                metric: b.metric,
                quantity: b.quantity,
                timestamp: b.timestamp,
                metadata: request::metadata(b.metadata)?,
                idempotency_key,
                body_hash: metering::body_digest(&canonical),
            };
            let r = metering::record(ctx.app, &caller.store, &caller.actor, input, ctx.now).await?;
            let mut reply = Reply {
                status: r.status,
                body: ReplyBody::Data(r.data),
                headers: Vec::new(),
            };
            if r.replayed {
                reply = reply.with_header("idempotent-replayed", "true");
            }
            Ok(reply)
        }
        _ => Err(Error::internal(format!(
            "{op:?} is not a metering operation"
        ))),
    }
}

pub async fn manage(ctx: &Ctx<'_>, caller: &Caller, op: Op) -> Result<Reply, Error> {
    let ts = &caller.store;
    let metric = ctx.query.get("metric").map(Metric::parse).transpose()?;
    let period = ctx
        .query
        .get("period")
        .map(metering::parse_period)
        .transpose()?;
    match op {
        Op::UsageGet => {
            if let Some(lid) = ctx.query.get("license_id") {
                let lid = LicenseId::parse(lid).map_err(|_| crate::error::license_not_found())?;
                if ts.get_license(&lid).await?.is_none() {
                    return Err(crate::error::license_not_found());
                }
                let rows = ts
                    .usage_of_license(&lid, metric.as_ref(), period.as_deref())
                    .await?;
                return Ok(Reply::list(
                    rows.iter().map(metering::counter_view).collect(),
                    None,
                ));
            }
            let period = period.ok_or_else(|| {
                Error::validation("give license_id, or period (YYYY-MM, YYYY-MM-DD or total)")
            })?;
            let page = ts
                .usage_by_period(
                    ctx.app.signer()?,
                    metering::partition_of(&period),
                    metric.as_ref(),
                    ctx.query.limit()?,
                    ctx.query.cursor(),
                )
                .await?;
            let rows = page.items.iter().filter(|c| {
                c.period == period || (period.len() == 7 && c.period.starts_with(&period))
            });
            Ok(Reply::list(
                rows.map(metering::counter_view).collect(),
                page.next_cursor,
            ))
        }
        Op::UsageExport => {
            let period = period
                .filter(|p| p.len() == 7)
                .ok_or_else(|| Error::validation("period must be a month: YYYY-MM"))?;
            let limit = match ctx.query.get("limit") {
                None => 1000,
                Some(v) => v
                    .parse::<i32>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| Error::validation("limit must be from 1 to 1000"))?,
            };
            let page = ts
                .usage_by_period(
                    ctx.app.signer()?,
                    &period,
                    metric.as_ref(),
                    limit,
                    ctx.query.cursor(),
                )
                .await?;
            match ctx.query.get("format").unwrap_or("json") {
                "json" => Ok(Reply::list(
                    page.items.iter().map(metering::counter_view).collect(),
                    page.next_cursor,
                )),
                "csv" => {
                    let mut reply = Reply {
                        status: 200,
                        body: ReplyBody::Raw(
                            "text/csv; charset=utf-8",
                            metering::to_csv(&page.items)?,
                        ),
                        headers: Vec::new(),
                    }
                    .with_header(
                        "content-disposition",
                        format!("attachment; filename=\"usage-{period}.csv\""),
                    );
                    if let Some(next) = page.next_cursor {
                        reply = reply.with_header("x-next-cursor", next);
                    }
                    Ok(reply)
                }
                _ => Err(Error::validation("format must be csv or json")),
            }
        }
        Op::UsageEvents => {
            let lid = ctx
                .query
                .get("license_id")
                .ok_or_else(|| Error::validation("license_id is required"))?;
            let lid = LicenseId::parse(lid).map_err(|_| crate::error::license_not_found())?;
            let month = match period {
                Some(p) if p.len() == 7 => p,
                None => crate::store::usage::month_of(ctx.now),
                Some(_) => return Err(Error::validation("period must be a month: YYYY-MM")),
            };
            if ts.get_license(&lid).await?.is_none() {
                return Err(crate::error::license_not_found());
            }
            let page = ts
                .list_usage_events(
                    ctx.app.signer()?,
                    &lid,
                    &month,
                    ctx.query.limit()?,
                    ctx.query.cursor(),
                )
                .await?;
            let rows = page
                .items
                .iter()
                .filter(|e| metric.as_ref().is_none_or(|m| &e.metric == m))
                .map(metering::event_view)
                .collect();
            Ok(Reply::list(rows, page.next_cursor))
        }
        _ => Err(Error::internal(format!("{op:?} is not a usage report"))),
    }
}
