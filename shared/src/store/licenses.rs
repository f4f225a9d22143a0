//! Licenses and activations. Seat limits are enforced by the activation
//! transaction's conditions, never by a read before the write.

use super::attrs as a;
use super::write::{from_item, get_n, get_s, n, s, Cancelled, Expr, PutIf, Txn, TxnError, Write};
use super::{cursor, keys, sdk_error, Item, Page, TenantStore};
use crate::clock::rfc3339;
use crate::crypto::Signer;
use crate::domain::{
    Activation, AuditEvent, GraceChange, License, LicenseChange, LicenseGuard, LicenseStatus,
    OverrideEdit,
};
use crate::error::{license_not_found, Error};
use crate::ids::{Email, FingerprintDigest, LicenseId};
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

/// The license partition as validate and the integration API need it.
#[derive(Debug, Default)]
pub struct LicenseRead {
    pub license: Option<License>,
    pub activation: Option<Activation>,
    /// Floating: the leases that hold a seat now (lapsed ones never count).
    pub leases: LiveLeases,
}

pub use super::seats::{ActivateOutcome, DeactivateOutcome, HeartbeatOutcome};
pub use crate::domain::seats::LiveLeases;

/// Names of transaction items, read back when a transaction is refused.
mod item {
    pub const PLAN: &str = "plan counter";
    pub const LICENSE: &str = "license";
    pub const AUDIT: &str = "audit";
}

impl TenantStore {
    /// Issue a license: the license item (conditional on the key being new),
    /// the tenant's plan counter (conditional on the plan limit) and the audit
    /// event, in one transaction.
    pub async fn issue_license(&self, l: &License, audit: &AuditEvent) -> Result<(), Error> {
        let mut txn = Txn::new();
        self.push_issue(&mut txn, l)?;
        self.push_audit(&mut txn, item::AUDIT, audit)?;
        txn.run(self.db(), self.table()).await.map_err(|e| {
            e.or_else(|c| {
                if c.failed(item::LICENSE) {
                    Error::LicenseKeyExists
                } else {
                    plan_refusal(&c).unwrap_or(Error::TenantInactive)
                }
            })
        })
    }

    /// The plan counter and the new license item (with its e-mail and
    /// search index keys), as [`item::PLAN`] and [`item::LICENSE`].
    pub(crate) fn push_issue(&self, txn: &mut Txn, l: &License) -> Result<(), Error> {
        let t = self.tenant_id();
        let mut plan = Write::to(keys::tenant(t));
        plan.add(a::LICENSES_ISSUED, 1)
            .if_exists()
            .if_eq(a::STATUS, "active")
            .if_expr(|e| {
                let (issued, limit) = (e.name(a::LICENSES_ISSUED), e.name(a::LICENSE_LIMIT));
                format!(
                    "attribute_not_exists({limit}) OR attribute_not_exists({issued}) \
                 OR {issued} < {limit}"
                )
            });
        txn.update(item::PLAN, &plan)?;
        self.push_license_item(txn, l)
    }

    /// The new license item (with its e-mail and search index keys), as
    /// [`item::LICENSE`], without the plan counter: trials do not spend the
    /// plan's license limit.
    pub(crate) fn push_license_item(&self, txn: &mut Txn, l: &License) -> Result<(), Error> {
        let t = self.tenant_id();
        let index = index_keys(t, l);
        txn.put_with(
            item::LICENSE,
            &keys::license(t, &l.id),
            l,
            index,
            PutIf::New,
        )?;
        self.push_commercial_index(txn, l)
    }

    pub async fn get_license(&self, id: &LicenseId) -> Result<Option<License>, Error> {
        self.get_as(&keys::license(self.tenant_id(), id)).await
    }

