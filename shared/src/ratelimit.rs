//! Global rate limits, across every instance. Each request spends one
//! budget, its credential's ([`Subject`]): an API key's (whichever licenses
//! the request names), a license key's (its license), or a credential-less
//! trial's source address.
//!
//! Each subject has one window item per minute in the table counting the
//! tokens instances asked for ([`TenantStore::take_tokens`]: one
//! unconditional `ADD` that grants what fitted under the limit). An
//! instance claims a block of tokens with that one write and admits
//! requests from its block locally, never writing for a request of its own.
//! The block ([`block`]) is sized so that a key's traffic on an instance is
//! usually covered by one claim a minute:
//!
//! - the first claim of a minute asks for what this instance saw of the
//!   subject in the previous minute (admitted and refused), at least
//!   [`chunk`] (5 % of the limit): a **quiet** key — or any key whose
//!   traffic on the instance is steady — makes **one write per instance per
//!   minute**;
//! - when a block runs out within the minute, the next claim asks for as
//!   many tokens as the instance got so far this minute (doubling), so a
//!   key whose traffic grows makes at most `1 + log2(20)`, i.e. 6 claims on
//!   an instance in a minute (one chunk to the whole limit), then one a
//!   minute while it stays at that level;
//! - once a claim gets nothing, the instance refuses locally until the next
//!   minute (no further write).
//!
//! Error bound: **never more than the limit**, whatever the number of
//! instances (every admitted request spends a token a claim was granted,
//! and grants add up to at most the limit). **Below the limit** only by
//! tokens an instance was granted and did not spend before the minute
//! ended: at most its last block, which is at most `max(chunk, what it
//! admitted earlier that minute, what it saw the minute before)` — none
//! while the key's traffic keeps reaching the instances that claimed (the
//! 4-instance test admits exactly the limit; a key whose traffic leaves an
//! instance mid-minute strands at most that instance's block).
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

/// The smallest claim: 5 % of the limit (at least one).
pub fn chunk(limit: u32) -> u32 {
    (limit / 20).max(1)
}

/// How many tokens a claim asks for: the first of a minute what the
/// instance saw of the subject the minute before (`previous`), a later one
/// as many as it was granted so far this minute (`granted`, doubling its
/// tokens); at least a [`chunk`], at most the limit.
pub fn block(limit: u32, previous: u32, granted: u32) -> u32 {
    let want = if granted == 0 { previous } else { granted };
    want.max(chunk(limit)).min(limit)
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
    /// Granted to this instance this minute.
    granted: u32,
    /// Requests of the subject this instance saw this minute (admitted or
    /// refused), and in the minute before.
    seen: u32,
    previous: u32,
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
            let previous = if b.window == window - 60 { b.seen } else { 0 };
            *b = Bucket {
                window,
                previous,
                ..Bucket::default()
            };
        }
        b.seen = b.seen.saturating_add(1);
        if b.tokens == 0 && !b.exhausted {
            let want = block(limit, b.previous, b.granted);
            match ts.take_tokens(subject.name(), window, want, limit).await {
                Ok(c) => {
                    b.tokens = c.granted;
                    b.granted = b.granted.saturating_add(c.granted);
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
    fn blocks_follow_last_minute_then_double() {
        // Quiet: a chunk. Steady: last minute's traffic, in one claim.
        assert_eq!(block(600, 0, 0), 30);
        assert_eq!(block(600, 3, 0), 30);
        assert_eq!(block(600, 250, 0), 250);
        assert_eq!(block(600, 5000, 0), 600);
        // Growing within a minute: as much again as granted so far.
        assert_eq!(block(600, 0, 30), 30);
        assert_eq!(block(600, 0, 60), 60);
        assert_eq!(block(600, 0, 480), 480);
        assert_eq!(block(600, 0, 900), 600);
        // From a chunk to the whole limit in at most six claims.
        let (mut granted, mut claims) = (0, 0);
        while granted < 600 {
            granted += block(600, 0, granted).min(600 - granted);
            claims += 1;
        }
        assert!(claims <= 6, "{claims}");
    }

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
