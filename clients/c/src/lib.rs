//! The C ABI of the licensing client: `include/licensing.h` (generated from this file by
//! cbindgen), `liblicensing.so` / `liblicensing.a`.
//!
//! Conventions, for every function:
//!
//! - Strings in and out are UTF-8 and NUL-terminated. Strings the library returns through a
//!   `char **out` are owned by the caller: free them with `licensing_string_free`. An `out`
//!   pointer may be NULL when the result is not wanted; on failure `*out` is set to NULL.
//! - Fallible functions return a `licensing_status_t` (`LICENSING_OK` = 0). On failure
//!   `licensing_last_error_message()` says why, on the calling thread, until its next call into
//!   the library.
//! - Calls block the calling thread (each client runs a small runtime of its own for I/O). A
//!   client may be used from several threads at once.
//! - No panic crosses the boundary: one would be reported as `LICENSING_ERR_PANIC`.
//! - Results are JSON objects (see README.md for their fields).

#![allow(clippy::missing_safety_doc)] // licensing.h documents the contract for C callers

mod client;
mod error;
mod json;
mod lease;

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::ptr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use licensing_client::{verify_license_file, PinnedKeys, SentRequest};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::client::{Clock, Core, Options};
pub use crate::error::licensing_status_t;
use crate::error::{guard, guard_value, with_last, Failure};
use crate::lease::{Heartbeat, Lease};

/// Client settings, collected before `licensing_client_new`.
#[allow(non_camel_case_types)]
pub struct licensing_options_t {
    options: Options,
}

/// A client for one license of one tenant. Thread-safe.
#[allow(non_camel_case_types)]
pub struct licensing_client_t {
    core: Arc<Core>,
    /// The heartbeats `licensing_ensure_licensed` keeps for a policy with `heartbeat_seconds`.
    session: Mutex<Option<Heartbeat>>,
}

/// A floating lease checked out by `licensing_lease_checkout`.
#[allow(non_camel_case_types)]
pub struct licensing_lease_t {
    lease: Lease,
}

/// A set of pinned public keys, for verifying without a client.
#[allow(non_camel_case_types)]
pub struct licensing_keys_t {
    keys: PinnedKeys,
}

/// A clock: the current time in milliseconds since the Unix epoch (UTC). It may be called from
/// any thread while the client lives.
#[allow(non_camel_case_types)]
pub type licensing_clock_fn = Option<unsafe extern "C" fn(user_data: *mut c_void) -> i64>;

/// Called on a lease's heartbeat thread after each background heartbeat: `LICENSING_OK` and the
/// renewed activation as JSON, or the failure's status and message (and then
/// `licensing_last_error_code()`, on that thread, gives e.g. `LEASE_EXPIRED`: check out a new
/// lease). `text` is valid only during the call. Keep it short: the next heartbeat waits for it.
#[allow(non_camel_case_types)]
pub type licensing_heartbeat_fn = Option<
    unsafe extern "C" fn(status: licensing_status_t, text: *const c_char, user_data: *mut c_void),
>;

// ---- helpers ------------------------------------------------------------------------------

/// A required string argument.
unsafe fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::arg(format!("{what} is NULL")));
    }
    CStr::from_ptr(p)
        .to_str()
        .map_err(|_| Failure::arg(format!("{what} is not UTF-8")))
}

/// An optional string argument (NULL = none).
unsafe fn opt_text<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, Failure> {
    if p.is_null() {
        Ok(None)
    } else {
        text(p, what).map(Some)
    }
}

/// A byte buffer argument (NULL allowed when `len` is 0).
unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], Failure> {
    match (p.is_null(), len) {
        (true, 0) => Ok(&[]),
        (true, _) => Err(Failure::arg(format!("{what} is NULL"))),
        (false, _) => Ok(std::slice::from_raw_parts(p, len)),
    }
}

unsafe fn handle<'a, T>(p: *const T, what: &str) -> Result<&'a T, Failure> {
    p.as_ref()
        .ok_or_else(|| Failure::arg(format!("{what} is NULL")))
}

unsafe fn handle_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    p.as_mut()
        .ok_or_else(|| Failure::arg(format!("{what} is NULL")))
}

