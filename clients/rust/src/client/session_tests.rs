//! The recommended use ([`Client::ensure_licensed`], [`Client::lease`]) against a stateful mock
//! of the service, on a fake clock shared by the client and the mock.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use time::macros::datetime;

use super::*;
use crate::session::{Source, REFRESH_AFTER};

/// A fake clock: the client checks answer dates and files against it, the mock dates its
/// answers and files with it.
#[derive(Clone)]
struct FakeClock(Arc<Mutex<OffsetDateTime>>);

impl FakeClock {
    fn at(t: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(t)))
    }
    fn set(&self, t: OffsetDateTime) {
        *self.0.lock().unwrap() = t;
    }
    fn clock(&self) -> Clock {
        let t = self.0.clone();
        Arc::new(move || *t.lock().unwrap())
    }
}

/// What the mock service knows.
#[derive(Default)]
struct Service {
    /// Fingerprints holding a seat.
    seats: Mutex<HashSet<String>>,
    /// Node-locked seats whose heartbeat has lapsed (HEARTBEAT_DEAD until a heartbeat).
    dead: Mutex<HashSet<String>>,
    /// Answer like a gateway whose backend is down (unsigned 503).
    down: AtomicBool,
    /// Answer every checkout 403 LICENSE_NOT_ACTIVE (a suspended license).
    suspended: AtomicBool,
    /// Written into files: the policy's seat terms.
    terms: Mutex<Value>,
}

/// A mock of validate's checkout, activation and heartbeat, issuing files signed by `key(1)`
/// with the fake clock, bound to the fingerprint asked, for the requested ttl (at most 14 days).
async fn service(clock: &FakeClock) -> (String, Arc<Mock>, Arc<Service>) {
    let state = Arc::new(Service::default());
    *state.terms.lock().unwrap() = json!({ "activation_mode": "node_locked" });
    let now = clock.clock();
    let s = state.clone();
    let (base, mock) = serve_at(clock.clock(), move |seen| {
        if s.down.load(Ordering::SeqCst) {
            return signed(fail(503, "X"), Sign::Unsigned);
        }
        let fingerprint = seen.body["fingerprint"].as_str().unwrap_or("").to_owned();
        if seen.path.ends_with("/checkout") {
            if s.suspended.load(Ordering::SeqCst) {
                return fail(403, "LICENSE_NOT_ACTIVE");
            }
            let alive = s.seats.lock().unwrap().contains(&fingerprint)
                && !s.dead.lock().unwrap().contains(&fingerprint);
            if !alive {
                return fail(409, "NO_ACTIVATION");
            }
            let issued = now();
            let ttl = seen.body["ttl_seconds"]
                .as_i64()
                .unwrap_or(86_400)
                .min(14 * 86_400);
            let mut p = payload();
            p["issued_at"] = json!(issued.format(&Rfc3339).unwrap());
            let expires = issued + time::Duration::seconds(ttl);
            p["expires_at"] = json!(expires.format(&Rfc3339).unwrap());
            p["ttl_seconds"] = json!(ttl);
            p["activation"] =
                json!({ "id": format!("act_{fingerprint}"), "fingerprint": fingerprint });
            for (k, v) in s.terms.lock().unwrap().as_object().unwrap() {
                p["license"][k] = v.clone();
            }
            let file = license_file(&p, &key(1));
            return ok(json!({ "certificate": file, "kid": "v1" }));
        }
        if seen.path == "/v1/integration/activations" {
            s.seats.lock().unwrap().insert(fingerprint.clone());
            let at = now().format(&Rfc3339).unwrap();
            return ok(
                json!({ "id": format!("act_{fingerprint}"), "license_id": "lic_1",
                              "fingerprint": fingerprint, "status": "active",
                              "last_activated_at": at }),
            );
        }
        if let Some(id) = seen.path.strip_suffix("/heartbeat") {
            let fingerprint = id.rsplit("act_").next().unwrap().to_owned();
            s.dead.lock().unwrap().remove(&fingerprint);
            return ok(
                json!({ "id": format!("act_{fingerprint}"), "license_id": "lic_1",
                              "fingerprint": fingerprint }),
            );
        }
        fail(404, "ROUTE_NOT_FOUND")
    })
    .await;
    (base, mock, state)
}

fn session_client(base: &str, dir: &TempDir, clock: &FakeClock) -> Arc<Client> {
    let now = clock.clock();
    let client = builder(base)
        .cache_dir(&dir.0)
        .machine_name("Ann's laptop")
        .clock(move || now())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    Arc::new(client)
}

/// The endpoint of a request: `checkout`, `activate`, `heartbeat`, ...
fn endpoint(seen: &Seen) -> &'static str {
    match seen.path.as_str() {
        p if p.ends_with("/checkout") => "checkout",
        p if p.ends_with("/heartbeat") => "heartbeat",
        p if p.ends_with("/validate") => "validate",
        "/v1/integration/activations" => "activate",
        _ => "other",
    }
}

