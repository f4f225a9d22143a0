//! The client's errors.

use time::OffsetDateTime;

/// Everything a [`Client`](crate::Client) call can fail with.
///
/// Only [`Error::Transport`] and [`Error::Unavailable`] mean "the service could not be reached";
/// [`Client::validate_or_offline`](crate::Client::validate_or_offline) falls back to the cached
/// license file on those two and on nothing else.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request did not complete: DNS, connection, TLS, timeout, or the body was cut off.
    #[error("cannot reach the licensing service: {0}")]
    Transport(#[from] reqwest::Error),

    /// A 5xx answer that carries no `X-Signature` at all: a gateway or load balancer in front of
    /// the service answered (throttling, a timeout, a crash), not the service itself. Its body is
    /// never read.
    #[error("the licensing service is unavailable (HTTP {status}, unsigned)")]
    Unavailable {
        /// The HTTP status code.
        status: u16,
    },

    /// The service answered with a verified error envelope.
    #[error("licensing service error {status} {code}: {message}")]
    Api {
        /// The HTTP status code (also `error.status` in the envelope).
        status: u16,
        /// The error code, such as `LEASE_EXPIRED` or `TOO_MANY_ACTIVATIONS`.
        code: String,
        /// A human sentence.
        message: String,
    },

    /// The answer's signature is missing, malformed, made by a key that is not pinned, or does
    /// not verify for the request that was sent. Nothing of the answer was used.
    #[error("unverified answer: {0}")]
    Unverified(String),

    /// A license file (downloaded by `checkout` or read from the cache) failed verification.
    #[error("license file: {0}")]
    File(#[from] FileError),

    /// Reading or writing the cache directory failed.
    #[error("cache: {0}")]
    Io(#[from] std::io::Error),

    /// A verified answer did not have the expected shape.
    #[error("unexpected answer: {0}")]
    Decode(#[from] serde_json::Error),

    /// There is no cached license file to answer from (no cache directory configured, or no
    /// successful `checkout` yet).
    #[error("no offline license file is cached")]
    NoOfflineLicense,

    /// The client was built with a missing or invalid setting.
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The error code of an [`Error::Api`] answer, such as `LEASE_EXPIRED`.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the service could not be reached (the cases `validate_or_offline` falls back on).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Transport(_) | Error::Unavailable { .. })
    }
}

/// Why a license file was rejected. Each check of the format has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// No armor, not `payload.signature`, bad base64url, or a payload that is not the expected
    /// JSON.
    #[error("malformed license file: {0}")]
    Malformed(String),

    /// The payload names a `kid` that is not among the pinned keys.
    #[error("license file signed by unknown key {0:?}")]
    UnknownKey(String),

    /// The signature does not verify with the pinned key named by the payload's `kid`.
    #[error("license file signature does not verify")]
    BadSignature,

    /// The payload's `format` is not `licensing-file/v1`.
    #[error("unsupported license file format {0:?}")]
    UnsupportedFormat(String),

    /// The file was issued for another tenant.
    #[error("license file is for tenant {found:?}, expected {expected:?}")]
    WrongTenant {
        /// The tenant the client was built for.
        expected: String,
        /// The tenant named in the file.
        found: String,
    },

    /// The file (or the license it carries) has expired.
    #[error("license file expired at {0}")]
    Expired(OffsetDateTime),

    /// The file's `issued_at` is more than five minutes in the future (clock set back?).
    #[error("license file issued in the future ({0})")]
    NotYetValid(OffsetDateTime),

    /// The file is for another license than the client's (a cached file that was swapped).
    #[error("license file is for another license")]
    WrongLicense,

    /// The file is bound to an activation on another machine.
    #[error("license file is bound to another machine")]
    WrongFingerprint,

    /// A fingerprint was given, and the file is bound to no machine at all.
    #[error("license file is not bound to this machine (it is bound to none)")]
    Unbound,
}

/// A pinned public key that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not standard base64.
    #[error("public key {kid:?} is not base64")]
    Base64 {
        /// The key id.
        kid: String,
    },
    /// Not 32 bytes, or not a valid Ed25519 point.
    #[error("public key {kid:?} is not a 32-byte Ed25519 public key")]
    Invalid {
        /// The key id.
        kid: String,
    },
}
