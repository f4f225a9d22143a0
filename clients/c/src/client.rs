//! The client behind `licensing_client_t`: blocking calls over a small Tokio runtime of its own.
//!
//! Requests are made and answers verified exactly as the Rust crate's `Client` does (each body
//! serialised once, then sent and hashed; `Authorization: License`, `X-Tenant-Id`, a fresh
//! `X-Nonce`; the answer's version-2 signature over `licensing_client::signed_message`, checked
//! against the pinned keys, and its date against the clock, before anything is read; files
//! checked with `licensing_client::verify_license_file`). This crate sends them itself because it needs two
//! things the Rust `Client` does not offer: an injectable clock (the recommended use is tested
//! with a fake one, and files, answer dates and the cache age are judged by it) and usage records.

use std::ffi::c_void;
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::Signature;
use licensing_client::{
    signed_message, verify_license_file, Activation, Error, LicenseFile, PinnedKeys, SentRequest,
    SignatureHeader, Validation, MAX_CLOCK_SKEW,
};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{redirect, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{licensing_status_t, Failure};
use crate::json;

/// The request timeout when none is set.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// A cached license file issued less than this long ago is used without asking the service.
pub(crate) const REFRESH_AFTER: time::Duration = time::Duration::hours(24);
/// The validity the recommended use asks for (14 days, the default cap of a policy's
/// `max_file_ttl_seconds`, which may cut it): how long the app keeps working offline.
pub(crate) const FILE_TTL_SECONDS: u32 = 14 * 86_400;

/// A C clock: milliseconds since the Unix epoch.
pub(crate) type ClockFn = unsafe extern "C" fn(user_data: *mut c_void) -> i64;

/// Where "now" comes from.
#[derive(Clone, Copy)]
pub(crate) enum Clock {
    System,
    Callback {
        now: ClockFn,
        user_data: *mut c_void,
    },
}

// The caller promises (licensing.h says so) that a clock callback may be called from any
// thread while the client lives.
unsafe impl Send for Clock {}
unsafe impl Sync for Clock {}

impl Clock {
    pub(crate) fn now(&self) -> OffsetDateTime {
        match *self {
            Clock::System => OffsetDateTime::now_utc(),
            Clock::Callback { now, user_data } => {
                // SAFETY: the caller gave a function of this signature, callable from any thread.
                let ms = unsafe { now(user_data) };
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            }
        }
    }
}

/// The settings `licensing_options_*` collect.
#[derive(Clone, Default)]
pub(crate) struct Options {
    pub base_url: Option<String>,
    pub tenant_id: Option<String>,
    pub license_key: Option<String>,
    pub keys: PinnedKeys,
    pub key_error: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub product: Option<String>,
    pub timeout: Option<Duration>,
    pub clock: Option<Clock>,
}

/// One license of one tenant.
pub(crate) struct Core {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base_url: Url,
    tenant_id: String,
    license_key: String,
    authorization: HeaderValue,
    keys: PinnedKeys,
    cache_dir: Option<PathBuf>,
    product: Option<String>,
    pub(crate) clock: Clock,
}

fn config(why: impl Into<String>) -> Failure {
    Failure::new(licensing_status_t::LICENSING_ERR_CONFIG, why)
}

impl Core {
    pub(crate) fn new(options: &Options) -> Result<Core, Failure> {
        let base_url = options
            .base_url
            .as_deref()
            .ok_or_else(|| config("no base URL"))?;
        let base_url = parse_base_url(base_url)?;
        let tenant_id = options.tenant_id.clone().filter(|t| !t.is_empty());
        let tenant_id = tenant_id.ok_or_else(|| config("no tenant id"))?;
        let license_key = options.license_key.clone().filter(|k| !k.is_empty());
        let license_key = license_key.ok_or_else(|| config("no license key"))?;
        if let Some(why) = &options.key_error {
            return Err(config(why.clone()));
        }
        if options.keys.is_empty() {
            return Err(config("no pinned signing key"));
        }
        HeaderValue::from_str(&tenant_id)
            .map_err(|_| config("the tenant id is not a valid header value"))?;
        let mut authorization = HeaderValue::from_str(&format!("License {license_key}"))
            .map_err(|_| config("the license key is not a valid header value"))?;
        authorization.set_sensitive(true);

        let timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // The signed path is the one sent: a redirect could only fail verification.
            .redirect(redirect::Policy::none())
            .user_agent(concat!("licensing-client-c/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| config(format!("HTTP client: {e}")))?;
        // One worker thread drives the connections; calls block the caller's thread meanwhile.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("licensing-client")
            .enable_all()
            .build()
            .map_err(|e| config(format!("cannot start the client's runtime: {e}")))?;
        Ok(Core {
            rt,
            http,
            base_url,
            tenant_id,
            license_key,
            authorization,
            keys: options.keys.clone(),
            cache_dir: options.cache_dir.clone(),
            product: options.product.clone(),
            clock: options.clock.unwrap_or(Clock::System),
        })
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub(crate) fn validate(&self, fingerprint: Option<&str>) -> Result<Validation, Failure> {
        let mut body = json!({});
        if let Some(fp) = fingerprint {
            body["fingerprint"] = json!(fp);
        }
        if let Some(product) = &self.product {
            body["product"] = json!(product);
        }
        let key = self.license_key.as_str();
        self.post(&["licenses", key, "validate"], &body, None)
    }

    pub(crate) fn activate(
        &self,
        fingerprint: &str,
        name: Option<&str>,
    ) -> Result<Activation, Failure> {
        let mut body = json!({ "license_key": self.license_key, "fingerprint": fingerprint });
        if let Some(name) = name {
            body["name"] = json!(name);
        }
        self.post(&["activations"], &body, None)
    }

    pub(crate) fn deactivate(&self, fingerprint: &str) -> Result<Activation, Failure> {
        let body = json!({ "license_key": self.license_key, "fingerprint": fingerprint });
        self.post(&["activations", "deactivate"], &body, None)
    }

    pub(crate) fn heartbeat(&self, activation_id: &str) -> Result<Activation, Failure> {
        self.post(
            &["activations", activation_id, "heartbeat"],
            &json!({}),
            None,
        )
    }

    pub(crate) fn record_usage(
        &self,
        metric: &str,
        quantity: u64,
        idempotency_key: Option<&str>,
    ) -> Result<Value, Failure> {
        let body =
            json!({ "license_key": self.license_key, "metric": metric, "quantity": quantity });
        self.post(&["usage", "record"], &body, idempotency_key)
    }

    /// Checks out a file bound to `fingerprint`, verifies it (bound to that fingerprint) and,
    /// with a cache directory, stores it there atomically.
    pub(crate) fn checkout(
        &self,
        fingerprint: &str,
        ttl_seconds: Option<u32>,
    ) -> Result<LicenseFile, Failure> {
        #[derive(Deserialize)]
        struct Checkout {
            certificate: String,
        }
        let mut body = json!({ "fingerprint": fingerprint });
        if let Some(ttl) = ttl_seconds {
            body["ttl_seconds"] = json!(ttl);
        }
        let key = self.license_key.as_str();
        let answer: Checkout = self.post(&["licenses", key, "checkout"], &body, None)?;
        let file = self.verify_file(&answer.certificate, Some(fingerprint))?;
        if let Some(path) = self.cache_path() {
            write_atomically(&path, answer.certificate.as_bytes())?;
        }
        Ok(file)
    }

    /// The cached file, verified now.
    pub(crate) fn offline_license(
        &self,
        fingerprint: Option<&str>,
    ) -> Result<LicenseFile, Failure> {
        let path = self.cache_path().ok_or(Error::NoOfflineLicense)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NoOfflineLicense.into())
            }
            Err(e) => return Err(e.into()),
        };
        self.verify_file(&text, fingerprint)
    }

    /// Verifies `text` against the pinned keys, the tenant, this client's license key, the
    /// fingerprint (if given) and the clock.
    pub(crate) fn verify_file(
        &self,
        text: &str,
        fingerprint: Option<&str>,
    ) -> Result<LicenseFile, Failure> {
        let file = verify_license_file(text, &self.keys, &self.tenant_id, fingerprint, self.now())?;
        if file.license.key != self.license_key {
            return Err(licensing_client::FileError::WrongLicense.into());
        }
        Ok(file)
    }

    /// The recommended use (see `licensing_ensure_licensed`): licensed from a cached file
    /// issued less than 24 h ago (no call), else from a fresh checkout (activating first when
    /// this machine holds no seat), else, when the service cannot be reached, from the cached
    /// file while it verifies.
    pub(crate) fn ensure_licensed(
        &self,
        fingerprint: &str,
        name: Option<&str>,
    ) -> Result<Ensured, Failure> {
        if self.cache_dir.is_none() {
            return Err(config("the recommended use needs a cache directory"));
        }
        let cached = self.offline_license(Some(fingerprint));
        if let Ok(file) = &cached {
            if self.now() - file.issued_at < REFRESH_AFTER {
                return ensured("cache", 0, file, None);
            }
        }
        // A genuine file of ours that merely expired means this machine held a seat: try the
        // checkout first. Nothing usable cached (the first run): activate first.
        let held_a_seat = match &cached {
            Ok(_) => true,
            Err(f) => {
                f.status == licensing_status_t::LICENSING_ERR_FILE
                    && f.code.as_deref() == Some("expired")
            }
        };
        let mut calls = 0;
        let mut activation = None;
        match self.refresh(fingerprint, name, held_a_seat, &mut calls, &mut activation) {
            Ok(file) => ensured("checkout", calls, &file, activation.as_ref()),
            Err(online) if unreachable(&online) => match cached {
                Ok(file) => ensured("offline", calls, &file, None),
                Err(offline) => Err(fallback(offline, online)),
            },
            Err(e) => Err(e),
        }
    }

    /// Checks out a fresh file, activating this machine first when it holds no seat; counts
    /// the requests in `calls`.
    fn refresh(
        &self,
        fingerprint: &str,
        name: Option<&str>,
        held_a_seat: bool,
        calls: &mut u32,
        activation: &mut Option<Activation>,
    ) -> Result<LicenseFile, Failure> {
        let ttl = Some(FILE_TTL_SECONDS);
        let no_activation = |e: &Failure| {
            e.status == licensing_status_t::LICENSING_ERR_API
                && e.code.as_deref() == Some("NO_ACTIVATION")
        };
        if held_a_seat {
            *calls += 1;
            match self.checkout(fingerprint, ttl) {
                Err(e) if no_activation(&e) => {}
                done => return done,
            }
        }
        *calls += 1;
        let id = activation
            .insert(self.activate(fingerprint, name)?)
            .id
            .clone();
        *calls += 1;
        match self.checkout(fingerprint, ttl) {
            Err(e) if no_activation(&e) => {
                // Activating a node-locked seat whose heartbeat lapsed (HEARTBEAT_DEAD) does not
                // revive it; a heartbeat does.
                *calls += 1;
                self.heartbeat(&id)?;
                *calls += 1;
                self.checkout(fingerprint, ttl)
            }
            done => done,
        }
    }

    /// Where the offline license file is cached: the Rust client's name for it (a hash of
    /// tenant and key), so both read the same file.
    pub(crate) fn cache_path(&self) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let digest = Sha256::new()
            .chain_update(self.tenant_id.as_bytes())
            .chain_update([0])
            .chain_update(self.license_key.as_bytes())
            .finalize();
        Some(dir.join(format!("license-{}.lic", &hex::encode(digest)[..32])))
    }

    /// POSTs `body` to `/v1/integration/{segments...}` and returns the verified answer's data.
    fn post<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<T, Failure> {
        self.rt
            .block_on(self.post_async(segments, body, idempotency_key))
    }

    async fn post_async<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<T, Failure> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| config("the base URL cannot be a base"))?
            .pop_if_empty()
            .extend(["v1", "integration"])
            .extend(segments);
        let path_and_query = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let nonce = hex::encode(rand::random::<[u8; 32]>());
        // Serialised once: the answer's signature covers these exact bytes.
        let sent_body = serde_json::to_vec(body).map_err(Error::Decode)?;

        let mut request = self
            .http
            .post(url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header("x-tenant-id", &self.tenant_id)
            .header("x-nonce", &nonce)
            .header(CONTENT_TYPE, "application/json");
        if let Some(key) = idempotency_key {
            request = request.header("x-idempotency-key", key);
        }
        let response = request
            .body(sent_body.clone())
            .send()
            .await
            .map_err(Error::Transport)?;
        let status = response.status();
        let header = |name: &str| -> Result<Option<String>, Failure> {
            match response.headers().get(name) {
                None => Ok(None),
                Some(value) => value
                    .to_str()
                    .map(|v| Some(v.to_owned()))
                    .map_err(|_| unverified("malformed", format!("{name} is not visible ASCII"))),
            }
        };
        let signature = header("x-signature")?;
        let date = header("x-signature-date")?;
        if signature.is_none() && status.is_server_error() {
            return Err(Error::Unavailable {
                status: status.as_u16(),
            }
            .into());
        }
        let bytes = response.bytes().await.map_err(Error::Transport)?;
        let sent = SentRequest {
            method: "POST",
            path_and_query: &path_and_query,
            tenant: &self.tenant_id,
            nonce: Some(&nonce),
            body: &sent_body,
        };
        verify_signed_answer(
            &self.keys,
            sent,
            signature.as_deref(),
            date.as_deref(),
            &bytes,
            self.now(),
        )?;

        if status.is_success() {
            #[derive(Deserialize)]
            struct Data<T> {
                data: T,
            }
            let data: Data<T> = serde_json::from_slice(&bytes).map_err(Error::Decode)?;
            Ok(data.data)
        } else {
            #[derive(Deserialize)]
            struct Envelope {
                error: Body,
            }
            #[derive(Deserialize)]
            struct Body {
                code: String,
                #[serde(default)]
                message: String,
            }
            let Envelope { error } = serde_json::from_slice(&bytes).map_err(Error::Decode)?;
            Err(Error::Api {
                status: status.as_u16(),
                code: error.code,
                message: error.message,
            }
            .into())
        }
    }
}