fn into_c(text: String) -> *mut c_char {
    CString::new(text.replace('\0', " "))
        .unwrap_or_default()
        .into_raw()
}

/// Sets `*out` to NULL (if `out` is given): what a failure leaves.
unsafe fn clear<T>(out: *mut *mut T) {
    if let Some(out) = out.as_mut() {
        *out = ptr::null_mut();
    }
}

/// Hands `value` to C as a JSON string, when `out` is given.
unsafe fn put_json(out: *mut *mut c_char, value: &Value) {
    if let Some(out) = out.as_mut() {
        *out = into_c(value.to_string());
    }
}

/// The time given as RFC 3339 text, or the system clock for NULL.
unsafe fn now_arg(now: *const c_char) -> Result<OffsetDateTime, Failure> {
    match opt_text(now, "now")? {
        None => Ok(OffsetDateTime::now_utc()),
        Some(text) => OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| Failure::arg(format!("now {text:?} is not RFC 3339"))),
    }
}

/// Runs `body` on the options behind `options`.
unsafe fn set_option(
    options: *mut licensing_options_t,
    body: impl FnOnce(&mut Options) -> Result<(), Failure>,
) -> licensing_status_t {
    guard(|| body(&mut handle_mut(options, "options")?.options))
}

// ---- version, strings, errors -------------------------------------------------------------

/// The library's version, such as "0.1.0" (a static string: do not free it).
#[no_mangle]
pub extern "C" fn licensing_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Frees a string returned by the library. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn licensing_string_free(text: *mut c_char) {
    guard_value((), || {
        if !text.is_null() {
            drop(CString::from_raw(text));
        }
    })
}

/// The message of the last failure on this thread ("" if the last call succeeded). Valid until
/// the next call into the library on this thread; do not free it.
#[no_mangle]
pub extern "C" fn licensing_last_error_message() -> *const c_char {
    guard_value(c"".as_ptr(), || {
        with_last(|last| last.map_or(c"".as_ptr(), |l| l.message))
    })
}

/// The code of the last failure on this thread, or NULL: for `LICENSING_ERR_API` the service's
/// error code (`NO_ACTIVATION`, `LEASE_EXPIRED`, ...), for `LICENSING_ERR_FILE` and
/// `LICENSING_ERR_UNVERIFIED` the reason (see `licensing_status_t`). Valid until the next call
/// into the library on this thread; do not free it.
#[no_mangle]
pub extern "C" fn licensing_last_error_code() -> *const c_char {
    guard_value(ptr::null(), || {
        with_last(|last| last.and_then(|l| l.code).unwrap_or(ptr::null()))
    })
}

/// The HTTP status of the last failure on this thread (`LICENSING_ERR_API`,
/// `LICENSING_ERR_UNAVAILABLE`), else 0.
#[no_mangle]
pub extern "C" fn licensing_last_error_http_status() -> c_int {
    guard_value(0, || {
        with_last(|last| last.map_or(0, |l| c_int::from(l.http_status)))
    })
}

/// The status of the last failure on this thread (`LICENSING_OK` after a success).
#[no_mangle]
pub extern "C" fn licensing_last_error_status() -> licensing_status_t {
    guard_value(licensing_status_t::LICENSING_ERR_PANIC, || {
        with_last(|last| last.map_or(licensing_status_t::LICENSING_OK, |l| l.status))
    })
}

/// The name of a status, such as "LICENSING_ERR_API" (a static string: do not free it).
#[no_mangle]
pub extern "C" fn licensing_status_name(status: licensing_status_t) -> *const c_char {
    use licensing_status_t::*;
    let name: &CStr = match status {
        LICENSING_OK => c"LICENSING_OK",
        LICENSING_ERR_INVALID_ARGUMENT => c"LICENSING_ERR_INVALID_ARGUMENT",
        LICENSING_ERR_CONFIG => c"LICENSING_ERR_CONFIG",
        LICENSING_ERR_TRANSPORT => c"LICENSING_ERR_TRANSPORT",
        LICENSING_ERR_UNAVAILABLE => c"LICENSING_ERR_UNAVAILABLE",
        LICENSING_ERR_API => c"LICENSING_ERR_API",
        LICENSING_ERR_UNVERIFIED => c"LICENSING_ERR_UNVERIFIED",
        LICENSING_ERR_FILE => c"LICENSING_ERR_FILE",
        LICENSING_ERR_IO => c"LICENSING_ERR_IO",
        LICENSING_ERR_DECODE => c"LICENSING_ERR_DECODE",
        LICENSING_ERR_NO_OFFLINE_LICENSE => c"LICENSING_ERR_NO_OFFLINE_LICENSE",
        LICENSING_ERR_LICENSE_UNAVAILABLE => c"LICENSING_ERR_LICENSE_UNAVAILABLE",
        LICENSING_ERR_PANIC => c"LICENSING_ERR_PANIC",
    };
    name.as_ptr()
}

