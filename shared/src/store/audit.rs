//! The audit trail: every mutation's event is written in the same
//! transaction as the mutation; reading is newest first. The trail is
//! spread over [`keys::AUDIT_SHARDS`] partitions (see [`keys::audit`]).

use super::write::{PutIf, Txn};
use super::{keys, Page, TenantStore};
use crate::crypto::Signer;
use crate::domain::AuditEvent;
use crate::error::Error;
use time::OffsetDateTime;

impl TenantStore {
    /// The audit event as an item of `txn`, named `name`.
    pub(crate) fn push_audit(
        &self,
        txn: &mut Txn,
        name: impl Into<std::borrow::Cow<'static, str>>,
        audit: &AuditEvent,
    ) -> Result<(), Error> {
        debug_assert_eq!(&audit.tenant_id, self.tenant_id());
        txn.put(
            name,
            &keys::audit(self.tenant_id(), &audit.id),
            audit,
            PutIf::Always,
        )?;
        Ok(())
    }

    /// One audit event on its own (for changes outside DynamoDB, e.g. a secret).
    pub async fn put_audit(&self, audit: &AuditEvent) -> Result<(), Error> {
        let mut txn = Txn::new();
        self.push_audit(&mut txn, "audit", audit)?;
        txn.run(self.db(), self.table()).await.map_err(|e| {
            e.or_else(|c| Error::internal(format!("audit write refused: {}", c.describe())))
        })
    }

    /// Newest first; `since` bounds it below (inclusive).
    pub async fn list_audit(
        &self,
        signer: &Signer,
        since: Option<OffsetDateTime>,
        limit: i32,
        cursor_: Option<&str>,
    ) -> Result<Page<AuditEvent>, Error> {
        let listing = format!("audit:{}", since.map(|s| s.unix_timestamp()).unwrap_or(0));
        // Event ids are ULIDs, so "since" is the smallest ULID of that millisecond.
        let from = since.map(|s| {
            let ms = (s.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
            format!("aud_{}", ulid::Ulid::from_parts(ms, 0))
        });
        // The shards (and the legacy single partition) merged, newest first.
        let pks = keys::audit_pks(self.tenant_id());
        self.merged_page(signer, &listing, pks, from.as_deref(), limit, cursor_)
            .await
    }
}
