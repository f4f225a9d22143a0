//! Domain types and the pure rules over them (no I/O here).

pub mod aggregation;
pub mod audit;
pub mod billing;
pub mod catalog;
pub mod customer;
pub mod grants;
pub mod license;
pub mod meter_events;
pub mod metering;
pub mod money;
pub mod portal;
pub mod search;
pub mod seats;
pub mod stripe;
pub mod tenant;
pub mod trial;
pub mod webhook;

pub use aggregation::{Aggregation, PropertyName};
pub use audit::*;
pub use catalog::*;
pub use customer::*;
pub use license::*;
pub use portal::{MagicLink, Role, Session, StaffMember};
pub use search::*;
pub use tenant::*;
pub use trial::*;

/// A free-text field: 1 to `max` characters, not blank, no control characters.
pub fn bounded(field: &str, v: &str, max: usize) -> Result<(), crate::error::Error> {
    if v.trim().is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        let msg = format!("{field} must be 1 to {max} printable characters");
        return Err(crate::error::Error::validation(msg));
    }
    Ok(())
}
