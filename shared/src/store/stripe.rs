//! Stripe webhook records and the transactions that apply events.
//!
//! Every transaction here carries the event's dedupe record
//! (`attribute_not_exists`), so an event takes effect at most once and an
//! event whose transaction failed leaves nothing behind. License writes are
//! conditional on `stripe_event_at <= created` and `status <> cancelled`; the
//! subscription record's `license_id` (set under `attribute_not_exists`) is
//! the one-license-per-subscription guard.

use super::{
    from_item, get_n, get_s, keys, n, put_any, put_item, put_new, s, transact, Expr, Item, Reason,
    TenantStore, TxnError,
};
use crate::clock::{rfc3339, ts};
use crate::domain::{AuditEvent, License, LicenseStatus, Policy};
use crate::error::Error;
use crate::ids::{Email, LicenseId, PolicyId};
use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How long an event's dedupe record is kept (Stripe retries for three days;
/// the dashboard can resend older events, which the order condition catches).
pub const EVENT_RECORD_DAYS: i64 = 90;

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It changed (or issued) a license.
    Applied,
    /// Nothing to do, or a permanent refusal (the reason says which).
    Ignored,
    /// Older than what the license (or the kept state) already reflects.
    Stale,
    /// Kept on the subscription record until its license exists.
    Pending,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Ignored => "ignored",
            Outcome::Stale => "stale",
            Outcome::Pending => "pending",
        }
    }
}

/// The dedupe record of one event id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StripeEventRecord {
    pub event_id: String,
    pub event_type: String,
    pub created: i64,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_id: Option<LicenseId>,
    #[serde(with = "ts")]
    pub processed_at: OffsetDateTime,
    pub request_id: String,
    /// Epoch seconds: DynamoDB's TTL removes the record after this.
    pub ttl: i64,
}

impl StripeEventRecord {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        event_id: &str,
        event_type: &str,
        created: i64,
        outcome: Outcome,
        reason: Option<String>,
        license_id: Option<LicenseId>,
        now: OffsetDateTime,
        request_id: &str,
    ) -> Self {
        Self {
            event_id: event_id.to_string(),
            event_type: event_type.to_string(),
            created,
            outcome,
            reason,
            license_id,
            processed_at: now,
            request_id: request_id.to_string(),
            ttl: now.unix_timestamp() + EVENT_RECORD_DAYS * 86_400,
        }
    }
}

/// State of a subscription seen before its license existed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingState {
    pub status: Option<LicenseStatus>,
    pub prices: Vec<String>,
    pub period_end: Option<i64>,
    /// When it became past due (grace runs from here).
    pub grace_start: Option<i64>,
    /// `created` of the newest event folded in.
    pub at: i64,
}

/// A Stripe subscription: its license once issued; before that, what the
/// checkout and earlier events said.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StripeSubscription {
    pub subscription_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_id: Option<LicenseId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_status: Option<LicenseStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub p_prices: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_period_end: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_grace_start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_at: Option<i64>,
}

impl StripeSubscription {
    /// The kept state, if any event left some.
    pub fn pending(&self) -> Option<PendingState> {
        let at = self.p_at?;
        Some(PendingState {
            status: self.p_status,
            prices: self.p_prices.clone(),
            period_end: self.p_period_end,
            grace_start: self.p_grace_start,
            at,
        })
    }
}

/// Which subscription a charge (or payment intent) paid an invoice of.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StripeCharge {
    pub charge_id: String,
    pub subscription_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<String>,
}

/// What to keep on a subscription record that has no license yet.
#[derive(Debug, Clone, Default)]
pub struct Hold {
    pub customer_id: Option<String>,
    /// From the checkout: e-mail, named policy, `created`.
    pub checkout: Option<(Email, Option<PolicyId>, i64)>,
    /// From a subscription, invoice or charge event.
    pub state: Option<PendingState>,
}

/// A license change a Stripe event makes.
#[derive(Debug, Clone)]
pub struct LicenseUpdate {
    pub status: Option<LicenseStatus>,
    /// New policy and its seat limit.
    pub policy: Option<(PolicyId, u32)>,
    pub expires_at: Option<OffsetDateTime>,
    /// With `status: PastDue`: the grace end, kept if a grace period already runs.
    pub grace_until: Option<OffsetDateTime>,
    pub event_at: i64,
    pub now: OffsetDateTime,
}

