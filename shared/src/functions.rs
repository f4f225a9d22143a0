//! The deployable functions and the contract's routes: which function serves
//! which path, and what each needs from its environment. The SAM template,
//! the dev server and the template check all follow this table.

use crate::config::Setting;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    Validate,
    Activate,
    Entitlements,
    Usage,
    Manage,
    StripeWebhook,
    ProvisionTenant,
    ProvisionWorker,
}

impl Function {
    pub const ALL: [Function; 8] = [
        Function::Validate,
        Function::Activate,
        Function::Entitlements,
        Function::Usage,
        Function::Manage,
        Function::StripeWebhook,
        Function::ProvisionTenant,
        Function::ProvisionWorker,
    ];

    /// The crate (and binary) name under `functions/`.
    pub fn name(self) -> &'static str {
        match self {
            Function::Validate => "validate",
            Function::Activate => "activate",
            Function::Entitlements => "entitlements",
            Function::Usage => "usage",
            Function::Manage => "manage",
            Function::StripeWebhook => "stripe-webhook",
            Function::ProvisionTenant => "provision-tenant",
            Function::ProvisionWorker => "provision-worker",
        }
    }

    pub fn settings(self) -> &'static [Setting] {
        use Setting::*;
        match self {
            Function::Validate | Function::Activate | Function::Entitlements | Function::Usage => {
                &[TableName, PepperSecretId]
            }
            Function::Manage => &[TableName, PepperSecretId, SigningKeySecretId, SecretsPrefix],
            Function::StripeWebhook => &[TableName, SecretsPrefix],
            Function::ProvisionTenant => &[
                TableName,
                PepperSecretId,
                OperatorTokenSecretId,
                ProvisioningQueueUrl,
            ],
            Function::ProvisionWorker => &[TableName],
        }
    }
}

/// Who may call a route and how they prove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Integration,
    Manage,
    Platform,
    Stripe,
    Public,
}

/// Every operation the HTTP API offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Health,
    Validate,
    Activate,
    DeactivateById,
    DeactivateByFingerprint,
    EntitlementsCheck,
    UsageRecord,
    ProductCreate,
    ProductList,
    ProductGet,
    ProductPatch,
    PolicyCreate,
    PolicyList,
    PolicyGet,
    PolicyPatch,
    LicenseCreate,
    LicenseList,
    LicenseGet,
    LicensePatch,
    LicenseSuspend,
    LicenseResume,
    LicenseCancel,
    LicenseRenew,
    LicenseActivations,
    UsageGet,
    UsageExport,
    UsageEvents,
    AuditList,
    ApiKeyCreate,
    ApiKeyList,
    ApiKeyRevoke,
    StripeIntegrationPut,
    TenantCreate,
    TenantGet,
    TenantSuspend,
    TenantReactivate,
    TenantClose,
    StripeWebhook,
}

#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// API Gateway route syntax: `{name}` is one path segment.
    pub path: &'static str,
    pub op: Op,
    /// `None`: served by the dev server only.
    pub function: Option<Function>,
    pub surface: Surface,
}

const fn r(
    method: &'static str,
    path: &'static str,
    op: Op,
    function: Option<Function>,
    surface: Surface,
) -> Route {
    Route {
        method,
        path,
        op,
        function,
        surface,
    }
}

use Function as F;
use Surface as S;

