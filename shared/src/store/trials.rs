//! Trials: one transaction takes the e-mail's and the fingerprint's claims on
//! the product's trial, issues the license (outside the plan's license limit:
//! the tenant need only be active) with its first seat taken, puts the
//! activation and writes the three audit events; a public trial also takes
//! one of the tenant's public trials of the day (a conditional counter) and
//! stores its e-mail verification link. A claim is taken only if it is new
//! or its cooldown has ended, so of any number of concurrent requests for
//! one e-mail (or one fingerprint) exactly one commits; the day's counter
//! only moves below its cap, so exactly the cap's number commit in a day.

use super::attrs as a;
use super::licenses::LICENSE_ITEM;
use super::write::{n, PutIf, Txn, TxnError, Write};
use super::{keys, TenantStore};
use crate::clock::rfc3339;
use crate::domain::{Activation, AuditEvent, EmailVerification, License, TrialClaim, TrialDay};
use crate::error::Error;
use crate::ids::{Email, FingerprintDigest};
use time::OffsetDateTime;

mod item {
    pub const EMAIL_CLAIM: &str = "e-mail claim";
    pub const FINGERPRINT_CLAIM: &str = "fingerprint claim";
    pub const TENANT: &str = "tenant";
    pub const DAY: &str = "public trials of the day";
    pub const VERIFICATION: &str = "e-mail verification";
    pub const ACTIVATION: &str = "activation";
    pub const TRIAL_AUDIT: &str = "trial audit";
    pub const LICENSE_AUDIT: &str = "license audit";
    pub const ACTIVATION_AUDIT: &str = "activation audit";
    pub const LINK: &str = "link";
    pub const LICENSE: &str = "license";
    pub const AUDIT: &str = "audit";
}

/// A public trial's share of the tenant's daily cap.
pub struct DailyCap<'a> {
    pub day: &'a TrialDay,
    pub limit: u32,
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
    /// Public trials: the day's counter.
    pub daily_cap: Option<DailyCap<'a>>,
    /// Public trials: the verification link (token digest and record).
    pub verification: Option<(&'a str, &'a EmailVerification)>,
}

/// Verification links are kept this long after they expire, then TTL may
/// tidy them (the condition never relies on it).
const TIDY_AFTER_SECS: i64 = 24 * 3600;

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
        // A trial license does not count against the plan's license limit
        // (`licenses_issued` is not touched); the tenant must be active.
        let mut tenant = Write::to(keys::tenant(t));
        tenant.if_exists().if_eq(a::STATUS, "active");
        txn.check(item::TENANT, &tenant)?;
        self.push_license_item(&mut txn, s.license)?;
        if let Some(cap) = &s.daily_cap {
            let mut day = Write::to(keys::public_trial_day(t, &cap.day.key));
            day.increment(a::TAKEN, 1)
                .set(a::TTL, &cap.day.tidy_epoch)
                .if_absent_or_below(a::TAKEN, cap.limit);
            txn.update(item::DAY, &day)?;
        }
        if let Some((digest, v)) = s.verification {
            let tidy = vec![(a::TTL, n(v.expires_epoch + TIDY_AFTER_SECS))];
            let key = keys::email_verification(t, digest);
            txn.put_with(item::VERIFICATION, &key, v, tidy, PutIf::New)?;
        }
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
                if c.failed(item::TENANT) {
                    return Err(Error::TenantInactive);
                }
                if let Some(cap) = s.daily_cap.as_ref().filter(|_| c.failed(item::DAY)) {
                    return Err(Error::TrialCapReached {
                        limit: cap.limit,
                        retry_after_secs: cap.day.retry_after_secs,
                    });
                }
                if c.failed(LICENSE_ITEM)
                    || (s.verification.is_some() && c.failed(item::VERIFICATION))
                {
                    return Err(Error::Unavailable("key collision; retry".into()));
                }
                Err(Error::internal(format!("trial refused: {}", c.describe())))
            }
        }
    }

    /// Follow a public trial's verification link: once, before it expires,
    /// and only while the license still names the e-mail it was sent to. In
    /// one transaction the link is spent, the license's e-mail marked
    /// verified and `audit` (built by `audit_for` from the link) written.
    /// `Ok(None)`: an unknown, used, expired or stale link, alike.
    pub async fn verify_trial_email(
        &self,
        digest: &str,
        now: OffsetDateTime,
        audit_for: impl FnOnce(&EmailVerification) -> AuditEvent,
    ) -> Result<Option<EmailVerification>, Error> {
        let t = self.tenant_id();
        let key = keys::email_verification(t, digest);
        // The read only finds the license; the writes below are conditional.
        let Some(v) = self.get_as::<EmailVerification>(&key).await? else {
            return Ok(None);
        };
        let at = now.unix_timestamp();
        if v.used_at.is_some() || v.expires_epoch <= at {
            return Ok(None);
        }
        let mut link = Write::to(key);
        link.set(a::USED_AT, &rfc3339(now))
            .if_exists()
            .if_absent(a::USED_AT)
            .if_greater(a::EXPIRES_EPOCH, at);
        let mut license = Write::to(keys::license(t, &v.license_id));
        license
            .remove(a::EMAIL_UNVERIFIED)
            .set(a::UPDATED_AT, &rfc3339(now))
            .if_exists()
            .if_eq(a::CUSTOMER_EMAIL, &v.email);
        let mut txn = Txn::new();
        txn.update(item::LINK, &link)?;
        txn.update(item::LICENSE, &license)?;
        self.push_audit(&mut txn, item::AUDIT, &audit_for(&v))?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(Some(v)),
            Err(TxnError::Cancelled(_)) => Ok(None),
            Err(TxnError::Other(e)) => Err(e),
        }
    }
}
