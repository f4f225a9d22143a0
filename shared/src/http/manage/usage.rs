//! Usage reports, export and events: `/v1/manage/usage`.

use super::R;
use crate::error::{license_not_found, Error};
use crate::functions::UsageOp;
use crate::http::envelope::{Reply, ReplyBody};
use crate::http::{Caller, Ctx};
use crate::ids::*;
use crate::usecases::metering;
use crate::views;

pub async fn serve(ctx: &Ctx<'_>, c: &Caller, op: UsageOp) -> R {
    let ts = &c.store;
    let metric = ctx.query.get("metric").map(Metric::parse).transpose()?;
    let period = ctx
        .query
        .get("period")
        .map(metering::parse_period)
        .transpose()?;
    let license = || {
        let id = ctx.query.get("license_id");
        id.map(|id| LicenseId::parse(id).map_err(|_| license_not_found()))
            .transpose()
    };
    match op {
        UsageOp::Get => {
            if let Some(lid) = license()? {
                let rows = metering::usage_of_license(ts, &lid, metric.as_ref(), period.as_deref())
                    .await?;
                return Ok(Reply::list(
                    rows.iter().map(views::counter_view).collect(),
                    None,
                ));
            }
            let period = period.ok_or_else(|| {
                Error::validation("give license_id, or period (YYYY-MM, YYYY-MM-DD or total)")
            })?;
            let (limit, cursor) = (ctx.query.limit()?, ctx.query.cursor());
            let signer = ctx.app.signer()?;
            let page =
                metering::usage_in_period(ts, signer, &period, metric.as_ref(), limit, cursor)
                    .await?;
            Ok(Reply::list(
                page.items.iter().map(views::counter_view).collect(),
                page.next_cursor,
            ))
        }
        UsageOp::Export => {
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
            let signer = ctx.app.signer()?;
            let cursor = ctx.query.cursor();
            let page =
                metering::usage_export(ts, signer, &period, metric.as_ref(), limit, cursor).await?;
            match ctx.query.get("format").unwrap_or("json") {
                "json" => {
                    let rows = page.items.iter().map(views::counter_view).collect();
                    Ok(Reply::list(rows, page.next_cursor))
                }
                "csv" => {
                    let csv = views::to_csv(&page.items)?;
                    let disposition = format!("attachment; filename=\"usage-{period}.csv\"");
                    let mut reply = Reply {
                        status: 200,
                        body: ReplyBody::Raw("text/csv; charset=utf-8", csv),
                        headers: Vec::new(),
                    }
                    .with_header("content-disposition", disposition);
                    if let Some(next) = page.next_cursor {
                        reply = reply.with_header("x-next-cursor", next);
                    }
                    Ok(reply)
                }
                _ => Err(Error::validation("format must be csv or json")),
            }
        }
        UsageOp::Events => {
            let lid = license()?.ok_or_else(|| Error::validation("license_id is required"))?;
            let month = match period {
                Some(p) if p.len() == 7 => p,
                None => crate::clock::month_of(ctx.now),
                Some(_) => return Err(Error::validation("period must be a month: YYYY-MM")),
            };
            let (limit, cursor) = (ctx.query.limit()?, ctx.query.cursor());
            let signer = ctx.app.signer()?;
            let page =
                metering::usage_events(ts, signer, &lid, &month, metric.as_ref(), limit, cursor)
                    .await?;
            Ok(Reply::list(
                page.items.iter().map(views::event_view).collect(),
                page.next_cursor,
            ))
        }
    }
}