/// The result of the recommended use: the JSON for C, and the heartbeat to keep (activation id,
/// seconds) when the file's policy sets `heartbeat_seconds`.
pub(crate) struct Ensured {
    pub json: Value,
    pub heartbeat: Option<(String, u64)>,
}

fn ensured(
    source: &str,
    calls: u32,
    file: &LicenseFile,
    activation: Option<&Activation>,
) -> Result<Ensured, Failure> {
    let terms = seat_terms(file.certificate());
    if terms["activation_mode"] == "floating" {
        return Err(config(
            "the license is floating: hold a lease with licensing_lease_checkout",
        ));
    }
    let heartbeat_seconds = terms["heartbeat_seconds"].as_u64().filter(|&s| s > 0);
    let heartbeat = heartbeat_seconds.zip(file.activation.as_ref().map(|a| a.id.clone()));
    Ok(Ensured {
        json: json!({
            "licensed": true,
            "source": source,
            "calls": calls,
            "heartbeat_seconds": heartbeat_seconds,
            "file": json::file(file),
            "activation": activation.map(json::activation),
        }),
        heartbeat: heartbeat.map(|(seconds, id)| (id, seconds)),
    })
}

/// The seat terms a (verified) file's license carries: `activation_mode`, `heartbeat_seconds`,
/// `lease_seconds` (`null` when the service does not write them).
fn seat_terms(certificate: &str) -> Value {
    let body: String = certificate
        .lines()
        .map(str::trim)
        .skip_while(|line| *line != "-----BEGIN LICENSE FILE-----")
        .skip(1)
        .take_while(|line| *line != "-----END LICENSE FILE-----")
        .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
        .collect();
    let payload = body.split('.').next().unwrap_or("");
    let license = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .map(|payload| payload["license"].clone())
        .unwrap_or(Value::Null);
    json!({
        "activation_mode": license["activation_mode"],
        "heartbeat_seconds": license["heartbeat_seconds"],
        "lease_seconds": license["lease_seconds"],
    })
}

