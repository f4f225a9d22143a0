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
    WebhookFanout,
    WebhookDeliver,
    Portal,
    BillingClose,
    /// A customer organization's own API (`/v1/customer/...`).
    Customer,
    /// Registration and domain proof of customer organizations
    /// (`/v1/public/customers/...`), without a credential.
    CustomerRegister,
}

impl Function {
    pub const ALL: [Function; 14] = [
        Function::Validate,
        Function::Activate,
        Function::Entitlements,
        Function::Usage,
        Function::Manage,
        Function::StripeWebhook,
        Function::ProvisionTenant,
        Function::ProvisionWorker,
        Function::WebhookFanout,
        Function::WebhookDeliver,
        Function::Portal,
        Function::BillingClose,
        Function::Customer,
        Function::CustomerRegister,
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
            Function::WebhookFanout => "webhook-fanout",
            Function::WebhookDeliver => "webhook-deliver",
            Function::Portal => "portal",
            Function::BillingClose => "billing-close",
            Function::Customer => "customer",
            Function::CustomerRegister => "customer-register",
        }
    }

    pub fn settings(self) -> &'static [Setting] {
        use Setting::*;
        match self {
            // Integration answers are signed with the tenant's Ed25519 key.
            Function::Validate | Function::Entitlements | Function::Usage => {
                &[TableName, PepperSecretId, SigningMasterSecretId]
            }
            // Public trials e-mail a verification link to the portal.
            Function::Activate => &[
                TableName,
                PepperSecretId,
                SigningMasterSecretId,
                PortalBaseUrl,
                PortalSender,
            ],
            // Webhook endpoints: secrets shown at creation, test sends, retries.
            Function::Manage => &[
                TableName,
                PepperSecretId,
                SigningKeySecretId,
                SigningMasterSecretId,
                SecretsPrefix,
                WebhookMasterSecretId,
                WebhookAllowLoopbackHttp,
                // A license granted to an organization e-mails its admins.
                PortalSender,
            ],
            Function::StripeWebhook => &[TableName, SecretsPrefix],
            Function::ProvisionTenant => &[
                TableName,
                PepperSecretId,
                OperatorTokenSecretId,
                ProvisioningQueueUrl,
            ],
            Function::ProvisionWorker => &[TableName],
            // A monthly schedule: invoices and their audit items (the outbox).
            Function::BillingClose => &[TableName],
            // The table's stream: one queued message per event and endpoint.
            Function::WebhookFanout => &[TableName, WebhookQueueUrl],
            // The delivery queue: sign, POST, log, back off.
            Function::WebhookDeliver => &[
                TableName,
                WebhookMasterSecretId,
                WebhookQueueUrl,
                WebhookAllowLoopbackHttp,
                WebhookRetryBaseSeconds,
                // Billing meter events ride the same queue.
                SecretsPrefix,
                StripeApiBase,
            ],
            // The pepper hashes API keys staff create; the signing key signs
            // list cursors; the master secret signs customers' license files.
            Function::Portal => &[
                TableName,
                PepperSecretId,
                SigningKeySecretId,
                SigningMasterSecretId,
                PortalBaseUrl,
                PortalSender,
            ],
            // The pepper hashes the organization's app keys; the signing key
            // signs list cursors; members are invited by e-mail, and a
            // session's non-GET calls must come from the portal's origin.
            Function::Customer => &[
                TableName,
                PepperSecretId,
                SigningKeySecretId,
                PortalBaseUrl,
                PortalSender,
            ],
            // Registration and domain proof; the verified admin is e-mailed a
            // sign-in link. (`LICENSING_DNS_RESOLVER` is optional: see
            // `config::Config::dns_resolver`.)
            Function::CustomerRegister => &[TableName, PortalBaseUrl, PortalSender],
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
    /// Server-rendered HTML for people (docs/portal.md), not the JSON API.
    Portal,
    /// A customer organization's API: its app keys or its members' sessions.
    Customer,
}

impl Surface {
    /// The surface of a path no route serves (a 404 or 405 there is still
    /// that surface's answer): that of the routes in the same section, the
    /// path up to its third `/` (`/v1/integration/`). Each section belongs to
    /// one surface (checked below).
    pub fn of_unrouted(path: &str) -> Option<Surface> {
        let section = section(path)?;
        ROUTES
            .iter()
            .find(|r| section_of_route(r.path) == Some(section))
            .map(Route::surface)
    }
}

