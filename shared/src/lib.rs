//! The licensing service's domain crate: types, use cases, the DynamoDB store,
//! AWS adapters and the HTTP envelope. Every Lambda function is a thin shell
//! around [`http::handle`] or an SQS use case.

pub mod clock;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod ids;
pub mod store;

pub use error::{Error, Result};
