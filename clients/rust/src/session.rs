//! The recommended use: [`Client::ensure_licensed`] for node-locked licenses (at most one call
//! a day in steady state), [`Client::lease`] for floating ones (a lease kept alive at a third
//! of its length, returned at exit).

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::client::Client;
use crate::error::{Error, FileError};
use crate::file::LicenseFile;
use crate::heartbeat::HeartbeatHandle;
use crate::types::{Activation, License};

/// A cached license file younger than this is trusted without asking the service:
/// [`Client::ensure_licensed`] makes no call at all. Older, it checks out a fresh one (1 call).
pub const REFRESH_AFTER: time::Duration = time::Duration::hours(24);

/// The validity [`Client::ensure_licensed`] asks for by default (14 days, the default cap of a
/// policy's `max_file_ttl_seconds`): how long the app keeps working without the service.
pub const SESSION_FILE_TTL: u32 = 14 * 86_400;

/// Where a [`Session`]'s license file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The cached file, issued less than [`REFRESH_AFTER`] ago: no call was made.
    Cache,
    /// A file checked out just now (and cached).
    Service,
    /// The service could not be reached; the cached file still verifies and has not expired.
    Offline,
}

/// A licensed run of a node-locked app: the verified license file, where it came from, and
/// the heartbeat task when the policy requires heartbeats. Dropping it stops the heartbeats.
#[derive(Debug)]
pub struct Session {
    /// The verified license file (bound to this machine, of this tenant and license key, not
    /// expired). Features come from `file.license.entitlements`.
    pub file: LicenseFile,
    /// Where it came from.
    pub source: Source,
    heartbeat: Option<HeartbeatHandle>,
}

impl Session {
    /// The license as the file shows it.
    pub fn license(&self) -> &License {
        &self.file.license
    }

    /// Whether `feature` is granted by the file's entitlements.
    pub fn has_entitlement(&self, feature: &str) -> bool {
        self.file.license.has_entitlement(feature)
    }

    /// The heartbeat task: only when the policy sets `heartbeat_seconds` (then every third of
    /// it); `None` otherwise, which is the usual case: no calls while the app runs.
    pub fn heartbeat(&self) -> Option<&HeartbeatHandle> {
        self.heartbeat.as_ref()
    }
}

/// A floating lease held by this machine, renewed in the background every third of its
/// length. [`release`](Lease::release) it when the app exits; dropping it only stops the
/// heartbeats (the lease then lapses after `lease_seconds`).
#[derive(Debug)]
pub struct Lease {
    client: Arc<Client>,
    /// The activation (its `lease_expires_at` as first granted).
    pub activation: Activation,
    every: Duration,
    heartbeat: HeartbeatHandle,
}

impl Lease {
    /// How often the lease is renewed (a third of its length).
    pub fn every(&self) -> Duration {
        self.every
    }

    /// The heartbeat task (its outcomes; a `LEASE_EXPIRED` means the lease was lost:
    /// call [`Client::lease`] again).
    pub fn heartbeat(&self) -> &HeartbeatHandle {
        &self.heartbeat
    }

    /// Stops the heartbeats and returns the lease (frees the seat at once).
    pub async fn release(self) -> Result<Activation, Error> {
        let Lease {
            client,
            activation,
            heartbeat,
            ..
        } = self;
        heartbeat.stop();
        client.deactivate(&activation.fingerprint).await
    }
}