    /// One Query of the license partition's live range
    /// ([`keys::live_range`]): the license, the live activations (node-locked
    /// seats and held floating leases, at most `max_activations +
    /// max_overage` items) and nothing else — no deactivated activation,
    /// returned or reclaimed lease (moved to `R#`) and no usage counter
    /// (`U#`), so what it reads does not grow with the machines that came
    /// and went or the periods that passed. The filter only trims what comes
    /// back to the license, the activation of `fingerprint` (if asked) and
    /// the unexpired leases (counted). Usage: [`Self::current_usage`].
    pub async fn read_license(
        &self,
        id: &LicenseId,
        fingerprint: Option<&FingerprintDigest>,
        now: OffsetDateTime,
    ) -> Result<LicenseRead, Error> {
        let t = self.tenant_id();
        let mut e = Expr::default();
        let (pk, sk) = (e.name(keys::PK), e.name(keys::SK));
        let (lo, hi) = keys::live_range();
        let cond = format!(
            "{pk} = {} AND {sk} BETWEEN {} AND {}",
            e.val(s(keys::license_pk(t, id))),
            e.val(s(lo)),
            e.val(s(hi))
        );
        let mut filter = format!("{sk} = {}", e.val(s(keys::LICENSE_SK)));
        let wanted = fingerprint.map(|fp| keys::activation_of(t, id, fp).sk);
        if let Some(sk_v) = &wanted {
            filter.push_str(&format!(" OR {sk} = {}", e.val(s(sk_v.clone()))));
        }
        // Unexpired floating leases, counted. (Items written before retired
        // activations moved to `R#` may still carry `deactivated_at` under
        // `A#` until the migration moves them.)
        let (lease, deact) = (e.name(a::LEASE_EXPIRES_EPOCH), e.name(a::DEACTIVATED_AT));
        filter.push_str(&format!(
            " OR ({lease} > {} AND attribute_not_exists({deact}))",
            e.val(n(now.unix_timestamp()))
        ));
        let mut read = LicenseRead::default();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .db()
                .query()
                .table_name(self.table())
                .key_condition_expression(&cond)
                .filter_expression(&filter)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in page.items.unwrap_or_default() {
                match get_s(&item, keys::SK) {
                    Some(keys::LICENSE_SK) => read.license = Some(from_item(item)?),
                    Some(x) if x.starts_with(keys::ACTIVATION_SK_PREFIX) => {
                        let wanted_here = wanted.as_deref() == Some(x);
                        let a: Activation = from_item(item)?;
                        if a.holds_seat(now) && a.lease_expires_epoch.is_some() {
                            let live = &mut read.leases;
                            *(if a.overage {
                                &mut live.overage_used
                            } else {
                                &mut live.used
                            }) += 1;
                        }
                        if wanted_here {
                            read.activation = Some(a);
                        }
                    }
                    _ => {}
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(read),
            }
        }
    }

    pub async fn list_licenses_by_email(
        &self,
        signer: &Signer,
        email: &Email,
        limit: i32,
        cursor_: Option<&str>,
    ) -> Result<Page<License>, Error> {
        let listing = format!("licenses:{email}");
        let start = cursor_
            .map(|c| cursor::decode(signer, self.tenant_id(), &listing, c))
            .transpose()?;
        let mut e = Expr::default();
        let cond = format!(
            "{} = {}",
            e.name(keys::GSI1PK),
            e.val(s(keys::email_index_pk(self.tenant_id(), email)))
        );
        let page = self
            .db()
            .query()
            .table_name(self.table())
            .index_name(keys::GSI1)
            .key_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        let lek = page.last_evaluated_key.filter(|k| !k.is_empty());
        Ok(Page {
            items: page
                .items
                .unwrap_or_default()
                .into_iter()
                .map(from_item)
                .collect::<Result<_, _>>()?,
            next_cursor: lek.and_then(|k| cursor::encode(signer, self.tenant_id(), &listing, &k)),
        })
    }

