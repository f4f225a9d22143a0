//! `/v1/public/customers/...`: a customer organization registers (no
//! credential; rate limited per source address) and proves its domain.

use super::customer::views::registration_view;
use super::envelope::Reply;
use super::{request, Ctx};
use crate::domain::{check_admin_email, parse_country, parse_tax_id, Registration};
use crate::error::Error;
use crate::functions::PublicOp;
use crate::ids::{Domain, Email, TenantId};
use crate::usecases::customers;
use lambda_http::Request;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Company {
    name: String,
    domain: String,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    tax_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Admin {
    email: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    company: Company,
    customer_id: String,
    #[serde(default)]
    region: Option<String>,
    admin: Admin,
}

fn registration(b: RegisterBody) -> Result<Registration, Error> {
    crate::domain::bounded("company.name", &b.company.name, 200)?;
    let customer_id = TenantId::parse(b.customer_id.trim()).map_err(|_| {
        Error::validation(
            "customer_id must be 3 to 40 of a-z, 0-9 and '-', not starting or ending with '-'",
        )
    })?;
    let domain = Domain::normalise(&b.company.domain)
        .map_err(|e| Error::validation(format!("company.{e}")))?;
    let admin_email = Email::normalise(&b.admin.email)
        .map_err(|_| Error::validation("admin.email is not an e-mail address"))?;
    check_admin_email(&domain, &admin_email)?;
    if let Some(n) = &b.admin.name {
        crate::domain::bounded("admin.name", n, 200)?;
    }
    let region = match b.region {
        Some(r) => {
            let ok = (2..=32).contains(&r.len())
                && r.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
            if !ok {
                return Err(Error::validation(
                    "region must be 2 to 32 of a-z, 0-9 and '-'",
                ));
            }
            Some(r)
        }
        None => None,
    };
    Ok(Registration {
        customer_id,
        name: b.company.name.trim().to_string(),
        domain,
        country: b
            .company
            .country
            .as_deref()
            .map(parse_country)
            .transpose()?,
        tax_id: b.company.tax_id.as_deref().map(parse_tax_id).transpose()?,
        region,
        admin_email,
        admin_name: b.admin.name.map(|n| n.trim().to_string()),
    })
}

pub(super) async fn serve(ctx: &Ctx<'_>, req: &Request, op: PublicOp) -> Result<Reply, Error> {
    match op {
        PublicOp::CustomerRegister => {
            // Rate limited per source address before anything is read.
            let ip = super::auth::source_ip(req).unwrap_or_else(|| "unknown".into());
            customers::admit_registration(&ctx.app.store, &ip, ctx.now).await?;
            let b: RegisterBody = request::json(ctx.body)?;
            let reg = registration(b)?;
            let org = customers::create(&ctx.app.store, reg, &ctx.request_id, ctx.now).await?;
            Ok(Reply::accepted(registration_view(&org)))
        }
        PublicOp::CustomerVerify => {
            let id = TenantId::parse(ctx.param("customer_id"))
                .map_err(|_| customers::customer_not_found())?;
            let mailer =
                ctx.app.mailer.as_ref().ok_or_else(|| {
                    Error::internal("this function has no mail sender configured")
                })?;
            let base = ctx
                .app
                .config
                .portal_base_url
                .as_deref()
                .ok_or_else(|| Error::internal("no portal base URL configured"))?;
            let dns = ctx.app.dns()?;
            let org = customers::verify(
                &ctx.app.store,
                dns,
                mailer,
                base,
                &id,
                &ctx.request_id,
                ctx.now,
            )
            .await?;
            Ok(Reply::ok(serde_json::json!({
                "customer_id": org.tenant_id,
                "status": "verified",
                "domain": org.domain,
                "verified_at": org.verified_at.map(crate::clock::rfc3339),
            })))
        }
        PublicOp::Health | PublicOp::SigningKeys => Err(Error::internal("not a customer route")),
    }
}
