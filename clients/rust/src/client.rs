//! The client: one license of one tenant, talking to the Integration API.

use std::fmt;
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{redirect, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::{Error, FileError};
use crate::file::{verify_license_file, LicenseFile};
use crate::keys::PinnedKeys;
use crate::signature::{
    verify_answer, SentRequest, NONCE_HEADER, SIGNATURE_DATE_HEADER, SIGNATURE_HEADER,
};
use crate::types::{Activation, CheckoutAnswer, DataEnvelope, ErrorEnvelope, License, Validation};

/// The request timeout when none is set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const TENANT_HEADER: &str = "x-tenant-id";

/// The clock the client checks answer dates and license files against: the system's by
/// default, injectable ([`ClientBuilder::clock`]) for tests and simulations.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// A client for one license of one tenant.
///
/// Every call sends `Authorization: License <key>`, `X-Tenant-Id` and a fresh random `X-Nonce`,
/// and verifies the answer's signature (version 2) against the pinned keys, over the exact body
/// it sent and its tenant, before reading anything from it.
/// Build it with [`Client::builder`].
pub struct Client {
    http: reqwest::Client,
    base_url: Url,
    tenant_id: String,
    license_key: String,
    authorization: HeaderValue,
    keys: PinnedKeys,
    cache_dir: Option<PathBuf>,
    product: Option<String>,
    pub(crate) clock: Clock,
    pub(crate) machine_name: Option<String>,
    pub(crate) file_ttl_seconds: u32,
}

/// Builds a [`Client`].
#[derive(Clone, Default)]
pub struct ClientBuilder {
    base_url: Option<String>,
    tenant_id: Option<String>,
    license_key: Option<String>,
    keys: PinnedKeys,
    key_error: Option<String>,
    cache_dir: Option<PathBuf>,
    timeout: Option<Duration>,
    product: Option<String>,
    clock: Option<Clock>,
    machine_name: Option<String>,
    file_ttl_seconds: Option<u32>,
}

impl ClientBuilder {
    /// The service's base URL, such as `https://abc.execute-api.eu-west-1.amazonaws.com`
    /// (a path prefix such as a stage name is kept). `https://` is required, except for
    /// `http://` to a loopback address (local testing).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The vendor's tenant id.
    pub fn tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// The end user's license key.
    pub fn license_key(mut self, key: impl Into<String>) -> Self {
        self.license_key = Some(key.into());
        self
    }

    /// Pins a signing key: its id (`v1`) and its public key as the signing-keys endpoint lists
    /// it (standard base64 of 32 bytes). Call once per key; at least one is required.
    pub fn pin_key(mut self, kid: impl Into<String>, public_key: &str) -> Self {
        if let Err(e) = self.keys.pin(kid, public_key) {
            self.key_error.get_or_insert(e.to_string());
        }
        self
    }

    /// Pins every key of `keys`.
    pub fn pinned_keys(mut self, keys: &PinnedKeys) -> Self {
        for kid in keys.kids() {
            if let Some(key) = keys.get(kid) {
                self.keys.pin_key(kid, *key);
            }
        }
        self
    }

    /// Where `checkout` stores the offline license file, and `offline_license` reads it.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// The timeout of each request, connection included (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The product code sent with `validate`, so that a license for another product answers
    /// `PRODUCT_MISMATCH`.
    pub fn product(mut self, code: impl Into<String>) -> Self {
        self.product = Some(code.into());
        self
    }

    /// The clock answer dates and license files are checked against (default: the system
    /// clock). Inject one to test an app's licensing over simulated days.
    pub fn clock(mut self, clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The name [`Client::ensure_licensed`] gives this machine when it activates it (shown to
    /// the vendor and the customer).
    pub fn machine_name(mut self, name: impl Into<String>) -> Self {
        self.machine_name = Some(name.into());
        self
    }

    /// The validity [`Client::ensure_licensed`] asks for when it checks out a license file
    /// (default [`SESSION_FILE_TTL`](crate::SESSION_FILE_TTL), 14 days; the policy's
    /// `max_file_ttl_seconds` may cut it): how long the app keeps working offline.
    pub fn file_ttl_seconds(mut self, seconds: u32) -> Self {
        self.file_ttl_seconds = Some(seconds);
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let config = |why: &str| Error::Config(why.to_owned());
        let base_url = self.base_url.ok_or_else(|| config("no base URL"))?;
        let base_url = parse_base_url(&base_url)?;
        let tenant_id = self.tenant_id.filter(|t| !t.is_empty());
        let tenant_id = tenant_id.ok_or_else(|| config("no tenant id"))?;
        let license_key = self.license_key.filter(|k| !k.is_empty());
        let license_key = license_key.ok_or_else(|| config("no license key"))?;
        if let Some(why) = self.key_error {
            return Err(Error::Config(why));
        }
        if self.keys.is_empty() {
            return Err(config("no pinned signing key"));
        }
        HeaderValue::from_str(&tenant_id)
            .map_err(|_| config("the tenant id is not a valid header value"))?;
        let mut authorization = HeaderValue::from_str(&format!("License {license_key}"))
            .map_err(|_| config("the license key is not a valid header value"))?;
        authorization.set_sensitive(true);

        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // The signed path is the one sent: a redirect could only fail verification.
            .redirect(redirect::Policy::none())
            .user_agent(concat!("licensing-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            base_url,
            tenant_id,
            license_key,
            authorization,
            keys: self.keys,
            cache_dir: self.cache_dir,
            product: self.product,
            clock: self
                .clock
                .unwrap_or_else(|| Arc::new(OffsetDateTime::now_utc)),
            machine_name: self.machine_name,
            file_ttl_seconds: self
                .file_ttl_seconds
                .unwrap_or(crate::session::SESSION_FILE_TTL),
        })
    }
}

/// Accepts `https://`, or `http://` to a loopback host; no query or fragment.
fn parse_base_url(text: &str) -> Result<Url, Error> {
    let url = Url::parse(text).map_err(|e| Error::Config(format!("base URL {text:?}: {e}")))?;
    let host = url.host_str().unwrap_or("");
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>();
    let loopback = host.eq_ignore_ascii_case("localhost") || ip.is_ok_and(|ip| ip.is_loopback());
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok || url.cannot_be_a_base() {
        return Err(Error::Config(format!(
            "base URL {text:?} must be https:// (http:// only to a loopback address)"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "base URL {text:?} has a query or fragment"
        )));
    }
    Ok(url)
}

#[derive(Serialize)]
struct ValidateBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    product: Option<&'a str>,
}

#[derive(Serialize)]
struct ActivateBody<'a> {
    license_key: &'a str,
    fingerprint: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct DeactivateBody<'a> {
    license_key: &'a str,
    fingerprint: &'a str,
}

#[derive(Serialize)]
struct EmptyBody {}

#[derive(Serialize)]
struct CheckoutBody<'a> {
    fingerprint: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl_seconds: Option<u32>,
}