// ---- options and client -------------------------------------------------------------------

/// New, empty client options (NULL only if out of memory). Free with `licensing_options_free`.
#[no_mangle]
pub extern "C" fn licensing_options_new() -> *mut licensing_options_t {
    guard_value(ptr::null_mut(), || {
        Box::into_raw(Box::new(licensing_options_t {
            options: Options::default(),
        }))
    })
}

/// Frees options. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn licensing_options_free(options: *mut licensing_options_t) {
    guard_value((), || {
        if !options.is_null() {
            drop(Box::from_raw(options));
        }
    })
}

/// The service's base URL (required): `https://...`, or `http://` to a loopback address for
/// local testing. A path prefix (a stage name) is kept.
#[no_mangle]
pub unsafe extern "C" fn licensing_options_set_base_url(
    options: *mut licensing_options_t,
    base_url: *const c_char,
) -> licensing_status_t {
    set_option(options, |o| {
        o.base_url = Some(text(base_url, "base_url")?.to_owned());
        Ok(())
    })
}

/// The vendor's tenant id (required).
#[no_mangle]
pub unsafe extern "C" fn licensing_options_set_tenant_id(
    options: *mut licensing_options_t,
    tenant_id: *const c_char,
) -> licensing_status_t {
    set_option(options, |o| {
        o.tenant_id = Some(text(tenant_id, "tenant_id")?.to_owned());
        Ok(())
    })
}

/// The end user's license key (required): the client's only credential.
#[no_mangle]
pub unsafe extern "C" fn licensing_options_set_license_key(
    options: *mut licensing_options_t,
    license_key: *const c_char,
) -> licensing_status_t {
    set_option(options, |o| {
        o.license_key = Some(text(license_key, "license_key")?.to_owned());
        Ok(())
    })
}

/// Pins a signing key (at least one is required): its id (`v1`) and the standard base64 of its
/// 32-byte Ed25519 public key, as `GET /v1/public/tenants/{tenant}/signing-keys` lists it, copied
/// into the app at build time. `LICENSING_ERR_CONFIG` if the key cannot be read.
#[no_mangle]
pub unsafe extern "C" fn licensing_options_pin_key(
    options: *mut licensing_options_t,
    kid: *const c_char,
    public_key: *const c_char,
) -> licensing_status_t {
    set_option(options, |o| {
        let (kid, key) = (text(kid, "kid")?, text(public_key, "public_key")?);
        o.keys
            .pin(kid, key)
            .map_err(|e| Failure::new(licensing_status_t::LICENSING_ERR_CONFIG, e.to_string()))
    })
}

/// Where the offline license file is cached (needed by `licensing_ensure_licensed` and
/// `licensing_offline_license`). NULL removes it.
#[no_mangle]
pub unsafe extern "C" fn licensing_options_set_cache_dir(
    options: *mut licensing_options_t,
    cache_dir: *const c_char,
) -> licensing_status_t {
    set_option(options, |o| {
        o.cache_dir = opt_text(cache_dir, "cache_dir")?.map(PathBuf::from);
        Ok(())
    })
}

/// The product code sent with validate (a license of another product answers
/// `PRODUCT_MISMATCH`). NULL removes it.
#[no_mangle]
pub unsafe extern "C" fn licensing_options_set_product(
    options: *mut licensing_options_t,
    product: *const c_char,
) -> licensing_status_t {
    set_option(options, |o| {
        o.product = opt_text(product, "product")?.map(str::to_owned);
        Ok(())
    })
}

