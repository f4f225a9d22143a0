//! Billing records: the index of licenses with commercial terms, the
//! per-month overage-checkout counters (written by the seat transaction
//! that grants an overage lease), and invoices (one per license and month,
//! written with their `INVOICE.READY` audit item, the webhook outbox).

use super::attrs as a;
use super::write::{from_item, get_n, PutIf, Txn, Write};
use super::{keys, Page, TenantStore};
use crate::clock::rfc3339;
use crate::crypto::Signer;
use crate::domain::billing::{BilledLicense, CommercialTerms, Invoice, Period};
use crate::domain::{AuditEvent, License};
use crate::error::{license_not_found, Error};
use crate::ids::LicenseId;
use std::collections::HashMap;
use time::OffsetDateTime;

mod item {
    pub const LICENSE: &str = "license";
    pub const INDEX: &str = "commercial index";
    pub const INVOICE: &str = "invoice";
    pub const AUDIT: &str = "audit";
    pub const TENANT: &str = "billed tenant";
}

/// What [`TenantStore::record_invoice`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum InvoiceOutcome {
    Recorded,
    /// This license's invoice for that period exists already.
    AlreadyRecorded,
}

impl TenantStore {
    /// The write that counts one overage checkout of `id` in the month of
    /// `now`: part of the transaction that grants the overage lease, so a
    /// checkout is counted if and only if it was granted.
    pub(crate) fn overage_checkout_count(&self, id: &LicenseId, now: OffsetDateTime) -> Write {
        let period = crate::clock::month_of(now);
        let mut w = Write::to(keys::overage_checkouts(self.tenant_id(), id, &period));
        w.set(a::LICENSE_ID, id)
            .set(a::PERIOD, &period)
            .add(a::OVERAGE_CHECKOUTS, 1);
        w
    }

    /// The index item of a license with terms, in `txn` (the license's
    /// issue transaction).
    pub(crate) fn push_commercial_index(&self, txn: &mut Txn, l: &License) -> Result<(), Error> {
        let Some(entry) = BilledLicense::of(l) else {
            return Ok(());
        };
        let key = keys::commercial_index(self.tenant_id(), &l.id);
        txn.put(item::INDEX, &key, &entry, PutIf::Always)?;
        self.push_billed_tenant(txn)
    }

    /// This tenant in the registry of billed tenants.
    fn push_billed_tenant(&self, txn: &mut Txn) -> Result<(), Error> {
        let t = self.tenant_id();
        let entry = serde_json::json!({ "tenant_id": t });
        txn.put(item::TENANT, &keys::billed_tenant(t), &entry, PutIf::Always)?;
        Ok(())
    }

