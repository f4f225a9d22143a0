//! The licensing service's domain crate: types, use cases, the DynamoDB store,
//! AWS adapters and the HTTP envelope. Every Lambda function is a thin shell
//! around [`http::handle`] or an SQS use case.

pub mod app;
pub mod aws;
pub mod cache;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod dns;
pub mod domain;
pub mod error;
pub mod functions;
pub mod http;
pub mod ids;
#[cfg(feature = "dev")]
pub mod infra;
pub mod lambda;
pub mod mail;
pub mod portal;
pub mod provisioning;
pub mod ratelimit;
pub mod sqs;
pub mod store;
pub mod telemetry;
pub mod usecases;
pub mod views;
pub mod webhooks;

pub use error::{Error, Result};
