//! The C ABI, called as C would call it, against the in-process mock service (tests/common).

mod common;

use std::ffi::{c_char, c_void, CStr};
use std::ptr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use licensing::licensing_status_t::*;
use licensing::*;
use serde_json::Value;

fn clock() -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(START_MS))
}

/// `licensing_ensure_licensed` through the C ABI.
fn ensure(
    client: *mut licensing_client_t,
    fp: &str,
) -> Result<Value, (licensing_status_t, Option<String>, String)> {
    let fp = c(fp);
    out_json(|out| unsafe { licensing_ensure_licensed(client, fp.as_ptr(), ptr::null(), out) })
}

#[test]
fn recommended_use_makes_at_most_two_calls_a_day_for_30_days() {
    let now = clock();
    let served = serve(now.clone(), None, 3);
    let cache = TempDir::new();
    let mut per_day = Vec::new();
    for day in 0..30 {
        // The app starts at 09:00 and checks every hour until 17:00: 8 hours, 9 checks.
        let before = served.mock.calls();
        let client = ClientSpec {
            cache_dir: Some(&cache.0),
            clock: Some(&now),
            ..ClientSpec::new(&served.base)
        }
        .build();
        for hour in 0..=8 {
            now.store(START_MS + day * DAY_MS + hour * HOUR_MS, Ordering::SeqCst);
            let result = ensure(client, "fp-1").unwrap();
            assert_eq!(result["licensed"], true);
            let expected = match (day, hour) {
                (_, 0) => "checkout",
                _ => "cache",
            };
            assert_eq!(result["source"], expected, "day {day} hour {hour}");
            assert_eq!(result["file"]["activation"]["fingerprint"], "fp-1");
            assert_eq!(result["heartbeat_seconds"], Value::Null);
            assert_eq!(
                result["file"]["license"]["entitlements"]["export-4k"]["type"],
                "boolean"
            );
        }
        unsafe { licensing_client_free(client) };
        per_day.push(served.mock.calls() - before);
    }
    // Day one: activate + checkout; every other day one checkout.
    assert_eq!(per_day[0], 2, "{per_day:?}");
    assert!(per_day[1..].iter().all(|&n| n == 1), "{per_day:?}");
    assert!(per_day.iter().all(|&n| n <= 2));
    let paths = served.mock.paths();
    assert_eq!(paths[0], "/v1/integration/activations");
    assert_eq!(paths[1], format!("/v1/integration/licenses/{KEY}/checkout"));
    assert_eq!(paths.len(), 31);
    // Files are asked for 14 days.
    let seen = served.mock.seen.lock().unwrap();
    assert_eq!(seen[1].3["ttl_seconds"], 14 * 86_400);
}

#[test]
fn recommended_use_revives_what_lapsed() {
    let now = clock();
    let served = serve(now.clone(), None, 3);
    let cache = TempDir::new();
    let client = ClientSpec {
        cache_dir: Some(&cache.0),
        clock: Some(&now),
        ..ClientSpec::new(&served.base)
    }
    .build();
    ensure(client, "fp-1").unwrap();

    // A file that merely expired (15 days away): the machine held a seat, so the checkout
    // comes first and is enough.
    now.fetch_add(15 * DAY_MS, Ordering::SeqCst);
    let result = ensure(client, "fp-1").unwrap();
    assert_eq!(
        (result["source"].clone(), result["calls"].clone()),
        ("checkout".into(), 1.into())
    );

    // A node-locked seat whose heartbeat lapsed: checkout answers NO_ACTIVATION, activating
    // does not revive it, one heartbeat does.
    served.mock.dead.lock().unwrap().insert("fp-1".into());
    now.fetch_add(25 * HOUR_MS, Ordering::SeqCst);
    let before = served.mock.paths().len();
    let result = ensure(client, "fp-1").unwrap();
    assert_eq!(
        (result["source"].clone(), result["calls"].clone()),
        ("checkout".into(), 5.into())
    );
    let paths = served.mock.paths()[before..].to_vec();
    let ends: Vec<&str> = paths
        .iter()
        .map(|p| p.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        ends,
        [
            "checkout",
            "activations",
            "checkout",
            "heartbeat",
            "checkout"
        ]
    );
    unsafe { licensing_client_free(client) };
}