/// A node-locked app used 8 hours a day for 30 days (launched at 09:00, relaunched at 13:00,
/// closed at 17:00), with the service down for one whole day: at most 2 HTTP calls on any day,
/// counted at the service, 1 on an ordinary day.
#[tokio::test]
async fn a_node_locked_app_makes_at_most_two_calls_a_day_for_30_days() {
    let start = datetime!(2026-12-01 09:00 UTC);
    let clock = FakeClock::at(start);
    let (base, mock, service) = service(&clock).await;
    let dir = TempDir::new();
    let client = session_client(&base, &dir, &clock);
    const OUTAGE_DAY: i64 = 14;

    let mut sources = Vec::new();
    for day in 0..30 {
        service.down.store(day == OUTAGE_DAY, Ordering::SeqCst);
        for hour in [9, 13, 17] {
            clock.set(start + time::Duration::days(day) + time::Duration::hours(hour - 9));
            if hour == 17 {
                continue; // closed: whatever it left running would have called by now
            }
            let session = client.ensure_licensed("fp-1").await.unwrap();
            assert!(
                session.heartbeat().is_none(),
                "no heartbeats for node-locked"
            );
            assert!(session.has_entitlement("export-4k"));
            assert_eq!(
                session.file.activation.as_ref().unwrap().fingerprint,
                "fp-1"
            );
            sources.push((day, hour, session.source));
        }
    }

    let mut per_day: BTreeMap<i64, Vec<&str>> = (0..30).map(|d| (d, Vec::new())).collect();
    for seen in mock.seen() {
        let day = (seen.at - start).whole_days();
        per_day.get_mut(&day).unwrap().push(endpoint(&seen));
    }
    for (day, calls) in &per_day {
        assert!(calls.len() <= 2, "day {day}: {calls:?}");
        let expected: &[&str] = match *day {
            0 => &["activate", "checkout"],
            OUTAGE_DAY => &["checkout", "checkout"], // tried at 09:00 and 13:00, both offline
            _ => &["checkout"],
        };
        assert_eq!(calls, expected, "day {day}");
    }
    let total: usize = per_day.values().map(Vec::len).sum();
    assert_eq!(total, 31 + 1);
    for (day, hour, source) in sources {
        let expected = match (day, hour) {
            (OUTAGE_DAY, _) => Source::Offline,
            (_, 9) => Source::Service,
            _ => Source::Cache,
        };
        assert_eq!(source, expected, "day {day} {hour}:00");
    }
}

#[tokio::test]
async fn a_released_seat_is_activated_again_and_a_lapsed_heartbeat_revived() {
    let start = datetime!(2026-12-01 09:00 UTC);
    let clock = FakeClock::at(start);
    let (base, mock, service) = service(&clock).await;
    let dir = TempDir::new();
    let client = session_client(&base, &dir, &clock);
    assert_eq!(
        client.ensure_licensed("fp-1").await.unwrap().source,
        Source::Service
    );

    // The seat was released (deactivated in the portal): checkout 409, activate, checkout.
    service.seats.lock().unwrap().clear();
    clock.set(start + REFRESH_AFTER);
    let session = client.ensure_licensed("fp-1").await.unwrap();
    assert_eq!(session.source, Source::Service);
    // Its heartbeat lapsed: activating again does not revive it, one heartbeat does.
    service.dead.lock().unwrap().insert("fp-1".into());
    clock.set(start + REFRESH_AFTER * 2);
    assert_eq!(
        client.ensure_licensed("fp-1").await.unwrap().source,
        Source::Service
    );

    let calls: Vec<&str> = mock.seen().iter().map(endpoint).collect();
    let expected = [
        "activate",
        "checkout", // first run
        "checkout",
        "activate",
        "checkout", // seat released
        "checkout",
        "activate",
        "checkout",
        "heartbeat",
        "checkout", // heartbeat dead
    ];
    assert_eq!(calls, expected);
    let activate = &mock.seen()[0];
    assert_eq!(
        activate.body,
        json!({ "license_key": KEY, "fingerprint": "fp-1", "name": "Ann's laptop" })
    );
    assert_eq!(
        mock.seen()[1].body,
        json!({ "fingerprint": "fp-1", "ttl_seconds": 14 * 86_400 })
    );
}

