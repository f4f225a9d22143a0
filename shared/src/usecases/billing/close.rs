//! Closing a billing period: every license with commercial terms whose
//! contract covers the month gets one invoice, recorded with its
//! `INVOICE.READY` audit item (the webhook outbox) in one transaction
//! conditional on the invoice being new. A second or concurrent close of
//! the same month therefore records, and emits, nothing more.

use super::bills;
use crate::domain::billing::{Invoice, Period};
use crate::domain::{AuditCode, AuditEvent};
use crate::error::Error;
use crate::store::billing::InvoiceOutcome;
use crate::store::{Store, TenantStore};
use serde::Serialize;
use time::OffsetDateTime;

/// What a close did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CloseSummary {
    pub period: String,
    pub tenants: usize,
    /// Invoices recorded (and `invoice.ready` events emitted) by this run.
    pub invoices: usize,
    /// Invoices an earlier (or concurrent) run had recorded.
    pub already_closed: usize,
}

/// A month can be closed once it has ended.
fn check_ended(period: Period, now: OffsetDateTime) -> Result<(), Error> {
    if period.last_day() >= now.date() {
        return Err(Error::invalid(
            "PERIOD_NOT_ENDED",
            format!("{period} has not ended yet; a period closes after its last day"),
        ));
    }
    Ok(())
}

/// Close `period` for one tenant. `actor` names who closed it (`operator`,
/// `scheduler`).
pub async fn close_tenant_period(
    ts: &TenantStore,
    period: Period,
    actor: &str,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<CloseSummary, Error> {
    check_ended(period, now)?;
    let licenses = ts.all_billed_licenses().await?;
    let mut out = CloseSummary {
        period: period.to_string(),
        tenants: 1,
        ..CloseSummary::default()
    };
    for row in bills(ts, &licenses, &[period]).await? {
        let id = &row.license.license_id;
        let invoice = Invoice::of(id.as_str(), &row.license.commercial, &row.bill);
        let data = serde_json::to_value(&invoice).map_err(Error::internal)?;
        let audit = AuditEvent::new(
            ts.tenant_id(),
            AuditCode::InvoiceReady,
            actor,
            id.as_str(),
            now,
            request_id,
        )
        .with_data(data);
        match ts.record_invoice(id, &invoice, &audit).await? {
            InvoiceOutcome::Recorded => out.invoices += 1,
            InvoiceOutcome::AlreadyRecorded => out.already_closed += 1,
        }
    }
    Ok(out)
}

/// Close `period` for every tenant with licenses under commercial terms.
pub async fn close_period(
    store: &Store,
    period: Period,
    actor: &str,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<CloseSummary, Error> {
    check_ended(period, now)?;
    let mut total = CloseSummary {
        period: period.to_string(),
        ..CloseSummary::default()
    };
    for t in store.billed_tenants().await? {
        let s = close_tenant_period(&store.tenant(&t), period, actor, request_id, now).await?;
        total.tenants += 1;
        total.invoices += s.invoices;
        total.already_closed += s.already_closed;
    }
    Ok(total)
}
