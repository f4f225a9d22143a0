//! The Management API: request bodies → use cases → views, one function
//! per resource, each matching its operations exhaustively.

use super::envelope::{Reply, ReplyBody};
use super::request::{self, bounded};
use super::views;
use super::{Caller, Ctx};
use crate::domain::*;
use crate::error::{license_not_found, Error};
use crate::functions::{ApiKeyOp, LicenseOp, ManageOp, PolicyOp, ProductOp, UsageOp, WebhookOp};
use crate::ids::*;
use crate::usecases::licensing::{self, LicenseState, Lifecycle, RenewTo};
use crate::usecases::{catalog, metering, tenants};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;

type R = Result<Reply, Error>;

pub async fn serve(ctx: &Ctx<'_>, caller: &Caller, op: ManageOp) -> R {
    match op {
        ManageOp::Product(op) => products(ctx, caller, op).await,
        ManageOp::Policy(op) => policies(ctx, caller, op).await,
        ManageOp::License(op) => licenses(ctx, caller, op).await,
        ManageOp::Usage(op) => usage(ctx, caller, op).await,
        ManageOp::ApiKey(op) => api_keys(ctx, caller, op).await,
        ManageOp::AuditList => {
            let since = ctx.query.timestamp("since")?;
            let (limit, cursor) = (ctx.query.limit()?, ctx.query.cursor());
            let page = caller
                .store
                .list_audit(ctx.app.signer()?, since, limit, cursor)
                .await?;
            Ok(Reply::list(
                page.items.iter().map(views::audit_view).collect(),
                page.next_cursor,
            ))
        }
        ManageOp::StripeIntegrationPut => super::stripe::put_secret(ctx, caller).await,
        ManageOp::Webhook(op) => webhook_endpoints(ctx, caller, op).await,
        ManageOp::SigningKeyRotate => {
            let keys = ctx.app.signing_keys()?;
            let t = caller.store.tenant_id();
            let (tenant, version) =
                tenants::rotate_signing_key(&ctx.app.store, t, &caller.actor, ctx.now).await?;
            // This instance signs with the new key at once; the others
            // within the API-key freshness (5 s).
            ctx.app.keys.forget_tenant(t);
            ctx.app.tenants.forget(t);
            let made = tenant
                .signing_key_versions()
                .into_iter()
                .find(|(v, _, _)| *v == version);
            let at = made.map(|(_, at, _)| at).unwrap_or(ctx.now);
            Ok(Reply::created(views::signing_key_view(
                t, keys, version, at, true,
            )))
        }
    }
}

// ------------------------------------------------------------ products

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductBody {
    code: ProductCode,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductPatchBody {
    name: Option<String>,
    /// Absent: unchanged; `null`: no trial; an object: the trial.
    #[serde(default, deserialize_with = "double_option")]
    trial: Option<Option<TrialSettings>>,
}

fn product_code(ctx: &Ctx<'_>) -> Result<ProductCode, Error> {
    ProductCode::parse(ctx.param("code")).map_err(|_| catalog::product_not_found())
}

async fn products(ctx: &Ctx<'_>, c: &Caller, op: ProductOp) -> R {
    let (ts, now) = (&c.store, ctx.now);
    match op {
        ProductOp::Create => {
            let b: ProductBody = request::json(ctx.body)?;
            bounded("name", &b.name, 200)?;
            let p = catalog::create_product(ts, &c.actor, b.code, b.name, now).await?;
            Ok(Reply::created(views::product_view(&p)))
        }
        ProductOp::List => {
            let (limit, cursor) = (ctx.query.limit()?, ctx.query.cursor());
            let page = ts.list_products(ctx.app.signer()?, limit, cursor).await?;
            Ok(Reply::list(
                page.items.iter().map(views::product_view).collect(),
                page.next_cursor,
            ))
        }
        ProductOp::Get => {
            let p = catalog::get_product(ts, &product_code(ctx)?).await?;
            Ok(Reply::ok(views::product_view(&p)))
        }
        ProductOp::Patch => {
            let code = product_code(ctx)?;
            let b: ProductPatchBody = request::json(ctx.body)?;
            if let Some(n) = &b.name {
                bounded("name", n, 200)?;
            }
            let patch = ProductPatch {
                name: b.name,
                trial: b.trial,
            };
            let p = catalog::update_product(ts, &c.actor, &code, patch, now).await?;
            Ok(Reply::ok(views::product_view(&p)))
        }
    }
}

// ------------------------------------------------------------ policies

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    product: ProductCode,
    name: String,
    max_activations: u32,
    #[serde(default)]
    duration_days: Option<u32>,
    #[serde(default)]
    entitlements: Entitlements,
    #[serde(default)]
    grace_period_days: Option<u32>,
    #[serde(default)]
    stripe_price_ids: Vec<String>,
    #[serde(default)]
    activation_mode: ActivationMode,
    lease_seconds: Option<u32>,
    #[serde(default)]
    max_overage: u32,
    heartbeat_seconds: Option<u32>,
    max_deactivations: Option<ChurnLimit>,
    client_auth: Option<bool>,
}