/// The answer of [`Client::validate_or_offline`].
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The service answered (verified).
    Online(Validation),
    /// The service could not be reached; the cached license file verified and is within its
    /// validity.
    Offline(LicenseFile),
}

impl Verdict {
    /// Whether the app may run: `valid` online, always for a verified offline file.
    pub fn is_valid(&self) -> bool {
        match self {
            Verdict::Online(validation) => validation.valid,
            Verdict::Offline(_) => true,
        }
    }

    /// The license, if the answer has one.
    pub fn license(&self) -> Option<&License> {
        match self {
            Verdict::Online(validation) => validation.license.as_ref(),
            Verdict::Offline(file) => Some(&file.license),
        }
    }
}

impl Client {
    /// A builder; `base_url`, `tenant_id`, `license_key` and one `pin_key` are required.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Now, by the client's clock.
    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// The tenant this client acts for.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// Validates the license, optionally for this machine's `fingerprint` (then an activation
    /// must exist: else `NO_ACTIVATION`).
    pub async fn validate(&self, fingerprint: Option<&str>) -> Result<Validation, Error> {
        let key = self.license_key.as_str();
        let body = ValidateBody {
            fingerprint,
            product: self.product.as_deref(),
        };
        self.post(&["licenses", key, "validate"], &body).await
    }