#[test]
fn recommended_use_heartbeats_only_when_the_policy_says_so_and_refuses_floating() {
    let now = clock();
    // heartbeat_seconds 3: a heartbeat every second in the background.
    let served = serve_with(now.clone(), None, 3, Some(3));
    let cache = TempDir::new();
    let client = ClientSpec {
        cache_dir: Some(&cache.0),
        clock: Some(&now),
        ..ClientSpec::new(&served.base)
    }
    .build();
    let result = ensure(client, "fp-1").unwrap();
    assert_eq!(result["heartbeat_seconds"], 3);
    let heartbeats = || {
        let paths = served.mock.paths();
        paths
            .iter()
            .filter(|p| p.ends_with("/act_fp-1/heartbeat"))
            .count()
    };
    let start = Instant::now();
    while heartbeats() < 2 {
        assert!(start.elapsed() < Duration::from_secs(20), "no heartbeats");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Again from the cache: the same heartbeat thread, not a second one.
    assert_eq!(ensure(client, "fp-1").unwrap()["source"], "cache");
    unsafe { licensing_client_free(client) };
    let stopped = heartbeats();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        heartbeats(),
        stopped,
        "heartbeats after licensing_client_free"
    );

    // A floating license: hold a lease instead.
    let pool = serve(now.clone(), Some(900), 3);
    let other = TempDir::new();
    let client = ClientSpec {
        cache_dir: Some(&other.0),
        clock: Some(&now),
        ..ClientSpec::new(&pool.base)
    }
    .build();
    let (status, _, message) = ensure(client, "fp-1").unwrap_err();
    assert_eq!(status, LICENSING_ERR_CONFIG);
    assert!(message.contains("licensing_lease_checkout"), "{message}");
    unsafe { licensing_client_free(client) };
}

#[test]
fn recommended_use_works_offline_while_the_cached_file_verifies() {
    let now = clock();
    let served = serve(now.clone(), None, 3);
    let cache = TempDir::new();
    let spec = ClientSpec {
        cache_dir: Some(&cache.0),
        clock: Some(&now),
        ..ClientSpec::new(&served.base)
    };
    let client = spec.build();
    assert_eq!(ensure(client, "fp-1").unwrap()["calls"], 2);

    // Two days later the service is behind a failing gateway (unsigned 503): offline.
    *served.mock.down.lock().unwrap() = true;
    now.fetch_add(2 * DAY_MS, Ordering::SeqCst);
    let result = ensure(client, "fp-1").unwrap();
    assert_eq!(result["source"], "offline");
    assert_eq!(result["calls"], 1);

    // No server at all: the same from the cache (another client, the same directory).
    let closed = closed_port();
    let offline = ClientSpec {
        cache_dir: Some(&cache.0),
        clock: Some(&now),
        ..ClientSpec::new(&closed)
    }
    .build();
    assert_eq!(ensure(offline, "fp-1").unwrap()["source"], "offline");
    // ... but not for another machine.
    let (status, code, _) = ensure(offline, "fp-2").unwrap_err();
    assert_eq!(
        (status, code.as_deref()),
        (LICENSING_ERR_FILE, Some("wrong_fingerprint"))
    );

    // Once the file has expired (14 days), offline is over.
    now.fetch_add(13 * DAY_MS, Ordering::SeqCst);
    let (status, code, message) = ensure(offline, "fp-1").unwrap_err();
    assert_eq!(
        (status, code.as_deref()),
        (LICENSING_ERR_FILE, Some("expired")),
        "{message}"
    );

    // With no cached file, the transport error.
    let empty = TempDir::new();
    let fresh = ClientSpec {
        cache_dir: Some(&empty.0),
        clock: Some(&now),
        ..ClientSpec::new(&closed)
    }
    .build();
    assert_eq!(
        ensure(fresh, "fp-1").unwrap_err().0,
        LICENSING_ERR_TRANSPORT
    );
    unsafe {
        licensing_client_free(client);
        licensing_client_free(offline);
        licensing_client_free(fresh);
    }
}

