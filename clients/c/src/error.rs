//! Status codes, the thread-local last error, and the guard every export runs in.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use licensing_client::{Error, FileError};

/// What every fallible function returns: `LICENSING_OK` (0) or why it failed. On failure,
/// `licensing_last_error_message()` (and, where it applies, `licensing_last_error_code()` and
/// `licensing_last_error_http_status()`) tell more, on the same thread.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum licensing_status_t {
    /// Success.
    LICENSING_OK = 0,
    /// A required pointer was NULL, or a string was not UTF-8.
    LICENSING_ERR_INVALID_ARGUMENT = 1,
    /// The client options are missing or invalid (no base URL, tenant, license key or pinned
    /// key; a key that is not base64 of 32 bytes; `http://` to a host that is not loopback).
    LICENSING_ERR_CONFIG = 2,
    /// The service could not be reached: DNS, connection, TLS, timeout.
    LICENSING_ERR_TRANSPORT = 3,
    /// An unsigned 5xx from a gateway in front of the service.
    LICENSING_ERR_UNAVAILABLE = 4,
    /// The service answered with a verified error: `licensing_last_error_code()` is its code
    /// (`NO_ACTIVATION`, `LEASE_EXPIRED`, `QUOTA_EXCEEDED`, ...), and
    /// `licensing_last_error_http_status()` its HTTP status.
    LICENSING_ERR_API = 5,
    /// The answer's signature is missing, malformed, by a key that is not pinned, does not
    /// verify for the request that was sent (a man in the middle), or its date is more than
    /// five minutes from the clock. Nothing of the answer was used.
    /// `licensing_last_error_code()`: `unsigned`, `malformed`, `unknown_kid`, `bad_signature`
    /// or `expired`.
    LICENSING_ERR_UNVERIFIED = 6,
    /// A license file failed verification. `licensing_last_error_code()`: `malformed`,
    /// `unknown_kid`, `bad_signature`, `unsupported_format`, `wrong_tenant`, `expired`,
    /// `not_yet_valid`, `wrong_license`, `wrong_fingerprint` or `unbound`.
    LICENSING_ERR_FILE = 7,
    /// Reading or writing the cache directory failed.
    LICENSING_ERR_IO = 8,
    /// A verified answer did not have the expected shape.
    LICENSING_ERR_DECODE = 9,
    /// No offline license file is cached (no cache directory, or no checkout yet).
    LICENSING_ERR_NO_OFFLINE_LICENSE = 10,
    /// A floating lease could not be checked out: every seat (overage seats included) is held
    /// by an unexpired lease (the service's 409 `TOO_MANY_ACTIVATIONS`). Try again later.
    LICENSING_ERR_LICENSE_UNAVAILABLE = 11,
    /// The library panicked (a bug); the panic was caught at the boundary.
    LICENSING_ERR_PANIC = 12,
}

use licensing_status_t::*;

/// A failure on its way to the C caller.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub status: licensing_status_t,
    pub message: String,
    /// The API error code, or the reason of a file or signature failure.
    pub code: Option<String>,
    pub http_status: u16,
}

impl Failure {
    pub fn new(status: licensing_status_t, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            code: None,
            http_status: 0,
        }
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn arg(message: impl Into<String>) -> Self {
        Self::new(LICENSING_ERR_INVALID_ARGUMENT, message)
    }
}

/// The reason code of a license file failure, as `licensing_last_error_code()` shows it.
pub(crate) fn file_reason(e: &FileError) -> &'static str {
    match e {
        FileError::Malformed(_) => "malformed",
        FileError::UnknownKey(_) => "unknown_kid",
        FileError::BadSignature => "bad_signature",
        FileError::UnsupportedFormat(_) => "unsupported_format",
        FileError::WrongTenant { .. } => "wrong_tenant",
        FileError::Expired(_) => "expired",
        FileError::NotYetValid(_) => "not_yet_valid",
        FileError::WrongLicense => "wrong_license",
        FileError::WrongFingerprint => "wrong_fingerprint",
        FileError::Unbound => "unbound",
    }
}