pub const ROUTES: &[Route] = &[
    r("GET", "/v1/health", Op::Health, None, S::Public),
    r(
        "POST",
        "/v1/integration/licenses/{key}/validate",
        Op::Validate,
        Some(F::Validate),
        S::Integration,
    ),
    r(
        "POST",
        "/v1/integration/activations",
        Op::Activate,
        Some(F::Activate),
        S::Integration,
    ),
    r(
        "DELETE",
        "/v1/integration/activations/{activation_id}",
        Op::DeactivateById,
        Some(F::Activate),
        S::Integration,
    ),
    r(
        "POST",
        "/v1/integration/activations/deactivate",
        Op::DeactivateByFingerprint,
        Some(F::Activate),
        S::Integration,
    ),
    r(
        "POST",
        "/v1/integration/entitlements/check",
        Op::EntitlementsCheck,
        Some(F::Entitlements),
        S::Integration,
    ),
    r(
        "POST",
        "/v1/integration/usage/record",
        Op::UsageRecord,
        Some(F::Usage),
        S::Integration,
    ),
    r(
        "POST",
        "/v1/manage/products",
        Op::ProductCreate,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "GET",
        "/v1/manage/products",
        Op::ProductList,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "GET",
        "/v1/manage/products/{code}",
        Op::ProductGet,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "PATCH",
        "/v1/manage/products/{code}",
        Op::ProductPatch,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "POST",
        "/v1/manage/policies",
        Op::PolicyCreate,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "GET",
        "/v1/manage/policies",
        Op::PolicyList,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "GET",
        "/v1/manage/policies/{id}",
        Op::PolicyGet,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "PATCH",
        "/v1/manage/policies/{id}",
        Op::PolicyPatch,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "POST",
        "/v1/manage/licenses",
        Op::LicenseCreate,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "GET",
        "/v1/manage/licenses",
        Op::LicenseList,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "GET",
        "/v1/manage/licenses/{id}",
        Op::LicenseGet,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "PATCH",
        "/v1/manage/licenses/{id}",
        Op::LicensePatch,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "POST",
        "/v1/manage/licenses/{id}/suspend",
        Op::LicenseSuspend,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "POST",
        "/v1/manage/licenses/{id}/resume",
        Op::LicenseResume,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "POST",
        "/v1/manage/licenses/{id}/cancel",
        Op::LicenseCancel,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "POST",
        "/v1/manage/licenses/{id}/renew",
        Op::LicenseRenew,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "GET",
        "/v1/manage/licenses/{id}/activations",
        Op::LicenseActivations,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "GET",
        "/v1/manage/usage",
        Op::UsageGet,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "GET",
        "/v1/manage/usage/export",
        Op::UsageExport,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "GET",
        "/v1/manage/usage/events",
        Op::UsageEvents,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "GET",
        "/v1/manage/audit-events",
        Op::AuditList,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "POST",
        "/v1/manage/api-keys",
        Op::ApiKeyCreate,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "GET",
        "/v1/manage/api-keys",
        Op::ApiKeyList,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "DELETE",
        "/v1/manage/api-keys/{id}",
        Op::ApiKeyRevoke,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "PUT",
        "/v1/manage/integrations/stripe",
        Op::StripeIntegrationPut,
        Some(F::Manage),
        S::Manage,
    ),
    r(
        "POST",
        "/v1/platform/tenants",
        Op::TenantCreate,
        Some(F::ProvisionTenant),
        S::Platform,
    ),
    r(
        "GET",
        "/v1/platform/tenants/{id}",
        Op::TenantGet,
        Some(F::ProvisionTenant),
        S::Platform,
    ),
    r(
        "POST",
        "/v1/platform/tenants/{id}/suspend",
        Op::TenantSuspend,
        Some(F::ProvisionTenant),
        S::Platform,
    ),
    r(
        "POST",
        "/v1/platform/tenants/{id}/reactivate",
        Op::TenantReactivate,
        Some(F::ProvisionTenant),
        S::Platform,
    ),
    r(
        "POST",
        "/v1/platform/tenants/{id}/close",
        Op::TenantClose,
        Some(F::ProvisionTenant),
        S::Platform,
    ),
    r(
        "POST",
        "/v1/stripe/webhook/{tenant_id}",
        Op::StripeWebhook,
        Some(F::StripeWebhook),
        S::Stripe,
    ),
];

pub fn routes_of(function: Function) -> impl Iterator<Item = &'static Route> {
    ROUTES.iter().filter(move |r| r.function == Some(function))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn routes_are_unique_and_every_http_function_has_one() {
        let mut seen = HashSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method, r.path)),
                "duplicate route {} {}",
                r.method,
                r.path
            );
        }
        for f in Function::ALL {
            let n = routes_of(f).count();
            assert_eq!(
                n == 0,
                f == Function::ProvisionWorker,
                "{f:?} has {n} routes"
            );
        }
    }
}