    /// Activates this machine (or, on a floating policy, checks out or renews its lease).
    /// Repeating it for an active fingerprint answers the existing activation.
    pub async fn activate(
        &self,
        fingerprint: &str,
        name: Option<&str>,
    ) -> Result<Activation, Error> {
        let body = ActivateBody {
            license_key: &self.license_key,
            fingerprint,
            name,
        };
        self.post(&["activations"], &body).await
    }

    /// Frees this machine's seat (or returns its lease).
    pub async fn deactivate(&self, fingerprint: &str) -> Result<Activation, Error> {
        let body = DeactivateBody {
            license_key: &self.license_key,
            fingerprint,
        };
        self.post(&["activations", "deactivate"], &body).await
    }

    /// Renews an activation's lease (or, node-locked, records that it is alive). A lapsed lease
    /// answers [`Error::Api`] with code `LEASE_EXPIRED`: `activate` again. A license that is not
    /// in force (suspended, cancelled, expired) answers `LICENSE_NOT_ACTIVE`: nothing is renewed.
    pub async fn heartbeat(&self, activation_id: &str) -> Result<Activation, Error> {
        self.post(&["activations", activation_id, "heartbeat"], &EmptyBody {})
            .await
    }

    /// Downloads a signed offline license file bound to this machine's activation
    /// (`fingerprint` must be activated: else `NO_ACTIVATION`), valid for `ttl_seconds`
    /// (3600..=7776000, or the service's default; the policy may cut it shorter: the file's
    /// `expires_at` is the real end), verifies it like [`verify_license_file`] with that
    /// fingerprint, and, with a cache directory, stores it there atomically.
    pub async fn checkout(
        &self,
        fingerprint: &str,
        ttl_seconds: Option<u32>,
    ) -> Result<LicenseFile, Error> {
        let key = self.license_key.as_str();
        let body = CheckoutBody {
            fingerprint,
            ttl_seconds,
        };
        let answer: CheckoutAnswer = self.post(&["licenses", key, "checkout"], &body).await?;
        let file = self.verify_file(&answer.certificate, Some(fingerprint))?;
        if let Some(path) = self.cache_path() {
            let text = answer.certificate;
            tokio::task::spawn_blocking(move || write_atomically(&path, text.as_bytes()))
                .await
                .map_err(io::Error::other)??;
        }
        Ok(file)
    }