/// The timeout of each request, connection included, in milliseconds (0: the default, 30 s).
#[no_mangle]
pub unsafe extern "C" fn licensing_options_set_timeout_ms(
    options: *mut licensing_options_t,
    timeout_ms: u32,
) -> licensing_status_t {
    set_option(options, |o| {
        o.timeout = (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms)));
        Ok(())
    })
}

/// The clock the client judges files, answer dates and the cache's age by (NULL: the system
/// clock). For tests; `user_data` is passed to it.
#[no_mangle]
pub unsafe extern "C" fn licensing_options_set_clock(
    options: *mut licensing_options_t,
    clock: licensing_clock_fn,
    user_data: *mut c_void,
) -> licensing_status_t {
    set_option(options, |o| {
        o.clock = clock.map(|now| Clock::Callback { now, user_data });
        Ok(())
    })
}

/// Builds a client from `options` (which stay the caller's). On success `*out` is the client:
/// free it with `licensing_client_free`.
#[no_mangle]
pub unsafe extern "C" fn licensing_client_new(
    options: *const licensing_options_t,
    out: *mut *mut licensing_client_t,
) -> licensing_status_t {
    clear(out);
    guard(|| {
        let options = &handle(options, "options")?.options;
        if out.is_null() {
            return Err(Failure::arg("out is NULL"));
        }
        let core = Arc::new(Core::new(options)?);
        let session = Mutex::new(None);
        *out = Box::into_raw(Box::new(licensing_client_t { core, session }));
        Ok(())
    })
}

/// Frees a client (stopping the heartbeats `licensing_ensure_licensed` started). Leases checked
/// out with it stay usable until they are freed. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn licensing_client_free(client: *mut licensing_client_t) {
    guard_value((), || {
        if !client.is_null() {
            drop(Box::from_raw(client));
        }
    })
}

/// Runs `body` with the client, and puts its JSON result in `out`.
unsafe fn call(
    client: *const licensing_client_t,
    out: *mut *mut c_char,
    body: impl FnOnce(&Core) -> Result<Value, Failure>,
) -> licensing_status_t {
    clear(out);
    guard(|| {
        let value = body(&handle(client, "client")?.core)?;
        put_json(out, &value);
        Ok(())
    })
}

// ---- operations ---------------------------------------------------------------------------

/// Validates the license, for this machine if `fingerprint` is not NULL (then it must be
/// activated, else the answer's code is `NO_ACTIVATION`). `*out_json`:
/// `{"valid", "code", "detail", "license": {...} | null}`. A refused license is `LICENSING_OK`
/// with `"valid": false` and its code (`SUSPENDED`, `EXPIRED`, ...).
#[no_mangle]
pub unsafe extern "C" fn licensing_validate(
    client: *const licensing_client_t,
    fingerprint: *const c_char,
    out_json: *mut *mut c_char,
) -> licensing_status_t {
    call(client, out_json, |core| {
        let fingerprint = opt_text(fingerprint, "fingerprint")?;
        Ok(json::validation(&core.validate(fingerprint)?))
    })
}

/// Activates this machine (a seat; on a floating policy a lease: prefer
/// `licensing_lease_checkout`). Repeating it answers the existing activation. `name` may be
/// NULL. `*out_json`: the activation `{"id", "license_id", "fingerprint", "status", "name",
/// "hostname", "created_at", "lease_expires_at", "overage"}`.
#[no_mangle]
pub unsafe extern "C" fn licensing_activate(
    client: *const licensing_client_t,
    fingerprint: *const c_char,
    name: *const c_char,
    out_json: *mut *mut c_char,
) -> licensing_status_t {
    call(client, out_json, |core| {
        let fingerprint = text(fingerprint, "fingerprint")?;
        let name = opt_text(name, "name")?;
        Ok(json::activation(&core.activate(fingerprint, name)?))
    })
}

/// Frees this machine's seat (or returns its lease). `*out_json`: the deactivated activation.
#[no_mangle]
pub unsafe extern "C" fn licensing_deactivate(
    client: *const licensing_client_t,
    fingerprint: *const c_char,
    out_json: *mut *mut c_char,
) -> licensing_status_t {
    call(client, out_json, |core| {
        let fingerprint = text(fingerprint, "fingerprint")?;
        Ok(json::activation(&core.deactivate(fingerprint)?))
    })
}