#[test]
fn recommended_use_activates_again_when_the_seat_was_released() {
    let now = clock();
    let served = serve(now.clone(), None, 3);
    let cache = TempDir::new();
    let client = ClientSpec {
        cache_dir: Some(&cache.0),
        clock: Some(&now),
        ..ClientSpec::new(&served.base)
    }
    .build();
    ensure(client, "fp-1").unwrap();
    let fp = c("fp-1");
    out_json(|out| unsafe { licensing_deactivate(client, fp.as_ptr(), out) }).unwrap();

    now.fetch_add(25 * HOUR_MS, Ordering::SeqCst);
    let before = served.mock.calls();
    let result = ensure(client, "fp-1").unwrap();
    assert_eq!(result["source"], "checkout");
    assert_eq!(result["calls"], 3);
    assert_eq!(result["activation"]["fingerprint"], "fp-1");
    assert_eq!(served.mock.calls() - before, 3);

    // A refusal is not papered over with the cached file.
    served.mock.seats.lock().unwrap().clear();
    *served.mock.seats.lock().unwrap() = (0..3).map(|i| (format!("other-{i}"), None)).collect();
    now.fetch_add(25 * HOUR_MS, Ordering::SeqCst);
    let (status, code, _) = ensure(client, "fp-1").unwrap_err();
    assert_eq!(
        (status, code.as_deref()),
        (LICENSING_ERR_API, Some("TOO_MANY_ACTIVATIONS"))
    );
    unsafe { licensing_client_free(client) };
}

