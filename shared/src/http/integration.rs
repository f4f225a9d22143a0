//! The Integration API: request bodies → use cases → views.

use super::envelope::Reply;
use super::request::{self, bounded};
use super::{Caller, Ctx};
use crate::domain::seats::{ActivateOutcome, LiveLeases};
use crate::domain::{ValidationCode, ValidationScope};
use crate::error::Error;
use crate::functions::IntegrationOp;
use crate::ids::*;
use crate::usecases::licensing::{self, ActivationRef};
use crate::usecases::{metering, trials};
use crate::views;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrialBody {
    product: ProductCode,
    customer_email: String,
    fingerprint: Fingerprint,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    fingerprint: Option<Fingerprint>,
    ttl_seconds: Option<u32>,
}

/// The version of the tenant's key that signs now (from the tenant record,
/// fresh within 5 s).
async fn signing_version(ctx: &Ctx<'_>, caller: &Caller) -> Result<u32, Error> {
    let t = caller.store.tenant_id();
    let tenant = ctx.app.tenants.get(&ctx.app.store, t, ctx.now).await?;
    Ok(tenant.map_or(1, |t| t.signing_key_version))
}

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
    /// The record's properties (`properties`, as a batch's events name
    /// them, is accepted too): a `unique_count` metric reads its value here.
    #[serde(alias = "properties")]
    metadata: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    events: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchEventBody {
    id: String,
    license_key: LicenseKey,
    metric: Metric,
    quantity: u64,
    #[serde(default, with = "crate::clock::ts::option")]
    timestamp: Option<OffsetDateTime>,
    properties: Option<Map<String, Value>>,
}

/// `POST /v1/integration/usage/batch`: each event parsed on its own, so a
/// malformed one is rejected alone (its `id` echoed when it has one).
async fn usage_batch(ctx: &Ctx<'_>, caller: &Caller) -> Result<Reply, Error> {
    // (At most 1 MiB: checked with every body's size, before authentication.)
    // A client app: its key and policy first (401 / 403 before anything).
    if let Some(own) = &caller.license {
        license_access(ctx, caller, Some(own), false).await?;
    }
    let b: BatchBody = request::json(ctx.body)?;
    if b.events.is_empty() || b.events.len() > metering::MAX_BATCH {
        return Err(Error::validation(format!(
            "events must hold 1 to {} events",
            metering::MAX_BATCH
        )));
    }
    let mut parsed = Vec::new();
    let mut results: Vec<Option<Value>> = Vec::new();
    for raw in b.events {
        let digest = metering::body_digest(&raw);
        let id = raw
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match serde_json::from_value::<BatchEventBody>(raw) {
            Ok(e) => {
                parsed.push(metering::BatchEvent {
                    id: e.id,
                    license_key: e.license_key,
                    metric: e.metric,
                    quantity: e.quantity,
                    timestamp: e.timestamp,
                    properties: request::metadata(e.properties)?,
                    body_hash: digest,
                });
                results.push(None);
            }
            Err(err) => results.push(Some(json!({
                "id": id, "status": "rejected", "code": "VALIDATION_ERROR",
                "message": err.to_string(),
            }))),
        }
    }
    let answers = if parsed.is_empty() {
        Vec::new()
    } else {
        let (ts, actor) = (&caller.store, &caller.actor);
        let policies = &ctx.app.policies;
        let own = caller.license.as_ref();
        metering::batch(policies, ts, actor, own, parsed, ctx.now).await?
    };
    let mut answers = answers.into_iter();
    let results: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Some(v) => v,
            None => match answers.next() {
                Some((id, o)) => views::batch_result_view(&id, &o),
                None => json!({ "status": "rejected", "code": "INTERNAL_ERROR" }),
            },
        })
        .collect();
    Ok(Reply::ok(json!({ "results": results })))
}

/// May this caller act on `license` (`None`: a path key that cannot be a
/// license key)? A client app (license key) only on its own, whose key must
/// exist (else 401, whatever the request names) and whose policy must allow
/// client apps — one read, unless `checked_later`: the operation reads its
/// own license itself. An API-key caller on any license of its tenant: it
/// spends only its key's budget (the per-license budget is the license
/// key's own, spent when the caller was authenticated).
async fn license_access(
    ctx: &Ctx<'_>,
    caller: &Caller,
    license: Option<&LicenseId>,
    checked_later: bool,
) -> Result<(), Error> {
    match &caller.license {
        Some(own) => {
            let policies = &ctx.app.policies;
            licensing::client_scope(policies, &caller.store, own, license, checked_later).await
        }
        None => Ok(()),
    }
}