#[derive(Debug)]
pub enum IssueOutcome {
    Issued,
    /// This event was recorded by another delivery.
    Duplicate,
    /// The subscription got a license from another event meanwhile.
    Taken,
    PlanLimit(u64),
}

#[derive(Debug)]
pub enum ApplyOutcome {
    Applied,
    Duplicate,
    /// The order or status condition refused it: the license as it was.
    Refused(Option<Box<License>>),
}

#[derive(Debug)]
pub enum HoldOutcome {
    Held,
    Duplicate,
    /// A license exists now: apply to it instead.
    Licensed,
    /// Newer kept state exists.
    Stale,
}

impl TenantStore {
    pub async fn get_stripe_event(
        &self,
        event_id: &str,
    ) -> Result<Option<StripeEventRecord>, Error> {
        self.get(&keys::stripe_event(self.tenant_id(), event_id))
            .await?
            .map(from_item)
            .transpose()
    }

    pub async fn get_stripe_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Option<StripeSubscription>, Error> {
        self.get(&keys::stripe_subscription(
            self.tenant_id(),
            subscription_id,
        ))
        .await?
        .map(from_item)
        .transpose()
    }

    pub async fn get_stripe_charge(
        &self,
        charge_or_intent: &str,
    ) -> Result<Option<StripeCharge>, Error> {
        self.get(&keys::stripe_charge(self.tenant_id(), charge_or_intent))
            .await?
            .map(from_item)
            .transpose()
    }

    /// Puts of charge → subscription records (idempotent: same content each time).
    pub fn stripe_charge_items(
        &self,
        charges: &[StripeCharge],
    ) -> Result<Vec<TransactWriteItem>, Error> {
        charges
            .iter()
            .map(|c| {
                Ok(put_any(put_item(
                    self.table(),
                    &keys::stripe_charge(self.tenant_id(), &c.charge_id),
                    c,
                    None,
                )?))
            })
            .collect()
    }

