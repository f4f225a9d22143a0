//! Shared rate-limit windows: one item per subject (an API key or a
//! license) and minute, counting the tokens every instance has taken.

use super::attrs as a;
use super::write::{get_n, Write};
use super::{keys, TenantStore};
use crate::error::Error;

/// What a claim got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Tokens granted to this instance (0: the window is used up).
    pub granted: u32,
    /// Tokens taken from the window so far, by every instance (after this
    /// claim; `limit` when nothing was left).
    pub taken: u32,
}

impl TenantStore {
    /// Take up to `want` of the `limit` tokens of `subject`'s window, never
    /// more than are left: one conditional `ADD` (`taken <= limit - n`).
    /// When fewer than `want` are left, the refused write hands back the
    /// window as it was and the claim asks for exactly what is left (where
    /// an emulator does not hand it back, it halves the ask instead).
    pub async fn take_tokens(
        &self,
        subject: &str,
        window_start: i64,
        want: u32,
        limit: u32,
    ) -> Result<Claim, Error> {
        let key = keys::rate_window(self.tenant_id(), subject, window_start);
        take_tokens_at(self.db(), self.table(), key, window_start, want, limit).await
    }
}

impl super::Store {
    /// [`TenantStore::take_tokens`] for a subject of no tenant (the source
    /// address of credential-less customer registrations).
    pub async fn take_platform_tokens(
        &self,
        subject: &str,
        window_start: i64,
        want: u32,
        limit: u32,
    ) -> Result<Claim, Error> {
        let key = keys::platform_rate_window(subject, window_start);
        take_tokens_at(self.db(), self.table(), key, window_start, want, limit).await
    }
}

async fn take_tokens_at(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    key: keys::Key,
    window_start: i64,
    want: u32,
    limit: u32,
) -> Result<Claim, Error> {
    {
        let mut n = want.min(limit);
        while n > 0 {
            let mut w = Write::to(key.clone());
            w.add(a::TAKEN, i64::from(n))
                // Kept a while after its window, then DynamoDB's TTL tidies it.
                .set(a::TTL, &(window_start + 3_600))
                .if_absent_or_at_most(a::TAKEN, limit - n);
            let new = aws_sdk_dynamodb::types::ReturnValue::UpdatedNew;
            match w.run_returning(db, table, new).await? {
                Ok(new) => {
                    let taken = get_n::<u32>(&new, a::TAKEN).unwrap_or(limit);
                    return Ok(Claim { granted: n, taken });
                }
                Err(Some(old)) => {
                    let taken = get_n::<u32>(&old, a::TAKEN).unwrap_or(limit);
                    n = n.min(limit.saturating_sub(taken)).min(n.saturating_sub(1));
                }
                Err(None) => n /= 2,
            }
        }
        Ok(Claim {
            granted: 0,
            taken: limit,
        })
    }
}