    /// The cached license file, verified now: answers offline while the file is valid. Given
    /// a `fingerprint`, the file must be bound to it (an unbound file is refused).
    /// [`Error::NoOfflineLicense`] when nothing is cached.
    pub fn offline_license(&self, fingerprint: Option<&str>) -> Result<LicenseFile, Error> {
        let path = self.cache_path().ok_or(Error::NoOfflineLicense)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NoOfflineLicense),
            Err(e) => return Err(e.into()),
        };
        self.verify_file(&text, fingerprint)
    }

    /// Validates online; if the service cannot be reached ([`Error::is_unreachable`]), answers
    /// from the cached license file instead. An error answer or an unverified answer is
    /// returned as is, never replaced by the file.
    ///
    /// When the service is unreachable and nothing is cached, the transport error is returned;
    /// when the cached file fails verification (expired, another machine, ...), that
    /// [`Error::File`] is returned.
    pub async fn validate_or_offline(&self, fingerprint: Option<&str>) -> Result<Verdict, Error> {
        match self.validate(fingerprint).await {
            Ok(validation) => Ok(Verdict::Online(validation)),
            Err(online) if online.is_unreachable() => match self.offline_license(fingerprint) {
                Ok(file) => Ok(Verdict::Offline(file)),
                Err(Error::NoOfflineLicense) => Err(online),
                Err(offline) => Err(offline),
            },
            Err(e) => Err(e),
        }
    }

    /// Where the offline license file of this tenant and license is cached: one file per
    /// (tenant, license), named by a hash so the key does not appear in the file name.
    pub fn cache_path(&self) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let digest = Sha256::new()
            .chain_update(self.tenant_id.as_bytes())
            .chain_update([0])
            .chain_update(self.license_key.as_bytes())
            .finalize();
        Some(dir.join(format!("license-{}.lic", &hex::encode(digest)[..32])))
    }

    fn verify_file(&self, text: &str, fingerprint: Option<&str>) -> Result<LicenseFile, Error> {
        let now = self.now();
        let file = verify_license_file(text, &self.keys, &self.tenant_id, fingerprint, now)?;
        if file.license.key != self.license_key {
            return Err(FileError::WrongLicense.into());
        }
        Ok(file)
    }

    /// POSTs `body` to `/v1/integration/{segments...}` and returns the verified answer's data
    /// (its signature checked over what was sent, its date against the client's clock).
    async fn post<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &impl Serialize,
    ) -> Result<T, Error> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .expect("checked by parse_base_url")
            .pop_if_empty()
            .extend(["v1", "integration"])
            .extend(segments);
        let path_and_query = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let nonce = new_nonce();
        // Serialised once: the answer's signature covers these exact bytes.
        // (The bodies are this crate's own structs of strings and numbers: this cannot fail.)
        let sent_body = serde_json::to_vec(body)
            .map_err(|e| Error::Config(format!("cannot serialise the request body: {e}")))?;

        let response = self
            .http
            .post(url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(TENANT_HEADER, &self.tenant_id)
            .header(NONCE_HEADER, &nonce)
            .header(CONTENT_TYPE, "application/json")
            .body(sent_body.clone())
            .send()
            .await?;
        let status = response.status();
        let header = |name: &str| -> Result<Option<String>, Error> {
            match response.headers().get(name) {
                None => Ok(None),
                Some(value) => value
                    .to_str()
                    .map(|v| Some(v.to_owned()))
                    .map_err(|_| Error::Unverified(format!("{name} is not visible ASCII"))),
            }
        };
        let signature = header(SIGNATURE_HEADER)?;
        let date = header(SIGNATURE_DATE_HEADER)?;
        if signature.is_none() && status.is_server_error() {
            return Err(Error::Unavailable {
                status: status.as_u16(),
            });
        }
        let bytes = response.bytes().await?;

        let sent = SentRequest {
            method: "POST",
            path_and_query: &path_and_query,
            tenant: &self.tenant_id,
            nonce: Some(&nonce),
            body: &sent_body,
        };
        verify_answer(
            &self.keys,
            sent,
            signature.as_deref(),
            date.as_deref(),
            &bytes,
            self.now(),
        )
        .map_err(Error::Unverified)?;

        if status.is_success() {
            Ok(serde_json::from_slice::<DataEnvelope<T>>(&bytes)?.data)
        } else {
            let ErrorEnvelope { error } = serde_json::from_slice(&bytes)?;
            Err(Error::Api {
                status: status.as_u16(),
                code: error.code,
                message: error.message,
            })
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url.as_str())
            .field("tenant_id", &self.tenant_id)
            .field("license_key", &"<redacted>")
            .field("keys", &self.keys)
            .field("cache_dir", &self.cache_dir)
            .field("product", &self.product)
            .field("machine_name", &self.machine_name)
            .field("file_ttl_seconds", &self.file_ttl_seconds)
            .finish_non_exhaustive()
    }
}

/// 32 random bytes, hex (64 characters).
fn new_nonce() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Writes `contents` to a new temporary file beside `path`, flushes it to disk, and renames it
/// over `path`: a reader sees the old file or the new one, never a part. Owner-only on Unix
/// (the file holds the license key).
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

#[cfg(test)]
mod tests;