    /// The tenant's policies that list Stripe prices: one Query of the
    /// policies partition (paged), run only when a price must be resolved.
    pub async fn stripe_price_policies(&self) -> Result<Vec<Policy>, Error> {
        let items = self
            .query_all(keys::policies_pk(self.tenant_id()), None)
            .await?;
        let mut out = Vec::new();
        for item in items {
            let p: Policy = from_item(item)?;
            if !p.stripe_price_ids.is_empty() {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// One audit event on its own (for changes outside DynamoDB, e.g. a secret).
    pub async fn put_audit(&self, audit: &AuditEvent) -> Result<(), Error> {
        transact(self.db(), vec![self.audit_item(audit)?], None)
            .await
            .map_err(|e| e.or_else(|r| Error::internal(format!("audit id collision: {r:?}"))))
    }

    /// Record an event that changes no license, with `extra` items. `Ok(false)`:
    /// the event was already recorded.
    pub async fn record_stripe_event(
        &self,
        rec: &StripeEventRecord,
        extra: Vec<TransactWriteItem>,
    ) -> Result<bool, Error> {
        let mut items = vec![self.event_record_item(rec)?];
        items.extend(extra);
        match transact(self.db(), items, None).await {
            Ok(()) => Ok(true),
            Err(TxnError::Cancelled(r)) if r[0].failed() => Ok(false),
            Err(TxnError::Cancelled(r)) => Err(Error::internal(format!(
                "stripe event record refused: {r:?}"
            ))),
            Err(TxnError::Other(e)) => Err(e),
        }
    }

    /// Issue a subscription's license: the plan counter, the license, the
    /// subscription's `license_id` (only if it has none), the event record and
    /// the audit events, in one transaction.
    pub async fn stripe_issue(
        &self,
        l: &License,
        subscription_id: &str,
        customer_id: Option<&str>,
        rec: &StripeEventRecord,
        audit: &[AuditEvent],
        extra: Vec<TransactWriteItem>,
    ) -> Result<IssueOutcome, Error> {
        let t = self.tenant_id();
        let put = self.new_license_item(l)?;

        let mut e = Expr::new();
        let (lic, sid, upd_at) = (
            e.name("license_id"),
            e.name("subscription_id"),
            e.name("updated_at"),
        );
        let mut sets = vec![
            format!("{lic} = {}", e.val(s(l.id.as_str()))),
            format!("{sid} = {}", e.val(s(subscription_id))),
            format!("{upd_at} = {}", e.val(s(rfc3339(l.created_at)))),
        ];
        if let Some(c) = customer_id {
            sets.push(format!("{} = {}", e.name("customer_id"), e.val(s(c))));
        }
        let link = super::update_item(
            self.table(),
            &keys::stripe_subscription(t, subscription_id),
            format!("SET {}", sets.join(", ")),
            Some(format!("attribute_not_exists({lic})")),
            &e,
        )?;

        let mut items = vec![
            self.plan_counter_item()?,
            put,
            link,
            self.event_record_item(rec)?,
        ];
        for a in audit {
            items.push(self.audit_item(a)?);
        }
        items.extend(extra);
        match transact(self.db(), items, None).await {
            Ok(()) => Ok(IssueOutcome::Issued),
            Err(TxnError::Other(e)) => Err(e),
            Err(TxnError::Cancelled(r)) => {
                if r[3].failed() {
                    Ok(IssueOutcome::Duplicate)
                } else if r[2].failed() {
                    Ok(IssueOutcome::Taken)
                } else if r[0].failed() {
                    plan_refusal(&r[0])
                } else {
                    Err(Error::internal(format!(
                        "stripe license issue refused: {r:?}"
                    )))
                }
            }
        }
    }

    /// Apply a change to a license if the event is not older than the newest
    /// applied and the license is not cancelled, with the event record and
    /// audit event, in one transaction.
    pub async fn stripe_apply(
        &self,
        id: &LicenseId,
        u: &LicenseUpdate,
        rec: &StripeEventRecord,
        audit: &AuditEvent,
        extra: Vec<TransactWriteItem>,
    ) -> Result<ApplyOutcome, Error> {
        let mut e = Expr::new();
        let (status, at) = (e.name("status"), e.name("stripe_event_at"));
        let at_v = e.val(n(u.event_at));
        let mut sets = vec![
            format!("{at} = {at_v}"),
            format!("{} = {}", e.name("updated_at"), e.val(s(rfc3339(u.now)))),
        ];
        let mut removes: Vec<String> = Vec::new();
        if let Some(st) = u.status {
            sets.push(format!("{status} = {}", e.val(s(st.as_str()))));
            let (gu, ge) = (e.name("grace_until"), e.name("grace_epoch"));
            match (st, u.grace_until) {
                (LicenseStatus::PastDue, Some(g)) => {
                    // A grace period already running is kept: it runs from the first failure.
                    sets.push(format!(
                        "{gu} = if_not_exists({gu}, {})",
                        e.val(s(rfc3339(g)))
                    ));
                    sets.push(format!(
                        "{ge} = if_not_exists({ge}, {})",
                        e.val(n(g.unix_timestamp()))
                    ));
                }
                (LicenseStatus::PastDue, None) => {}
                _ => removes.extend([gu, ge]),
            }
        }
        if let Some((pid, max)) = &u.policy {
            sets.push(format!("{} = {}", e.name("policy"), e.val(s(pid.as_str()))));
            sets.push(format!(
                "{} = {}",
                e.name("max_activations"),
                e.val(n(*max as i64))
            ));
        }
        if let Some(x) = u.expires_at {
            sets.push(format!(
                "{} = {}",
                e.name("expires_at"),
                e.val(s(rfc3339(x)))
            ));
            sets.push(format!(
                "{} = {}",
                e.name("expires_epoch"),
                e.val(n(x.unix_timestamp()))
            ));
        }
        let mut expr = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expr.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let cond = format!(
            "attribute_exists(PK) AND (attribute_not_exists({at}) OR {at} <= {at_v}) AND {status} <> {}",
            e.val(s(LicenseStatus::Cancelled.as_str()))
        );
        let upd = super::update_item(
            self.table(),
            &keys::license(self.tenant_id(), id),
            expr,
            Some(cond),
            &e,
        )?;
        let mut items = vec![upd, self.event_record_item(rec)?, self.audit_item(audit)?];
        items.extend(extra);
        match transact(self.db(), items, None).await {
            Ok(()) => Ok(ApplyOutcome::Applied),
            Err(TxnError::Other(e)) => Err(e),
            Err(TxnError::Cancelled(r)) if r[1].failed() => Ok(ApplyOutcome::Duplicate),
            Err(TxnError::Cancelled(r)) if r[0].failed() => Ok(ApplyOutcome::Refused(
                r[0].item.clone().map(from_item).transpose()?.map(Box::new),
            )),
            Err(TxnError::Cancelled(r)) => Err(Error::internal(format!(
                "stripe license update refused: {r:?}"
            ))),
        }
    }

    /// Keep checkout details or event state on a subscription that has no
    /// license yet, with the event record, in one transaction. Kept state is
    /// only replaced by a newer (or same-second) event.
    pub async fn stripe_hold(
        &self,
        subscription_id: &str,
        h: &Hold,
        rec: &StripeEventRecord,
        extra: Vec<TransactWriteItem>,
        now: OffsetDateTime,
    ) -> Result<HoldOutcome, Error> {
        let mut e = Expr::new();
        let lic = e.name("license_id");
        let mut sets = vec![
            format!(
                "{} = {}",
                e.name("subscription_id"),
                e.val(s(subscription_id))
            ),
            format!("{} = {}", e.name("updated_at"), e.val(s(rfc3339(now)))),
        ];
        let mut removes: Vec<String> = Vec::new();
        let mut cond = format!("attribute_not_exists({lic})");
        if let Some(c) = &h.customer_id {
            sets.push(format!("{} = {}", e.name("customer_id"), e.val(s(c))));
        }
        if let Some((email, policy, at)) = &h.checkout {
            sets.push(format!(
                "{} = {}",
                e.name("email"),
                e.val(s(email.as_str()))
            ));
            sets.push(format!("{} = {}", e.name("checkout_at"), e.val(n(*at))));
            if let Some(p) = policy {
                sets.push(format!("{} = {}", e.name("policy"), e.val(s(p.as_str()))));
            }
        }
        if let Some(st) = &h.state {
            let p_at = e.name("p_at");
            let at_v = e.val(n(st.at));
            sets.push(format!("{p_at} = {at_v}"));
            cond.push_str(&format!(
                " AND (attribute_not_exists({p_at}) OR {p_at} <= {at_v})"
            ));
            if let Some(status) = st.status {
                sets.push(format!(
                    "{} = {}",
                    e.name("p_status"),
                    e.val(s(status.as_str()))
                ));
                let gs = e.name("p_grace_start");
                if status == LicenseStatus::PastDue {
                    sets.push(format!(
                        "{gs} = if_not_exists({gs}, {})",
                        e.val(n(now.unix_timestamp()))
                    ));
                } else {
                    removes.push(gs);
                }
            }
            if !st.prices.is_empty() {
                sets.push(format!(
                    "{} = {}",
                    e.name("p_prices"),
                    e.val(super::av(&st.prices)?)
                ));
            }
            if let Some(end) = st.period_end {
                sets.push(format!("{} = {}", e.name("p_period_end"), e.val(n(end))));
            }
        }
        let mut expr = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expr.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let upd = super::update_item(
            self.table(),
            &keys::stripe_subscription(self.tenant_id(), subscription_id),
            expr,
            Some(cond),
            &e,
        )?;
        let mut items = vec![upd, self.event_record_item(rec)?];
        items.extend(extra);
        match transact(self.db(), items, None).await {
            Ok(()) => Ok(HoldOutcome::Held),
            Err(TxnError::Other(e)) => Err(e),
            Err(TxnError::Cancelled(r)) if r[1].failed() => Ok(HoldOutcome::Duplicate),
            Err(TxnError::Cancelled(r)) if r[0].failed() => {
                let licensed = r[0]
                    .item
                    .as_ref()
                    .is_some_and(|i| get_s(i, "license_id").is_some());
                Ok(if licensed {
                    HoldOutcome::Licensed
                } else {
                    HoldOutcome::Stale
                })
            }
            Err(TxnError::Cancelled(r)) => Err(Error::internal(format!(
                "stripe subscription hold refused: {r:?}"
            ))),
        }
    }

    fn event_record_item(&self, rec: &StripeEventRecord) -> Result<TransactWriteItem, Error> {
        put_new(
            self.table(),
            &keys::stripe_event(self.tenant_id(), &rec.event_id),
            rec,
        )
    }
}

/// Why the plan counter refused: the limit (permanent for this event) or an
/// inactive tenant (an error: Stripe retries).
fn plan_refusal(r: &Reason) -> Result<IssueOutcome, Error> {
    let tenant: Option<&Item> = r.item.as_ref();
    match tenant {
        Some(t) if get_s(t, "status") == Some("active") => match get_n(t, "license_limit") {
            Some(limit) => Ok(IssueOutcome::PlanLimit(limit.max(0) as u64)),
            None => Err(Error::internal("plan counter refused without a limit")),
        },
        _ => Err(Error::TenantInactive),
    }
}
