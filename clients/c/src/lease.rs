//! Heartbeats on a thread of their own, and floating leases: checked out by an activation, kept
//! alive by heartbeats (explicit, or on that thread), returned by a deactivation.

use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use licensing_client::Activation;

use crate::client::Core;
use crate::error::{clear_last_error, licensing_status_t, set_last_error, Failure};
use crate::json;

/// Called on the heartbeat thread after each heartbeat.
pub(crate) type HeartbeatFn =
    unsafe extern "C" fn(status: licensing_status_t, text: *const c_char, user_data: *mut c_void);

/// A thread that runs `beat` every `every` until it is stopped (or dropped).
pub(crate) struct Heartbeat {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// What the heartbeats are for (an activation id).
    pub target: String,
}

impl Heartbeat {
    pub(crate) fn start(
        target: String,
        every: Duration,
        mut beat: impl FnMut() + Send + 'static,
    ) -> Result<Heartbeat, Failure> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("licensing-heartbeat".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    beat();
                }
            })
            .map_err(|e| Failure::from(std::io::Error::other(e)))?;
        Ok(Heartbeat {
            stop: Some(stop),
            thread: Some(thread),
            target,
        })
    }
}

impl Drop for Heartbeat {
    /// Stops the thread and waits for a heartbeat in flight (unless called from the thread).
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// What the heartbeat thread shares with the lease handle.
pub(crate) struct Shared {
    pub core: Arc<Core>,
    pub id: CString,
    pub fingerprint: String,
    pub last: Mutex<Activation>,
}

impl Shared {
    pub(crate) fn id(&self) -> &str {
        self.id.to_str().unwrap_or_default()
    }

    /// One heartbeat; the renewed activation replaces the last one.
    pub(crate) fn heartbeat(&self) -> Result<Activation, Failure> {
        let renewed = self.core.heartbeat(self.id())?;
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = renewed.clone();
        Ok(renewed)
    }

    pub(crate) fn last(&self) -> Activation {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A checked-out lease.
pub(crate) struct Lease {
    pub shared: Arc<Shared>,
    beat: Mutex<Option<Heartbeat>>,
}

struct UserData(*mut c_void);
// The caller promises (licensing.h says so) that user_data may be used from the heartbeat thread.
unsafe impl Send for UserData {}

impl Lease {
    pub(crate) fn checkout(
        core: Arc<Core>,
        fingerprint: &str,
        name: Option<&str>,
    ) -> Result<Lease, Failure> {
        let activation = core.activate(fingerprint, name).map_err(|e| {
            let full = ["TOO_MANY_ACTIVATIONS", "OVERAGE_MAX_EXCEEDED"];
            if e.status == licensing_status_t::LICENSING_ERR_API
                && full.contains(&e.code.as_deref().unwrap_or(""))
            {
                Failure {
                    status: licensing_status_t::LICENSING_ERR_LICENSE_UNAVAILABLE,
                    ..e
                }
            } else {
                e
            }
        })?;
        let id = CString::new(activation.id.clone())
            .map_err(|_| Failure::arg("the activation id has a NUL byte"))?;
        Ok(Lease {
            shared: Arc::new(Shared {
                core,
                id,
                fingerprint: fingerprint.to_owned(),
                last: Mutex::new(activation),
            }),
            beat: Mutex::new(None),
        })
    }

    /// The automatic heartbeat interval: a third of what is left of the lease, at least 1 s.
    pub(crate) fn auto_interval(&self) -> Option<Duration> {
        let expires = self.shared.last().lease_expires_at?;
        let left = expires - self.shared.core.now();
        let third = left.whole_milliseconds().max(0) / 3;
        Some(Duration::from_millis(
            u64::try_from(third).unwrap_or(0).max(1000),
        ))
    }

    /// Starts (or restarts) heartbeats every `every` on a thread of the lease, reporting each
    /// outcome to `callback`.
    pub(crate) fn start(
        &self,
        every: Duration,
        callback: Option<HeartbeatFn>,
        user_data: *mut c_void,
    ) -> Result<(), Failure> {
        self.stop();
        let shared = self.shared.clone();
        let user_data = UserData(user_data);
        let beat = move || {
            let user_data = &user_data;
            clear_last_error();
            let outcome =
                catch_unwind(AssertUnwindSafe(|| shared.heartbeat())).unwrap_or_else(|_| {
                    Err(Failure::new(
                        licensing_status_t::LICENSING_ERR_PANIC,
                        "internal error (panic) in a heartbeat",
                    ))
                });
            let Some(callback) = callback else { return };
            let (status, text) = match outcome {
                Ok(activation) => (
                    licensing_status_t::LICENSING_OK,
                    json::activation(&activation).to_string(),
                ),
                Err(failure) => {
                    set_last_error(&failure);
                    (failure.status, failure.message)
                }
            };
            let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
            // SAFETY: the caller's callback, with the caller's pointer, as documented.
            unsafe { callback(status, text.as_ptr(), user_data.0) };
        };
        let heartbeat = Heartbeat::start(self.shared.id().to_owned(), every, beat)?;
        *self.beat.lock().unwrap_or_else(PoisonError::into_inner) = Some(heartbeat);
        Ok(())
    }

    /// Stops the heartbeat thread, if any, and waits for it (unless called from it).
    pub(crate) fn stop(&self) {
        let beat = self
            .beat
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(beat);
    }

    /// Stops the heartbeats and returns the lease (deactivates its fingerprint).
    pub(crate) fn give_back(&self) -> Result<Activation, Failure> {
        self.stop();
        self.shared.core.deactivate(&self.shared.fingerprint)
    }
}
