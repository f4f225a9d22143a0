//! Tenants: the operator's request, reserving the id, and the provisioning
//! pipeline that seeds every record a tenant starts with. The Platform API,
//! the SQS worker and the bootstrap CLI all go through this code.

mod admin;
mod pipeline;
mod request;

pub use admin::{get, lifecycle, new_admin_key, patch_settings, rotate_signing_key, TenantMove};
pub use pipeline::{provision, NoHook, StageHook, STAGES};
pub use request::{bootstrap, request, reserve, Bootstrapped, Reserved, TenantRequest};
