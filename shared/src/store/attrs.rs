//! Every attribute name the store writes in an expression, in one place.
//! Items are (de)serialised with `serde_dynamo` from the domain types, so
//! these names are those types' field names; a misspelt constant does not
//! compile, and the tests below check the names against the types.

// Licenses.
/// Read by the table schema (GSI2's projection) in local runs only.
#[cfg_attr(not(feature = "dev"), allow(dead_code))]
pub const ID: &str = "id";
pub const KEY: &str = "key";
pub const STATUS: &str = "status";
pub const POLICY: &str = "policy";
pub const PRODUCT: &str = "product";
pub const MAX_ACTIVATIONS: &str = "max_activations";
pub const SEATS_USED: &str = "seats_used";
pub const METADATA: &str = "metadata";
pub const ENTITLEMENT_OVERRIDES: &str = "entitlement_overrides";
pub const EXPIRES_AT: &str = "expires_at";
/// Storage-only: `expires_at` as epoch seconds, for write conditions.
pub const EXPIRES_EPOCH: &str = "expires_epoch";
pub const GRACE_UNTIL: &str = "grace_until";
/// Storage-only: `grace_until` as epoch seconds.
pub const GRACE_EPOCH: &str = "grace_epoch";
pub const STRIPE_EVENT_AT: &str = "stripe_event_at";
pub const UPDATED_AT: &str = "updated_at";
/// A public trial's e-mail not yet verified (present only while it is not).
pub const EMAIL_UNVERIFIED: &str = "email_unverified";
pub const COMMERCIAL: &str = "commercial";
/// A billing counter item's overage checkouts in its month.
pub const OVERAGE_CHECKOUTS: &str = "overage_checkouts";

// Seat terms (policies and licenses) and floating leases.
pub const ACTIVATION_MODE: &str = "activation_mode";
pub const LEASE_SECONDS: &str = "lease_seconds";
pub const MAX_OVERAGE: &str = "max_overage";
pub const OVERAGE_USED: &str = "overage_used";
pub const HEARTBEAT_SECONDS: &str = "heartbeat_seconds";
pub const MAX_DEACTIVATIONS: &str = "max_deactivations";
pub const LEASE_EXPIRES_EPOCH: &str = "lease_expires_epoch";
pub const OVERAGE: &str = "overage";
pub const LAST_HEARTBEAT_AT: &str = "last_heartbeat_at";

/// A license's deactivations in one churn-limit period (`YYYY-MM-DD`,
/// `YYYY-MM` or `total`): one top-level counter per period used.
pub fn deactivations_in(period_key: &str) -> String {
    format!("deactivations_{period_key}")
}

// Activations.
pub const NAME: &str = "name";
pub const LAST_ACTIVATED_AT: &str = "last_activated_at";
pub const DEACTIVATED_AT: &str = "deactivated_at";

// Products and trial claims.
pub const TRIAL: &str = "trial";
pub const COOLDOWN_EPOCH: &str = "cooldown_epoch";

// Policies.
pub const DURATION_DAYS: &str = "duration_days";
pub const ENTITLEMENTS: &str = "entitlements";
pub const GRACE_PERIOD_DAYS: &str = "grace_period_days";
pub const STRIPE_PRICE_IDS: &str = "stripe_price_ids";
pub const CLIENT_AUTH: &str = "client_auth";
pub const MAX_FILE_TTL_SECONDS: &str = "max_file_ttl_seconds";

// Tenants and API keys.
pub const LICENSES_ISSUED: &str = "licenses_issued";
pub const LICENSE_LIMIT: &str = "license_limit";
pub const SETTINGS: &str = "settings";
pub const STAGES: &str = "stages";
pub const LAST_USED_AT: &str = "last_used_at";
pub const REVOKED_AT: &str = "revoked_at";
/// A customer organization's member.
pub const ROLE: &str = "role";
/// When a customer organization proved its domain.
pub const VERIFIED_AT: &str = "verified_at";
pub const ACTIVATED_AT: &str = "activated_at";
pub const SIGNING_KEY_VERSION: &str = "signing_key_version";
pub const SIGNING_KEYS: &str = "signing_keys";

