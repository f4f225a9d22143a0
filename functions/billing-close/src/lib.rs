//! The `billing-close` function: run by an EventBridge schedule early on
//! the 1st of each month (UTC), it closes the month that just ended for
//! every tenant — one `invoice.ready` per license with commercial terms
//! (`docs/billing.md`). Running it again, or beside the operator's
//! `POST /v1/platform/billing/close-period`, records nothing more.

use shared::app::App;
use shared::domain::billing::Period;
use shared::functions::Function;
use shared::usecases::billing::{close_period, CloseSummary};

pub const FUNCTION: Function = Function::BillingClose;

/// Who the audit trail names as the closer.
pub const ACTOR: &str = "scheduler";

/// Close the month before the one `now` is in. The event's content is not
/// read: the schedule is the only source, and the time decides the month.
pub async fn handler(app: &App, request_id: &str) -> Result<CloseSummary, shared::Error> {
    let now = app.clock.now();
    let period = Period::of(now.date()).previous();
    let summary = close_period(&app.store, period, ACTOR, request_id, now).await?;
    tracing::info!(
        period = %summary.period,
        tenants = summary.tenants,
        invoices = summary.invoices,
        already_closed = summary.already_closed,
        "billing period closed"
    );
    Ok(summary)
}
