use crate::clock::ts;
use crate::ids::TenantId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The contract's audit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditCode {
    #[serde(rename = "TENANT.PROVISIONED")]
    TenantProvisioned,
    #[serde(rename = "TENANT.SUSPENDED")]
    TenantSuspended,
    #[serde(rename = "TENANT.REACTIVATED")]
    TenantReactivated,
    #[serde(rename = "TENANT.CLOSED")]
    TenantClosed,
    #[serde(rename = "TENANT.UPDATED")]
    TenantUpdated,
    #[serde(rename = "SIGNING_KEY.ROTATED")]
    SigningKeyRotated,
    #[serde(rename = "PRODUCT.CREATED")]
    ProductCreated,
    #[serde(rename = "PRODUCT.UPDATED")]
    ProductUpdated,
    #[serde(rename = "POLICY.CREATED")]
    PolicyCreated,
    #[serde(rename = "POLICY.UPDATED")]
    PolicyUpdated,
    #[serde(rename = "LICENSE.CREATED")]
    LicenseCreated,
    #[serde(rename = "LICENSE.UPDATED")]
    LicenseUpdated,
    #[serde(rename = "LICENSE.SUSPENDED")]
    LicenseSuspended,
    #[serde(rename = "LICENSE.RESUMED")]
    LicenseResumed,
    #[serde(rename = "LICENSE.CANCELLED")]
    LicenseCancelled,
    #[serde(rename = "LICENSE.RENEWED")]
    LicenseRenewed,
    #[serde(rename = "LICENSE.POLICY_CHANGED")]
    LicensePolicyChanged,
    #[serde(rename = "LICENSE.PAST_DUE")]
    LicensePastDue,
    #[serde(rename = "LICENSE.COMMERCIAL_UPDATED")]
    LicenseCommercialUpdated,
    #[serde(rename = "INVOICE.READY")]
    InvoiceReady,
    #[serde(rename = "TRIAL.STARTED")]
    TrialStarted,
    #[serde(rename = "ACTIVATION.CREATED")]
    ActivationCreated,
    #[serde(rename = "ACTIVATION.DELETED")]
    ActivationDeleted,
    #[serde(rename = "USAGE.RECORDED")]
    UsageRecorded,
    #[serde(rename = "APIKEY.CREATED")]
    ApiKeyCreated,
    #[serde(rename = "APIKEY.REVOKED")]
    ApiKeyRevoked,
    #[serde(rename = "STRIPE.EVENT_APPLIED")]
    StripeEventApplied,
    #[serde(rename = "INTEGRATION.STRIPE_UPDATED")]
    StripeIntegrationUpdated,
    #[serde(rename = "WEBHOOK_ENDPOINT.CREATED")]
    WebhookEndpointCreated,
    #[serde(rename = "WEBHOOK_ENDPOINT.UPDATED")]
    WebhookEndpointUpdated,
    #[serde(rename = "WEBHOOK_ENDPOINT.DELETED")]
    WebhookEndpointDeleted,
    #[serde(rename = "WEBHOOK_ENDPOINT.DISABLED")]
    WebhookEndpointDisabled,
    #[serde(rename = "STAFF.INVITED")]
    StaffInvited,
    #[serde(rename = "STAFF.REMOVED")]
    StaffRemoved,
    /// Customer organizations (written in the organization's own trail).
    #[serde(rename = "CUSTOMER.REGISTERED")]
    CustomerRegistered,
    #[serde(rename = "CUSTOMER.VERIFIED")]
    CustomerVerified,
    /// A vendor linked one of its CRM accounts to a verified organization
    /// (written in the vendor's trail).
    #[serde(rename = "CUSTOMER.CRM_LINKED")]
    CustomerCrmLinked,
    #[serde(rename = "MEMBER.ADDED")]
    MemberAdded,
    #[serde(rename = "MEMBER.ROLE_CHANGED")]
    MemberRoleChanged,
    #[serde(rename = "MEMBER.REMOVED")]
    MemberRemoved,
    /// Grants (issue 20, part B): in the organization's trail.
    #[serde(rename = "GRANT.UPDATED")]
    GrantUpdated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Notice,
    Warning,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub tenant_id: TenantId,
    pub code: AuditCode,
    /// The API key id, `stripe` or `operator`.
    pub actor: String,
    pub target_id: String,
    #[serde(with = "ts")]
    pub at: OffsetDateTime,
    pub request_id: String,
    pub severity: Severity,
    #[serde(default)]
    pub data: serde_json::Value,
}

impl AuditEvent {
    pub fn new(
        tenant_id: &TenantId,
        code: AuditCode,
        actor: &str,
        target_id: &str,
        at: OffsetDateTime,
        request_id: &str,
    ) -> Self {
        use AuditCode::*;
        let severity = match code {
            TenantSuspended
            | TenantClosed
            | LicenseSuspended
            | LicenseCancelled
            | ApiKeyRevoked
            | WebhookEndpointDisabled
            | StaffRemoved
            | MemberRemoved => Severity::Warning,
            ApiKeyCreated
            | StripeIntegrationUpdated
            | StaffInvited
            | MemberAdded
            | MemberRoleChanged
            | CustomerVerified
            | CustomerCrmLinked
            | LicensePolicyChanged
            | LicensePastDue
            | LicenseCommercialUpdated
            | WebhookEndpointCreated
            | WebhookEndpointDeleted
            | TenantUpdated
            | SigningKeyRotated => Severity::Notice,
            _ => Severity::Info,
        };
        // ULIDs sort by time, so the sort key is the event id; the generator
        // keeps events of the same millisecond in the order they were made.
        let id = format!("aud_{}", monotonic_ulid(at));
        Self {
            id,
            tenant_id: tenant_id.clone(),
            code,
            actor: actor.to_string(),
            target_id: target_id.to_string(),
            at,
            request_id: request_id.to_string(),
            severity,
            data: serde_json::Value::Null,
        }
    }
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}

/// Who did it and under which request: carried into every mutation.
#[derive(Debug, Clone)]
pub struct Actor {
    pub actor: String,
    pub request_id: String,
}

impl Actor {
    /// The audit event of a change this actor makes to `target` now.
    pub fn audit(
        &self,
        tenant: &TenantId,
        code: AuditCode,
        target: &str,
        now: OffsetDateTime,
    ) -> AuditEvent {
        AuditEvent::new(tenant, code, &self.actor, target, now, &self.request_id)
    }
}

/// A ULID for `at`; ULIDs made by this process for the same millisecond
/// increase in the order they were made (the last one of each recent
/// millisecond is remembered, so clocks that differ — tests with a manual
/// clock beside real time — do not reset each other).
pub fn monotonic_ulid(at: OffsetDateTime) -> ulid::Ulid {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static LAST: OnceLock<Mutex<HashMap<u64, ulid::Ulid>>> = OnceLock::new();
    let fresh = ulid::Ulid::from_datetime(at.into());
    let mut last = LAST
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if last.len() > 1024 {
        last.clear();
    }
    let next = match last.get(&fresh.timestamp_ms()) {
        Some(prev) => prev.increment().unwrap_or(fresh),
        None => fresh,
    };
    last.insert(fresh.timestamp_ms(), next);
    next
}

/// One append-only usage event; it is also the audit entry of the record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageEvent {
    pub id: String,
    pub code: String,
    pub license_id: crate::ids::LicenseId,
    pub metric: crate::ids::Metric,
    pub quantity: u64,
    pub period: String,
    #[serde(with = "ts")]
    pub timestamp: OffsetDateTime,
    #[serde(with = "ts")]
    pub recorded_at: OffsetDateTime,
    pub actor: String,
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}
