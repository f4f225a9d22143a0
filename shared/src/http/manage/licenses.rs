//! Licenses and their lifecycle: `/v1/manage/licenses`.

use super::R;
use crate::domain::*;
use crate::error::{license_not_found, Error};
use crate::functions::LicenseOp;
use crate::http::envelope::Reply;
use crate::http::request;
use crate::http::{Caller, Ctx};
use crate::ids::*;
use crate::usecases::licensing::{self, LicenseState, Lifecycle, RenewTo};
use crate::views;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LicenseBody {
    policy: PolicyId,
    customer_email: Option<String>,
    /// Issue to a customer organization: by its id or the vendor's CRM link.
    customer: Option<CustomerRef>,
    crm_opportunity_id: Option<String>,
    #[serde(default, with = "crate::clock::ts::option")]
    expires_at: Option<OffsetDateTime>,
    key: Option<LicenseKey>,
    metadata: Option<Map<String, Value>>,
    commercial: Option<billing::CommercialTerms>,
}

/// `"customer": { "id" } | { "crm_account_id" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerRef {
    id: Option<String>,
    crm_account_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LicensePatchBody {
    metadata: Option<Map<String, Value>>,
    max_activations: Option<u32>,
    entitlements: Option<BTreeMap<Feature, licensing::OverrideChange>>,
    policy: Option<PolicyId>,
    /// `null` removes the terms.
    #[serde(default, deserialize_with = "super::double_option")]
    commercial: Option<Option<billing::CommercialTerms>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    #[serde(default, with = "crate::clock::ts::option")]
    expires_at: Option<OffsetDateTime>,
    days: Option<u32>,
}

/// The organization a license is issued to: found by id or by this
/// vendor's CRM link, and verified (the issue transaction checks again).
/// Also its admin's e-mail (the license's `customer_email` when none given).
async fn grant_to(
    ctx: &Ctx<'_>,
    c: &Caller,
    r: &CustomerRef,
    crm_opportunity_id: Option<String>,
) -> Result<(licensing::GrantTo, Email), Error> {
    use crate::ids::CrmAccountId;
    use crate::store::grants::{customer_not_active, customer_not_found};
    let store = &ctx.app.store;
    let vendor = c.store.tenant_id();
    let id = match (&r.id, &r.crm_account_id) {
        (Some(id), None) => TenantId::parse(id.as_str()).map_err(|_| customer_not_found())?,
        (None, Some(crm)) => {
            // A malformed CRM id is "not found", as any malformed id.
            let unlinked = || {
                Error::invalid(
                    "CUSTOMER_NOT_FOUND",
                    "no customer organization is linked to that crm_account_id by this vendor \
                     (link one: PUT /v1/manage/customers/{customer_id}/crm)",
                )
            };
            let crm = CrmAccountId::parse(crm.as_str()).map_err(|_| unlinked())?;
            c.store.customer_by_crm(&crm).await?.ok_or_else(unlinked)?
        }
        _ => {
            return Err(Error::validation(
                "customer takes exactly one of id or crm_account_id",
            ))
        }
    };
    if let Some(o) = &crm_opportunity_id {
        bounded("crm_opportunity_id", o, 128)?;
    }
    let org = store
        .get_customer(&id)
        .await?
        .ok_or_else(customer_not_found)?;
    if org.status != CustomerStatus::Active {
        return Err(customer_not_active());
    }
    let vendor_name = store
        .get_tenant(vendor)
        .await?
        .map(|t| t.name)
        .unwrap_or_else(|| vendor.to_string());
    let to = licensing::GrantTo {
        customer: id,
        crm_account_id: r.crm_account_id.clone(),
        crm_opportunity_id,
        vendor_name,
        customer_name: org.name.clone(),
    };
    Ok((to, org.admin_email))
}

/// The organization's admins hear of the grant (when this function sends
/// mail; the license stands either way).
async fn tell_org(ctx: &Ctx<'_>, to: &licensing::GrantTo, admin: &Email, l: &License) {
    let Some(mailer) = &ctx.app.mailer else {
        tracing::info!(license = %l.id, "no mail sender: grant notice not e-mailed");
        return;
    };
    let org = ctx.app.store.tenant(&to.customer);
    crate::usecases::customers::members::notify_grant(
        &org,
        mailer,
        admin,
        &to.vendor_name,
        l.product.as_str(),
        &l.id,
    )
    .await;
}

fn license_id(ctx: &Ctx<'_>) -> Result<LicenseId, Error> {
    LicenseId::parse(ctx.param("id")).map_err(|_| license_not_found())
}