/// One heartbeat for an activation (renews a lease; on a node-locked policy with
/// `heartbeat_seconds`, records that the machine is alive). A lapsed lease is
/// `LICENSING_ERR_API` with code `LEASE_EXPIRED`. `*out_json`: the activation.
#[no_mangle]
pub unsafe extern "C" fn licensing_heartbeat(
    client: *const licensing_client_t,
    activation_id: *const c_char,
    out_json: *mut *mut c_char,
) -> licensing_status_t {
    call(client, out_json, |core| {
        let id = text(activation_id, "activation_id")?;
        Ok(json::activation(&core.heartbeat(id)?))
    })
}

/// Checks out a signed offline license file bound to this machine (`fingerprint` must be
/// activated, else `LICENSING_ERR_API` `NO_ACTIVATION`), valid for `ttl_seconds` (0: the
/// service's default; the policy may cut it: the file's `expires_at` is the real end), verifies
/// it and, with a cache directory, stores it there atomically. `*out_json`: the file
/// `{"format", "tenant_id", "kid", "license", "activation": {"id", "fingerprint"}, "issued_at",
/// "expires_at", "ttl_seconds", "certificate"}`.
#[no_mangle]
pub unsafe extern "C" fn licensing_checkout_file(
    client: *const licensing_client_t,
    fingerprint: *const c_char,
    ttl_seconds: u32,
    out_json: *mut *mut c_char,
) -> licensing_status_t {
    call(client, out_json, |core| {
        let fingerprint = text(fingerprint, "fingerprint")?;
        let ttl = (ttl_seconds > 0).then_some(ttl_seconds);
        Ok(json::file(&core.checkout(fingerprint, ttl)?))
    })
}

/// The cached license file, verified now without the network (signature, tenant, license key,
/// expiry; bound to `fingerprint` unless it is NULL). `LICENSING_ERR_NO_OFFLINE_LICENSE` when
/// nothing is cached. `*out_json`: the file, as `licensing_checkout_file` gives it.
#[no_mangle]
pub unsafe extern "C" fn licensing_offline_license(
    client: *const licensing_client_t,
    fingerprint: *const c_char,
    out_json: *mut *mut c_char,
) -> licensing_status_t {
    call(client, out_json, |core| {
        let fingerprint = opt_text(fingerprint, "fingerprint")?;
        Ok(json::file(&core.offline_license(fingerprint)?))
    })
}

/// Verifies a license file's text with the client's pinned keys, tenant, license key and clock,
/// bound to `fingerprint` unless it is NULL. No network. `*out_json`: the file.
#[no_mangle]
pub unsafe extern "C" fn licensing_verify_file(
    client: *const licensing_client_t,
    certificate: *const c_char,
    fingerprint: *const c_char,
    out_json: *mut *mut c_char,
) -> licensing_status_t {
    call(client, out_json, |core| {
        let certificate = text(certificate, "certificate")?;
        let fingerprint = opt_text(fingerprint, "fingerprint")?;
        Ok(json::file(&core.verify_file(certificate, fingerprint)?))
    })
}

/// Records `quantity` (1 to 1,000,000,000) of the metered entitlement `metric`.
/// `idempotency_key` (may be NULL) makes a retry count once. Over a `deny` limit:
/// `LICENSING_ERR_API` `QUOTA_EXCEEDED`. `*out_json`: `{"metric", "quantity", "period", "used",
/// "limit", "remaining", "overage", ...}` as the service answers it.
#[no_mangle]
pub unsafe extern "C" fn licensing_record_usage(
    client: *const licensing_client_t,
    metric: *const c_char,
    quantity: u64,
    idempotency_key: *const c_char,
    out_json: *mut *mut c_char,
) -> licensing_status_t {
    call(client, out_json, |core| {
        let metric = text(metric, "metric")?;
        let idempotency_key = opt_text(idempotency_key, "idempotency_key")?;
        core.record_usage(metric, quantity, idempotency_key)
    })
}

