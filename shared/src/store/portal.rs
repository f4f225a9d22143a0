//! The portal's records: one-time sign-in links, sessions and invited staff.
//! Links and sessions are stored under the SHA-256 of their secret; a link is
//! consumed by one conditional write (unused and unexpired by the app clock,
//! never by DynamoDB's TTL, which only tidies up).

use super::write::{from_item, PutIf, Txn, Write};
use super::{keys, TenantStore};
use crate::domain::{AuditEvent, MagicLink, Session, StaffMember};
use crate::error::Error;
use crate::ids::Email;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

const USED_AT: &str = "used_at";
const EXPIRES_EPOCH: &str = super::attrs::EXPIRES_EPOCH;
/// Kept this long after expiry before DynamoDB's TTL may delete the record.
const TIDY_AFTER_SECS: i64 = 24 * 3600;

impl TenantStore {
    /// Store a new link under `digest` (refused, never overwritten, if the
    /// digest were ever reused).
    pub async fn put_magic_link(&self, digest: &str, link: &MagicLink) -> Result<(), Error> {
        let ttl = AttributeValue::N((link.expires_epoch + TIDY_AFTER_SECS).to_string());
        let mut txn = Txn::new();
        txn.put_with(
            "link",
            &keys::magic_link(self.tenant_id(), digest),
            link,
            vec![(keys::TTL, ttl)],
            PutIf::New,
        )?;
        txn.run(self.db(), self.table()).await.map_err(|e| {
            e.or_else(|_| Error::internal("a sign-in link digest collided with a stored one"))
        })
    }

    /// Consume the link stored under `digest`: one conditional update that
    /// holds only while the link exists, is unused and has not expired at
    /// `now`. `Ok(None)` for an unknown, used or expired link, alike.
    pub async fn consume_magic_link(
        &self,
        digest: &str,
        now: OffsetDateTime,
    ) -> Result<Option<MagicLink>, Error> {
        let mut w = Write::to(keys::magic_link(self.tenant_id(), digest));
        w.set(USED_AT, &crate::clock::rfc3339(now))
            .if_exists()
            .if_absent(USED_AT)
            .if_greater(EXPIRES_EPOCH, now.unix_timestamp());
        let all_new = aws_sdk_dynamodb::types::ReturnValue::AllNew;
        match w.run_returning(self.db(), self.table(), all_new).await? {
            Ok(item) => Ok(Some(from_item(item)?)),
            Err(_) => Ok(None),
        }
    }

    pub async fn put_session(&self, digest: &str, s: &Session) -> Result<(), Error> {
        let ttl = AttributeValue::N((s.expires_epoch + TIDY_AFTER_SECS).to_string());
        let mut txn = Txn::new();
        txn.put_with(
            "session",
            &keys::session(self.tenant_id(), digest),
            s,
            vec![(keys::TTL, ttl)],
            PutIf::New,
        )?;
        txn.run(self.db(), self.table()).await.map_err(|e| {
            e.or_else(|_| Error::internal("a session digest collided with a stored one"))
        })
    }

    /// The session stored under `digest`, live or not (the caller checks).
    pub async fn get_session(&self, digest: &str) -> Result<Option<Session>, Error> {
        self.get_as(&keys::session(self.tenant_id(), digest)).await
    }

    pub async fn delete_session(&self, digest: &str) -> Result<(), Error> {
        let key = keys::session(self.tenant_id(), digest);
        self.db()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(super::write::key_item(&key)))
            .send()
            .await
            .map_err(|e| super::sdk_error("DeleteItem", e))?;
        Ok(())
    }

    pub async fn get_staff(&self, email: &Email) -> Result<Option<StaffMember>, Error> {
        self.get_as(&keys::staff(self.tenant_id(), email)).await
    }

    pub async fn list_staff(&self) -> Result<Vec<StaffMember>, Error> {
        let items = self
            .query_all(keys::staff_pk(self.tenant_id()), None)
            .await?;
        items.into_iter().map(from_item).collect()
    }

    /// Add a staff member with its audit event; `Ok(false)` if already staff.
    pub async fn invite_staff(&self, m: &StaffMember, audit: &AuditEvent) -> Result<bool, Error> {
        let mut txn = Txn::new();
        txn.put(
            "staff",
            &keys::staff(self.tenant_id(), &m.email),
            m,
            PutIf::New,
        )?;
        self.push_audit(&mut txn, "audit", audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(true),
            Err(e) => {
                let mut already = false;
                let err = e.or_else(|c| {
                    already = c.failed("staff");
                    Error::internal(format!("staff invite refused: {}", c.describe()))
                });
                if already {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Remove a staff member with its audit event; `Ok(false)` if not staff.
    pub async fn remove_staff(&self, email: &Email, audit: &AuditEvent) -> Result<bool, Error> {
        let mut txn = Txn::new();
        txn.delete(
            "staff",
            Write::to(keys::staff(self.tenant_id(), email)).if_exists(),
        )?;
        self.push_audit(&mut txn, "audit", audit)?;
        match txn.run(self.db(), self.table()).await {
            Ok(()) => Ok(true),
            Err(e) => {
                let mut missing = false;
                let err = e.or_else(|c| {
                    missing = c.failed("staff");
                    Error::internal(format!("staff removal refused: {}", c.describe()))
                });
                if missing {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
        }
    }
}
