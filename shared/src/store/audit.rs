//! Reading the audit trail (writes go with each mutation's transaction).

use super::{catalog::Page, cursor, from_item, keys, TenantStore};
use crate::crypto::Signer;
use crate::domain::AuditEvent;
use crate::error::Error;
use time::OffsetDateTime;

impl TenantStore {
    /// Newest first; `since` bounds it below (inclusive).
    pub async fn list_audit(
        &self,
        signer: &Signer,
        since: Option<OffsetDateTime>,
        limit: i32,
        cursor_: Option<&str>,
    ) -> Result<Page<AuditEvent>, Error> {
        let listing = format!("audit:{}", since.map(|s| s.unix_timestamp()).unwrap_or(0));
        let start = cursor_
            .map(|c| cursor::decode(signer, self.tenant_id(), &listing, c))
            .transpose()?;
        // Event ids are ULIDs, so "since" is the smallest ULID of that millisecond.
        let after = since.map(|s| {
            let ms = (s.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
            format!("aud_{}", ulid::Ulid::from_parts(ms, 0))
        });
        let (items, lek) = self
            .query_page(
                keys::audit_pk(self.tenant_id()),
                None,
                true,
                limit,
                start,
                after.as_deref(),
            )
            .await?;
        Ok(Page {
            items: items.into_iter().map(from_item).collect::<Result<_, _>>()?,
            next_cursor: lek.and_then(|k| cursor::encode(signer, self.tenant_id(), &listing, &k)),
        })
    }
}