/// **The recommended use**, once at start-up (and, for a long-running app, again every hour or
/// so): is this machine licensed? Needs a cache directory.
///
/// 1. A cached file that verifies (pinned key, tenant, bound to `fingerprint`, not expired) and
///    was issued less than 24 hours ago: licensed, no request.
/// 2. Otherwise a fresh bound file is checked out (1 request) and cached atomically; with no
///    usable cached file (first run), or when the checkout answers `NO_ACTIVATION` (the seat
///    was released), the machine is activated first (1 more request; `name` may be NULL; and
///    if the checkout still answers `NO_ACTIVATION`, a node-locked seat whose heartbeat lapsed,
///    one heartbeat and a checkout more).
/// 3. If the service cannot be reached (network error, 5xx) and the cached file still verifies:
///    licensed offline.
///
/// So a machine makes one request a day (two on its first day). Files are asked for 14 days
/// (the policy may cap them): the app works offline that long. Node-locked licenses send no
/// heartbeats, unless the file says the policy sets `heartbeat_seconds`: then the client sends
/// one every third of it on a thread of its own until `licensing_client_free`. A floating
/// license is refused here (`LICENSING_ERR_CONFIG`, once the file says it is floating): hold a
/// lease with `licensing_lease_checkout` instead.
/// `*out_json`: `{"licensed": true, "source": "cache" | "checkout" | "offline", "calls": n,
/// "heartbeat_seconds": n | null, "file": {...}, "activation": {...} | null}`; the
/// entitlements are in `file.license`.
/// Not licensed: the failure (`LICENSING_ERR_API` with the service's code, such as
/// `LICENSE_NOT_ACTIVE` or `TOO_MANY_ACTIVATIONS`; `LICENSING_ERR_FILE` when offline with a
/// cached file that no longer verifies; `LICENSING_ERR_TRANSPORT` offline with none).
#[no_mangle]
pub unsafe extern "C" fn licensing_ensure_licensed(
    client: *const licensing_client_t,
    fingerprint: *const c_char,
    name: *const c_char,
    out_json: *mut *mut c_char,
) -> licensing_status_t {
    clear(out_json);
    guard(|| {
        let client = handle(client, "client")?;
        let fingerprint = text(fingerprint, "fingerprint")?;
        let name = opt_text(name, "name")?;
        let ensured = client.core.ensure_licensed(fingerprint, name)?;
        let mut session = client
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match ensured.heartbeat {
            Some((id, _)) if session.as_ref().is_some_and(|h| h.target == id) => {}
            Some((id, seconds)) => {
                let core = client.core.clone();
                let beat_id = id.clone();
                let beat = move || {
                    // A failure shows at the next licensing_ensure_licensed (whose checkout
                    // then revives the seat).
                    let _ = catch_unwind(AssertUnwindSafe(|| core.heartbeat(&beat_id)));
                };
                let every = Duration::from_secs(seconds) / 3;
                *session = None;
                *session = Some(Heartbeat::start(id, every, beat)?);
            }
            None => *session = None,
        }
        put_json(out_json, &ensured.json);
        Ok(())
    })
}

/// The path of the cached license file (NULL in `*out` without a cache directory). Free it with
/// `licensing_string_free`.
#[no_mangle]
pub unsafe extern "C" fn licensing_cache_path(
    client: *const licensing_client_t,
    out: *mut *mut c_char,
) -> licensing_status_t {
    clear(out);
    guard(|| {
        let path = handle(client, "client")?.core.cache_path();
        if let (Some(out), Some(path)) = (out.as_mut(), path) {
            *out = into_c(path.to_string_lossy().into_owned());
        }
        Ok(())
    })
}

// ---- floating leases ----------------------------------------------------------------------

/// Checks out a floating lease for this machine (an activation on a floating policy; the same
/// fingerprint again renews it). No seat free (overage seats included):
/// `LICENSING_ERR_LICENSE_UNAVAILABLE`. The lease keeps the client alive. Heartbeats are not
/// started: call `licensing_lease_start_heartbeat` (background) or `licensing_lease_heartbeat`
/// (yourself, well inside the lease). Free with `licensing_lease_free`.
#[no_mangle]
pub unsafe extern "C" fn licensing_lease_checkout(
    client: *const licensing_client_t,
    fingerprint: *const c_char,
    name: *const c_char,
    out: *mut *mut licensing_lease_t,
) -> licensing_status_t {
    clear(out);
    guard(|| {
        let core = handle(client, "client")?.core.clone();
        let fingerprint = text(fingerprint, "fingerprint")?;
        let name = opt_text(name, "name")?;
        if out.is_null() {
            return Err(Failure::arg("out is NULL"));
        }
        let lease = Lease::checkout(core, fingerprint, name)?;
        *out = Box::into_raw(Box::new(licensing_lease_t { lease }));
        Ok(())
    })
}

