//! How a customer organization's records look in the JSON API.

use crate::clock::rfc3339;
use crate::domain::{CustomerKeyRecord, CustomerOrg, DirectoryEntry, Member};
use serde_json::{json, Value};

/// An app key; never its secret or hash.
pub fn key_view(k: &CustomerKeyRecord) -> Value {
    json!({
        "id": k.id,
        "app_name": k.app_name,
        "app_type": k.app_type,
        "scopes": k.scopes,
        "allowed_hostnames": k.bindings.allowed_hostnames,
        "allowed_cidrs": k.bindings.allowed_cidrs.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "client_cert_sha256": k.bindings.client_cert_sha256,
        "created_by": k.created_by,
        "created_at": rfc3339(k.created_at),
        "expires_at": k.expires_at.map(rfc3339),
        "revoked_at": k.revoked_at.map(rfc3339),
        "last_used_at": k.last_used_at.map(rfc3339),
    })
}

pub fn member_view(m: &Member) -> Value {
    json!({
        "email": m.email,
        "role": m.role,
        "name": m.name,
        "invited_by": m.invited_by,
        "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at),
    })
}

/// An organization as vendors see it: public fields only.
pub fn directory_view(e: &DirectoryEntry) -> Value {
    json!({
        "id": e.customer_id,
        "name": e.name,
        "domain": e.domain,
        "country": e.country,
    })
}

/// The registration's answer: the organization and the record to publish.
pub fn registration_view(org: &CustomerOrg) -> Value {
    let (name, value) = org.dns_record();
    json!({
        "customer_id": org.tenant_id,
        "status": org.status.as_str(),
        "domain": org.domain,
        "verification": {
            "method": "dns",
            "dns_record": { "type": "TXT", "name": name, "value": value },
        },
    })
}