impl From<FileError> for Failure {
    fn from(e: FileError) -> Self {
        Failure::new(LICENSING_ERR_FILE, format!("license file: {e}")).with_code(file_reason(&e))
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::Transport(_) => Failure::new(LICENSING_ERR_TRANSPORT, message),
            Error::Unavailable { status } => Failure {
                http_status: status,
                ..Failure::new(LICENSING_ERR_UNAVAILABLE, message)
            },
            Error::Api { status, code, .. } => Failure {
                http_status: status,
                ..Failure::new(LICENSING_ERR_API, message).with_code(code)
            },
            Error::Unverified(_) => Failure::new(LICENSING_ERR_UNVERIFIED, message),
            Error::File(file) => file.into(),
            Error::Io(_) => Failure::new(LICENSING_ERR_IO, message),
            Error::Decode(_) => Failure::new(LICENSING_ERR_DECODE, message),
            Error::NoOfflineLicense => Failure::new(LICENSING_ERR_NO_OFFLINE_LICENSE, message),
            Error::Config(_) => Failure::new(LICENSING_ERR_CONFIG, message),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e).into()
    }
}

/// The last failure on this thread, as C strings (kept so the pointers handed out stay valid
/// until the next call into the library on this thread).
struct LastError {
    status: licensing_status_t,
    message: CString,
    code: Option<CString>,
    http_status: u16,
}

thread_local! {
    static LAST: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', " ")).unwrap_or_default()
}

pub(crate) fn set_last_error(failure: &Failure) {
    let last = LastError {
        status: failure.status,
        message: c_string(&failure.message),
        code: failure.code.as_deref().map(c_string),
        http_status: failure.http_status,
    };
    LAST.with(|cell| *cell.borrow_mut() = Some(last));
}

pub(crate) fn clear_last_error() {
    LAST.with(|cell| *cell.borrow_mut() = None);
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Runs `body` with the last error cleared, catching any panic: the status to return to C.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> licensing_status_t {
    clear_last_error();
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return LICENSING_OK,
        Ok(Err(failure)) => failure,
        Err(payload) => Failure::new(
            LICENSING_ERR_PANIC,
            format!("internal error (panic): {}", panic_message(&*payload)),
        ),
    };
    set_last_error(&failure);
    failure.status
}

/// Like [`guard`] for a function that returns a value: `fallback` on a panic.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            let failure = Failure::new(
                LICENSING_ERR_PANIC,
                format!("internal error (panic): {}", panic_message(&*payload)),
            );
            set_last_error(&failure);
            fallback
        }
    }
}

/// Reads this thread's last error (the pointers stay valid until the next call into the library
/// on this thread).
pub(crate) fn with_last<T>(read: impl FnOnce(Option<&LastErrorView>) -> T) -> T {
    LAST.with(|cell| {
        let last = cell.borrow();
        let view = last.as_ref().map(|l| LastErrorView {
            status: l.status,
            message: l.message.as_ptr(),
            code: l.code.as_ref().map(|c| c.as_ptr()),
            http_status: l.http_status,
        });
        read(view.as_ref())
    })
}

/// Pointers into this thread's last error.
pub(crate) struct LastErrorView {
    pub status: licensing_status_t,
    pub message: *const c_char,
    pub code: Option<*const c_char>,
    pub http_status: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_caught_and_reported() {
        let status = guard(|| panic!("boom"));
        assert_eq!(status, LICENSING_ERR_PANIC);
        with_last(|last| {
            let last = last.unwrap();
            assert_eq!(last.status, LICENSING_ERR_PANIC);
            let message = unsafe { std::ffi::CStr::from_ptr(last.message) };
            assert_eq!(message.to_str().unwrap(), "internal error (panic): boom");
        });
        assert_eq!(guard_value(7, || panic!("again")), 7);
        assert_eq!(guard(|| Ok(())), LICENSING_OK);
        with_last(|last| assert!(last.is_none()));
    }

    #[test]
    fn file_failures_carry_their_reason() {
        let failure: Failure = Error::File(FileError::WrongFingerprint).into();
        assert_eq!(failure.status, LICENSING_ERR_FILE);
        assert_eq!(failure.code.as_deref(), Some("wrong_fingerprint"));
        let failure: Failure = Error::Api {
            status: 409,
            code: "NO_ACTIVATION".into(),
            message: "m".into(),
        }
        .into();
        assert_eq!(
            (failure.status, failure.http_status),
            (LICENSING_ERR_API, 409)
        );
        assert_eq!(failure.code.as_deref(), Some("NO_ACTIVATION"));
    }
}