#[tokio::test]
async fn offline_only_when_unreachable_and_while_the_file_is_valid() {
    let start = datetime!(2026-12-01 09:00 UTC);
    let clock = FakeClock::at(start);
    let (base, _, service) = service(&clock).await;
    let dir = TempDir::new();
    let client = session_client(&base, &dir, &clock);

    // Nothing cached and the service down: the error.
    service.down.store(true, Ordering::SeqCst);
    let err = client.ensure_licensed("fp-1").await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { status: 503 }), "{err:?}");
    service.down.store(false, Ordering::SeqCst);
    client.ensure_licensed("fp-1").await.unwrap();

    // A machine with no network at all (nothing listens): the cached file, for 14 days.
    let offline = session_client(&closed_port(), &dir, &clock);
    clock.set(start + time::Duration::days(13));
    let session = offline.ensure_licensed("fp-1").await.unwrap();
    assert_eq!(session.source, Source::Offline);
    // Another machine's fingerprint: the cached file is not its own.
    let err = offline.ensure_licensed("fp-2").await.unwrap_err();
    assert!(
        matches!(err, Error::File(FileError::WrongFingerprint)),
        "{err:?}"
    );
    // The file has expired: refused.
    clock.set(start + time::Duration::days(14));
    let err = offline.ensure_licensed("fp-1").await.unwrap_err();
    assert!(matches!(err, Error::File(FileError::Expired(_))), "{err:?}");

    // A signed refusal is returned as is, never replaced by the (still valid) cached file.
    clock.set(start + time::Duration::days(2));
    service.suspended.store(true, Ordering::SeqCst);
    let err = client.ensure_licensed("fp-1").await.unwrap_err();
    assert_eq!(err.api_code(), Some("LICENSE_NOT_ACTIVE"));
}

#[tokio::test]
async fn heartbeats_only_when_the_policy_sets_heartbeat_seconds() {
    let clock = FakeClock::at(datetime!(2026-12-01 09:00 UTC));
    let (base, _, service) = service(&clock).await;
    *service.terms.lock().unwrap() =
        json!({ "activation_mode": "node_locked", "heartbeat_seconds": 3600 });
    let dir = TempDir::new();
    let client = session_client(&base, &dir, &clock);
    let session = client.ensure_licensed("fp-1").await.unwrap();
    assert_eq!(session.license().heartbeat_seconds, Some(3600));
    let heartbeat = session.heartbeat().expect("a heartbeat task");
    assert_eq!(heartbeat.every(), Duration::from_secs(1200));
    // From the cache too (no call), the policy's terms come from the file.
    let again = client.ensure_licensed("fp-1").await.unwrap();
    assert_eq!(again.source, Source::Cache);
    assert_eq!(
        again.heartbeat().unwrap().every(),
        Duration::from_secs(1200)
    );

    // A floating license is not for ensure_licensed.
    *service.terms.lock().unwrap() = json!({ "activation_mode": "floating", "lease_seconds": 900 });
    let other = TempDir::new();
    let err = session_client(&base, &other, &clock)
        .ensure_licensed("fp-1")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config(why) if why.contains("lease")),
        "{err:?}"
    );

    // Without a cache directory there is nothing to keep.
    let err = Arc::new(client_no_cache(&base))
        .ensure_licensed("fp-1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

fn client_no_cache(base: &str) -> Client {
    builder(base).build().unwrap()
}

/// A floating lease is renewed every third of its length and returned on release.
#[tokio::test]
async fn a_lease_heartbeats_at_a_third_of_its_length_and_is_returned() {
    let (base, mock) = serve(|seen| {
        let now = OffsetDateTime::now_utc();
        let lease = |a: &str| {
            json!({ "id": "act_1", "license_id": "lic_1", "fingerprint": "fp-1", "status": a,
                    "last_activated_at": now.format(&Rfc3339).unwrap(),
                    "lease_expires_at": (now + time::Duration::milliseconds(600)).format(&Rfc3339).unwrap() })
        };
        match seen.path.as_str() {
            "/v1/integration/activations/deactivate" => ok(lease("deactivated")),
            _ => ok(lease("active")),
        }
    })
    .await;
    let client = Arc::new(client(&base, None));
    let lease = client.lease("fp-1").await.unwrap();
    let third = lease.every().as_millis();
    assert!((190..=200).contains(&third), "{third} ms");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(lease.heartbeat().last_result().unwrap().is_ok());
    let returned = lease.release().await.unwrap();
    assert_eq!(returned.status.as_deref(), Some("deactivated"));
    let count = mock.seen().len();
    tokio::time::sleep(Duration::from_millis(450)).await;
    let calls: Vec<&str> = mock.seen().iter().map(endpoint).collect();
    assert_eq!(calls.len(), count, "no heartbeat after release: {calls:?}");
    let heartbeats = calls.iter().filter(|c| **c == "heartbeat").count();
    assert!((2..=4).contains(&heartbeats), "{calls:?}");
    assert_eq!(calls.first(), Some(&"activate"));
    assert_eq!(
        mock.seen().last().unwrap().path,
        "/v1/integration/activations/deactivate"
    );
}
