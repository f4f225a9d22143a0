//! Domain types and the pure rules over them (no I/O here).

pub mod audit;
pub mod catalog;
pub mod license;
pub mod tenant;

pub use audit::*;
pub use catalog::*;
pub use license::*;
pub use tenant::*;