/// A path up to and including its third `/`, if it has one.
fn section(path: &str) -> Option<&str> {
    let (end, _) = path.match_indices('/').nth(2)?;
    Some(&path[..=end])
}

/// A route's section: only its literal segments count, so a route whose
/// third `/` follows a parameter has none.
fn section_of_route(path: &'static str) -> Option<&'static str> {
    section(path).filter(|s| !s.contains('{'))
}

/// Every operation the HTTP API offers, by surface. Each surface's handler
/// matches its enum exhaustively: a new operation does not compile until it
/// is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Public(PublicOp),
    Integration(IntegrationOp),
    Manage(ManageOp),
    Platform(PlatformOp),
    Stripe(StripeOp),
    /// Every page under `/portal/`: the portal routes within itself.
    Portal,
    Customer(CustomerOp),
}

impl Op {
    pub fn surface(self) -> Surface {
        match self {
            Op::Public(_) => Surface::Public,
            Op::Integration(_) => Surface::Integration,
            Op::Manage(_) => Surface::Manage,
            Op::Platform(_) => Surface::Platform,
            Op::Stripe(_) => Surface::Stripe,
            Op::Portal => Surface::Portal,
            Op::Customer(_) => Surface::Customer,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicOp {
    Health,
    SigningKeys,
    /// Register a customer organization (202, pending its domain proof).
    CustomerRegister,
    /// Check its DNS TXT record and activate it.
    CustomerVerify,
}

/// The operations of a customer organization's API, `/v1/customer/...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CustomerOp {
    /// Who a portal session is (and its CSRF token).
    Session,
    ApiKey(ApiKeyOp),
    Member(MemberOp),
    AuditList,
    /// The pool of granted licenses (issue 20, part B).
    Pool(PoolOp),
}

/// The organization's pool: catalog, checkouts, its overage caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolOp {
    Catalog,
    ListCheckouts,
    Checkout,
    Heartbeat,
    Return,
    SetOverageLimit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberOp {
    List,
    Add,
    Patch,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrationOp {
    Validate,
    Activate,
    DeactivateById,
    DeactivateByFingerprint,
    Heartbeat,
    Checkout,
    EntitlementsCheck,
    UsageRecord,
    UsageBatch,
    Trial,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManageOp {
    Product(ProductOp),
    Policy(PolicyOp),
    License(LicenseOp),
    Usage(UsageOp),
    AuditList,
    SigningKeyRotate,
    ApiKey(ApiKeyOp),
    StripeIntegrationPut,
    Webhook(WebhookOp),
    /// Remove an invited staff member of the portal.
    StaffRemove,
    /// The overage export (CSV, JSON or PDF).
    BillingOverage,
    /// Search the directory of verified customer organizations.
    CustomerSearch,
    /// Link one of the vendor's CRM accounts to an organization.
    CustomerCrmPut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookOp {
    Create,
    List,
    Get,
    Patch,
    Delete,
    Deliveries,
    Retry,
    Test,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProductOp {
    Create,
    List,
    Get,
    Patch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyOp {
    Create,
    List,
    Get,
    Patch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LicenseOp {
    Create,
    List,
    Get,
    Patch,
    Suspend,
    Resume,
    Cancel,
    Renew,
    Activations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageOp {
    Get,
    Export,
    Events,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiKeyOp {
    Create,
    List,
    Revoke,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlatformOp {
    TenantCreate,
    TenantGet,
    TenantSuspend,
    TenantReactivate,
    TenantClose,
    AdminKeyCreate,
    TenantPatch,
    /// Close a billing period for every tenant: one `invoice.ready` per
    /// license with commercial terms.
    BillingClosePeriod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StripeOp {
    Webhook,
}

#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `ANY`: every method (the portal's catch-all).
    pub method: &'static str,
    /// API Gateway route syntax: `{name}` is one path segment, `{name+}`
    /// (last) the rest of the path.
    pub path: &'static str,
    pub op: Op,
    /// `None`: served by the dev server only.
    pub function: Option<Function>,
}

impl Route {
    pub fn surface(&self) -> Surface {
        self.op.surface()
    }
}

const fn r(method: &'static str, path: &'static str, op: Op, function: Option<Function>) -> Route {
    Route {
        method,
        path,
        op,
        function,
    }
}

use ApiKeyOp as K;
use Function as F;
use IntegrationOp as I;
use LicenseOp as L;
use ManageOp as M;
use PolicyOp as Po;
use ProductOp as Pr;
use UsageOp as U;
use WebhookOp as W;

const fn int(op: IntegrationOp) -> Op {
    Op::Integration(op)
}
const fn man(op: ManageOp) -> Op {
    Op::Manage(op)
}
const fn plat(op: PlatformOp) -> Op {
    Op::Platform(op)
}
const fn cust(op: CustomerOp) -> Op {
    Op::Customer(op)
}
const MANAGE: Option<Function> = Some(F::Manage);
const CUSTOMER: Option<Function> = Some(F::Customer);
const PROVISION: Option<Function> = Some(F::ProvisionTenant);

pub const ROUTES: &[Route] = &[
    r("GET", "/v1/health", Op::Public(PublicOp::Health), None),
    r(
        "GET",
        "/v1/public/tenants/{tenant_id}/signing-keys",
        Op::Public(PublicOp::SigningKeys),
        Some(F::Validate),
    ),
    r(
        "POST",
        "/v1/public/customers/register",
        Op::Public(PublicOp::CustomerRegister),
        Some(F::CustomerRegister),
    ),
    r(
        "POST",
        "/v1/public/customers/{customer_id}/verify",
        Op::Public(PublicOp::CustomerVerify),
        Some(F::CustomerRegister),
    ),
    r(
        "POST",
        "/v1/integration/licenses/{key}/validate",
        int(I::Validate),
        Some(F::Validate),
    ),
    r(
        "POST",
        "/v1/integration/licenses/{key}/checkout",
        int(I::Checkout),
        Some(F::Validate),
    ),
    r(
        "POST",
        "/v1/integration/activations",
        int(I::Activate),
        Some(F::Activate),
    ),
    r(
        "DELETE",
        "/v1/integration/activations/{activation_id}",
        int(I::DeactivateById),
        Some(F::Activate),
    ),
    r(
        "POST",
        "/v1/integration/activations/{activation_id}/heartbeat",
        int(I::Heartbeat),
        Some(F::Activate),
    ),
    r(
        "POST",
        "/v1/integration/activations/deactivate",
        int(I::DeactivateByFingerprint),
        Some(F::Activate),
    ),
    r(
        "POST",
        "/v1/integration/trials",
        int(I::Trial),
        Some(F::Activate),
    ),
    r(
        "POST",
        "/v1/integration/entitlements/check",
        int(I::EntitlementsCheck),
        Some(F::Entitlements),
    ),
    r(
        "POST",
        "/v1/integration/usage/record",
        int(I::UsageRecord),
        Some(F::Usage),
    ),
    r(
        "POST",
        "/v1/integration/usage/batch",
        int(I::UsageBatch),
        Some(F::Usage),
    ),
    r(
        "POST",
        "/v1/manage/products",
        man(M::Product(Pr::Create)),
        MANAGE,
    ),
    r(
        "GET",
        "/v1/manage/products",
        man(M::Product(Pr::List)),
        MANAGE,
    ),
    r(
        "GET",
        "/v1/manage/products/{code}",
        man(M::Product(Pr::Get)),
        MANAGE,
    ),
    r(
        "PATCH",
        "/v1/manage/products/{code}",
        man(M::Product(Pr::Patch)),
        MANAGE,
    ),
    r(
        "POST",
        "/v1/manage/policies",
        man(M::Policy(Po::Create)),
        MANAGE,
    ),
    r(
        "GET",
        "/v1/manage/policies",
        man(M::Policy(Po::List)),
        MANAGE,
    ),
    r(
        "GET",
        "/v1/manage/policies/{id}",
        man(M::Policy(Po::Get)),
        MANAGE,
    ),
    r(
        "PATCH",
        "/v1/manage/policies/{id}",
        man(M::Policy(Po::Patch)),
        MANAGE,
    ),
    r(
        "POST",
        "/v1/manage/licenses",
        man(M::License(L::Create)),
        MANAGE,
    ),
    r(
        "GET",
        "/v1/manage/licenses",
        man(M::License(L::List)),
        MANAGE,
    ),
    r(
        "GET",
        "/v1/manage/licenses/{id}",
        man(M::License(L::Get)),
        MANAGE,
    ),
    r(
        "PATCH",
        "/v1/manage/licenses/{id}",
        man(M::License(L::Patch)),
        MANAGE,
    ),
    r(
        "POST",
        "/v1/manage/licenses/{id}/suspend",
        man(M::License(L::Suspend)),
        MANAGE,
    ),
    r(
        "POST",
        "/v1/manage/licenses/{id}/resume",
        man(M::License(L::Resume)),
        MANAGE,
    ),
    r(
        "POST",
        "/v1/manage/licenses/{id}/cancel",
        man(M::License(L::Cancel)),
        MANAGE,
    ),
    r(
        "POST",
        "/v1/manage/licenses/{id}/renew",
        man(M::License(L::Renew)),
        MANAGE,
    ),
    r(
        "GET",
        "/v1/manage/licenses/{id}/activations",
        man(M::License(L::Activations)),
        MANAGE,
    ),
    r("GET", "/v1/manage/usage", man(M::Usage(U::Get)), MANAGE),
    r(
        "GET",
        "/v1/manage/usage/export",
        man(M::Usage(U::Export)),
        MANAGE,
    ),
    r(
        "GET",
        "/v1/manage/usage/events",
        man(M::Usage(U::Events)),
        MANAGE,
    ),
    r("GET", "/v1/manage/audit-events", man(M::AuditList), MANAGE),
    r(
        "POST",
        "/v1/manage/signing-keys/rotate",
        man(M::SigningKeyRotate),
        MANAGE,
    ),
    r(
        "POST",
        "/v1/manage/api-keys",
        man(M::ApiKey(K::Create)),
        MANAGE,
    ),
    r(
        "GET",
        "/v1/manage/api-keys",
        man(M::ApiKey(K::List)),
        MANAGE,
    ),
    r(
        "DELETE",
        "/v1/manage/api-keys/{id}",
        man(M::ApiKey(K::Revoke)),
        MANAGE,
    ),
    r(
        "DELETE",
        "/v1/manage/staff/{email}",
        man(M::StaffRemove),
        MANAGE,
    ),
    r(
        "GET",
        "/v1/manage/customers/search",
        man(M::CustomerSearch),
        MANAGE,
    ),
    r(
        "PUT",
        "/v1/manage/customers/{customer_id}/crm",
        man(M::CustomerCrmPut),
        MANAGE,
    ),
    r(
        "PUT",
        "/v1/manage/integrations/stripe",
        man(M::StripeIntegrationPut),
        MANAGE,
    ),
    r(
        "GET",
        "/v1/manage/billing/overage",
        man(M::BillingOverage),
        MANAGE,
    ),
    r(
        "POST",
        "/v1/manage/webhook-endpoints",
        man(M::Webhook(W::Create)),
        MANAGE,
    ),
    r(
        "GET",
        "/v1/manage/webhook-endpoints",
        man(M::Webhook(W::List)),
        MANAGE,
    ),
    r(
        "GET",
        "/v1/manage/webhook-endpoints/{id}",
        man(M::Webhook(W::Get)),
        MANAGE,
    ),
    r(
        "PATCH",
        "/v1/manage/webhook-endpoints/{id}",
        man(M::Webhook(W::Patch)),
        MANAGE,
    ),
    r(
        "DELETE",
        "/v1/manage/webhook-endpoints/{id}",
        man(M::Webhook(W::Delete)),
        MANAGE,
    ),
    r(
        "GET",
        "/v1/manage/webhook-endpoints/{id}/deliveries",
        man(M::Webhook(W::Deliveries)),
        MANAGE,
    ),
    r(
        "POST",
        "/v1/manage/webhook-endpoints/{id}/deliveries/{delivery_id}/retry",
        man(M::Webhook(W::Retry)),
        MANAGE,
    ),
    r(
        "POST",
        "/v1/manage/webhook-endpoints/{id}/test",
        man(M::Webhook(W::Test)),
        MANAGE,
    ),
    r(
        "POST",
        "/v1/platform/tenants",
        plat(PlatformOp::TenantCreate),
        PROVISION,
    ),
    r(
        "GET",
        "/v1/platform/tenants/{id}",
        plat(PlatformOp::TenantGet),
        PROVISION,
    ),
    r(
        "POST",
        "/v1/platform/tenants/{id}/suspend",
        plat(PlatformOp::TenantSuspend),
        PROVISION,
    ),
    r(
        "POST",
        "/v1/platform/tenants/{id}/reactivate",
        plat(PlatformOp::TenantReactivate),
        PROVISION,
    ),
    r(
        "POST",
        "/v1/platform/tenants/{id}/close",
        plat(PlatformOp::TenantClose),
        PROVISION,
    ),
    r(
        "PATCH",
        "/v1/platform/tenants/{id}",
        plat(PlatformOp::TenantPatch),
        PROVISION,
    ),
    r(
        "POST",
        "/v1/platform/tenants/{id}/admin-keys",
        plat(PlatformOp::AdminKeyCreate),
        PROVISION,
    ),
    r(
        "POST",
        "/v1/platform/billing/close-period",
        plat(PlatformOp::BillingClosePeriod),
        PROVISION,
    ),
    r(
        "POST",
        "/v1/stripe/webhook/{tenant_id}",
        Op::Stripe(StripeOp::Webhook),
        Some(F::StripeWebhook),
    ),
    r(
        "GET",
        "/v1/customer/session",
        cust(CustomerOp::Session),
        CUSTOMER,
    ),
    r(
        "POST",
        "/v1/customer/api-keys",
        cust(CustomerOp::ApiKey(K::Create)),
        CUSTOMER,
    ),
    r(
        "GET",
        "/v1/customer/api-keys",
        cust(CustomerOp::ApiKey(K::List)),
        CUSTOMER,
    ),
    r(
        "DELETE",
        "/v1/customer/api-keys/{id}",
        cust(CustomerOp::ApiKey(K::Revoke)),
        CUSTOMER,
    ),
    r(
        "GET",
        "/v1/customer/members",
        cust(CustomerOp::Member(MemberOp::List)),
        CUSTOMER,
    ),
    r(
        "POST",
        "/v1/customer/members",
        cust(CustomerOp::Member(MemberOp::Add)),
        CUSTOMER,
    ),
    r(
        "PATCH",
        "/v1/customer/members/{email}",
        cust(CustomerOp::Member(MemberOp::Patch)),
        CUSTOMER,
    ),
    r(
        "DELETE",
        "/v1/customer/members/{email}",
        cust(CustomerOp::Member(MemberOp::Remove)),
        CUSTOMER,
    ),
    r(
        "GET",
        "/v1/customer/audit-events",
        cust(CustomerOp::AuditList),
        CUSTOMER,
    ),
    // The pool of granted licenses (issue 20, part B).
    r(
        "GET",
        "/v1/customer/catalog",
        cust(CustomerOp::Pool(PoolOp::Catalog)),
        CUSTOMER,
    ),
    r(
        "GET",
        "/v1/customer/checkouts",
        cust(CustomerOp::Pool(PoolOp::ListCheckouts)),
        CUSTOMER,
    ),
    r(
        "POST",
        "/v1/customer/checkouts",
        cust(CustomerOp::Pool(PoolOp::Checkout)),
        CUSTOMER,
    ),
    r(
        "POST",
        "/v1/customer/checkouts/{id}/heartbeat",
        cust(CustomerOp::Pool(PoolOp::Heartbeat)),
        CUSTOMER,
    ),
    r(
        "DELETE",
        "/v1/customer/checkouts/{id}",
        cust(CustomerOp::Pool(PoolOp::Return)),
        CUSTOMER,
    ),
    r(
        "PATCH",
        "/v1/customer/licenses/{id}",
        cust(CustomerOp::Pool(PoolOp::SetOverageLimit)),
        CUSTOMER,
    ),
    // The portal's HTML pages: one greedy route to one function, which
    // routes within itself (shared/src/portal). Not part of the JSON API,
    // so docs/openapi.yaml does not list it; docs/portal.md does.
    r("ANY", "/portal/{proxy+}", Op::Portal, Some(F::Portal)),
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
                matches!(
                    f,
                    Function::ProvisionWorker
                        | Function::WebhookFanout
                        | Function::WebhookDeliver
                        | Function::BillingClose
                ),
                "{f:?} has {n} routes"
            );
        }
    }

    #[test]
    fn each_section_of_the_table_belongs_to_one_surface() {
        for r in ROUTES {
            if let Some(section) = section_of_route(r.path) {
                assert_eq!(
                    Surface::of_unrouted(section),
                    Some(r.surface()),
                    "{} shares its section with another surface",
                    r.path
                );
            }
        }
        let unrouted = |p| Surface::of_unrouted(p);
        assert_eq!(unrouted("/v1/integration/nope"), Some(Surface::Integration));
        assert_eq!(unrouted("/v1/integration/"), Some(Surface::Integration));
        assert_eq!(unrouted("/v1/integration"), None);
        assert_eq!(unrouted("/v1/integrations/x"), None);
        assert_eq!(unrouted("/v1/manage/nope"), Some(Surface::Manage));
        assert_eq!(unrouted("/v1/customer/nope"), Some(Surface::Customer));
        assert_eq!(unrouted("/elsewhere"), None);
    }
}
