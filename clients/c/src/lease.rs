//! Floating leases: checked out by an activation, kept alive by heartbeats (explicit, or on a
//! background thread of the lease), returned by a deactivation.

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

/// Called on the lease's heartbeat thread after each heartbeat.
pub(crate) type HeartbeatFn =
    unsafe extern "C" fn(status: licensing_status_t, text: *const c_char, user_data: *mut c_void);

/// What the heartbeat thread shares with the handle.
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

struct Beat {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

/// A checked-out lease.
pub(crate) struct Lease {
    pub shared: Arc<Shared>,
    beat: Mutex<Option<Beat>>,
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
            if e.code.as_deref() == Some("TOO_MANY_ACTIVATIONS") {
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

    /// Starts (or restarts) heartbeats every `every` on a thread of the lease.
    pub(crate) fn start(
        &self,
        every: Duration,
        callback: Option<HeartbeatFn>,
        user_data: *mut c_void,
    ) {
        self.stop();
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = self.shared.clone();
        let user_data = UserData(user_data);
        let thread = thread::Builder::new()
            .name("licensing-heartbeat".into())
            .spawn(move || {
                let user_data = user_data;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    clear_last_error();
                    let outcome = catch_unwind(AssertUnwindSafe(|| shared.heartbeat()))
                        .unwrap_or_else(|_| {
                            Err(Failure::new(
                                licensing_status_t::LICENSING_ERR_PANIC,
                                "internal error (panic) in a heartbeat",
                            ))
                        });
                    let Some(callback) = callback else { continue };
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
                }
            });
        if let Ok(thread) = thread {
            *self.beat.lock().unwrap_or_else(PoisonError::into_inner) = Some(Beat { stop, thread });
        }
    }

    /// Stops the heartbeat thread, if any, and waits for it (unless called from it).
    pub(crate) fn stop(&self) {
        let beat = self
            .beat
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(Beat { stop, thread }) = beat {
            drop(stop);
            if thread.thread().id() != thread::current().id() {
                let _ = thread.join();
            }
        }
    }

    pub(crate) fn is_beating(&self) -> bool {
        self.beat
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Stops the heartbeats and returns the lease (deactivates its fingerprint).
    pub(crate) fn give_back(&self) -> Result<Activation, Failure> {
        self.stop();
        self.shared.core.deactivate(&self.shared.fingerprint)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop();
    }
}
