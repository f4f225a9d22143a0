//! Keeping a floating lease (or a node-locked heartbeat) alive in the background.
//! [`Client::lease`](crate::Client::lease) and
//! [`Client::ensure_licensed`](crate::Client::ensure_licensed) start it when needed, at a third
//! of the lease (or of the policy's `heartbeat_seconds`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use crate::client::Client;
use crate::error::Error;
use crate::types::Activation;

/// The outcome of one heartbeat: the renewed activation, or why it failed.
pub type HeartbeatResult = Result<Activation, Arc<Error>>;

/// A running heartbeat task. Dropping the handle (or [`stop`](Self::stop)) stops it.
#[derive(Debug)]
pub struct HeartbeatHandle {
    task: JoinHandle<()>,
    last: watch::Receiver<Option<HeartbeatResult>>,
    every: Duration,
}

impl HeartbeatHandle {
    /// The interval between heartbeats.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// The outcome of the latest heartbeat; `None` before the first one.
    pub fn last_result(&self) -> Option<HeartbeatResult> {
        self.last.borrow().clone()
    }

    /// A receiver that sees every outcome, to `changed().await` on (for example to activate
    /// again when a heartbeat answers `LEASE_EXPIRED`).
    pub fn subscribe(&self) -> watch::Receiver<Option<HeartbeatResult>> {
        self.last.clone()
    }

    /// Stops the heartbeats. (Returning the lease is [`Client::deactivate`].)
    pub fn stop(self) {}
}

impl Drop for HeartbeatHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Sends a heartbeat for `activation_id` every `every` (the first one `every` from now)
    /// until the handle is dropped. Choose `every` well inside the policy's `lease_seconds`
    /// (a third of it, say). Failures do not stop the task; each outcome is published on the
    /// handle.
    ///
    /// Must be called from within a Tokio runtime; panics if `every` is zero.
    pub fn spawn_heartbeat(
        self: Arc<Self>,
        activation_id: impl Into<String>,
        every: Duration,
    ) -> HeartbeatHandle {
        assert!(!every.is_zero(), "the heartbeat interval must not be zero");
        let activation_id = activation_id.into();
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(async move {
            let mut ticks = interval_at(Instant::now() + every, every);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let result = self.heartbeat(&activation_id).await.map_err(Arc::new);
                if tx.send(Some(result)).is_err() {
                    return; // the handle is gone
                }
            }
        });
        HeartbeatHandle {
            task,
            last: rx,
            every,
        }
    }
}