/// `Some(None)` distinguishes an explicit `null` from an absent field.
fn double_option<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyPatchBody {
    name: Option<String>,
    max_activations: Option<u32>,
    #[serde(default, deserialize_with = "double_option")]
    duration_days: Option<Option<u32>>,
    entitlements: Option<Entitlements>,
    grace_period_days: Option<u32>,
    stripe_price_ids: Option<Vec<String>>,
    activation_mode: Option<ActivationMode>,
    #[serde(default, deserialize_with = "double_option")]
    lease_seconds: Option<Option<u32>>,
    max_overage: Option<u32>,
    #[serde(default, deserialize_with = "double_option")]
    heartbeat_seconds: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    max_deactivations: Option<Option<ChurnLimit>>,
    client_auth: Option<bool>,
}

fn check_price_ids(ids: &[String]) -> Result<(), Error> {
    if ids.len() > 20
        || ids
            .iter()
            .any(|p| bounded("stripe_price_ids", p, 255).is_err())
    {
        return Err(Error::validation(
            "stripe_price_ids: at most 20 ids of 1 to 255 characters",
        ));
    }
    Ok(())
}

fn policy_id(ctx: &Ctx<'_>) -> Result<PolicyId, Error> {
    PolicyId::parse(ctx.param("id")).map_err(|_| catalog::policy_not_found())
}

async fn policies(ctx: &Ctx<'_>, c: &Caller, op: PolicyOp) -> R {
    let (ts, now, cache) = (&c.store, ctx.now, &ctx.app.policies);
    match op {
        PolicyOp::Create => {
            let b: PolicyBody = request::json(ctx.body)?;
            bounded("name", &b.name, 200)?;
            check_entitlements(&b.entitlements)?;
            check_price_ids(&b.stripe_price_ids)?;
            check_duration_days(b.duration_days)?;
            check_max_activations(b.max_activations)?;
            if let Some(g) = b.grace_period_days {
                check_grace_period_days(g)?;
            }
            let input = catalog::PolicyInput {
                product: b.product,
                name: b.name,
                max_activations: b.max_activations,
                duration_days: b.duration_days,
                entitlements: b.entitlements,
                grace_period_days: b.grace_period_days.unwrap_or(c.default_grace_days),
                stripe_price_ids: b.stripe_price_ids,
                terms: SeatTerms {
                    activation_mode: b.activation_mode,
                    lease_seconds: b.lease_seconds,
                    max_overage: b.max_overage,
                    heartbeat_seconds: b.heartbeat_seconds,
                    max_deactivations: b.max_deactivations,
                },
                client_auth: b.client_auth.unwrap_or(true),
            };
            let p = catalog::create_policy(cache, ts, &c.actor, input, now).await?;
            Ok(Reply::created(views::policy_view(&p)))
        }
        PolicyOp::List => {
            let (limit, cursor) = (ctx.query.limit()?, ctx.query.cursor());
            let page = ts.list_policies(ctx.app.signer()?, limit, cursor).await?;
            Ok(Reply::list(
                page.items.iter().map(views::policy_view).collect(),
                page.next_cursor,
            ))
        }
        PolicyOp::Get => {
            let p = catalog::get_policy(ts, &policy_id(ctx)?).await?;
            Ok(Reply::ok(views::policy_view(&p)))
        }
        PolicyOp::Patch => {
            let id = policy_id(ctx)?;
            let b: PolicyPatchBody = request::json(ctx.body)?;
            if let Some(n) = &b.name {
                bounded("name", n, 200)?;
            }
            if let Some(d) = b.duration_days {
                check_duration_days(d)?;
            }
            if let Some(n) = b.max_activations {
                check_max_activations(n)?;
            }
            if let Some(g) = b.grace_period_days {
                check_grace_period_days(g)?;
            }
            if let Some(e) = &b.entitlements {
                check_entitlements(e)?;
            }
            if let Some(ids) = &b.stripe_price_ids {
                check_price_ids(ids)?;
            }
            let patch = PolicyPatch {
                name: b.name,
                max_activations: b.max_activations,
                duration_days: b.duration_days,
                entitlements: b.entitlements,
                grace_period_days: b.grace_period_days,
                stripe_price_ids: b.stripe_price_ids,
                activation_mode: b.activation_mode,
                lease_seconds: b.lease_seconds,
                max_overage: b.max_overage,
                heartbeat_seconds: b.heartbeat_seconds,
                max_deactivations: b.max_deactivations,
                client_auth: b.client_auth,
            };
            let p = catalog::update_policy(cache, ts, &c.actor, &id, patch, now).await?;
            Ok(Reply::ok(views::policy_view(&p)))
        }
    }
}

