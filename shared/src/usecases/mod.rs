//! Use cases: the service's behaviour, independent of HTTP.

pub mod catalog;
pub mod licensing;
pub mod metering;
pub mod portal;
pub mod stripe;
pub mod tenants;
pub mod trials;
