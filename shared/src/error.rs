//! The domain error: every failure a use case can report. [`crate::http::envelope`]
//! is the one place that turns it into a status, a code and a type.

use crate::ids::InvalidId;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request cannot be read at all (JSON syntax, body too large).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 422: the request was read but a value is not acceptable.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    /// 403 with its own code (e.g. `LICENSE_SCOPE_MISMATCH`).
    #[error("{message}")]
    Denied { code: &'static str, message: String },
    /// The path exists with other methods (listed in `allow`).
    #[error("{method} is not allowed here; allowed: {}", allow.join(", "))]
    MethodNotAllowed {
        method: String,
        allow: Vec<&'static str>,
    },
    #[error("the tenant is not active")]
    TenantInactive,
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the license is {0}")]
    LicenseNotActive(&'static str),
    #[error("all {limit} seats of this license are in use")]
    TooManyActivations { limit: u32 },
    #[error("recording {quantity} would take {metric} past its limit of {limit} ({used} used)")]
    QuotaExceeded {
        metric: String,
        limit: u64,
        used: u64,
        quantity: u64,
    },
    #[error("the tenant's plan allows at most {limit} licenses")]
    PlanLimitReached { limit: u64 },
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    #[error("the license allows at most {count} deactivations per period; this one would pass it")]
    DeactivationLimitReached {
        count: u32,
        retry_after_secs: Option<u64>,
    },
    #[error("the lease has expired; check out again")]
    LeaseExpired,
    /// This e-mail or fingerprint had a trial of the product within its
    /// cooldown; another may start at `retry_after`.
    #[error("a trial of this product was already started for this e-mail or device")]
    TrialAlreadyUsed { retry_after: time::OffsetDateTime },
    /// The tenant's public trials for this UTC day are all taken.
    #[error("this vendor's {limit} public trials for today are taken; try again tomorrow (UTC)")]
    TrialCapReached { limit: u32, retry_after_secs: u64 },
    #[error("the Stripe-Signature header does not verify")]
    InvalidSignature,
    /// A license-key request without a usable `X-Nonce`: its answer is
    /// signed over the nonce, which is what keeps a client app's answers
    /// from being replayed.
    #[error(
        "a request authenticated with a license key must send X-Nonce: \
         16 to 128 printable ASCII characters, fresh for each request"
    )]
    NonceRequired,
    /// A client app (license key) checked out a license file without naming
    /// the activated machine it is for.
    #[error(
        "a license key may check out only a license file bound to an activated machine: \
         send that machine's fingerprint"
    )]
    FingerprintRequired,
    // What the store's conditional writes and reads report, in the domain's
    // words (the store names no API code; `parts` below does).
    #[error("a product with code '{0}' exists")]
    ProductExists(String),
    /// A new policy names a product that does not exist (a field of the request: 422).
    #[error("no product with code '{0}'")]
    PolicyProductMissing(String),
    /// A product's trial names a policy that is not one of the product's (422).
    #[error("trial.policy: no policy with that id belongs to this product")]
    TrialPolicyMissing,
    #[error("a license with this key exists")]
    LicenseKeyExists,
    #[error("no license with that key or id")]
    LicenseNotFound,
    #[error("no tenant '{0}'")]
    TenantNotFound(String),
    #[error("the tenant is no longer being provisioned")]
    TenantNotProvisioning,
    #[error("no API key with that id")]
    ApiKeyNotFound,
    #[error("a tenant may have at most {max} webhook endpoints")]
    WebhookEndpointLimit { max: u32 },
    /// A list cursor that this listing did not sign, or that was altered.
    #[error("cursor is not valid for this listing")]
    InvalidCursor,
    /// The store or another AWS dependency is unavailable; safe to retry.
    #[error("a dependency is unavailable; retry shortly")]
    Unavailable(String),
    /// A bug or an impossible state; the detail is logged, never returned.
    #[error("internal error")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            code,
            message: message.into(),
        }
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Error::Invalid {
            code: "VALIDATION_ERROR",
            message: message.into(),
        }
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Error::NotFound {
            code,
            message: message.into(),
        }
    }
    pub fn denied(code: &'static str, message: impl Into<String>) -> Self {
        Error::Denied {
            code,
            message: message.into(),
        }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Error::Internal(detail.to_string())
    }

    /// HTTP status, contract code and contract type.
    pub fn parts(&self) -> (u16, &'static str, &'static str) {
        use Error::*;
        match self {
            BadRequest { code, .. } => (400, code, "invalid_request_error"),
            Invalid { code, .. } => (422, code, "invalid_request_error"),
            InvalidSignature => (400, "INVALID_SIGNATURE", "invalid_request_error"),
            NonceRequired => (400, "NONCE_REQUIRED", "invalid_request_error"),
            FingerprintRequired => (422, "FINGERPRINT_REQUIRED", "invalid_request_error"),
            InvalidCursor => (400, "INVALID_CURSOR", "invalid_request_error"),
            PolicyProductMissing(_) => (422, "PRODUCT_NOT_FOUND", "invalid_request_error"),
            TrialPolicyMissing => (422, "POLICY_NOT_FOUND", "invalid_request_error"),
            LicenseNotFound => (404, "LICENSE_NOT_FOUND", "not_found_error"),
            TenantNotFound(_) => (404, "TENANT_NOT_FOUND", "not_found_error"),
            ApiKeyNotFound => (404, "API_KEY_NOT_FOUND", "not_found_error"),
            ProductExists(_) => (409, "PRODUCT_EXISTS", "conflict_error"),
            LicenseKeyExists => (409, "LICENSE_KEY_EXISTS", "conflict_error"),
            TenantNotProvisioning => (409, "TENANT_NOT_PROVISIONING", "conflict_error"),
            WebhookEndpointLimit { .. } => (409, "WEBHOOK_ENDPOINT_LIMIT", "conflict_error"),
            Unauthenticated => (401, "UNAUTHENTICATED", "authentication_error"),
            Forbidden(_) => (403, "FORBIDDEN", "permission_error"),
            Denied { code, .. } => (403, code, "permission_error"),
            MethodNotAllowed { .. } => (405, "METHOD_NOT_ALLOWED", "invalid_request_error"),
            TenantInactive => (403, "TENANT_INACTIVE", "permission_error"),
            LicenseNotActive(_) => (403, "LICENSE_NOT_ACTIVE", "permission_error"),
            QuotaExceeded { .. } => (403, "QUOTA_EXCEEDED", "permission_error"),
            PlanLimitReached { .. } => (403, "PLAN_LIMIT_REACHED", "permission_error"),
            NotFound { code, .. } => (404, code, "not_found_error"),
            Conflict { code, .. } => (409, code, "conflict_error"),
            TooManyActivations { .. } => (409, "TOO_MANY_ACTIVATIONS", "conflict_error"),
            RateLimited { .. } => (429, "RATE_LIMITED", "rate_limit_error"),
            DeactivationLimitReached { .. } => {
                (429, "DEACTIVATION_LIMIT_REACHED", "rate_limit_error")
            }
            LeaseExpired => (409, "LEASE_EXPIRED", "conflict_error"),
            TrialAlreadyUsed { .. } => (409, "TRIAL_ALREADY_USED", "conflict_error"),
            TrialCapReached { .. } => (429, "TRIAL_CAP_REACHED", "rate_limit_error"),
            Unavailable(_) => (503, "SERVICE_UNAVAILABLE", "api_error"),
            Internal(_) => (500, "INTERNAL_ERROR", "api_error"),
        }
    }

    /// The sentence shown to the caller. Internal details never leave.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "An internal error occurred; it has been logged.".into(),
            Error::Unavailable(_) => "A dependency is unavailable; retry shortly.".into(),
            other => other.to_string(),
        }
    }
}

impl From<InvalidId> for Error {
    fn from(e: InvalidId) -> Self {
        Error::validation(e.to_string())
    }
}

pub fn trial_not_available() -> Error {
    Error::not_found("TRIAL_NOT_AVAILABLE", "this product offers no trial")
}

pub fn license_not_found() -> Error {
    Error::LicenseNotFound
}