// ------------------------------------------------------------ licenses

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LicenseBody {
    policy: PolicyId,
    customer_email: String,
    #[serde(default, with = "crate::clock::ts::option")]
    expires_at: Option<OffsetDateTime>,
    key: Option<LicenseKey>,
    metadata: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LicensePatchBody {
    metadata: Option<Map<String, Value>>,
    max_activations: Option<u32>,
    entitlements: Option<BTreeMap<Feature, licensing::OverrideChange>>,
    policy: Option<PolicyId>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    #[serde(default, with = "crate::clock::ts::option")]
    expires_at: Option<OffsetDateTime>,
    days: Option<u32>,
}

fn license_id(ctx: &Ctx<'_>) -> Result<LicenseId, Error> {
    LicenseId::parse(ctx.param("id")).map_err(|_| license_not_found())
}

async fn licenses(ctx: &Ctx<'_>, c: &Caller, op: LicenseOp) -> R {
    let (ts, now, cache) = (&c.store, ctx.now, &ctx.app.policies);
    let view = |s: &LicenseState| views::license_view(s, now);
    match op {
        LicenseOp::Create => {
            let b: LicenseBody = request::json(ctx.body)?;
            let req = licensing::NewLicense {
                policy: b.policy,
                customer_email: Email::normalise(&b.customer_email)?,
                expires_at: b.expires_at,
                key: b.key,
                metadata: request::metadata(b.metadata)?,
            };
            let s = licensing::issue(cache, ts, &c.actor, req, now).await?;
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
                    ts.list_licenses_by_email(ctx.app.signer()?, &email, limit, cursor)
                        .await?
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

// ------------------------------------------------------------ usage

async fn usage(ctx: &Ctx<'_>, c: &Caller, op: UsageOp) -> R {
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
            let page = ts
                .usage_by_period(signer, &period, metric.as_ref(), limit, cursor)
                .await?;
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
                None => crate::store::usage::month_of(ctx.now),
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

// ------------------------------------------------------------ API keys

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeyBody {
    name: String,
    scopes: Vec<Scope>,
    #[serde(default, with = "crate::clock::ts::option")]
    expires_at: Option<OffsetDateTime>,
}

async fn api_keys(ctx: &Ctx<'_>, c: &Caller, op: ApiKeyOp) -> R {
    let (ts, now) = (&c.store, ctx.now);
    match op {
        ApiKeyOp::Create => {
            let b: ApiKeyBody = request::json(ctx.body)?;
            bounded("name", &b.name, 200)?;
            let pepper = ctx.app.keys.pepper()?;
            let (rec, key) =
                catalog::create_api_key(pepper, ts, &c.actor, b.name, b.scopes, b.expires_at, now)
                    .await?;
            let mut v = views::api_key_view(&rec);
            v["key"] = json!(key);
            Ok(Reply::created(v))
        }
        ApiKeyOp::List => {
            let keys = ts.list_api_keys().await?;
            Ok(Reply::list(
                keys.iter().map(views::api_key_view).collect(),
                None,
            ))
        }
        ApiKeyOp::Revoke => {
            let id = ApiKeyId::parse(ctx.param("id"))
                .map_err(|_| Error::not_found("API_KEY_NOT_FOUND", "no API key with that id"))?;
            let rec = catalog::revoke_api_key(&ctx.app.keys, ts, &c.actor, &id, now).await?;
            Ok(Reply::ok(views::api_key_view(&rec)))
        }
    }
}

// ------------------------------------------------------------ webhook endpoints

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointBody {
    url: String,
    events: Vec<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointPatchBody {
    url: Option<String>,
    events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
    enabled: Option<bool>,
}

fn endpoint_id(ctx: &Ctx<'_>) -> Result<WebhookEndpointId, Error> {
    WebhookEndpointId::parse(ctx.param("id")).map_err(|_| {
        Error::not_found(
            "WEBHOOK_ENDPOINT_NOT_FOUND",
            "no webhook endpoint with that id",
        )
    })
}

async fn webhook_endpoints(ctx: &Ctx<'_>, c: &Caller, op: WebhookOp) -> R {
    use crate::domain::webhook::EventFilter;
    use crate::store::webhooks::EndpointPatch;
    use crate::webhooks as wh;
    let (ts, now) = (&c.store, ctx.now);
    match op {
        WebhookOp::Create => {
            let b: EndpointBody = request::json(ctx.body)?;
            let req = wh::NewEndpoint {
                url: b.url,
                events: EventFilter::parse(&b.events)?,
                description: b.description,
            };
            let (ep, secret) =
                wh::create_endpoint(ts, ctx.app.webhooks()?, req, &c.actor, now).await?;
            let mut v = views::webhook_endpoint_view(&ep);
            v["secret"] = json!(secret);
            Ok(Reply::created(v))
        }
        WebhookOp::List => {
            let eps = ts.list_webhook_endpoints().await?;
            let items = eps.iter().map(views::webhook_endpoint_view).collect();
            Ok(Reply::list(items, None))
        }
        WebhookOp::Get => {
            let ep = wh::get_endpoint(ts, &endpoint_id(ctx)?).await?;
            Ok(Reply::ok(views::webhook_endpoint_view(&ep)))
        }
        WebhookOp::Patch => {
            let id = endpoint_id(ctx)?;
            let b: EndpointPatchBody = request::json(ctx.body)?;
            let patch = EndpointPatch {
                url: b.url,
                events: b.events.as_deref().map(EventFilter::parse).transpose()?,
                description: b.description,
                enabled: b.enabled,
            };
            if patch.url.is_none()
                && patch.events.is_none()
                && patch.description.is_none()
                && patch.enabled.is_none()
            {
                return Err(Error::validation(
                    "nothing to change: give url, events, description or enabled",
                ));
            }
            let ep = wh::patch_endpoint(ts, ctx.app.webhooks()?, &id, patch, &c.actor, now).await?;
            Ok(Reply::ok(views::webhook_endpoint_view(&ep)))
        }
        WebhookOp::Delete => {
            let id = endpoint_id(ctx)?;
            wh::delete_endpoint(ts, &id, &c.actor, now).await?;
            Ok(Reply::ok(json!({ "id": id, "deleted": true })))
        }
        WebhookOp::Deliveries => {
            let id = endpoint_id(ctx)?;
            let (limit, cursor) = (ctx.query.limit()?, ctx.query.cursor());
            let page = wh::deliveries(ts, ctx.app.signer()?, &id, limit, cursor).await?;
            Ok(Reply::list(
                page.items.iter().map(views::delivery_view).collect(),
                page.next_cursor,
            ))
        }
        WebhookOp::Retry => {
            let id = endpoint_id(ctx)?;
            let delivery = DeliveryId::parse(ctx.param("delivery_id"))
                .map_err(|_| Error::not_found("DELIVERY_NOT_FOUND", "no delivery with that id"))?;
            let d = wh::retry_delivery(ts, ctx.app.webhooks()?, &id, &delivery, now).await?;
            Ok(Reply::created(views::delivery_view(&d)))
        }
        WebhookOp::Test => {
            let d = wh::send_test(ts, ctx.app.webhooks()?, &endpoint_id(ctx)?, now).await?;
            Ok(Reply::created(views::delivery_view(&d)))
        }
    }
}
