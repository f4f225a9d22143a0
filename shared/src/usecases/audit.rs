//! The audit trail, as the Management API lists it.

use crate::crypto::Signer;
use crate::domain::AuditEvent;
use crate::error::Error;
use crate::store::{Page, TenantStore};
use time::OffsetDateTime;

/// `GET /v1/manage/audit`: the tenant's audit events since `since`, oldest first.
pub async fn list(
    ts: &TenantStore,
    signer: &Signer,
    since: Option<OffsetDateTime>,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<AuditEvent>, Error> {
    ts.list_audit(signer, since, limit, cursor).await
}
