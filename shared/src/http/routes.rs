//! Per-operation translation: request DTO → use case → response view.

use super::envelope::Reply;
use super::request::{self, bounded};
use super::{Caller, Ctx};
use crate::clock::rfc3339;
use crate::domain::*;
use crate::error::{license_not_found, Error};
use crate::functions::Op;
use crate::ids::*;
use crate::store::catalog::{change, Changes};
use crate::store::licenses::{ActivateOutcome, DeactivateOutcome};
use crate::usecases::{catalog, licensing};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;

type R = Result<Reply, Error>;

pub async fn public(_ctx: &Ctx<'_>, op: Op) -> R {
    match op {
        Op::Health => Ok(Reply::ok(json!({ "status": "ok" }))),
        _ => Err(Error::internal(format!("{op:?} is not a public operation"))),
    }
}

pub async fn platform(ctx: &Ctx<'_>, op: Op) -> R {
    super::platform::route(ctx, op).await
}

pub async fn stripe(ctx: &Ctx<'_>, op: Op) -> R {
    super::stripe::route(ctx, op).await
}

// ------------------------------------------------------------ integration

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ValidateBody {
    fingerprint: Option<Fingerprint>,
    product: Option<ProductCode>,
    #[serde(default)]
    entitlements: Vec<Feature>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivateBody {
    license_key: LicenseKey,
    fingerprint: Fingerprint,
    name: Option<String>,
    hostname: Option<String>,
    metadata: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeactivateBody {
    license_key: LicenseKey,
    fingerprint: Fingerprint,
}

pub async fn integration(ctx: &Ctx<'_>, caller: &Caller, op: Op) -> R {
    let ts = &caller.store;
    match op {
        Op::Validate => {
            let b: ValidateBody = request::json(ctx.body)?;
            if b.entitlements.len() > 100 {
                return Err(Error::validation("at most 100 entitlements per request"));
            }
            // A key that cannot exist is not found: validate answers 200 for any key.
            let Ok(key) = LicenseKey::parse(ctx.param("key")) else {
                let code = ValidationCode::NotFound;
                return Ok(Reply::ok(
                    json!({ "valid": false, "code": code, "detail": code.detail(), "license": null }),
                ));
            };
            let scope = ValidationScope {
                fingerprint: b.fingerprint,
                product: b.product,
                entitlements: b.entitlements,
            };
            let v = licensing::validate(ctx.app, ts, &key, scope, ctx.now).await?;
            let license = v
                .license
                .as_ref()
                .map(|l| license_view(l, v.policy.as_deref(), Some(&v.usage), ctx.now));
            Ok(Reply::ok(json!({
                "valid": v.code == ValidationCode::Valid,
                "code": v.code,
                "detail": v.code.detail(),
                "license": license,
            })))
        }
        Op::Activate => {
            let b: ActivateBody = request::json(ctx.body)?;
            for (field, v) in [("name", &b.name), ("hostname", &b.hostname)] {
                if let Some(v) = v {
                    bounded(field, v, 255)?;
                }
            }
            let req = licensing::NewActivation {
                license_key: b.license_key,
                fingerprint: b.fingerprint,
                name: b.name,
                hostname: b.hostname,
                metadata: request::metadata(b.metadata)?,
            };
            match licensing::activate(ts, &caller.actor, req, ctx.now).await? {
                ActivateOutcome::Created(a) | ActivateOutcome::Restored(a) => {
                    Ok(Reply::created(a.view()))
                }
                ActivateOutcome::AlreadyActive(a) => Ok(Reply::ok(a.view())),
            }
        }
        Op::DeactivateById | Op::DeactivateByFingerprint => {
            let by_fingerprint = op == Op::DeactivateByFingerprint;
            let id = if by_fingerprint {
                let b: DeactivateBody = request::json(ctx.body)?;
                licensing::activation_id_for(ts, &b.license_key, &b.fingerprint)
            } else {
                ActivationId::parse(ctx.param("activation_id")).map_err(|_| {
                    Error::not_found("ACTIVATION_NOT_FOUND", "no activation with that id")
                })?
            };
            match licensing::deactivate(ts, &caller.actor, &id, ctx.now).await {
                Ok(DeactivateOutcome::Deactivated(a) | DeactivateOutcome::AlreadyInactive(a)) => {
                    Ok(Reply::ok(a.view()))
                }
                // By key and fingerprint, say which of the two is unknown (a read on the failure path only).
                Err(Error::NotFound {
                    code: "ACTIVATION_NOT_FOUND",
                    ..
                }) if by_fingerprint && ts.get_license(&id.license_id()).await?.is_none() => {
                    Err(license_not_found())
                }
                Err(e) => Err(e),
            }
        }
        Op::EntitlementsCheck | Op::UsageRecord => super::metering::route(ctx, caller, op).await,
        _ => Err(Error::internal(format!(
            "{op:?} is not an integration operation"
        ))),
    }
}

// ------------------------------------------------------------ management

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
}

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
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeyBody {
    name: String,
    scopes: Vec<Scope>,
    #[serde(default, with = "crate::clock::ts::option")]
    expires_at: Option<OffsetDateTime>,
}

fn product_view(p: &Product) -> Value {
    json!({ "code": p.code, "name": p.name, "created_at": rfc3339(p.created_at), "updated_at": rfc3339(p.updated_at) })
}

pub fn policy_view(p: &Policy) -> Value {
    json!({
        "id": p.id, "product": p.product, "name": p.name, "max_activations": p.max_activations,
        "duration_days": p.duration_days, "entitlements": p.entitlements, "grace_period_days": p.grace_period_days,
        "stripe_price_ids": p.stripe_price_ids, "created_at": rfc3339(p.created_at), "updated_at": rfc3339(p.updated_at),
    })
}

fn audit_view(a: &AuditEvent) -> Value {
    json!({
        "id": a.id, "code": a.code, "tenant_id": a.tenant_id, "actor": a.actor, "target_id": a.target_id,
        "at": rfc3339(a.at), "request_id": a.request_id, "severity": a.severity, "data": a.data,
    })
}

fn check_entitlements(e: &Entitlements) -> Result<(), Error> {
    if e.len() > 100 {
        return Err(Error::validation(
            "a policy may define at most 100 entitlements",
        ));
    }
    Ok(())
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

fn license_id(ctx: &Ctx<'_>) -> Result<LicenseId, Error> {
    LicenseId::parse(ctx.param("id")).map_err(|_| license_not_found())
}

pub async fn manage(ctx: &Ctx<'_>, caller: &Caller, op: Op) -> R {
    let (app, ts, actor, now) = (ctx.app, &caller.store, &caller.actor, ctx.now);
    match op {
        Op::ProductCreate => {
            let b: ProductBody = request::json(ctx.body)?;
            bounded("name", &b.name, 200)?;
            let p = catalog::create_product(ts, actor, b.code, b.name, now).await?;
            Ok(Reply::created(product_view(&p)))
        }
        Op::ProductList => {
            let page = ts
                .list_products(app.signer()?, ctx.query.limit()?, ctx.query.cursor())
                .await?;
            Ok(Reply::list(
                page.items.iter().map(product_view).collect(),
                page.next_cursor,
            ))
        }
        Op::ProductGet => {
            let code =
                ProductCode::parse(ctx.param("code")).map_err(|_| catalog::product_not_found())?;
            let p = ts
                .get_product(&code)
                .await?
                .ok_or_else(catalog::product_not_found)?;
            Ok(Reply::ok(product_view(&p)))
        }
        Op::ProductPatch => {
            let code =
                ProductCode::parse(ctx.param("code")).map_err(|_| catalog::product_not_found())?;
            let b: ProductPatchBody = request::json(ctx.body)?;
            if let Some(n) = &b.name {
                bounded("name", n, 200)?;
            }
            let p = catalog::rename_product(ts, actor, &code, b.name, now).await?;
            Ok(Reply::ok(product_view(&p)))
        }
        Op::PolicyCreate => {
            let b: PolicyBody = request::json(ctx.body)?;
            bounded("name", &b.name, 200)?;
            check_entitlements(&b.entitlements)?;
            check_price_ids(&b.stripe_price_ids)?;
            if b.duration_days == Some(0) {
                return Err(Error::validation(
                    "duration_days must be at least 1, or null for perpetual",
                ));
            }
            let input = catalog::PolicyInput {
                product: b.product,
                name: b.name,
                max_activations: b.max_activations,
                duration_days: b.duration_days,
                entitlements: b.entitlements,
                grace_period_days: b
                    .grace_period_days
                    .unwrap_or(caller.principal.default_grace_days),
                stripe_price_ids: b.stripe_price_ids,
            };
            let p = catalog::create_policy(app, ts, actor, input, now).await?;
            Ok(Reply::created(policy_view(&p)))
        }
        Op::PolicyList => {
            let page = ts
                .list_policies(app.signer()?, ctx.query.limit()?, ctx.query.cursor())
                .await?;
            Ok(Reply::list(
                page.items.iter().map(policy_view).collect(),
                page.next_cursor,
            ))
        }
        Op::PolicyGet => {
            let id = PolicyId::parse(ctx.param("id")).map_err(|_| catalog::policy_not_found())?;
            let p = ts
                .get_policy(&id)
                .await?
                .ok_or_else(catalog::policy_not_found)?;
            Ok(Reply::ok(policy_view(&p)))
        }
        Op::PolicyPatch => {
            let id = PolicyId::parse(ctx.param("id")).map_err(|_| catalog::policy_not_found())?;
            let b: PolicyPatchBody = request::json(ctx.body)?;
            let mut changes: Changes = Vec::new();
            if let Some(n) = &b.name {
                bounded("name", n, 200)?;
                changes.push(change("name", n)?);
            }
            if let Some(n) = b.max_activations {
                changes.push(change("max_activations", &n)?);
            }
            if let Some(d) = b.duration_days {
                if d == Some(0) {
                    return Err(Error::validation(
                        "duration_days must be at least 1, or null for perpetual",
                    ));
                }
                changes.push(change("duration_days", &d)?);
            }
            if let Some(e) = &b.entitlements {
                check_entitlements(e)?;
                changes.push(change("entitlements", e)?);
            }
            if let Some(g) = b.grace_period_days {
                changes.push(change("grace_period_days", &g)?);
            }
            if let Some(ids) = &b.stripe_price_ids {
                check_price_ids(ids)?;
                changes.push(change("stripe_price_ids", ids)?);
            }
            let p = catalog::update_policy(app, ts, actor, &id, changes, now).await?;
            Ok(Reply::ok(policy_view(&p)))
        }
        Op::LicenseCreate => {
            let b: LicenseBody = request::json(ctx.body)?;
            let req = licensing::NewLicense {
                policy: b.policy,
                customer_email: Email::normalise(&b.customer_email)?,
                expires_at: b.expires_at,
                key: b.key,
                metadata: request::metadata(b.metadata)?,
            };
            let l = licensing::issue(app, ts, actor, req, now).await?;
            let policy = app.policy(ts, &l.policy).await?;
            // A new license has used nothing yet.
            Ok(Reply::created(license_view(
                &l,
                policy.as_deref(),
                Some(&Default::default()),
                now,
            )))
        }
        Op::LicenseList => {
            let email = ctx.query.get("email").ok_or_else(|| {
                Error::validation("email is required: GET /v1/manage/licenses?email=...")
            })?;
            let email = Email::normalise(email)?;
            let page = ts
                .list_licenses_by_email(
                    app.signer()?,
                    &email,
                    ctx.query.limit()?,
                    ctx.query.cursor(),
                )
                .await?;
            let mut items = Vec::with_capacity(page.items.len());
            for l in &page.items {
                let policy = app.policy(ts, &l.policy).await?;
                items.push(license_view(l, policy.as_deref(), None, now));
            }
            Ok(Reply::list(items, page.next_cursor))
        }
        Op::LicenseGet => {
            let id = license_id(ctx)?;
            let read = ts.read_license(&id, None, now).await?;
            let l = read.license.ok_or_else(license_not_found)?;
            let policy = app.policy(ts, &l.policy).await?;
            Ok(Reply::ok(license_view(
                &l,
                policy.as_deref(),
                Some(&read.usage),
                now,
            )))
        }
        Op::LicensePatch => {
            let id = license_id(ctx)?;
            let b: LicensePatchBody = request::json(ctx.body)?;
            if let Some(e) = &b.entitlements {
                if e.len() > 100 {
                    return Err(Error::validation("at most 100 entitlement overrides"));
                }
            }
            let patch = licensing::LicensePatch {
                metadata: b.metadata.map(|m| request::metadata(Some(m))).transpose()?,
                max_activations: b.max_activations,
                entitlements: b.entitlements,
                policy: b.policy,
            };
            let (l, usage) = licensing::patch_license(app, ts, actor, &id, patch, now).await?;
            let policy = app.policy(ts, &l.policy).await?;
            Ok(Reply::ok(license_view(
                &l,
                policy.as_deref(),
                Some(&usage),
                now,
            )))
        }
        Op::LicenseSuspend | Op::LicenseResume | Op::LicenseCancel | Op::LicenseRenew => {
            let id = license_id(ctx)?;
            let what = match op {
                Op::LicenseSuspend => licensing::Lifecycle::Suspend,
                Op::LicenseResume => licensing::Lifecycle::Resume,
                Op::LicenseCancel => licensing::Lifecycle::Cancel,
                _ => {
                    let b: RenewBody = request::json(ctx.body)?;
                    let until = match (b.expires_at, b.days) {
                        (Some(at), None) if at > now => at,
                        (Some(_), None) => {
                            return Err(Error::validation("expires_at must be in the future"))
                        }
                        (None, Some(d)) if (1..=36_500).contains(&d) => {
                            let current =
                                ts.get_license(&id).await?.ok_or_else(license_not_found)?;
                            licensing::renewal_end(current.expires_at, d, now)
                        }
                        (None, Some(_)) => {
                            return Err(Error::validation("days must be from 1 to 36500"))
                        }
                        _ => {
                            return Err(Error::validation("give exactly one of expires_at or days"))
                        }
                    };
                    licensing::Lifecycle::Renew { until }
                }
            };
            let (l, usage) = licensing::lifecycle(ts, actor, &id, what, now).await?;
            let policy = app.policy(ts, &l.policy).await?;
            Ok(Reply::ok(license_view(
                &l,
                policy.as_deref(),
                Some(&usage),
                now,
            )))
        }
        Op::LicenseActivations => {
            let id = license_id(ctx)?;
            if ts.get_license(&id).await?.is_none() {
                return Err(license_not_found());
            }
            let acts = ts.list_activations(&id).await?;
            Ok(Reply::list(
                acts.iter().map(Activation::view).collect(),
                None,
            ))
        }
        Op::AuditList => {
            let since = ctx.query.timestamp("since")?;
            let page = ts
                .list_audit(app.signer()?, since, ctx.query.limit()?, ctx.query.cursor())
                .await?;
            Ok(Reply::list(
                page.items.iter().map(audit_view).collect(),
                page.next_cursor,
            ))
        }
        Op::ApiKeyCreate => {
            let b: ApiKeyBody = request::json(ctx.body)?;
            bounded("name", &b.name, 200)?;
            let mut scopes = b.scopes;
            scopes.sort_by_key(|s| *s as u8);
            scopes.dedup();
            if scopes.is_empty() {
                return Err(Error::validation(
                    "scopes must name at least one of integration, admin",
                ));
            }
            let (rec, key) =
                catalog::create_api_key(app, ts, actor, b.name, scopes, b.expires_at, now).await?;
            let mut v = rec.view();
            v["key"] = json!(key);
            Ok(Reply::created(v))
        }
        Op::ApiKeyList => {
            let keys = ts.list_api_keys().await?;
            Ok(Reply::list(
                keys.iter().map(ApiKeyRecord::view).collect(),
                None,
            ))
        }
        Op::ApiKeyRevoke => {
            let id = ApiKeyId::parse(ctx.param("id"))
                .map_err(|_| Error::not_found("API_KEY_NOT_FOUND", "no API key with that id"))?;
            let rec = catalog::revoke_api_key(app, ts, actor, &id, now).await?;
            Ok(Reply::ok(rec.view()))
        }
        Op::UsageGet | Op::UsageExport | Op::UsageEvents => {
            super::metering::manage(ctx, caller, op).await
        }
        Op::StripeIntegrationPut => super::stripe::put_secret(ctx, caller).await,
        _ => Err(Error::internal(format!(
            "{op:?} is not a management operation"
        ))),
    }
}