/// The lease's activation id (owned by the lease: valid until `licensing_lease_free`), or NULL
/// for a NULL lease.
#[no_mangle]
pub unsafe extern "C" fn licensing_lease_id(lease: *const licensing_lease_t) -> *const c_char {
    guard_value(ptr::null(), || {
        lease
            .as_ref()
            .map_or(ptr::null(), |l| l.lease.shared.id.as_ptr())
    })
}

/// The lease's activation as last seen (checkout or latest heartbeat), as JSON, with
/// `lease_expires_at`.
#[no_mangle]
pub unsafe extern "C" fn licensing_lease_json(
    lease: *const licensing_lease_t,
    out_json: *mut *mut c_char,
) -> licensing_status_t {
    clear(out_json);
    guard(|| {
        let lease = &handle(lease, "lease")?.lease;
        put_json(out_json, &json::activation(&lease.shared.last()));
        Ok(())
    })
}

/// One heartbeat now, on the calling thread: renews the lease. A lapsed lease is
/// `LICENSING_ERR_API` `LEASE_EXPIRED` (check out a new one). `*out_json`: the activation.
#[no_mangle]
pub unsafe extern "C" fn licensing_lease_heartbeat(
    lease: *const licensing_lease_t,
    out_json: *mut *mut c_char,
) -> licensing_status_t {
    clear(out_json);
    guard(|| {
        let lease = &handle(lease, "lease")?.lease;
        put_json(out_json, &json::activation(&lease.shared.heartbeat()?));
        Ok(())
    })
}

/// Starts heartbeats on a background thread of the lease, every `interval_seconds` (0: a third
/// of the lease's remaining time, as the lease stood at checkout or its last heartbeat, at
/// least 1 s), until `licensing_lease_stop_heartbeat`, `licensing_lease_return` or
/// `licensing_lease_free`. `callback` (may be NULL) is called on that thread after each
/// heartbeat, with `user_data`. Starting again replaces the running thread.
/// `LICENSING_ERR_INVALID_ARGUMENT` for 0 on an activation without a lease (node-locked).
#[no_mangle]
pub unsafe extern "C" fn licensing_lease_start_heartbeat(
    lease: *const licensing_lease_t,
    interval_seconds: u32,
    callback: licensing_heartbeat_fn,
    user_data: *mut c_void,
) -> licensing_status_t {
    guard(|| {
        let lease = &handle(lease, "lease")?.lease;
        let every = match interval_seconds {
            0 => lease.auto_interval().ok_or_else(|| {
                Failure::arg("the activation has no lease: give an interval in seconds")
            })?,
            n => Duration::from_secs(u64::from(n)),
        };
        lease.start(every, callback, user_data)
    })
}

/// Stops the background heartbeats (waiting for one in flight). The lease is kept until it
/// lapses.
#[no_mangle]
pub unsafe extern "C" fn licensing_lease_stop_heartbeat(lease: *const licensing_lease_t) {
    guard_value((), || {
        if let Some(lease) = lease.as_ref() {
            lease.lease.stop();
        }
    })
}

/// Stops the heartbeats and returns the lease (its seat is free at once). `*out_json`: the
/// deactivated activation. The handle must still be freed with `licensing_lease_free`.
#[no_mangle]
pub unsafe extern "C" fn licensing_lease_return(
    lease: *const licensing_lease_t,
    out_json: *mut *mut c_char,
) -> licensing_status_t {
    clear(out_json);
    guard(|| {
        let lease = &handle(lease, "lease")?.lease;
        put_json(out_json, &json::activation(&lease.give_back()?));
        Ok(())
    })
}