#[test]
fn operations_send_the_license_key_a_fresh_nonce_and_read_verified_answers() {
    let now = clock();
    let served = serve(now.clone(), None, 3);
    let cache = TempDir::new();
    let client = ClientSpec {
        cache_dir: Some(&cache.0),
        clock: Some(&now),
        ..ClientSpec::new(&served.base)
    }
    .build();
    let fp = c("fp-1");
    let v = out_json(|out| unsafe { licensing_validate(client, fp.as_ptr(), out) }).unwrap();
    assert_eq!(
        (v["valid"].clone(), v["code"].clone()),
        (false.into(), "NO_ACTIVATION".into())
    );
    let name = c("Workstation");
    let a = out_json(|out| unsafe { licensing_activate(client, fp.as_ptr(), name.as_ptr(), out) })
        .unwrap();
    assert_eq!(a["id"], "act_fp-1");
    assert_eq!(a["lease_expires_at"], Value::Null);
    let v = out_json(|out| unsafe { licensing_validate(client, ptr::null(), out) }).unwrap();
    assert_eq!(v["code"], "VALID");
    assert_eq!(v["license"]["key"], KEY);

    let file = out_json(|out| unsafe { licensing_checkout_file(client, fp.as_ptr(), 86_400, out) })
        .unwrap();
    assert_eq!(file["ttl_seconds"], 86_400);
    assert_eq!(file["activation"]["id"], "act_fp-1");
    let offline =
        out_json(|out| unsafe { licensing_offline_license(client, fp.as_ptr(), out) }).unwrap();
    assert_eq!(offline["certificate"], file["certificate"]);
    let cert = c(file["certificate"].as_str().unwrap());
    let other = c("fp-2");
    let err = out_json(|out| unsafe {
        licensing_verify_file(client, cert.as_ptr(), other.as_ptr(), out)
    })
    .unwrap_err();
    assert_eq!(
        (err.0, err.1.as_deref()),
        (LICENSING_ERR_FILE, Some("wrong_fingerprint"))
    );

    let id = c("act_fp-1");
    let hb = out_json(|out| unsafe { licensing_heartbeat(client, id.as_ptr(), out) }).unwrap();
    assert_eq!(hb["status"], "active");

    let metric = c("api-calls");
    let idem = c("job-1");
    let usage = out_json(|out| unsafe {
        licensing_record_usage(client, metric.as_ptr(), 60, idem.as_ptr(), out)
    })
    .unwrap();
    assert_eq!(
        (usage["used"].clone(), usage["remaining"].clone()),
        (60.into(), 40.into())
    );
    let err = out_json(|out| unsafe {
        licensing_record_usage(client, metric.as_ptr(), 60, ptr::null(), out)
    })
    .unwrap_err();
    assert_eq!(
        (err.0, err.1.as_deref()),
        (LICENSING_ERR_API, Some("QUOTA_EXCEEDED"))
    );
    assert_eq!(licensing_last_error_http_status(), 403);

    let seen = served.mock.seen.lock().unwrap().clone();
    let mut nonces = Vec::new();
    for (method, _, headers, _) in &seen {
        assert_eq!(method, "POST");
        assert_eq!(headers["authorization"], format!("License {KEY}").as_str());
        assert_eq!(headers["x-tenant-id"], TENANT);
        let nonce = headers["x-nonce"].to_str().unwrap().to_owned();
        assert!(nonce.len() == 64 && nonce.bytes().all(|b| b.is_ascii_hexdigit()));
        nonces.push(nonce);
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), seen.len(), "a nonce was sent twice");
    let (_, path, headers, body) = &seen[seen.len() - 2];
    assert_eq!(path, "/v1/integration/usage/record");
    assert_eq!(headers["x-idempotency-key"], "job-1");
    assert_eq!(body["license_key"], KEY);
    assert_eq!(body["quantity"], 60);
    assert!(!seen.last().unwrap().2.contains_key("x-idempotency-key"));
    unsafe { licensing_client_free(client) };
}

#[test]
fn answers_that_do_not_verify_are_refused() {
    let now = clock();
    let served = serve(now.clone(), None, 3);
    let client = ClientSpec {
        clock: Some(&now),
        ..ClientSpec::new(&served.base)
    }
    .build();
    let fp = c("fp-1");
    let validate = || out_json(|out| unsafe { licensing_validate(client, fp.as_ptr(), out) });
    assert!(validate().is_ok());
    for (signing, code) in [
        // A proxy rewrote the request (dropped the fingerprint) and forwarded the genuine answer.
        (Signing::OtherRequestBody, "bad_signature"),
        (Signing::StaleDate, "expired"),
        (Signing::Unsigned, "unsigned"),
    ] {
        *served.mock.signing.lock().unwrap() = signing;
        let (status, got, message) = validate().unwrap_err();
        assert_eq!(
            (status, got.as_deref()),
            (LICENSING_ERR_UNVERIFIED, Some(code)),
            "{message}"
        );
    }
    // A key that is not the tenant's.
    *served.mock.signing.lock().unwrap() = Signing::Good;
    let other = ClientSpec {
        clock: Some(&now),
        public_key: base64_of([9; 32]),
        ..ClientSpec::new(&served.base)
    }
    .build();
    let err = out_json(|out| unsafe { licensing_validate(other, fp.as_ptr(), out) }).unwrap_err();
    assert_eq!(
        (err.0, err.1.as_deref()),
        (LICENSING_ERR_UNVERIFIED, Some("bad_signature"))
    );
    // A gateway's unsigned 503 is "unavailable", not a verdict.
    *served.mock.down.lock().unwrap() = true;
    let (status, _, _) = validate().unwrap_err();
    assert_eq!(status, LICENSING_ERR_UNAVAILABLE);
    assert_eq!(licensing_last_error_http_status(), 503);
    unsafe {
        licensing_client_free(client);
        licensing_client_free(other);
    }
}

