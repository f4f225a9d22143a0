//! Losing a race: every Stripe write is conditional on what was read, so
//! when another delivery committed in between, the attempt reads again.

use crate::error::Error;
use std::future::Future;

/// How often a delivery re-reads after losing a race before giving up (503).
pub(super) const ATTEMPTS: usize = 4;
/// How often an apply re-reads a license whose status moved under it: each
/// loss means another event committed in between, and once the newest one
/// has, the rest are stale rather than refused.
pub(super) const APPLY_ATTEMPTS: usize = 12;

/// How one attempt ended.
pub(super) enum Attempt<T> {
    Done(T),
    /// Another write won between the read and the conditional write.
    Conflict,
}

/// Run `attempt` until it is done, at most `max` times; after `max`
/// conflicts the delivery answers 503 (`Unavailable`, with `gave_up`) and
/// Stripe retries it.
pub(super) async fn retry_on_conflict<T, F, Fut>(
    max: usize,
    gave_up: &str,
    mut attempt: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, Error>>,
{
    for _ in 0..max {
        if let Attempt::Done(t) = attempt().await? {
            return Ok(t);
        }
    }
    Err(Error::Unavailable(gave_up.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use std::cell::Cell;

    #[test]
    fn retries_conflicts_up_to_max_then_gives_up() {
        let calls = Cell::new(0);
        let r = block_on(retry_on_conflict(4, "kept changing", || async {
            calls.set(calls.get() + 1);
            Ok::<_, Error>(if calls.get() < 3 {
                Attempt::Conflict
            } else {
                Attempt::Done(calls.get())
            })
        }));
        assert_eq!((r.unwrap(), calls.get()), (3, 3));

        calls.set(0);
        let r = block_on(retry_on_conflict(4, "kept changing", || async {
            calls.set(calls.get() + 1);
            Ok::<Attempt<()>, Error>(Attempt::Conflict)
        }));
        assert!(matches!(r, Err(Error::Unavailable(m)) if m == "kept changing"));
        assert_eq!(calls.get(), 4, "exactly max attempts");
    }

    #[test]
    fn an_error_ends_the_attempts() {
        let calls = Cell::new(0);
        let r = block_on(retry_on_conflict(4, "kept changing", || async {
            calls.set(calls.get() + 1);
            Err::<Attempt<()>, _>(Error::Internal("boom".into()))
        }));
        assert!(matches!(r, Err(Error::Internal(_))));
        assert_eq!(calls.get(), 1);
    }
}