/// Stops the heartbeats and frees the handle. It does not return the lease (which lapses at its
/// `lease_expires_at`): call `licensing_lease_return` first for that. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn licensing_lease_free(lease: *mut licensing_lease_t) {
    guard_value((), || {
        if !lease.is_null() {
            drop(Box::from_raw(lease));
        }
    })
}

// ---- verification without a client ----------------------------------------------------------

/// A new, empty set of pinned keys. Free with `licensing_keys_free`.
#[no_mangle]
pub extern "C" fn licensing_keys_new() -> *mut licensing_keys_t {
    guard_value(ptr::null_mut(), || {
        Box::into_raw(Box::new(licensing_keys_t {
            keys: PinnedKeys::new(),
        }))
    })
}

/// Pins `public_key` (standard base64 of 32 bytes) under `kid`. `LICENSING_ERR_CONFIG` if it
/// cannot be read.
#[no_mangle]
pub unsafe extern "C" fn licensing_keys_pin(
    keys: *mut licensing_keys_t,
    kid: *const c_char,
    public_key: *const c_char,
) -> licensing_status_t {
    guard(|| {
        let keys = &mut handle_mut(keys, "keys")?.keys;
        let (kid, key) = (text(kid, "kid")?, text(public_key, "public_key")?);
        keys.pin(kid, key)
            .map_err(|e| Failure::new(licensing_status_t::LICENSING_ERR_CONFIG, e.to_string()))
    })
}

/// Frees a key set. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn licensing_keys_free(keys: *mut licensing_keys_t) {
    guard_value((), || {
        if !keys.is_null() {
            drop(Box::from_raw(keys));
        }
    })
}

/// Verifies a license file offline: signature by a pinned key, format, `tenant`, expiry at
/// `now` (RFC 3339; NULL: the system clock), `issued_at` at most 5 minutes ahead, and, unless
/// `fingerprint` is NULL, bound to it. `LICENSING_ERR_FILE` with a reason code otherwise.
/// `*out_json`: the file.
#[no_mangle]
pub unsafe extern "C" fn licensing_verify_license_file(
    keys: *const licensing_keys_t,
    certificate: *const c_char,
    tenant: *const c_char,
    fingerprint: *const c_char,
    now: *const c_char,
    out_json: *mut *mut c_char,
) -> licensing_status_t {
    clear(out_json);
    guard(|| {
        let keys = &handle(keys, "keys")?.keys;
        let certificate = text(certificate, "certificate")?;
        let tenant = text(tenant, "tenant")?;
        let fingerprint = opt_text(fingerprint, "fingerprint")?;
        let file = verify_license_file(certificate, keys, tenant, fingerprint, now_arg(now)?)?;
        put_json(out_json, &json::file(&file));
        Ok(())
    })
}

/// Verifies a signed answer (signature version 2) for the request that was sent: `method`,
/// `path_and_query`, `tenant`, `nonce` (NULL: none) and the exact request body; the answer's
/// `X-Signature` and `X-Signature-Date` (NULL: absent) and exact body; and the date within 5
/// minutes of `now` (RFC 3339; NULL: the system clock). `LICENSING_OK` when it verifies, else
/// `LICENSING_ERR_UNVERIFIED` with a reason code. The client does this for every answer; this
/// function is for tests and tools.
#[no_mangle]
pub unsafe extern "C" fn licensing_verify_answer(
    keys: *const licensing_keys_t,
    method: *const c_char,
    path_and_query: *const c_char,
    tenant: *const c_char,
    nonce: *const c_char,
    request_body: *const u8,
    request_body_len: usize,
    signature: *const c_char,
    date: *const c_char,
    response_body: *const u8,
    response_body_len: usize,
    now: *const c_char,
) -> licensing_status_t {
    guard(|| {
        let keys = &handle(keys, "keys")?.keys;
        let sent = SentRequest {
            method: text(method, "method")?,
            path_and_query: text(path_and_query, "path_and_query")?,
            tenant: text(tenant, "tenant")?,
            nonce: opt_text(nonce, "nonce")?,
            body: bytes(request_body, request_body_len, "request_body")?,
        };
        let signature = opt_text(signature, "signature")?;
        let date = opt_text(date, "date")?;
        let body = bytes(response_body, response_body_len, "response_body")?;
        client::verify_signed_answer(keys, sent, signature, date, body, now_arg(now)?)
    })
}
