//! `POST /v1/integration/trials`: a trial license of a product, activated on
//! the requesting device, once per customer e-mail and per device within the
//! product's cooldown. Trial licenses do not spend the plan's license limit;
//! public (credential-less) trials are capped per tenant and UTC day instead,
//! and their e-mail is unverified until its owner follows the link mailed to
//! it (until then it gives no portal access; the trial runs on its device).

use crate::cache::Policies;
use crate::clock::{add_days, rfc3339};
use crate::domain::*;
use crate::error::{trial_not_available, Error};
use crate::ids::{Email, Fingerprint, FingerprintDigest, ProductCode};
use crate::mail::Mailer;
use crate::store::trials::{DailyCap, TrialStart};
use crate::store::TenantStore;
use serde_json::{json, Map};
use time::OffsetDateTime;

pub struct TrialRequest {
    pub product: ProductCode,
    pub customer_email: Email,
    pub fingerprint: Fingerprint,
}

/// Who asks for the trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialCaller {
    /// An integration API key.
    Key,
    /// No credential (`X-Tenant-Id` only): only for public trials, at most
    /// `per_day` of them per tenant and UTC day.
    Public { per_day: u32 },
}

/// How a public trial's verification link reaches its e-mail.
pub struct VerifyMail<'a> {
    pub mailer: &'a Mailer,
    /// The portal's public origin (`PORTAL_BASE_URL`).
    pub base_url: &'a str,
    pub tenant_name: &'a str,
}

/// The new trial license and its activation.
pub struct Trial {
    pub license: License,
    pub policy: std::sync::Arc<Policy>,
    pub activation: Activation,
}

pub async fn start(
    policies: &Policies,
    ts: &TenantStore,
    actor: &Actor,
    caller: TrialCaller,
    req: TrialRequest,
    mail: Option<VerifyMail<'_>>,
    now: OffsetDateTime,
) -> Result<Trial, Error> {
    let settings = ts.get_product(&req.product).await?.and_then(|p| p.trial);
    let settings = match (caller, settings) {
        (TrialCaller::Public { .. }, Some(s)) if s.public => s,
        // Without a credential only a public trial answers: anything else is
        // the same 401, so it tells nothing about the tenant's products.
        (TrialCaller::Public { .. }, _) => return Err(Error::Unauthenticated),
        (TrialCaller::Key, Some(s)) => s,
        (TrialCaller::Key, None) => return Err(trial_not_available()),
    };
    // Trial policies belong to the product (checked when set) and are never
    // deleted; a missing one is a broken reference, not the caller's fault.
    let policy = policies
        .get(ts, &settings.policy)
        .await?
        .ok_or_else(trial_not_available)?;
    if policy.max_activations == 0 {
        return Err(Error::TooManyActivations { limit: 0 });
    }
    let mut metadata = Map::new();
    metadata.insert("trial".into(), json!(true));
    let mut license = License::issue(LicenseDraft {
        tenant: ts.tenant_id(),
        policy: &policy,
        key: None,
        customer_email: req.customer_email.clone(),
        status: LicenseStatus::Active,
        expires_at: Some(add_days(now, settings.days)?),
        grace_until: None,
        metadata,
        stripe: StripeLink::default(),
        stripe_event_at: 0,
        now,
    })?;
    // The activation below holds the license's first seat.
    license.seats_used = 1;
    let public = match caller {
        TrialCaller::Public { per_day } => Some(per_day),
        TrialCaller::Key => None,
    };
    // Anyone may type any address into a public trial: it proves nothing
    // until the link mailed to it is followed.
    license.email_unverified = public.is_some();
    let mut activation = Activation::new(
        &license.id,
        req.fingerprint.clone(),
        None,
        None,
        Map::new(),
        now,
    );
    if let Some(lease) = license.terms.lease() {
        activation.lease_seconds = Some(lease);
        activation.lease_expires_epoch = Some(now.unix_timestamp() + i64::from(lease));
    }
    let cooldown_until = add_days(now, settings.cooldown_days)?;
    let claim = TrialClaim {
        product: req.product.clone(),
        license_id: license.id.clone(),
        started_at: now,
        cooldown_until,
        cooldown_epoch: cooldown_until.unix_timestamp(),
    };
    let t = ts.tenant_id();
    let trial_audit = actor
        .audit(t, AuditCode::TrialStarted, license.id.as_str(), now)
        .with_data(json!({
            "product": req.product,
            "policy": license.policy,
            "customer_email": license.customer_email,
            "activation_id": activation.id,
            "expires_at": license.expires_at.map(rfc3339),
            "public": public.is_some(),
            "email_verified": public.is_none(),
        }));
    let license_audit = actor
        .audit(t, AuditCode::LicenseCreated, license.id.as_str(), now)
        .with_data(json!({
            "policy": license.policy,
            "customer_email": license.customer_email,
            "trial": true,
        }));
    let activation_audit = actor
        .audit(t, AuditCode::ActivationCreated, activation.id.as_str(), now)
        .with_data(json!({ "license_id": license.id, "fingerprint": activation.fingerprint }));
    let fingerprint = FingerprintDigest::of(&req.fingerprint);
    let day = TrialDay::of(now);
    let token = super::portal::new_secret();
    let digest = super::portal::digest(&token);
    let verification = EmailVerification {
        license_id: license.id.clone(),
        email: req.customer_email.clone(),
        product: req.product.clone(),
        // The link works as long as the trial does.
        expires_epoch: license
            .expires_epoch
            .unwrap_or(cooldown_until.unix_timestamp()),
        created_at: now,
        used_at: None,
    };
    ts.start_trial(
        &TrialStart {
            email: &req.customer_email,
            fingerprint: &fingerprint,
            claim: &claim,
            license: &license,
            activation: &activation,
            audits: [&trial_audit, &license_audit, &activation_audit],
            daily_cap: public.map(|limit| DailyCap { day: &day, limit }),
            verification: public.map(|_| (digest.as_str(), &verification)),
        },
        now,
    )
    .await?;
    if public.is_some() {
        // Once per trial: only the request whose transaction committed it
        // gets here. The trial stands whether or not the mail goes out.
        match mail {
            Some(m) => {
                if let Err(e) = send_verification(&m, t, &verification, &token).await {
                    tracing::error!(error = %e, license = %license.id, "trial verification mail not sent");
                }
            }
            None => tracing::warn!(
                license = %license.id,
                "no mailer configured: the trial's e-mail verification link was not sent"
            ),
        }
    }
    Ok(Trial {
        license,
        policy,
        activation,
    })
}

/// The e-mail that carries a public trial's verification link.
async fn send_verification(
    m: &VerifyMail<'_>,
    tenant: &crate::ids::TenantId,
    v: &EmailVerification,
    token: &str,
) -> Result<(), Error> {
    let url = format!("{}/portal/{tenant}/verify?token={token}", m.base_url);
    if m.mailer.log_links {
        tracing::info!(link = %url, email = %v.email, "dev: trial e-mail verification link");
    }
    let text = format!(
        "Someone started a trial of {product} from {name} with this e-mail address.\n\n\
         If it was you, confirm the address to see the trial in {name}'s licensing portal:\n\n\
         {url}\n\n\
         The trial runs on the device it was started on either way. If it was not you, ignore \
         this e-mail: without confirmation the address gets no access and no further mail about \
         this trial.\n",
        product = v.product,
        name = m.tenant_name,
    );
    m.mailer
        .send(
            &v.email,
            &format!("Confirm your e-mail for {}", m.tenant_name),
            &text,
        )
        .await
}
