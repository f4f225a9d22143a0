//! The portal's people and credentials: vendor staff, end customers, one-time
//! sign-in links and sessions. Secrets (link tokens, session ids) are never
//! stored: records hold their SHA-256 digests only.

use crate::clock::ts;
use crate::ids::Email;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A sign-in link lives this long (seconds).
pub const LINK_TTL_SECS: i64 = 15 * 60;
/// A session lives this long from sign-in (seconds); no sliding renewal.
pub const SESSION_TTL_SECS: i64 = 8 * 3600;
/// Sign-in links one e-mail may request per tenant and window.
pub const LINK_REQUESTS_PER_WINDOW: u32 = 5;
/// The window of that limit (seconds).
pub const LINK_WINDOW_SECS: i64 = 15 * 60;

/// Who a session is: the vendor's staff or one end customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Staff,
    Customer,
    /// A member of a customer organization (a tenant of kind `customer`):
    /// the member item holds the role, read on every request.
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::Customer => "customer",
            Role::Member => "member",
        }
    }
}

/// A one-time sign-in link, stored under the digest of its token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MagicLink {
    pub email: Email,
    pub role: Role,
    /// Epoch seconds; consumed only strictly before this.
    pub expires_epoch: i64,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    /// Set once, by the conditional write that consumes the link.
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub used_at: Option<OffsetDateTime>,
}

/// A signed-in person of one tenant, stored under the digest of its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub email: Email,
    pub role: Role,
    /// The per-session CSRF token every form posts back.
    pub csrf: String,
    pub expires_epoch: i64,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
}

impl Session {
    pub fn live_at(&self, now: OffsetDateTime) -> bool {
        now.unix_timestamp() < self.expires_epoch
    }
    /// The audit actor of what this person does.
    pub fn actor_name(&self) -> String {
        format!("{}:{}", self.role.as_str(), self.email)
    }
}

/// A staff member the tenant's admin invited (the admin e-mail is staff
/// without a record).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StaffMember {
    pub email: Email,
    pub invited_by: String,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_at_its_expiry() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let s = Session {
            email: Email::normalise("a@b.co").unwrap(),
            role: Role::Customer,
            csrf: "x".into(),
            expires_epoch: now.unix_timestamp() + 1,
            created_at: now,
        };
        assert!(s.live_at(now));
        assert!(!s.live_at(now + time::Duration::seconds(1)));
        assert_eq!(s.actor_name(), "customer:a@b.co");
    }
}
