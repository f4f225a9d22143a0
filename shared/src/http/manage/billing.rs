//! Money: `GET /v1/manage/billing/overage` (CSV, JSON or PDF).

use super::R;
use crate::error::Error;
use crate::http::envelope::{Reply, ReplyBody};
use crate::http::{Caller, Ctx};
use crate::usecases::billing::{self, ExportQuery};

pub async fn overage(ctx: &Ctx<'_>, c: &Caller) -> R {
    let q = &ctx.query;
    let format = q.get("format").unwrap_or("json");
    if !matches!(format, "json" | "csv" | "pdf") {
        return Err(Error::validation("format must be csv, json or pdf"));
    }
    let query = ExportQuery::parse(
        q.get("start_date"),
        q.get("end_date"),
        q.get("customer_crm_id"),
        q.get("limit"),
        q.cursor(),
    )?;
    let export = billing::overage_export(&c.store, ctx.app.signer()?, &query).await?;
    let name = format!("overage-{}-{}", query.start, query.end);
    let file = |mime: &'static str, ext: &str, body: Vec<u8>| {
        let mut reply = Reply {
            status: 200,
            body: ReplyBody::Bytes(mime, body),
            headers: Vec::new(),
        }
        .with_header(
            "content-disposition",
            format!("attachment; filename=\"{name}.{ext}\""),
        );
        if let Some(next) = &export.next_cursor {
            reply = reply.with_header("x-next-cursor", next.clone());
        }
        reply
    };
    match format {
        "csv" => Ok(file(
            "text/csv; charset=utf-8",
            "csv",
            billing::to_csv(&export)?.into_bytes(),
        )),
        "pdf" => Ok(file("application/pdf", "pdf", billing::to_pdf(&export)?)),
        _ => {
            let reply = Reply::ok(billing::to_json(&export)?);
            Ok(match &export.next_cursor {
                Some(next) => reply.with_header("x-next-cursor", next.clone()),
                None => reply,
            })
        }
    }
}
