//! Shared rate-limit windows: one item per subject (an API key or a
//! license) and minute, counting the tokens every instance has asked for.

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
    /// Take up to `want` of the `limit` tokens of `subject`'s window: one
    /// unconditional `ADD` that hands back the new total, never a retry.
    /// The claim gets what fitted under the limit before its own `ADD` (in
    /// the order DynamoDB applied them), so the grants of every instance
    /// never add up to more than `limit`; what did not fit is simply not
    /// granted (the window's count may pass the limit, harmlessly).
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

/// One claim on the window item `key` (see [`TenantStore::take_tokens`]).
async fn take_tokens_at(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    key: keys::Key,
    window_start: i64,
    want: u32,
    limit: u32,
) -> Result<Claim, Error> {
    let n = want.min(limit).max(1);
    let mut w = Write::to(key);
    w.add(a::TAKEN, i64::from(n))
            // Kept a while after its window, then DynamoDB's TTL tidies it.
            .set(a::TTL, &(window_start + 3_600));
    let new = aws_sdk_dynamodb::types::ReturnValue::UpdatedNew;
    let after = match w.run_returning(db, table, new).await? {
        Ok(new) => get_n::<u64>(&new, a::TAKEN).unwrap_or(u64::MAX),
        // Unconditional: never refused.
        Err(_) => u64::MAX,
    };
    Ok(granted(after, n, limit))
}

/// What a claim of `n` got when the window's count is `after` once its own
/// `ADD` was applied.
fn granted(after: u64, n: u32, limit: u32) -> Claim {
    let before = after.saturating_sub(u64::from(n));
    let left = u64::from(limit).saturating_sub(before);
    let granted = left.min(u64::from(n)) as u32; // at most n: fits
    let taken = after.min(u64::from(limit)) as u32; // at most limit: fits
    Claim { granted, taken }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_gets_what_fitted_before_it() {
        let c = |after, n, limit| granted(after, n, limit);
        assert_eq!(
            c(30, 30, 600),
            Claim {
                granted: 30,
                taken: 30
            }
        );
        assert_eq!(
            c(610, 30, 600),
            Claim {
                granted: 20,
                taken: 600
            }
        );
        assert_eq!(
            c(640, 30, 600),
            Claim {
                granted: 0,
                taken: 600
            }
        );
        assert_eq!(
            c(600, 600, 600),
            Claim {
                granted: 600,
                taken: 600
            }
        );
        // Claims applied in any order never grant more than the limit.
        let mut total = 0;
        let mut count = 0;
        for n in [250, 250, 250, 30, 120] {
            count += n as u64;
            total += c(count, n, 600).granted;
        }
        assert_eq!(total, 600);
    }
}