pub async fn serve(ctx: &Ctx<'_>, c: &Caller, op: LicenseOp) -> R {
    let (ts, now, cache) = (&c.store, ctx.now, &ctx.app.policies);
    let view = |s: &LicenseState| views::license_view(s, now);
    match op {
        LicenseOp::Create => {
            let b: LicenseBody = request::json(ctx.body)?;
            let (grant_to, org_admin) = match &b.customer {
                Some(r) => {
                    let (to, admin) = grant_to(ctx, c, r, b.crm_opportunity_id.clone()).await?;
                    (Some(to), Some(admin))
                }
                None if b.crm_opportunity_id.is_some() => {
                    return Err(Error::validation("crm_opportunity_id needs a customer"))
                }
                None => (None, None),
            };
            let customer_email = match (&b.customer_email, &org_admin) {
                (Some(e), _) => Email::normalise(e)?,
                (None, Some(admin)) => admin.clone(),
                (None, None) => {
                    return Err(Error::validation("customer_email or customer is required"))
                }
            };
            let req = licensing::NewLicense {
                policy: b.policy,
                customer_email,
                expires_at: b.expires_at,
                key: b.key,
                metadata: request::metadata(b.metadata)?,
                commercial: b.commercial,
                grant_to: grant_to.clone(),
            };
            let s = licensing::issue(cache, ts, &c.actor, req, now).await?;
            if let (Some(to), Some(admin)) = (&grant_to, &org_admin) {
                tell_org(ctx, to, admin, &s.license).await;
            }
            Ok(Reply::created(view(&s)))
        }
        LicenseOp::List => {
            let filter = license_filter(ctx)?;
            let (limit, cursor) = (ctx.query.limit()?, ctx.query.cursor());
            let page = match ctx.query.get("email") {
                Some(email) => {
                    if filter != LicenseFilter::default() {
                        return Err(Error::validation(
                            "email cannot be combined with other filters; \
                             search with q=<e-mail> instead",
                        ));
                    }
                    let email = Email::normalise(email)?;
                    licensing::by_email(ts, ctx.app.signer()?, &email, limit, cursor).await?
                }
                None => {
                    let signer = ctx.app.signer()?;
                    let limit = usize::try_from(limit).unwrap_or(25);
                    licensing::search(ts, signer, &filter, limit, cursor, now).await?
                }
            };
            let mut items = Vec::with_capacity(page.items.len());
            for l in &page.items {
                let policy = cache.get(ts, &l.policy).await?;
                items.push(views::license_view_parts(
                    l,
                    policy.as_deref(),
                    None,
                    None,
                    now,
                ));
            }
            Ok(Reply::list(items, page.next_cursor))
        }
        LicenseOp::Get => {
            let s = licensing::get(cache, ts, &license_id(ctx)?, now).await?;
            Ok(Reply::ok(view(&s)))
        }
        LicenseOp::Patch => {
            let id = license_id(ctx)?;
            let b: LicensePatchBody = request::json(ctx.body)?;
            if let Some(e) = &b.entitlements {
                if e.len() > bounds::MAX_ENTITLEMENTS {
                    let msg = format!("at most {} entitlement overrides", bounds::MAX_ENTITLEMENTS);
                    return Err(Error::validation(msg));
                }
                for (f, change) in e {
                    if let licensing::OverrideChange::Set(spec) = change {
                        spec.check(f)?;
                    }
                }
            }
            if let Some(n) = b.max_activations {
                check_max_activations(n)?;
            }
            let others = b.metadata.is_some()
                || b.max_activations.is_some()
                || b.entitlements.is_some()
                || b.policy.is_some();
            if let Some(terms) = b.commercial {
                // Checked before anything is written, so a bad body changes nothing.
                if let Some(t) = &terms {
                    t.check()?;
                }
                crate::usecases::billing::set_terms(ts, &c.actor, &id, terms, now).await?;
                if !others {
                    let s = licensing::get(cache, ts, &id, now).await?;
                    return Ok(Reply::ok(view(&s)));
                }
            }
            let patch = licensing::LicensePatch {
                metadata: b.metadata.map(|m| request::metadata(Some(m))).transpose()?,
                max_activations: b.max_activations,
                entitlements: b.entitlements,
                policy: b.policy,
            };
            let s = licensing::patch_license(cache, ts, &c.actor, &id, patch, now).await?;
            Ok(Reply::ok(view(&s)))
        }
        LicenseOp::Suspend | LicenseOp::Resume | LicenseOp::Cancel | LicenseOp::Renew => {
            let id = license_id(ctx)?;
            let what = match op {
                LicenseOp::Suspend => Lifecycle::Suspend,
                LicenseOp::Resume => Lifecycle::Resume,
                LicenseOp::Cancel => Lifecycle::Cancel,
                _ => {
                    let b: RenewBody = request::json(ctx.body)?;
                    Lifecycle::Renew(match (b.expires_at, b.days) {
                        (Some(at), None) => RenewTo::Date(at),
                        (None, Some(d)) => RenewTo::Days(d),
                        _ => {
                            let msg = "give exactly one of expires_at or days";
                            return Err(Error::validation(msg));
                        }
                    })
                }
            };
            let s = licensing::lifecycle(cache, ts, &c.actor, &id, what, now).await?;
            Ok(Reply::ok(view(&s)))
        }
        LicenseOp::Activations => {
            let acts = licensing::activations(ts, &license_id(ctx)?).await?;
            Ok(Reply::list(
                acts.iter()
                    .map(|a| views::activation_view(a, now))
                    .collect(),
                None,
            ))
        }
    }
}

/// The filters of a tenant-wide listing; a bad value is a 422 naming its
/// field.
fn license_filter(ctx: &Ctx<'_>) -> Result<LicenseFilter, Error> {
    let q = &ctx.query;
    let named = |field: &str| {
        let field = field.to_string();
        move |e: InvalidId| Error::validation(format!("{field}: {}", e.reason))
    };
    let f = LicenseFilter {
        status: q.get("status").map(ShownStatus::parse).transpose()?,
        product: q
            .get("product")
            .map(ProductCode::parse)
            .transpose()
            .map_err(named("product"))?,
        policy: q
            .get("policy")
            .map(PolicyId::parse)
            .transpose()
            .map_err(named("policy"))?,
        created_after: q.timestamp("created_after")?,
        created_before: q.timestamp("created_before")?,
        q: q.get("q").map(SearchPrefix::parse).transpose()?,
    };
    f.check()?;
    Ok(f)
}
