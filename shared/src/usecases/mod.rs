//! Use cases: the service's behaviour, independent of HTTP.
//!
//! Every use case takes the tenant it acts for as a [`TenantStore`] (the
//! store bound to one tenant). The edges hold one and pass it through
//! unopened; they name it from here, never from `store`.

pub use crate::store::{Page, TenantStore};

pub mod audit;
pub mod billing;
pub mod catalog;
pub mod customers;
pub mod licensing;
pub mod metering;
pub mod pool;
pub mod portal;
pub mod stripe;
pub mod tenants;
pub mod trials;
pub mod webhooks;