    /// Set (or with `None` remove) a license's commercial terms: the
    /// license item, its index item and the audit event in one
    /// transaction. `LICENSE_NOT_FOUND` when there is no such license.
    /// (The index copies the license's product and e-mail, which no change
    /// of a license alters.)
    pub async fn set_commercial(
        &self,
        id: &LicenseId,
        terms: Option<&CommercialTerms>,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<License, Error> {
        let t = self.tenant_id();
        let mut license = self.get_license(id).await?.ok_or_else(license_not_found)?;
        license.commercial = terms.cloned();
        license.updated_at = now;
        let mut lic = Write::to(keys::license(t, id));
        match terms {
            Some(terms) => lic.set(a::COMMERCIAL, terms),
            None => lic.remove(a::COMMERCIAL),
        };
        lic.set(a::UPDATED_AT, &rfc3339(now)).if_exists();
        let mut txn = Txn::new();
        txn.update(item::LICENSE, &lic)?;
        let index = keys::commercial_index(t, id);
        match BilledLicense::of(&license) {
            Some(entry) => {
                txn.put(item::INDEX, &index, &entry, PutIf::Always)?;
                self.push_billed_tenant(&mut txn)?;
            }
            None => {
                txn.delete(item::INDEX, &Write::to(index))?;
            }
        }
        self.push_audit(&mut txn, item::AUDIT, audit)?;
        txn.run(self.db(), self.table()).await.map_err(|e| {
            e.or_else(|c| {
                if c.failed(item::LICENSE) {
                    license_not_found()
                } else {
                    Error::internal(format!("commercial terms refused: {}", c.describe()))
                }
            })
        })?;
        Ok(license)
    }

    /// One page of the licenses with commercial terms, in license id order.
    pub async fn billed_licenses(
        &self,
        signer: &Signer,
        limit: i32,
        cursor_: Option<&str>,
    ) -> Result<Page<BilledLicense>, Error> {
        let pk = keys::commercial_index_pk(self.tenant_id());
        self.page(signer, "billing", pk, false, None, limit, cursor_)
            .await
    }

    /// Every license with commercial terms (period close: it must reach each).
    pub async fn all_billed_licenses(&self) -> Result<Vec<BilledLicense>, Error> {
        let pk = keys::commercial_index_pk(self.tenant_id());
        let items = self.query_all(pk, None).await?;
        items.into_iter().map(from_item).collect()
    }

    /// Overage checkouts of each (license, month) asked (absent: 0).
    pub async fn overage_checkouts(
        &self,
        wanted: &[(LicenseId, Period)],
    ) -> Result<HashMap<(LicenseId, Period), u64>, Error> {
        let t = self.tenant_id();
        let mut out = HashMap::new();
        for chunk in wanted.chunks(100) {
            let keys: Vec<_> = chunk
                .iter()
                .map(|(id, p)| keys::overage_checkouts(t, id, &p.to_string()))
                .collect();
            for item in self.batch_get(&keys).await? {
                let id = item
                    .get(a::LICENSE_ID)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| LicenseId::parse(s).ok());
                let period = item
                    .get(a::PERIOD)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| Period::parse(s).ok());
                let n = get_n::<u64>(&item, a::OVERAGE_CHECKOUTS).unwrap_or(0);
                if let (Some(id), Some(period)) = (id, period) {
                    out.insert((id, period), n);
                }
            }
        }
        Ok(out)
    }

    /// The licenses asked, by id (absent ones left out; 100 keys a
    /// BatchGetItem): the export reads each billed license's entitlement
    /// overrides through it.
    pub async fn licenses_by_id(&self, ids: &[LicenseId]) -> Result<Vec<License>, Error> {
        let t = self.tenant_id();
        let mut out = Vec::with_capacity(ids.len());
        let mut unique: Vec<&LicenseId> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(100) {
            let keys: Vec<_> = chunk.iter().map(|id| keys::license(t, id)).collect();
            for item in self.batch_get(&keys).await? {
                out.push(from_item(item)?);
            }
        }
        Ok(out)
    }

    /// Record a license's invoice for a period with its `INVOICE.READY`
    /// audit item, at most once: the invoice item is conditional on being
    /// new, so a second close (or a concurrent one) writes nothing.
    pub async fn record_invoice(
        &self,
        id: &LicenseId,
        invoice: &Invoice,
        audit: &AuditEvent,
    ) -> Result<InvoiceOutcome, Error> {
        let key = keys::invoice(self.tenant_id(), id, &invoice.period);
        let mut txn = Txn::new();
        txn.put(item::INVOICE, &key, invoice, PutIf::New)?;
        self.push_audit(&mut txn, item::AUDIT, audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(InvoiceOutcome::Recorded),
            Err(e) => match e {
                super::write::TxnError::Cancelled(c) if c.failed(item::INVOICE) => {
                    Ok(InvoiceOutcome::AlreadyRecorded)
                }
                e => Err(e.or_else(|c| {
                    Error::internal(format!("invoice write refused: {}", c.describe()))
                })),
            },
        }
    }
}

impl super::Store {
    /// Every tenant in the registry of billed tenants.
    pub async fn billed_tenants(&self) -> Result<Vec<crate::ids::TenantId>, Error> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut e = super::write::Expr::default();
            let cond = format!(
                "{} = {}",
                e.name(keys::PK),
                e.val(super::write::s(keys::BILLED_TENANTS_PK))
            );
            let page = self
                .db()
                .query()
                .table_name(self.table())
                .key_condition_expression(cond)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| super::sdk_error("Query", e))?;
            for item in page.items.unwrap_or_default() {
                if let Some(t) = super::write::get_s(&item, keys::SK)
                    .and_then(|s| crate::ids::TenantId::parse(s).ok())
                {
                    out.push(t);
                }
            }
            match page.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }
}