// Usage counters.
pub const USED: &str = "used";
pub const METRIC: &str = "metric";
pub const PERIOD: &str = "period";
pub const LICENSE_ID: &str = "license_id";
pub const CUSTOMER_EMAIL: &str = "customer_email";
pub const LIMIT: &str = "limit";
pub const RESETS_EPOCH: &str = "resets_epoch";

// Stripe subscription records.
pub const SUBSCRIPTION_ID: &str = "subscription_id";
pub const CUSTOMER_ID: &str = "customer_id";
pub const EMAIL: &str = "email";
pub const CHECKOUT_AT: &str = "checkout_at";
pub const P_AT: &str = "p_at";
pub const P_STATUS: &str = "p_status";
pub const P_PRICES: &str = "p_prices";
pub const P_PERIOD_END: &str = "p_period_end";
pub const P_GRACE_START: &str = "p_grace_start";
pub const P_QUANTITY: &str = "p_quantity";
pub const CHECKOUT_QUANTITY: &str = "checkout_quantity";
// Stripe checkout-session records (mode payment).
pub const SESSION_ID: &str = "session_id";

// Webhook endpoints.
pub const URL: &str = "url";
pub const EVENTS: &str = "events";
pub const DESCRIPTION: &str = "description";
pub const ENABLED: &str = "enabled";
pub const DISABLED_REASON: &str = "disabled_reason";
pub const FAILING_SINCE: &str = "failing_since";
/// Storage-only: how many endpoints a tenant has (its counter item).
pub const ENDPOINTS: &str = "endpoints";

// Rate-limit windows, and the daily counter of public trials.
pub const TAKEN: &str = "taken";

// E-mail verification links (and sign-in links).
pub const USED_AT: &str = "used_at";

// Grants (issue 20, part B): the organization's overage cap and its version.
pub const OVERAGE_LIMIT: &str = "overage_limit";
pub const CAP_VERSION: &str = "cap_version";

