//! Policies: `/v1/manage/policies`.

use super::{double_option, R};
use crate::domain::*;
use crate::error::Error;
use crate::functions::PolicyOp;
use crate::http::envelope::Reply;
use crate::http::request::{self, bounded};
use crate::http::{Caller, Ctx};
use crate::ids::*;
use crate::usecases::catalog;
use crate::views;
use serde::Deserialize;

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
    max_file_ttl_seconds: Option<u32>,
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
    max_file_ttl_seconds: Option<u32>,
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

pub async fn serve(ctx: &Ctx<'_>, c: &Caller, op: PolicyOp) -> R {
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
            if let Some(s) = b.max_file_ttl_seconds {
                check_max_file_ttl_seconds(s)?;
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
                max_file_ttl_seconds: b
                    .max_file_ttl_seconds
                    .unwrap_or(bounds::DEFAULT_MAX_FILE_TTL_SECONDS),
            };
            let p = catalog::create_policy(cache, ts, &c.actor, input, now).await?;
            Ok(Reply::created(views::policy_view(&p)))
        }
        PolicyOp::List => {
            let (limit, cursor) = (ctx.query.limit()?, ctx.query.cursor());
            let page = catalog::list_policies(ts, ctx.app.signer()?, limit, cursor).await?;
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
            if let Some(s) = b.max_file_ttl_seconds {
                check_max_file_ttl_seconds(s)?;
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
                max_file_ttl_seconds: b.max_file_ttl_seconds,
            };
            let p = catalog::update_policy(cache, ts, &c.actor, &id, patch, now).await?;
            Ok(Reply::ok(views::policy_view(&p)))
        }
    }
}
