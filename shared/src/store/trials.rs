//! Trials: one transaction takes the e-mail's and the fingerprint's claims on
//! the product's trial, issues the license (under the tenant's plan limit)
//! with its first seat taken, puts the activation and writes the three audit
//! events. A claim is taken only if it is new or its cooldown has ended, so
//! of any number of concurrent requests for one e-mail (or one fingerprint)
//! exactly one commits.

use super::attrs as a;
use super::licenses::{plan_refusal, LICENSE_ITEM};
use super::write::{n, PutIf, Txn, TxnError};
use super::{keys, TenantStore};
use crate::domain::{Activation, AuditEvent, License, TrialClaim};
use crate::error::Error;
use crate::ids::{Email, FingerprintDigest};
use time::OffsetDateTime;

mod item {
    pub const EMAIL_CLAIM: &str = "e-mail claim";
    pub const FINGERPRINT_CLAIM: &str = "fingerprint claim";
    pub const ACTIVATION: &str = "activation";
    pub const TRIAL_AUDIT: &str = "trial audit";
    pub const LICENSE_AUDIT: &str = "license audit";
    pub const ACTIVATION_AUDIT: &str = "activation audit";
}

/// Everything a started trial writes.
pub struct TrialStart<'a> {
    pub email: &'a Email,
    pub fingerprint: &'a FingerprintDigest,
    pub claim: &'a TrialClaim,
    /// The trial license, its first seat already counted.
    pub license: &'a License,
    pub activation: &'a Activation,
    /// TRIAL.STARTED, LICENSE.CREATED, ACTIVATION.CREATED.
    pub audits: [&'a AuditEvent; 3],
}

impl TenantStore {
    pub async fn start_trial(&self, s: &TrialStart<'_>, now: OffsetDateTime) -> Result<(), Error> {
        let t = self.tenant_id();
        let product = &s.claim.product;
        let mut txn = Txn::new();
        let taken = PutIf::NewOrLapsed {
            attr: a::COOLDOWN_EPOCH,
            now_epoch: now.unix_timestamp(),
        };
        // Claims outlive their cooldown by nothing: TTL may delete them then
        // (the condition never relies on it).
        let ttl = vec![(a::TTL, n(s.claim.cooldown_epoch))];
        let email_key = keys::trial_email_claim(t, product, s.email);
        txn.put_with(item::EMAIL_CLAIM, &email_key, s.claim, ttl.clone(), taken)?;
        let fp_key = keys::trial_fingerprint_claim(t, product, s.fingerprint);
        txn.put_with(item::FINGERPRINT_CLAIM, &fp_key, s.claim, ttl, taken)?;
        self.push_issue(&mut txn, s.license)?;
        let activation_key = keys::activation(t, &s.activation.id);
        txn.put(item::ACTIVATION, &activation_key, s.activation, PutIf::New)?;
        let [trial, license, activation] = s.audits;
        self.push_audit(&mut txn, item::TRIAL_AUDIT, trial)?;
        self.push_audit(&mut txn, item::LICENSE_AUDIT, license)?;
        self.push_audit(&mut txn, item::ACTIVATION_AUDIT, activation)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(()),
            Err(TxnError::Other(e)) => Err(e),
            Err(TxnError::Cancelled(c)) => {
                // The later of the refusing claims' cooldowns.
                let mut until: Option<OffsetDateTime> = None;
                for name in [item::EMAIL_CLAIM, item::FINGERPRINT_CLAIM] {
                    if let Some(old) = c.old_as::<TrialClaim>(name)? {
                        until = until.max(Some(old.cooldown_until));
                    }
                }
                if let Some(retry_after) = until {
                    return Err(Error::TrialAlreadyUsed { retry_after });
                }
                if let Some(e) = plan_refusal(&c) {
                    return Err(e);
                }
                if c.failed(LICENSE_ITEM) {
                    return Err(Error::Unavailable("license key collision; retry".into()));
                }
                Err(Error::internal(format!("trial refused: {}", c.describe())))
            }
        }
    }
}