/// DynamoDB's TTL attribute (epoch seconds).
pub const TTL: &str = super::keys::TTL;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::*;
    use crate::ids::*;
    use time::OffsetDateTime;

    fn fields<T: serde::Serialize>(v: &T) -> Vec<String> {
        let item: crate::store::Item = serde_dynamo::to_item(v).unwrap();
        item.into_keys().collect()
    }

    /// The names written in expressions are the names serde writes.
    #[test]
    fn names_match_the_stored_types() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let t = TenantId::parse("acme").unwrap();
        let key = LicenseKey::generate();
        let policy = Policy {
            id: PolicyId::generate(),
            product: ProductCode::parse("app").unwrap(),
            name: "p".into(),
            max_activations: 1,
            duration_days: Some(1),
            entitlements: Default::default(),
            grace_period_days: 0,
            stripe_price_ids: vec!["price_1".into()],
            terms: SeatTerms::default(),
            client_auth: true,
            max_file_ttl_seconds: 1_209_600,
            created_at: now,
            updated_at: now,
        };
        let mut l = License::issue(LicenseDraft {
            tenant: &t,
            policy: &policy,
            key: Some(key),
            customer_email: Email::normalise("a@b.co").unwrap(),
            status: LicenseStatus::PastDue,
            expires_at: None,
            grace_until: Some(now),
            metadata: Default::default(),
            stripe: StripeLink::default(),
            stripe_event_at: 1,
            now,
        })
        .unwrap();
        l.seats_used = 1;
        l.email_unverified = true;
        let lf = fields(&l);
        for a in [
            ID,
            KEY,
            STATUS,
            POLICY,
            PRODUCT,
            MAX_ACTIVATIONS,
            SEATS_USED,
            METADATA,
            ENTITLEMENT_OVERRIDES,
            EXPIRES_AT,
            EXPIRES_EPOCH,
            GRACE_UNTIL,
            GRACE_EPOCH,
            STRIPE_EVENT_AT,
            UPDATED_AT,
            CUSTOMER_EMAIL,
            EMAIL_UNVERIFIED,
        ] {
            assert!(
                lf.iter().any(|f| f == a),
                "license has no field {a}: {lf:?}"
            );
        }
        let a = Activation {
            id: ActivationId::derive(&l.id, &Fingerprint::parse("fp").unwrap()),
            license_id: l.id.clone(),
            fingerprint: Fingerprint::parse("fp").unwrap(),
            name: Some("n".into()),
            hostname: Some("h".into()),
            user: Some("u".into()),
            metadata: Default::default(),
            created_at: now,
            last_activated_at: now,
            deactivated_at: Some(now),
            lease_expires_epoch: None,
            lease_seconds: None,
            overage: false,
            last_heartbeat_at: None,
        };
        let pf = fields(&policy);
        for attr in [
            ID,
            PRODUCT,
            NAME,
            MAX_ACTIVATIONS,
            DURATION_DAYS,
            ENTITLEMENTS,
            GRACE_PERIOD_DAYS,
            STRIPE_PRICE_IDS,
            CLIENT_AUTH,
            MAX_FILE_TTL_SECONDS,
            UPDATED_AT,
        ] {
            assert!(
                pf.iter().any(|f| f == attr),
                "policy has no field {attr}: {pf:?}"
            );
        }
        let af = fields(&a);
        for attr in [NAME, METADATA, LAST_ACTIVATED_AT, DEACTIVATED_AT] {
            assert!(
                af.iter().any(|f| f == attr),
                "activation has no field {attr}: {af:?}"
            );
        }
        let c = UsageCounter {
            metric: Metric::parse("m").unwrap(),
            period: "total".into(),
            used: 1,
            license_id: Some(l.id.clone()),
            customer_email: Some(l.customer_email.clone()),
            limit: Some(1),
            resets_epoch: Some(1),
            aggregation: crate::domain::Aggregation::Max,
        };
        let cf = fields(&c);
        for attr in [
            crate::store::counters::AGGREGATION,
            USED,
            METRIC,
            PERIOD,
            LICENSE_ID,
            CUSTOMER_EMAIL,
            LIMIT,
            RESETS_EPOCH,
        ] {
            assert!(
                cf.iter().any(|f| f == attr),
                "usage counter has no field {attr}: {cf:?}"
            );
        }
        let sub = crate::domain::stripe::StripeSubscription {
            subscription_id: "sub_1".into(),
            license_id: Some(l.id.clone()),
            customer_id: Some("cus_1".into()),
            email: Some(l.customer_email.clone()),
            policy: Some(PolicyId::generate()),
            checkout_at: Some(1),
            checkout_quantity: Some(2),
            p_status: Some(LicenseStatus::Active),
            p_prices: vec!["price_1".into()],
            p_period_end: Some(1),
            p_quantity: Some(3),
            p_grace_start: Some(1),
            p_at: Some(1),
        };
        let sf = fields(&sub);
        for attr in [
            SUBSCRIPTION_ID,
            LICENSE_ID,
            CUSTOMER_ID,
            EMAIL,
            POLICY,
            CHECKOUT_AT,
            CHECKOUT_QUANTITY,
            P_STATUS,
            P_PRICES,
            P_PERIOD_END,
            P_QUANTITY,
            P_GRACE_START,
            P_AT,
        ] {
            assert!(
                sf.iter().any(|f| f == attr),
                "stripe subscription has no field {attr}: {sf:?}"
            );
        }
        let cs = crate::domain::stripe::StripeCheckout {
            session_id: "cs_1".into(),
            license_id: Some(l.id.clone()),
            customer_id: Some("cus_1".into()),
        };
        let csf = fields(&cs);
        for attr in [SESSION_ID, LICENSE_ID, CUSTOMER_ID] {
            assert!(
                csf.iter().any(|f| f == attr),
                "stripe checkout has no field {attr}: {csf:?}"
            );
        }
    }
}

#[cfg(test)]
mod seat_terms;
