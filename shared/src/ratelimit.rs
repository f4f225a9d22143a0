//! Global rate limits, across every instance. Each request spends one
//! budget, its credential's ([`Subject`]): an API key's (whichever licenses
//! the request names), a license key's (its license), or a credential-less
//! trial's source address.
//!
//! Each subject has one window item per minute in the table counting the
//! tokens taken from it ([`TenantStore::take_tokens`]). An instance claims a
//! chunk of tokens with one conditional write and admits requests from its
//! claim locally; when the claim runs out it claims again, and once the
//! window is used up it refuses locally until the next minute. So:
//!
//! - **never more than the limit**, whatever the number of instances: every
//!   admitted request spends a token that a conditional write granted;
//! - **cheap**: a quiet key (fewer requests in a minute on an instance than
//!   one [`chunk`], 5 % of its limit) costs one write per instance per
//!   minute — an admitted request costs no write of its own, however many
//!   licenses the key's requests name; a busy one one write per chunk, which
//!   is at most about one write per instance per second while the key stays
//!   under its limit, and none once the window is used up;
//! - **close to the limit from below**: tokens an instance claimed but did
//!   not spend before the minute ended are lost, at most one chunk per
//!   instance that stops receiving the subject's traffic mid-minute.
//!
//! If a claim cannot reach the table, the instance admits a chunk on its own
//! (and logs it) and tries the table again at its next claim; on its own it
//! never admits more than the limit per minute — during an outage each
//! instance falls back to a per-instance limit rather than failing every
//! request.

use crate::error::Error;
use crate::ids::{ApiKeyId, LicenseId, TenantId};
use crate::store::TenantStore;
use moka::sync::Cache;
use std::sync::Arc;
use std::time::Duration;

/// Rate-limit state to report on the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    pub limit: u32,
    pub remaining: u32,
    pub reset_epoch: i64,
    pub retry_after: Option<u64>,
}

impl RateState {
    pub fn check(self) -> Result<RateState, Error> {
        match self.retry_after {
            Some(secs) => Err(Error::RateLimited {
                retry_after_secs: secs,
            }),
            None => Ok(self),
        }
    }
}

/// What is limited: the request's credential.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// An API key, whatever licenses its requests name.
    Key(&'a ApiKeyId),
    /// A license, for requests authenticated with its own key only.
    License(&'a LicenseId),
    /// A source address (credential-less public trials).
    Address(&'a str),
}

impl Subject<'_> {
    fn name(&self) -> &str {
        match self {
            Subject::Key(k) => k.as_str(),
            Subject::License(l) => l.as_str(),
            Subject::Address(ip) => ip,
        }
    }
}

/// How many tokens one claim asks for: 5 % of the limit (at least one).
pub fn chunk(limit: u32) -> u32 {
    (limit / 20).max(1)
}

#[derive(Debug, Default)]
struct Bucket {
    window: i64,
    /// Claimed and not yet spent.
    tokens: u32,
    /// Taken from the window by every instance, as of the last claim.
    taken: u32,
    /// The window is used up: refuse without asking again.
    exhausted: bool,
    /// Admitted on this instance's own authority (claims that failed).
    local: u32,
}

pub struct RateLimiter {
    buckets: Cache<(TenantId, String), Arc<tokio::sync::Mutex<Bucket>>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        let buckets = Cache::builder()
            .max_capacity(100_000)
            .time_to_idle(Duration::from_secs(120))
            .build();
        Self { buckets }
    }
}

impl RateLimiter {
    /// Admit (or refuse) one request of `subject` at `now` (epoch seconds)
    /// against `limit` per minute.
    pub async fn admit(
        &self,
        ts: &TenantStore,
        subject: Subject<'_>,
        limit: u32,
        now: i64,
    ) -> RateState {
        let window = now - now.rem_euclid(60);
        let reset = window + 60;
        let refused = RateState {
            limit,
            remaining: 0,
            reset_epoch: reset,
            retry_after: Some((reset - now).max(1) as u64),
        };
        if limit == 0 {
            return refused;
        }
        let bucket = self.buckets.get_with(
            (ts.tenant_id().clone(), subject.name().to_string()),
            Default::default,
        );
        let mut b = bucket.lock().await;
        if b.window != window {
            *b = Bucket {
                window,
                ..Bucket::default()
            };
        }
        if b.tokens == 0 && !b.exhausted {
            match ts
                .take_tokens(subject.name(), window, chunk(limit), limit)
                .await
            {
                Ok(c) => {
                    b.tokens = c.granted;
                    b.taken = c.taken;
                    b.exhausted = c.granted == 0;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rate-limit window unreachable; limiting locally");
                    let n = chunk(limit).min(limit.saturating_sub(b.local));
                    b.tokens = n;
                    b.local += n;
                    b.taken = b.taken.saturating_add(n);
                    b.exhausted = n == 0; // at most the limit per minute on its own
                }
            }
        }
        if b.tokens == 0 {
            return refused;
        }
        b.tokens -= 1;
        let remaining = limit.saturating_sub(b.taken).saturating_add(b.tokens);
        RateState {
            limit,
            remaining: remaining.min(limit),
            reset_epoch: reset,
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_five_percent() {
        assert_eq!(chunk(1), 1);
        assert_eq!(chunk(60), 3);
        assert_eq!(chunk(6000), 300);
    }

    #[test]
    fn a_refused_state_is_rate_limited() {
        let s = |retry_after| RateState {
            limit: 10,
            remaining: 0,
            reset_epoch: 0,
            retry_after,
        };
        assert!(s(None).check().is_ok());
        assert!(matches!(
            s(Some(2)).check(),
            Err(Error::RateLimited {
                retry_after_secs: 2
            })
        ));
    }
}