/// Whether the service could not be reached: transport, an unsigned 5xx, or a signed 5xx.
fn unreachable(failure: &Failure) -> bool {
    use licensing_status_t::*;
    matches!(
        failure.status,
        LICENSING_ERR_TRANSPORT | LICENSING_ERR_UNAVAILABLE
    ) || (failure.status == LICENSING_ERR_API && failure.http_status >= 500)
}

/// What to answer when the service is unreachable and the cache did not help: the cached
/// file's failure when there is one, else the transport's.
fn fallback(cached: Failure, online: Failure) -> Failure {
    if cached.status == licensing_status_t::LICENSING_ERR_NO_OFFLINE_LICENSE {
        online
    } else {
        cached
    }
}

pub(crate) fn unverified(code: &str, why: impl std::fmt::Display) -> Failure {
    Failure::new(
        licensing_status_t::LICENSING_ERR_UNVERIFIED,
        format!("unverified answer: {why}"),
    )
    .with_code(code)
}

/// Checks an answer's signature (version 2, strict Ed25519 by a pinned key) over the request
/// sent and the answer received, and its date against `now` (at most five minutes apart, either
/// way): `LICENSING_ERR_UNVERIFIED` with a reason code otherwise.
pub(crate) fn verify_signed_answer(
    keys: &PinnedKeys,
    sent: SentRequest<'_>,
    signature: Option<&str>,
    date: Option<&str>,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<(), Failure> {
    let header =
        signature.ok_or_else(|| unverified("unsigned", "the answer has no X-Signature"))?;
    let date_text =
        date.ok_or_else(|| unverified("malformed", "the answer has no X-Signature-Date"))?;
    let header = SignatureHeader::parse(header).map_err(|why| unverified("malformed", why))?;
    let Some(key) = keys.get(&header.kid) else {
        let why = format!("the answer is signed by unknown key {:?}", header.kid);
        return Err(unverified("unknown_kid", why));
    };
    let message = signed_message(sent, date_text, body);
    let signature = Signature::from_bytes(&header.signature);
    key.verify_strict(message.as_bytes(), &signature)
        .map_err(|_| {
            let why = format!(
                "the signature by key {:?} does not verify for {} {} as sent",
                header.kid, sent.method, sent.path_and_query
            );
            unverified("bad_signature", why)
        })?;
    let date = OffsetDateTime::parse(date_text, &Rfc3339).map_err(|_| {
        unverified(
            "malformed",
            format!("X-Signature-Date {date_text:?} is not RFC 3339"),
        )
    })?;
    if (date - now).abs() > MAX_CLOCK_SKEW {
        let why = format!("X-Signature-Date {date_text} is more than 5 minutes from the clock");
        return Err(unverified("expired", why));
    }
    Ok(())
}

/// Accepts `https://`, or `http://` to a loopback host; no query or fragment.
fn parse_base_url(text: &str) -> Result<Url, Failure> {
    let url = Url::parse(text).map_err(|e| config(format!("base URL {text:?}: {e}")))?;
    let host = url.host_str().unwrap_or("");
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>();
    let loopback = host.eq_ignore_ascii_case("localhost") || ip.is_ok_and(|ip| ip.is_loopback());
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok || url.cannot_be_a_base() {
        return Err(config(format!(
            "base URL {text:?} must be https:// (http:// only to a loopback address)"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config(format!("base URL {text:?} has a query or fragment")));
    }
    Ok(url)
}

/// Writes `contents` to a new temporary file beside `path`, flushes it, and renames it over
/// `path`: a reader sees the old file or the new one, never a part. Owner-only on Unix.
fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("cache path without a directory"))?;
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("license");
    let tmp = dir.join(format!(
        ".{name}.{}.tmp",
        hex::encode(rand::random::<[u8; 8]>())
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