    /// Whether `email` has a license whose e-mail is verified (any license
    /// but a public trial not yet confirmed): a Query of its GSI1 partition,
    /// filtered, page by page until one is found.
    pub async fn has_verified_license(&self, email: &Email) -> Result<bool, Error> {
        let mut e = Expr::default();
        let cond = format!(
            "{} = {}",
            e.name(keys::GSI1PK),
            e.val(s(keys::email_index_pk(self.tenant_id(), email)))
        );
        let filter = format!("attribute_not_exists({})", e.name(a::EMAIL_UNVERIFIED));
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .db()
                .query()
                .table_name(self.table())
                .index_name(keys::GSI1)
                .key_condition_expression(&cond)
                .filter_expression(&filter)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            if page.count > 0 {
                return Ok(true);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(false),
            }
        }
    }

    /// Every activation of a license, live (`A#`) and retired (`R#`), in
    /// fingerprint-digest order as before retired ones moved: two queries.
    pub async fn list_activations(&self, id: &LicenseId) -> Result<Vec<Activation>, Error> {
        let pk = keys::license_pk(self.tenant_id(), id);
        let mut items = self
            .query_all(pk.clone(), Some(keys::ACTIVATION_SK_PREFIX))
            .await?;
        items.extend(self.query_all(pk, Some(keys::RETIRED_SK_PREFIX)).await?);
        let digest = |i: &Item| get_s(i, keys::SK).map(|sk| sk.get(2..).unwrap_or(sk).to_string());
        items.sort_by_cached_key(digest);
        items.into_iter().map(from_item).collect()
    }

    /// The live activations of a license (node-locked seats and held
    /// leases, lapsed ones included): one query of `A#`.
    pub async fn live_activations(&self, id: &LicenseId) -> Result<Vec<Activation>, Error> {
        let pk = keys::license_pk(self.tenant_id(), id);
        let items = self.query_all(pk, Some(keys::ACTIVATION_SK_PREFIX)).await?;
        items.into_iter().map(from_item).collect()
    }

    /// Change a license when `guard` holds, with its audit event, in one
    /// transaction, then read it back. `Err(NotFound)` when it is absent;
    /// `Ok(Refused(license as it was))` when the guard refused the change.
    pub async fn update_license(
        &self,
        id: &LicenseId,
        change: &LicenseChange,
        guard: &LicenseGuard,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<UpdateOutcome, Error> {
        let mut txn = Txn::new();
        txn.update(item::LICENSE, &self.license_write(id, change, guard, now))?;
        self.push_audit(&mut txn, item::AUDIT, audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => {
                let read = self.read_license(id, None, now).await?;
                match read.license {
                    Some(l) => Ok(UpdateOutcome::Updated(Box::new(l), read.leases)),
                    None => Err(Error::internal("an updated license vanished")),
                }
            }
            Err(TxnError::Cancelled(c)) => match c.old_as::<License>(item::LICENSE)? {
                Some(old) => Ok(UpdateOutcome::Refused(Box::new(old))),
                None => Err(license_not_found()),
            },
            Err(TxnError::Other(e)) => Err(e),
        }
    }

    /// One conditional update of the license item: the change, the
    /// storage-only fields that follow from it, and the guard.
    pub(crate) fn license_write(
        &self,
        id: &LicenseId,
        c: &LicenseChange,
        guard: &LicenseGuard,
        now: OffsetDateTime,
    ) -> Write {
        let mut w = Write::to(keys::license(self.tenant_id(), id));
        w.set(a::UPDATED_AT, &rfc3339(now));
        w.set_some(a::STATUS, c.status.as_ref());
        if let Some(at) = c.expires_at {
            w.set(a::EXPIRES_AT, &rfc3339(at))
                .set(a::EXPIRES_EPOCH, &at.unix_timestamp());
        }
        match c.grace {
            GraceChange::Keep => {}
            GraceChange::Clear => {
                w.remove(a::GRACE_UNTIL).remove(a::GRACE_EPOCH);
            }
            GraceChange::StartUnlessRunning(until) => {
                w.set_if_absent(a::GRACE_UNTIL, &rfc3339(until))
                    .set_if_absent(a::GRACE_EPOCH, &until.unix_timestamp());
            }
        }
        w.set_some(a::POLICY, c.policy.as_ref());
        w.set_some(a::MAX_ACTIVATIONS, c.max_activations.as_ref());
        if let Some(t) = &c.terms {
            super::seats::set_terms(&mut w, t);
        }
        w.set_some(a::METADATA, c.metadata.as_ref());
        w.set_some(a::STRIPE_EVENT_AT, c.stripe_event_at.as_ref());
        for (feature, edit) in &c.overrides {
            let f = feature.as_str();
            match edit {
                OverrideEdit::Inherit => w.remove_entry(a::ENTITLEMENT_OVERRIDES, f),
                OverrideEdit::Set(spec) => w.set_entry(a::ENTITLEMENT_OVERRIDES, f, &Some(spec)),
                OverrideEdit::Revoke => w.set_entry(a::ENTITLEMENT_OVERRIDES, f, &None::<()>),
            };
        }
        w.if_exists();
        if !guard.status_in.is_empty() {
            w.if_in(a::STATUS, &guard.status_in);
        }
        if let Some(p) = &guard.product {
            w.if_eq(a::PRODUCT, p);
        }
        if let Some(at) = guard.stripe_not_after {
            w.if_absent_or_at_most(a::STRIPE_EVENT_AT, at);
        }
        w
    }
}

