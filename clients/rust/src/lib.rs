//! The client that desktop apps embed to talk to the licensing service.
//!
//! - [`Client::ensure_licensed`] is the recommended use for a node-locked license: a cached,
//!   verified license file younger than a day costs no call; else one checkout (plus one
//!   activation on the first run); offline, the cached file while it is valid.
//!   [`Client::lease`] is the recommended use for a floating one.
//! - [`Client`] validates a license, activates and deactivates this machine, keeps floating
//!   leases alive ([`Client::spawn_heartbeat`]) and checks out offline license files
//!   ([`Client::checkout`], [`Client::offline_license`], [`Client::validate_or_offline`]).
//! - Every answer is signed by the tenant's Ed25519 key (signature version 2) over the request's
//!   method, path, tenant, nonce and body and the answer's date and body ([`signed_message`]);
//!   the client checks it against keys pinned at build time ([`PinnedKeys`]), over the exact
//!   bytes it sent, and its date against the client's clock (within [`MAX_ANSWER_SKEW`]),
//!   before reading anything, and an answer that does not verify is
//!   [`Error::Unverified`]: a rewritten request cannot be passed off with a genuine answer.
//! - [`verify_license_file`] verifies an offline license file without the network.
//!
//! ```no_run
//! # async fn run() -> Result<(), licensing_client::Error> {
//! use licensing_client::Client;
//!
//! let client = Client::builder()
//!     .base_url("https://licensing.example.com")
//!     .tenant_id("acme")
//!     .license_key("ABCDE-FGHIJ-KLMNO-PQRST")
//!     .pin_key("v1", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
//!     .build()?;
//! let validation = client.validate(Some("machine-fingerprint")).await?;
//! println!("{:?}", validation.code);
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
mod file;
mod heartbeat;
mod keys;
mod session;
mod signature;
mod types;

pub use client::{Client, ClientBuilder, Clock, Verdict, DEFAULT_TIMEOUT};
pub use error::{Error, FileError, KeyError};
pub use file::{
    normalise_fingerprint, verify_license_file, FileActivation, LicenseFile, FORMAT, MAX_CLOCK_SKEW,
};
pub use heartbeat::{HeartbeatHandle, HeartbeatResult};
pub use keys::PinnedKeys;
pub use session::{Lease, Session, Source, REFRESH_AFTER, SESSION_FILE_TTL};
pub use signature::{
    signed_message, verify_answer, SentRequest, SignatureHeader, MAX_ANSWER_SKEW, SIGNATURE_VERSION,
};
pub use types::{Activation, License, LicenseStatus, Seats, Validation, ValidationCode};

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