fn base64_of(seed: [u8; 32]) -> String {
    use base64::Engine as _;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
}

/// What the heartbeat callback saw: (status, text, last error code read inside the callback).
type Beats = Mutex<Vec<(licensing_status_t, String, Option<String>)>>;

unsafe extern "C" fn on_beat(status: licensing_status_t, text: *const c_char, data: *mut c_void) {
    let beats = &*data.cast::<Beats>();
    let text = CStr::from_ptr(text).to_str().unwrap().to_owned();
    beats.lock().unwrap().push((status, text, last_code()));
}

fn wait_for(beats: &Beats, n: usize) {
    let start = Instant::now();
    while beats.lock().unwrap().len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "only {:?}",
            beats.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn floating_leases_heartbeat_in_the_background_and_return() {
    let now = clock();
    // Leases of 3 s: the automatic interval is a third, 1 s.
    let served = serve(now.clone(), Some(3), 1);
    let client = ClientSpec {
        clock: Some(&now),
        ..ClientSpec::new(&served.base)
    }
    .build();
    let (fp, fp2) = (c("render-1"), c("render-2"));
    let mut lease = ptr::null_mut();
    let status = unsafe { licensing_lease_checkout(client, fp.as_ptr(), ptr::null(), &mut lease) };
    assert_eq!(status, LICENSING_OK, "{}", last_message());
    let id = unsafe { CStr::from_ptr(licensing_lease_id(lease)) }
        .to_str()
        .unwrap();
    assert_eq!(id, "act_render-1");
    let json = out_json(|out| unsafe { licensing_lease_json(lease, out) }).unwrap();
    assert_eq!(json["lease_expires_at"], rfc3339(START_MS + 3000));

    // The pool (1 seat) is full.
    let mut second = ptr::null_mut();
    let status =
        unsafe { licensing_lease_checkout(client, fp2.as_ptr(), ptr::null(), &mut second) };
    assert_eq!(status, LICENSING_ERR_LICENSE_UNAVAILABLE);
    assert!(second.is_null());
    assert_eq!(last_code().as_deref(), Some("TOO_MANY_ACTIVATIONS"));

    let beats: Beats = Mutex::default();
    let data = ptr::from_ref(&beats).cast_mut().cast::<c_void>();
    let status = unsafe { licensing_lease_start_heartbeat(lease, 0, Some(on_beat), data) };
    assert_eq!(status, LICENSING_OK);
    wait_for(&beats, 2);
    for (status, text, _) in beats.lock().unwrap().iter() {
        assert_eq!(*status, LICENSING_OK, "{text}");
        let activation: Value = serde_json::from_str(text).unwrap();
        assert_eq!(activation["id"], "act_render-1");
    }
    let heartbeat = format!("/v1/integration/activations/{id}/heartbeat");
    assert!(
        served
            .mock
            .paths()
            .iter()
            .filter(|p| **p == heartbeat)
            .count()
            >= 2
    );

    // The lease lapses on the service's side: the callback sees LEASE_EXPIRED.
    now.fetch_add(60_000, Ordering::SeqCst);
    let seen = beats.lock().unwrap().len();
    wait_for(&beats, seen + 1);
    let last = beats.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (last.0, last.2.as_deref()),
        (LICENSING_ERR_API, Some("LEASE_EXPIRED"))
    );
    unsafe { licensing_lease_stop_heartbeat(lease) };
    let stopped = beats.lock().unwrap().len();

    // Renew by an explicit heartbeat after checking out again, then return it.
    unsafe { licensing_lease_free(lease) };
    let status = unsafe { licensing_lease_checkout(client, fp.as_ptr(), ptr::null(), &mut lease) };
    assert_eq!(status, LICENSING_OK);
    let hb = out_json(|out| unsafe { licensing_lease_heartbeat(lease, out) }).unwrap();
    assert_eq!(hb["status"], "active");
    let back = out_json(|out| unsafe { licensing_lease_return(lease, out) }).unwrap();
    assert_eq!(back["status"], "deactivated");
    let err = out_json(|out| unsafe { licensing_lease_heartbeat(lease, out) }).unwrap_err();
    assert_eq!(
        (err.0, err.1.as_deref()),
        (LICENSING_ERR_API, Some("LEASE_EXPIRED"))
    );
    // The seat is free for another machine.
    let status =
        unsafe { licensing_lease_checkout(client, fp2.as_ptr(), ptr::null(), &mut second) };
    assert_eq!(status, LICENSING_OK);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        beats.lock().unwrap().len(),
        stopped,
        "heartbeats after stop"
    );
    unsafe {
        licensing_lease_free(lease);
        licensing_lease_free(second);
        licensing_client_free(client);
    }
}