impl Client {
    /// The recommended use for a **node-locked** license, at each launch of the app (and as
    /// often as it likes: a fresh cached file costs nothing):
    ///
    /// 1. The cached license file verifies (pinned key, tenant, license key, bound to
    ///    `fingerprint`, not expired) and was issued less than [`REFRESH_AFTER`] (24 h) ago:
    ///    licensed, **no call**.
    /// 2. Otherwise check out a fresh file bound to this machine (1 call) and cache it
    ///    atomically. With no usable cached file (the first run), or when the checkout answers
    ///    409 `NO_ACTIVATION` (the seat was released), activate this machine first (1 more
    ///    call); if the checkout still answers `NO_ACTIVATION` (a node-locked seat whose
    ///    heartbeat lapsed), send one heartbeat and check out again.
    /// 3. The service unreachable (transport error, unsigned 5xx) and the cached file verifies
    ///    and has not expired: licensed offline ([`Source::Offline`]). A signed refusal
    ///    (suspended, cancelled, ...) or an unverified answer is returned as an error, never
    ///    replaced by the cached file.
    /// 4. No heartbeats unless the file says the policy sets `heartbeat_seconds` (then every
    ///    third of it, in the background, for as long as the [`Session`] lives).
    ///
    /// So a machine used every day makes one call a day (two on the first day). A floating
    /// license is refused here with [`Error::Config`]: use [`Client::lease`]. Needs a cache
    /// directory ([`ClientBuilder::cache_dir`](crate::ClientBuilder::cache_dir)) and a Tokio
    /// runtime.
    pub async fn ensure_licensed(self: &Arc<Self>, fingerprint: &str) -> Result<Session, Error> {
        if self.cache_path().is_none() {
            return Err(Error::Config(
                "ensure_licensed needs a cache directory (ClientBuilder::cache_dir)".into(),
            ));
        }
        let cached = self.offline_license(Some(fingerprint));
        if let Ok(file) = &cached {
            if self.now() - file.issued_at < REFRESH_AFTER {
                return self.session(cached?, Source::Cache);
            }
        }
        // A genuine file of ours that merely expired means this machine held a seat: try the
        // checkout first. Nothing usable cached (the first run): activate first.
        let held_a_seat = matches!(cached, Ok(_) | Err(Error::File(FileError::Expired(_))));
        match self.refresh(fingerprint, held_a_seat).await {
            Ok(file) => self.session(file, Source::Service),
            Err(online) if online.is_unreachable() => match cached {
                Ok(file) => self.session(file, Source::Offline),
                Err(Error::NoOfflineLicense) => Err(online),
                Err(offline) => Err(offline),
            },
            Err(e) => Err(e),
        }
    }

    /// Checks out a fresh file, activating this machine first when it holds no seat.
    async fn refresh(&self, fingerprint: &str, held_a_seat: bool) -> Result<LicenseFile, Error> {
        let ttl = Some(self.file_ttl_seconds);
        let no_activation = |e: &Error| e.api_code() == Some("NO_ACTIVATION");
        if held_a_seat {
            match self.checkout(fingerprint, ttl).await {
                Err(e) if no_activation(&e) => {}
                done => return done,
            }
        }
        let name = self.machine_name.as_deref();
        let activation = self.activate(fingerprint, name).await?;
        match self.checkout(fingerprint, ttl).await {
            Err(e) if no_activation(&e) => {
                // Activating an existing node-locked seat does not revive it once its heartbeat
                // has lapsed (HEARTBEAT_DEAD); a heartbeat does.
                self.heartbeat(&activation.id).await?;
                self.checkout(fingerprint, ttl).await
            }
            done => done,
        }
    }

    fn session(self: &Arc<Self>, file: LicenseFile, source: Source) -> Result<Session, Error> {
        if file.license.is_floating() {
            return Err(Error::Config(
                "the license is floating: hold a lease with Client::lease".into(),
            ));
        }
        let heartbeat = match (file.license.heartbeat_seconds, &file.activation) {
            (Some(seconds), Some(activation)) if seconds > 0 => {
                let every = Duration::from_secs(seconds).div_f64(3.0);
                Some(self.clone().spawn_heartbeat(activation.id.clone(), every))
            }
            _ => None,
        };
        Ok(Session {
            file,
            source,
            heartbeat,
        })
    }

    /// The recommended use for a **floating** license: checks out a lease for this machine
    /// (1 call) and renews it in the background every third of its length (a 15-minute lease:
    /// every 5 minutes). Call [`Lease::release`] when the app exits (1 call). A full pool
    /// answers [`Error::Api`] with code `TOO_MANY_ACTIVATIONS` (or `OVERAGE_MAX_EXCEEDED`).
    /// Needs a Tokio runtime.
    pub async fn lease(self: &Arc<Self>, fingerprint: &str) -> Result<Lease, Error> {
        let activation = self
            .activate(fingerprint, self.machine_name.as_deref())
            .await?;
        let every = lease_length(&activation, self.now()).div_f64(3.0);
        let every = every.max(Duration::from_millis(100));
        let heartbeat = self.clone().spawn_heartbeat(activation.id.clone(), every);
        Ok(Lease {
            client: self.clone(),
            activation,
            every,
            heartbeat,
        })
    }
}

/// How long the service granted the lease: from its last renewal (the service's clock) to
/// `lease_expires_at`; 900 s (the default `lease_seconds`) if the answer does not say.
fn lease_length(activation: &Activation, now: OffsetDateTime) -> Duration {
    let Some(expires) = activation.lease_expires_at else {
        return Duration::from_secs(900);
    };
    let renewed = [activation.last_heartbeat_at, activation.last_activated_at]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(now);
    Duration::try_from(expires - renewed)
        .ok()
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(900))
}