/// The index attributes of a license item: GSI1 (by e-mail) and GSI2
/// (tenant-wide search). All follow from fields fixed at issue.
pub(crate) fn index_keys(
    t: &crate::ids::TenantId,
    l: &License,
) -> Vec<(&'static str, AttributeValue)> {
    let created = rfc3339(l.created_at);
    vec![
        (keys::GSI1PK, s(keys::email_index_pk(t, &l.customer_email))),
        (keys::GSI1SK, s(keys::email_index_sk(&created, &l.id))),
        (keys::GSI2PK, s(keys::search_index_pk(t))),
        (keys::GSI2SK, s(keys::search_index_sk(&created, &l.id))),
    ]
}

/// What [`TenantStore::update_license`] found.
#[derive(Debug)]
pub enum UpdateOutcome {
    /// The license after the change, with its unexpired leases.
    Updated(Box<License>, LiveLeases),
    /// The guard refused: the license as it was.
    Refused(Box<License>),
}

/// The condition "this license is in force at `now`": active, or past due
/// within its grace period, and not expired.
pub(crate) fn in_force(e: &mut Expr, now: OffsetDateTime) -> String {
    let (status, exp, grace) = (
        e.name(a::STATUS),
        e.name(a::EXPIRES_EPOCH),
        e.name(a::GRACE_EPOCH),
    );
    let now_v = e.val(n(now.unix_timestamp()));
    let active = e.val(s(LicenseStatus::Active.as_str()));
    let past_due = e.val(s(LicenseStatus::PastDue.as_str()));
    format!(
        "({status} = {active} OR ({status} = {past_due} AND {grace} > {now_v})) \
         AND (attribute_not_exists({exp}) OR {exp} > {now_v})"
    )
}

/// Why the plan counter (named [`item::PLAN`]) refused a license: the
/// limit, or an inactive tenant. `None`: it did not refuse.
pub(crate) fn plan_refusal(c: &Cancelled) -> Option<Error> {
    if !c.failed(item::PLAN) {
        return None;
    }
    let tenant = c.old(item::PLAN);
    let active = tenant.is_some_and(|t| get_s(t, a::STATUS) == Some("active"));
    match tenant.and_then(|t| get_n::<u64>(t, a::LICENSE_LIMIT)) {
        Some(limit) if active => Some(Error::PlanLimitReached { limit }),
        _ => Some(Error::TenantInactive),
    }
}

pub(crate) use item::{AUDIT as AUDIT_ITEM, LICENSE as LICENSE_ITEM};
