//! Licenses and activations. Seat limits are enforced by the activation
//! transaction's conditions, never by a read before the write.

use super::catalog::{Changes, Page};
use super::{
    cursor, from_item, get_s, keys, n, put_returning_old, s, sdk_error, to_item, transact, Expr,
    Item, Reason, TenantStore, TxnError,
};
use crate::crypto::Signer;
use crate::domain::{
    Activation, AuditEvent, License, LicenseStatus, Standing, UsageCounter, UsageSnapshot,
};
use crate::error::{license_not_found, Error};
use crate::ids::{ActivationId, Email, FingerprintDigest, LicenseId};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use time::OffsetDateTime;

/// The license partition as validate and the integration API need it.
#[derive(Debug, Default)]
pub struct LicenseRead {
    pub license: Option<License>,
    pub activation: Option<Activation>,
    pub usage: UsageSnapshot,
}

#[derive(Debug)]
pub enum ActivateOutcome {
    Created(Activation),
    Restored(Activation),
    AlreadyActive(Activation),
}

#[derive(Debug)]
pub enum DeactivateOutcome {
    Deactivated(Activation),
    AlreadyInactive(Activation),
}

/// A lifecycle move: allowed from these stored statuses, setting these fields.
#[derive(Default)]
pub struct Transition {
    pub from: &'static [LicenseStatus],
    pub changes: Changes,
    pub remove: Vec<&'static str>,
    /// Entries of a map attribute to set: (map, key, value).
    pub map_sets: Vec<(
        &'static str,
        String,
        aws_sdk_dynamodb::types::AttributeValue,
    )>,
    /// Entries of a map attribute to remove: (map, key).
    pub map_removes: Vec<(&'static str, String)>,
    /// Further conditions: attribute equals value.
    pub require: Vec<(&'static str, aws_sdk_dynamodb::types::AttributeValue)>,
}

impl TenantStore {
    /// Issue a license: the license item (conditional on the key being new),
    /// the tenant's plan counter (conditional on the plan limit) and the audit
    /// event, in one transaction.
    pub async fn issue_license(&self, l: &License, audit: &AuditEvent) -> Result<(), Error> {
        let items = vec![
            self.plan_counter_item()?,
            self.new_license_item(l)?,
            self.audit_item(audit)?,
        ];
        transact(self.db(), items, None).await.map_err(|e| {
            e.or_else(|r| {
                if r[1].failed() {
                    Error::conflict("LICENSE_KEY_EXISTS", "a license with this key exists")
                } else if let Some(tenant) = r[0].item.as_ref() {
                    match super::get_n(tenant, "license_limit") {
                        Some(limit) if get_s(tenant, "status") == Some("active") => {
                            Error::PlanLimitReached {
                                limit: limit as u64,
                            }
                        }
                        _ => Error::TenantInactive,
                    }
                } else {
                    Error::TenantInactive
                }
            })
        })
    }

    /// The new license item (with its e-mail index keys), conditional on the
    /// key being unused.
    pub(crate) fn new_license_item(&self, l: &License) -> Result<TransactWriteItem, Error> {
        let t = self.tenant_id();
        let mut item = to_item(&keys::license(t, &l.id), l)?;
        item.insert(
            keys::GSI1PK.into(),
            s(keys::email_index_pk(t, &l.customer_email)),
        );
        item.insert(
            keys::GSI1SK.into(),
            s(keys::email_index_sk(
                &crate::clock::rfc3339(l.created_at),
                &l.id,
            )),
        );
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The tenant's license counter, conditional on the plan limit and on
    /// the tenant being active (every license issue carries it).
    pub(crate) fn plan_counter_item(&self) -> Result<TransactWriteItem, Error> {
        let mut e = Expr::new();
        let (issued, limit, status) = (
            e.name("licenses_issued"),
            e.name("license_limit"),
            e.name("status"),
        );
        let update = format!("ADD {issued} {}", e.val(n(1)));
        let condition = format!(
            "attribute_exists(PK) AND {status} = {} AND (attribute_not_exists({limit}) OR attribute_not_exists({issued}) OR {issued} < {limit})",
            e.val(s("active"))
        );
        super::update_item(
            self.table(),
            &keys::tenant(self.tenant_id()),
            update,
            Some(condition),
            &e,
        )
    }

    pub async fn get_license(&self, id: &LicenseId) -> Result<Option<License>, Error> {
        self.get(&keys::license(self.tenant_id(), id))
            .await?
            .map(from_item)
            .transpose()
    }

    /// One Query of the license partition: the license, the activation of
    /// `fingerprint` (if asked) and the usage counters of current periods.
    pub async fn read_license(
        &self,
        id: &LicenseId,
        fingerprint: Option<&FingerprintDigest>,
        now: OffsetDateTime,
    ) -> Result<LicenseRead, Error> {
        let t = self.tenant_id();
        let mut e = Expr::new();
        let (pk, sk) = (e.name(keys::PK), e.name(keys::SK));
        let cond = format!("{pk} = {}", e.val(s(keys::license_pk(t, id))));
        let resets = e.name("resets_epoch");
        let mut filter = format!(
            "{sk} = {} OR (begins_with({sk}, {}) AND (attribute_not_exists({resets}) OR {resets} > {}))",
            e.val(s(keys::LICENSE_SK)),
            e.val(s(keys::USAGE_SK_PREFIX)),
            e.val(n(now.unix_timestamp()))
        );
        if let Some(fp) = fingerprint {
            let act = keys::activation_of(t, id, fp);
            filter.push_str(&format!(" OR {sk} = {}", e.val(s(act.sk))));
        }
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
                        read.activation = Some(from_item(item)?)
                    }
                    Some(x) if x.starts_with(keys::USAGE_SK_PREFIX) => {
                        let c: UsageCounter = from_item(item)?;
                        read.usage
                            .insert((c.metric.to_string(), c.period.clone()), c);
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
        let mut e = Expr::new();
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

    pub async fn list_activations(&self, id: &LicenseId) -> Result<Vec<Activation>, Error> {
        let items = self
            .query_all(
                keys::license_pk(self.tenant_id(), id),
                Some(keys::ACTIVATION_SK_PREFIX),
            )
            .await?;
        items.into_iter().map(from_item).collect()
    }

    /// Move a license through its lifecycle, conditional on its current status.
    /// `Err(NotFound)` when absent; `Ok(None)` when its status forbids the move.
    pub async fn transition(
        &self,
        id: &LicenseId,
        tr: Transition,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<Option<(License, UsageSnapshot)>, Error> {
        let t = self.tenant_id();
        let mut e = Expr::new();
        let status = e.name("status");
        let from: Vec<String> = tr.from.iter().map(|st| e.val(s(st.as_str()))).collect();
        let mut update: Vec<String> = tr
            .changes
            .into_iter()
            .map(|(a, v)| format!("{} = {}", e.name(a), e.val(v)))
            .collect();
        // Map entries are written one by one, so concurrent changes to
        // different entries never overwrite each other.
        for (map, key, v) in tr.map_sets {
            let path = format!("{}.{}", e.name(map), e.key(&key));
            update.push(format!("{path} = {}", e.val(v)));
        }
        if update.is_empty() {
            update.push(format!("{status} = {status}"));
        }
        let mut expr = format!("SET {}", update.join(", "));
        let mut removes: Vec<String> = tr.remove.iter().map(|a| e.name(a)).collect();
        for (map, key) in tr.map_removes {
            removes.push(format!("{}.{}", e.name(map), e.key(&key)));
        }
        if !removes.is_empty() {
            expr.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let mut cond = format!("attribute_exists(PK) AND {status} IN ({})", from.join(", "));
        for (attr, v) in tr.require {
            cond.push_str(&format!(" AND {} = {}", e.name(attr), e.val(v)));
        }
        let upd = super::update_item(self.table(), &keys::license(t, id), expr, Some(cond), &e)?;
        let items = vec![upd, self.audit_item(audit)?];
        match transact(self.db(), items, None).await {
            Ok(()) => {
                let read = self.read_license(id, None, now).await?;
                Ok(read.license.map(|l| (l, read.usage)))
            }
            Err(TxnError::Cancelled(r)) if r[0].item.is_some() => Ok(None),
            Err(TxnError::Cancelled(_)) => Err(license_not_found()),
            Err(TxnError::Other(e)) => Err(e),
        }
    }

    /// Take a seat: one transaction in the common case. The license's seat
    /// counter rises only if the license is in force and has a free seat; the
    /// activation item is written only if that fingerprint is not active.
    pub async fn activate(
        &self,
        new: &Activation,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<ActivateOutcome, Error> {
        let t = self.tenant_id();
        let act_key = keys::activation(t, &new.id);
        for _ in 0..4 {
            // Phase 1: a fingerprint never seen on this license.
            let put = put_returning_old(self.table(), &act_key, new, "attribute_not_exists(PK)")?;
            let items = vec![
                self.seat_take(&new.license_id, now)?,
                TransactWriteItem::builder().put(put).build(),
                self.audit_item(audit)?,
            ];
            let reasons = match transact(self.db(), items, None).await {
                Ok(()) => return Ok(ActivateOutcome::Created(new.clone())),
                Err(e) => cancelled(e)?,
            };
            let existing: Option<Activation> =
                reasons[1].item.clone().map(from_item).transpose()?;
            match existing {
                Some(a) if a.deactivated_at.is_none() => {
                    // Already active: idempotent, unless the license is not in force.
                    if reasons[0].failed() {
                        if let Err(e) = classify_seat_failure(&reasons[0], now) {
                            if !matches!(e, Error::TooManyActivations { .. }) {
                                return Err(e);
                            }
                        }
                    }
                    return Ok(ActivateOutcome::AlreadyActive(a));
                }
                Some(old) => {
                    // Phase 2: restore a deactivated fingerprint, same id and created_at.
                    if reasons[0].failed() {
                        classify_seat_failure(&reasons[0], now)?;
                    }
                    let mut e = Expr::new();
                    let deact = e.name("deactivated_at");
                    let mut sets = vec![format!(
                        "{} = {}",
                        e.name("last_activated_at"),
                        e.val(s(crate::clock::rfc3339(now)))
                    )];
                    if let Some(name) = &new.name {
                        sets.push(format!("{} = {}", e.name("name"), e.val(s(name.clone()))));
                    }
                    if let Some(h) = &new.hostname {
                        sets.push(format!("{} = {}", e.name("hostname"), e.val(s(h.clone()))));
                    }
                    if !new.metadata.is_empty() {
                        sets.push(format!(
                            "{} = {}",
                            e.name("metadata"),
                            e.val(super::av(&new.metadata)?)
                        ));
                    }
                    let restore = super::update_item(
                        self.table(),
                        &act_key,
                        format!("SET {} REMOVE {deact}", sets.join(", ")),
                        Some(format!("attribute_exists({deact})")),
                        &e,
                    )?;
                    let items = vec![
                        self.seat_take(&new.license_id, now)?,
                        restore,
                        self.audit_item(audit)?,
                    ];
                    match transact(self.db(), items, None).await {
                        Ok(()) => {
                            let mut a = old;
                            a.deactivated_at = None;
                            a.last_activated_at = now;
                            a.name = new.name.clone().or(a.name);
                            a.hostname = new.hostname.clone().or(a.hostname);
                            if !new.metadata.is_empty() {
                                a.metadata = new.metadata.clone();
                            }
                            return Ok(ActivateOutcome::Restored(a));
                        }
                        Err(e) => {
                            let r = cancelled(e)?;
                            if r[1].failed() {
                                continue; // someone restored it first: look again
                            }
                            classify_seat_failure(&r[0], now)?;
                            continue;
                        }
                    }
                }
                None => {
                    classify_seat_failure(&reasons[0], now)?;
                    continue; // the license changed between our condition and its check
                }
            }
        }
        Err(Error::Unavailable("activation kept racing; retry".into()))
    }

    /// Free a seat. Deactivating an inactive activation frees nothing.
    pub async fn deactivate(
        &self,
        id: &ActivationId,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<DeactivateOutcome, Error> {
        let t = self.tenant_id();
        let key = keys::activation(t, id);
        let mut e = Expr::new();
        let deact = e.name("deactivated_at");
        let upd = super::update_item(
            self.table(),
            &key,
            format!("SET {deact} = {}", e.val(s(crate::clock::rfc3339(now)))),
            Some(format!(
                "attribute_exists(PK) AND attribute_not_exists({deact})"
            )),
            &e,
        )?;
        let mut e2 = Expr::new();
        let used = e2.name("seats_used");
        let seat = super::update_item(
            self.table(),
            &keys::license(t, &id.license_id()),
            format!("ADD {used} {}", e2.val(n(-1))),
            Some(format!("{used} > {}", e2.val(n(0)))),
            &e2,
        )?;
        let items = vec![upd, seat, self.audit_item(audit)?];
        match transact(self.db(), items, None).await {
            Ok(()) => {
                let item = self
                    .get(&key)
                    .await?
                    .ok_or_else(|| Error::internal("deactivated activation vanished"))?;
                Ok(DeactivateOutcome::Deactivated(from_item(item)?))
            }
            Err(err) => {
                let r = cancelled(err)?;
                match r[0].item.clone() {
                    Some(item) if r[0].failed() => {
                        Ok(DeactivateOutcome::AlreadyInactive(from_item(item)?))
                    }
                    None if r[0].failed() => Err(Error::not_found(
                        "ACTIVATION_NOT_FOUND",
                        "no activation with that id",
                    )),
                    _ => Err(Error::internal(format!(
                        "seat counter out of step with activations: {r:?}"
                    ))),
                }
            }
        }
    }

    /// The seat-taking half of an activation.
    fn seat_take(&self, id: &LicenseId, now: OffsetDateTime) -> Result<TransactWriteItem, Error> {
        let mut e = Expr::new();
        let (used, max) = (e.name("seats_used"), e.name("max_activations"));
        let cond = format!(
            "attribute_exists(PK) AND {used} < {max} AND {}",
            in_force(&mut e, now)
        );
        let upd = super::update_item(
            self.table(),
            &keys::license(self.tenant_id(), id),
            format!("ADD {used} {}", e.val(n(1))),
            Some(cond),
            &e,
        )?;
        Ok(upd)
    }
}

/// The condition "this license is in force at `now`": active, or past due
/// within its grace period, and not expired.
pub(crate) fn in_force(e: &mut Expr, now: OffsetDateTime) -> String {
    let (status, exp, grace) = (
        e.name("status"),
        e.name("expires_epoch"),
        e.name("grace_epoch"),
    );
    let now_v = e.val(n(now.unix_timestamp()));
    format!(
        "({status} = {active} OR ({status} = {past_due} AND {grace} > {now_v})) AND (attribute_not_exists({exp}) OR {exp} > {now_v})",
        active = e.val(s("active")),
        past_due = e.val(s("past_due")),
    )
}

fn cancelled(e: TxnError) -> Result<Vec<Reason>, Error> {
    match e {
        TxnError::Cancelled(r) => Ok(r),
        TxnError::Other(e) => Err(e),
    }
}

/// Why the seat condition failed, from the license as it was.
fn classify_seat_failure(r: &Reason, now: OffsetDateTime) -> Result<(), Error> {
    if !r.failed() {
        return Ok(());
    }
    let Some(item) = r.item.clone() else {
        return Err(license_not_found());
    };
    let l: License = from_item(item)?;
    match l.standing(now) {
        Standing::Valid(_) if l.seats_used >= l.max_activations => Err(Error::TooManyActivations {
            limit: l.max_activations,
        }),
        Standing::Valid(_) => Ok(()),
        Standing::Suspended(_) => Err(Error::LicenseNotActive("suspended")),
        Standing::Cancelled => Err(Error::LicenseNotActive("cancelled")),
        Standing::Expired => Err(Error::LicenseNotActive("expired")),
    }
}