#[test]
fn bad_arguments_and_settings_are_errors_not_crashes() {
    unsafe {
        let fp = c("fp");
        let err = out_json(|out| licensing_validate(ptr::null(), fp.as_ptr(), out)).unwrap_err();
        assert_eq!(err.0, LICENSING_ERR_INVALID_ARGUMENT);
        assert!(err.2.contains("client is NULL"), "{}", err.2);

        let now = clock();
        let served = serve(now.clone(), None, 1);
        let client = ClientSpec {
            clock: Some(&now),
            ..ClientSpec::new(&served.base)
        }
        .build();
        let err =
            out_json(|out| licensing_activate(client, ptr::null(), ptr::null(), out)).unwrap_err();
        assert_eq!(err.0, LICENSING_ERR_INVALID_ARGUMENT);
        let not_utf8 = [0xff_u8, 0xfe, 0];
        let err =
            out_json(|out| licensing_validate(client, not_utf8.as_ptr().cast(), out)).unwrap_err();
        assert!(err.2.contains("not UTF-8"));
        // A success clears the last error; a NULL out pointer is allowed.
        assert_eq!(
            licensing_validate(client, ptr::null(), ptr::null_mut()),
            LICENSING_OK
        );
        assert_eq!(
            CStr::from_ptr(licensing_last_error_message()).to_bytes(),
            b""
        );
        assert!(licensing_last_error_code().is_null());
        licensing_client_free(client);

        let options = licensing_options_new();
        let mut client = ptr::null_mut();
        assert_eq!(
            licensing_client_new(options, &mut client),
            LICENSING_ERR_CONFIG
        );
        assert!(last_message().contains("no base URL"));
        let remote = c("http://licensing.example.com");
        licensing_options_set_base_url(options, remote.as_ptr());
        licensing_options_set_tenant_id(options, c(TENANT).as_ptr());
        licensing_options_set_license_key(options, c(KEY).as_ptr());
        let (kid, bad) = (c("v1"), c("not base64!"));
        assert_eq!(
            licensing_options_pin_key(options, kid.as_ptr(), bad.as_ptr()),
            LICENSING_ERR_CONFIG
        );
        let good = c(&public_key());
        assert_eq!(
            licensing_options_pin_key(options, kid.as_ptr(), good.as_ptr()),
            LICENSING_OK
        );
        assert_eq!(
            licensing_client_new(options, &mut client),
            LICENSING_ERR_CONFIG
        );
        assert!(last_message().contains("https://"), "{}", last_message());
        assert!(client.is_null());
        licensing_options_free(options);

        // Freeing NULL is a no-op; names are static.
        licensing_client_free(ptr::null_mut());
        licensing_lease_free(ptr::null_mut());
        licensing_string_free(ptr::null_mut());
        let name = CStr::from_ptr(licensing_status_name(LICENSING_ERR_UNVERIFIED));
        assert_eq!(name.to_str().unwrap(), "LICENSING_ERR_UNVERIFIED");
        assert_eq!(
            CStr::from_ptr(licensing_version()).to_str().unwrap(),
            env!("CARGO_PKG_VERSION")
        );
    }
}