/// The path's activation id. One that cannot be an activation's is not
/// found — once a client app's key is proven (an unknown key is 401
/// whatever the path names).
async fn activation_id(ctx: &Ctx<'_>, caller: &Caller) -> Result<ActivationId, Error> {
    match ActivationId::parse(ctx.param("activation_id")) {
        Ok(id) => Ok(id),
        Err(_) => {
            if let Some(own) = &caller.license {
                licensing::client_gate(&ctx.app.policies, &caller.store, own).await?;
            }
            Err(licensing::activation_not_found())
        }
    }
}

pub async fn serve(ctx: &Ctx<'_>, caller: &Caller, op: IntegrationOp) -> Result<Reply, Error> {
    let (ts, actor, now) = (&caller.store, &caller.actor, ctx.now);
    let policies = &ctx.app.policies;
    let license_of = |key: &LicenseKey| LicenseId::derive(ts.tenant_id(), key);
    match op {
        IntegrationOp::Trial => {
            // A license key starts no trial (401 first if it is unknown).
            if caller.license.is_some() {
                license_access(ctx, caller, None, false).await?;
            }
            let b: TrialBody = request::json(ctx.body)?;
            let req = trials::TrialRequest {
                product: b.product,
                customer_email: Email::normalise(&b.customer_email)?,
                fingerprint: b.fingerprint,
            };
            let (who, tenant) = match caller.public_trials_per_day {
                Some(per_day) => {
                    let tenant = ctx
                        .app
                        .tenants
                        .get(&ctx.app.store, ts.tenant_id(), now)
                        .await?;
                    (trials::TrialCaller::Public { per_day }, tenant)
                }
                None => (trials::TrialCaller::Key, None),
            };
            let mail = match (&ctx.app.mailer, &ctx.app.config.portal_base_url, &tenant) {
                (Some(mailer), Some(base_url), Some(t)) => Some(trials::VerifyMail {
                    mailer,
                    base_url,
                    tenant_name: &t.name,
                }),
                _ => None,
            };
            let t = trials::start(policies, ts, actor, who, req, mail, now).await?;
            let license = views::license_view_parts(
                &t.license,
                Some(&t.policy),
                Some(&Default::default()),
                // Floating: the trial's one lease.
                Some(LiveLeases {
                    used: 1,
                    overage_used: 0,
                }),
                now,
            );
            Ok(Reply::created(json!({
                "license": license,
                "activation": views::activation_view(&t.activation, now),
            })))
        }
        IntegrationOp::Validate => {
            let b: ValidateBody = request::json(ctx.body)?;
            if b.entitlements.len() > 100 {
                return Err(Error::validation("at most 100 entitlements per request"));
            }
            // A key that cannot exist is not found: validate answers 200 for
            // any key (a client app's own key always parses).
            let Ok(key) = LicenseKey::parse(ctx.param("key")) else {
                if caller.license.is_some() {
                    license_access(ctx, caller, None, false).await?;
                }
                let code = ValidationCode::NotFound;
                let detail = code.detail();
                let data =
                    json!({ "valid": false, "code": code, "detail": detail, "license": null });
                return Ok(Reply::ok(data));
            };
            license_access(ctx, caller, Some(&license_of(&key)), true).await?;
            let scope = ValidationScope {
                fingerprint: b.fingerprint,
                product: b.product,
                entitlements: b.entitlements,
            };
            let terms = &ctx.app.license_terms;
            let v = licensing::validate(policies, terms, ts, &key, scope, now).await?;
            if caller.license.is_some() {
                // The read proves the client's key (or it is the same 401 as
                // an unknown tenant), and its policy must allow client apps.
                let policy = v.policy.as_deref().ok_or(Error::Unauthenticated)?;
                licensing::client_allowed(policy)?;
            }
            let license = v.license.as_ref().map(|l| {
                views::license_view_parts(
                    l,
                    v.policy.as_deref(),
                    Some(&v.usage),
                    Some(v.leases),
                    now,
                )
            });
            Ok(Reply::ok(json!({
                "valid": v.code == ValidationCode::Valid,
                "code": v.code,
                "detail": v.code.detail(),
                "license": license,
            })))
        }
        IntegrationOp::Activate => {
            let b: ActivateBody = request::json(ctx.body)?;
            for (field, v) in [("name", &b.name), ("hostname", &b.hostname)] {
                if let Some(v) = v {
                    bounded(field, v, 255)?;
                }
            }
            license_access(ctx, caller, Some(&license_of(&b.license_key)), false).await?;
            let req = licensing::NewActivation {
                license_key: b.license_key,
                fingerprint: b.fingerprint,
                name: b.name,
                hostname: b.hostname,
                metadata: request::metadata(b.metadata)?,
            };
            let terms = &ctx.app.license_terms;
            Ok(
                match licensing::activate(terms, ts, actor, req, now).await? {
                    ActivateOutcome::Created(a) | ActivateOutcome::Restored(a) => {
                        Reply::created(views::activation_view(&a, now))
                    }
                    ActivateOutcome::AlreadyActive(a) | ActivateOutcome::Renewed(a) => {
                        Reply::ok(views::activation_view(&a, now))
                    }
                },
            )
        }
        IntegrationOp::DeactivateById => {
            let id = activation_id(ctx, caller).await?;
            license_access(ctx, caller, Some(&id.license_id()), false).await?;
            let a = licensing::deactivate(ts, actor, ActivationRef::Id(id), now).await?;
            Ok(Reply::ok(views::activation_view(&a, now)))
        }
        IntegrationOp::Checkout => {
            let b: CheckoutBody = request::json(ctx.body)?;
            let Ok(key) = LicenseKey::parse(ctx.param("key")) else {
                license_access(ctx, caller, None, false).await?;
                return Err(crate::error::license_not_found());
            };
            license_access(ctx, caller, Some(&license_of(&key)), true).await?;
            let app = ctx.app;
            let signer = licensing::FileSigner {
                keys: app.signing_keys()?,
                version: signing_version(ctx, caller).await?,
            };
            let ttl = b.ttl_seconds.unwrap_or(licensing::DEFAULT_FILE_TTL);
            let client = caller.license.is_some();
            let file = licensing::checkout(
                policies,
                &app.license_terms,
                ts,
                &key,
                b.fingerprint,
                ttl,
                signer,
                client,
                now,
            )
            .await?;
            Ok(Reply::created(views::license_file_view(&file)))
        }
        IntegrationOp::Heartbeat => {
            let id = activation_id(ctx, caller).await?;
            license_access(ctx, caller, Some(&id.license_id()), false).await?;
            let a = licensing::heartbeat(ts, &id, now).await?;
            Ok(Reply::ok(views::activation_view(&a, now)))
        }
        IntegrationOp::DeactivateByFingerprint => {
            let b: DeactivateBody = request::json(ctx.body)?;
            license_access(ctx, caller, Some(&license_of(&b.license_key)), false).await?;
            let which = ActivationRef::Fingerprint(b.license_key, b.fingerprint);
            let a = licensing::deactivate(ts, actor, which, now).await?;
            Ok(Reply::ok(views::activation_view(&a, now)))
        }
        IntegrationOp::EntitlementsCheck => {
            let b: CheckBody = request::json(ctx.body)?;
            license_access(ctx, caller, Some(&license_of(&b.license_key)), false).await?;
            let c = metering::check(policies, ts, &b.license_key, b.features, now).await?;
            Ok(Reply::ok(views::entitlement_check_view(&c, now)))
        }
        IntegrationOp::UsageBatch => usage_batch(ctx, caller).await,
        IntegrationOp::UsageRecord => {
            // Read as bytes: a header that is not visible ASCII is refused,
            // never taken for an absent one (a retry would count twice).
            let raw = ctx.headers.get("x-idempotency-key").map(|v| v.as_bytes());
            let idempotency_key = match raw {
                None => None,
                Some(k)
                    if !k.is_empty()
                        && k.len() <= 255
                        && k.iter().all(|c| c.is_ascii_graphic() || *c == b' ') =>
                {
                    Some(String::from_utf8_lossy(k).into_owned())
                }
                Some(_) => {
                    let msg = "X-Idempotency-Key must be 1 to 255 printable ASCII characters";
                    return Err(Error::validation(msg));
                }
            };
            let b: RecordBody = request::json(ctx.body)?;
            license_access(ctx, caller, Some(&license_of(&b.license_key)), false).await?;
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
            let r = metering::record(policies, ts, actor, input, now).await?;
            let reply = Reply::created(views::usage_recorded_view(&r.recorded));
            Ok(if r.replayed {
                reply.with_header("idempotent-replayed", "true")
            } else {
                reply
            })
        }
    }
}
