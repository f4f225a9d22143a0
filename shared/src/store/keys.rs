//! Every DynamoDB key format of the single table, in one place.
//!
//! Every key of tenant data begins with `T#<tenant>`; the functions here take
//! a [`TenantId`] and nothing else can build a tenant key.

use crate::ids::{
    ActivationId, ApiKeyId, DeliveryId, Email, FingerprintDigest, LicenseId, Metric, PolicyId,
    ProductCode, TenantId, WebhookEndpointId,
};

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
pub const GSI2: &str = "GSI2";
pub const GSI2PK: &str = "GSI2PK";
pub const GSI2SK: &str = "GSI2SK";
pub const TTL: &str = "ttl";

/// A full primary key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

fn k(pk: String, sk: impl Into<String>) -> Key {
    Key { pk, sk: sk.into() }
}

pub const TENANT_SK: &str = "TENANT";
pub fn tenant(t: &TenantId) -> Key {
    k(format!("T#{t}"), TENANT_SK)
}

/// Records the provisioning pipeline seeds, one item each.
pub fn seed(t: &TenantId, what: crate::domain::SeedRecord) -> Key {
    k(format!("T#{t}#{}", what.name()), what.name())
}

/// All API keys of a tenant share a partition (listing is one query); the
/// key string names its sort key, so authentication is one GetItem.
pub fn api_keys_pk(t: &TenantId) -> String {
    format!("T#{t}#KEYS")
}
pub fn api_key(t: &TenantId, id: &ApiKeyId) -> Key {
    k(api_keys_pk(t), id.as_str())
}

pub fn products_pk(t: &TenantId) -> String {
    format!("T#{t}#PRODUCTS")
}
pub fn product(t: &TenantId, code: &ProductCode) -> Key {
    k(products_pk(t), code.as_str())
}

pub fn policies_pk(t: &TenantId) -> String {
    format!("T#{t}#POLICIES")
}
pub fn policy(t: &TenantId, id: &PolicyId) -> Key {
    k(policies_pk(t), id.as_str())
}

/// One partition per license: the license item, its activations and its
/// usage counters, so validate reads everything it needs in one query.
pub fn license_pk(t: &TenantId, id: &LicenseId) -> String {
    format!("T#{t}#L#{id}")
}
pub const LICENSE_SK: &str = "L";
/// The tenant of a license partition key (`T#<tenant>#L#<id>`), for
/// migrations that find license items without knowing their tenant.
pub fn tenant_of_license_pk(pk: &str) -> Option<TenantId> {
    let rest = pk.strip_prefix("T#")?;
    let (tenant, id) = rest.split_once("#L#")?;
    LicenseId::parse(id).ok()?;
    TenantId::parse(tenant).ok()
}
pub fn license(t: &TenantId, id: &LicenseId) -> Key {
    k(license_pk(t, id), LICENSE_SK)
}
pub const ACTIVATION_SK_PREFIX: &str = "A#";
pub fn activation(t: &TenantId, id: &ActivationId) -> Key {
    activation_of(t, &id.license_id(), &id.fingerprint_digest())
}
pub fn activation_of(t: &TenantId, license: &LicenseId, fp: &FingerprintDigest) -> Key {
    k(
        license_pk(t, license),
        format!("{ACTIVATION_SK_PREFIX}{}", fp.as_str()),
    )
}
/// A deactivated activation, a returned or a reclaimed lease: moved out of
/// `A#` in the transaction that retires it (and back by a restore or a new
/// checkout), so the live activations are one sort-key range and a read of
/// the license never reads the machines that came and went. `R#` sorts
/// after [`LICENSE_SK`], outside [`live_range`].
pub const RETIRED_SK_PREFIX: &str = "R#";
pub fn retired_activation(t: &TenantId, id: &ActivationId) -> Key {
    let fp = id.fingerprint_digest();
    k(
        license_pk(t, &id.license_id()),
        format!("{RETIRED_SK_PREFIX}{}", fp.as_str()),
    )
}
/// The sort-key range of a license partition that validate reads: every
/// live activation (`A#…`) and the license item (`L`), nothing retired
/// (`R#…`) and no usage counter (`U#…`).
pub fn live_range() -> (&'static str, &'static str) {
    (ACTIVATION_SK_PREFIX, LICENSE_SK)
}
pub const USAGE_SK_PREFIX: &str = "U#";
pub fn usage_counter(t: &TenantId, license: &LicenseId, metric: &Metric, period_key: &str) -> Key {
    k(
        license_pk(t, license),
        format!("{USAGE_SK_PREFIX}{metric}#{period_key}"),
    )
}

/// A metered counter of one license, metric and period, spread over
/// [`COUNTER_SHARDS`] items of their own partitions (never the license's:
/// a busy license's records must not all write one partition). Under a
/// hard limit each shard holds a budget (`room`); see `domain::metering`.
/// Shard 0 is the counter's head: it alone carries the index keys (the
/// usage export by period on GSI1, the license's counters on GSI2).
pub const COUNTER_SHARDS: u8 = 8;
pub const COUNTER_SK: &str = "C";
pub fn counter_shard(
    t: &TenantId,
    license: &LicenseId,
    metric: &Metric,
    period_key: &str,
    shard: u8,
) -> Key {
    k(
        format!("T#{t}#UC#{license}#{metric}#{period_key}#{shard:02}"),
        COUNTER_SK,
    )
}
/// Every shard of a counter, in shard order.
pub fn counter_shards(
    t: &TenantId,
    license: &LicenseId,
    metric: &Metric,
    period_key: &str,
) -> Vec<Key> {
    (0..COUNTER_SHARDS)
        .map(|n| counter_shard(t, license, metric, period_key, n))
        .collect()
}
/// A distinct value of a `unique_count` counter: one item per (license,
/// metric, period, SHA-256 of the value), in a partition of its own. It is
/// put under `attribute_not_exists` in the transaction that counts the
/// value (1 from a shard), so a value counts once however many records
/// carry it at the same time (see `domain::aggregation`).
pub const DISTINCT_SK: &str = "V";
pub fn distinct_value(
    t: &TenantId,
    license: &LicenseId,
    metric: &Metric,
    period_key: &str,
    digest: &str,
) -> Key {
    k(
        format!("T#{t}#UV#{license}#{metric}#{period_key}#{digest}"),
        DISTINCT_SK,
    )
}
/// A license's counters of every period (GSI2, head shards only), for
/// the usage report: `GSI2SK = <metric>#<period>`.
pub fn license_counters_index_pk(t: &TenantId, license: &LicenseId) -> String {
    format!("T#{t}#LU#{license}")
}

/// Licenses by customer e-mail (GSI1).
pub fn email_index_pk(t: &TenantId, email: &Email) -> String {
    format!("T#{t}#EMAIL#{email}")
}
pub fn email_index_sk(created_at_rfc3339: &str, id: &LicenseId) -> String {
    format!("{created_at_rfc3339}#{id}")
}

/// Every license of a tenant, newest first (GSI2, license search): one
/// index partition per tenant, sorted by creation time then id. Both parts
/// are fixed at issue, so no later write of the license moves it.
pub fn search_index_pk(t: &TenantId) -> String {
    format!("T#{t}#LICENSES")
}
pub fn search_index_sk(created_at_rfc3339: &str, id: &LicenseId) -> String {
    format!("{created_at_rfc3339}#{id}")
}

/// Licenses with commercial terms (`docs/billing.md`): one index item
/// each, written in the transaction that sets or removes the terms, so the
/// overage export and period close read these, never every license.
pub fn commercial_index_pk(t: &TenantId) -> String {
    format!("T#{t}#COMMERCIAL")
}
pub fn commercial_index(t: &TenantId, id: &LicenseId) -> Key {
    k(commercial_index_pk(t), id.as_str())
}

/// A license's billing records, outside its own partition (validate's
/// reads do not grow with them): one overage-checkout counter per month
/// (`M#YYYY-MM`) and one invoice per closed month (`I#YYYY-MM`).
pub fn billing_pk(t: &TenantId, id: &LicenseId) -> String {
    format!("T#{t}#BILL#{id}")
}
pub fn overage_checkouts(t: &TenantId, id: &LicenseId, period: &str) -> Key {
    k(billing_pk(t, id), format!("M#{period}"))
}
pub fn invoice(t: &TenantId, id: &LicenseId, period: &str) -> Key {
    k(billing_pk(t, id), format!("I#{period}"))
}

/// The tenants that have (or had) licenses with commercial terms: the one
/// partition of platform data outside every tenant, read by the period
/// close that runs for all tenants. An item is added (idempotently) with a
/// tenant's commercial index items, never removed.
pub const BILLED_TENANTS_PK: &str = "PLATFORM#BILLED_TENANTS";
pub fn billed_tenant(t: &TenantId) -> Key {
    k(BILLED_TENANTS_PK.to_string(), t.as_str())
}

/// A product's trial claims: one per customer e-mail and one per
/// fingerprint, each held until its cooldown ends.
pub const TRIAL_SK: &str = "TRIAL";
pub fn trial_email_claim(t: &TenantId, product: &ProductCode, email: &Email) -> Key {
    k(format!("T#{t}#TRIAL#{product}#E#{email}"), TRIAL_SK)
}
pub fn trial_fingerprint_claim(t: &TenantId, product: &ProductCode, fp: &FingerprintDigest) -> Key {
    k(format!("T#{t}#TRIAL#{product}#F#{}", fp.as_str()), TRIAL_SK)
}

/// Public trials started on one UTC day (`YYYY-MM-DD`): the counter behind
/// `settings.public_trials_per_day`.
pub fn public_trial_day(t: &TenantId, day: &str) -> Key {
    k(format!("T#{t}#PUBLIC_TRIALS#{day}"), "COUNT")
}

/// A public trial's e-mail verification link, by the SHA-256 of its token.
pub fn email_verification(t: &TenantId, token_digest: &str) -> Key {
    k(format!("T#{t}#VERIFY#{token_digest}"), "VERIFY")
}

/// A small stable hash of an id, for picking a shard: the first two bytes
/// of its SHA-256 (the same on every instance and in every release).
pub fn shard_of(id: &str, shards: u8) -> u8 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(id.as_bytes());
    (u16::from_be_bytes([d[0], d[1]]) % u16::from(shards.max(1))) as u8
}

/// Audit trail: [`AUDIT_SHARDS`] partitions per tenant, each sorted by ULID
/// (time); an event's shard is a hash of its id, so no partition receives
/// every write of a busy tenant. Listing merges the shards (and the legacy
/// single partition, [`legacy_audit_pk`], of events written before sharding).
pub const AUDIT_SHARDS: u8 = 16;
pub fn audit_shard_pk(t: &TenantId, shard: u8) -> String {
    format!("T#{t}#AUDIT#{shard:02}")
}
/// The one audit partition of earlier releases: read, never written.
pub fn legacy_audit_pk(t: &TenantId) -> String {
    format!("T#{t}#AUDIT")
}
/// Every partition an audit listing merges, the legacy one last.
pub fn audit_pks(t: &TenantId) -> Vec<String> {
    (0..AUDIT_SHARDS)
        .map(|n| audit_shard_pk(t, n))
        .chain([legacy_audit_pk(t)])
        .collect()
}
pub fn audit(t: &TenantId, event_id: &str) -> Key {
    k(
        audit_shard_pk(t, shard_of(event_id, AUDIT_SHARDS)),
        event_id,
    )
}

/// Webhook endpoints: one partition per tenant (a handful of items), with
/// a counter item that bounds how many there are.
pub fn webhooks_pk(t: &TenantId) -> String {
    format!("T#{t}#WEBHOOKS")
}
pub const WEBHOOK_ENDPOINT_PREFIX: &str = "whe_";
pub fn webhook_endpoint(t: &TenantId, id: &WebhookEndpointId) -> Key {
    k(webhooks_pk(t), id.as_str())
}
pub fn webhook_counter(t: &TenantId) -> Key {
    k(webhooks_pk(t), "#COUNT")
}
/// One endpoint's delivery log, newest first (delivery ids are ULIDs).
pub fn deliveries_pk(t: &TenantId, endpoint: &WebhookEndpointId) -> String {
    format!("T#{t}#WH#{endpoint}#DLV")
}
pub fn delivery(t: &TenantId, endpoint: &WebhookEndpointId, id: &DeliveryId) -> Key {
    k(deliveries_pk(t, endpoint), id.as_str())
}

/// What a changed item of the table's stream is, for the webhook outbox:
/// the key formats above, read backwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamSource {
    Audit(TenantId),
    UsageCounter(TenantId, LicenseId),
    /// A shard of a sharded counter: (tenant, license, metric, period).
    CounterShard(TenantId, LicenseId, Metric, String),
}

pub fn stream_source(pk: &str, sk: &str) -> Option<StreamSource> {
    let rest = pk.strip_prefix("T#")?;
    if let Some((t, shard)) = rest.rsplit_once("#AUDIT") {
        // `#AUDIT` (legacy) or `#AUDIT#<nn>`.
        let sharded = shard
            .strip_prefix('#')
            .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()));
        if shard.is_empty() || sharded {
            return Some(StreamSource::Audit(TenantId::parse(t).ok()?));
        }
    }
    if sk == COUNTER_SK {
        if let Some((t, rest)) = rest.split_once("#UC#") {
            let mut parts = rest.split('#');
            let (lic, metric, period) = (parts.next()?, parts.next()?, parts.next()?);
            return Some(StreamSource::CounterShard(
                TenantId::parse(t).ok()?,
                LicenseId::parse(lic).ok()?,
                Metric::parse(metric).ok()?,
                period.to_string(),
            ));
        }
    }
    if sk.starts_with(USAGE_SK_PREFIX) {
        let (t, lic) = rest.split_once("#L#")?;
        let t = TenantId::parse(t).ok()?;
        return Some(StreamSource::UsageCounter(t, LicenseId::parse(lic).ok()?));
    }
    None
}

/// A rate-limit window of one subject (an API key or a license): the tokens
/// taken from it so far, across every instance.
pub fn rate_window(t: &TenantId, subject: &str, window_start: i64) -> Key {
    k(format!("T#{t}#RATE#{subject}"), window_start.to_string())
}

/// A one-time sign-in link of the portal, by the SHA-256 of its token.
pub fn magic_link(t: &TenantId, token_digest: &str) -> Key {
    k(format!("T#{t}#MAGIC#{token_digest}"), "MAGIC")
}

/// A portal session, by the SHA-256 of its id.
pub fn session(t: &TenantId, id_digest: &str) -> Key {
    k(format!("T#{t}#SESSION#{id_digest}"), "SESSION")
}

/// Staff members a tenant's admin invited: one partition per tenant.
pub fn staff_pk(t: &TenantId) -> String {
    format!("T#{t}#STAFF")
}
pub fn staff(t: &TenantId, email: &Email) -> Key {
    k(staff_pk(t), email.as_str())
}

pub const IDEMPOTENCY_SK: &str = "IDEM";
/// Idempotency records of usage/record, per license and client key: the
/// same key on two licenses is two keys, so one license's client can
/// neither block another's records nor learn which keys they used. (Not in
/// the license's partition, which validate reads whole.)
pub fn idempotency(t: &TenantId, license: &LicenseId, idempotency_key: &str) -> Key {
    k(
        format!("T#{t}#IDEM#{license}#{idempotency_key}"),
        IDEMPOTENCY_SK,
    )
}

/// Append-only usage events: [`USAGE_EVENT_SHARDS`] partitions per license
/// and month (of the usage's timestamp, whatever the metric's period), the
/// shard a hash of the event's id, so a busy license's events spread.
pub const USAGE_EVENT_SHARDS: u8 = 8;
pub fn usage_events_pk(t: &TenantId, license: &LicenseId, month: &str, shard: u8) -> String {
    format!("T#{t}#UE#{license}#{month}#{shard:02}")
}
/// Every partition a listing of one license's month merges: the shards,
/// then the single partition of earlier releases (read, never written).
pub fn usage_event_pks(t: &TenantId, license: &LicenseId, month: &str) -> Vec<String> {
    (0..USAGE_EVENT_SHARDS)
        .map(|n| usage_events_pk(t, license, month, n))
        .chain([format!("T#{t}#UE#{license}#{month}")])
        .collect()
}

/// One append-only usage event: by time of use, then id.
pub fn usage_event(
    t: &TenantId,
    license: &LicenseId,
    at: time::OffsetDateTime,
    event_id: &str,
) -> Key {
    let at = at.checked_to_offset(time::UtcOffset::UTC).unwrap_or(at);
    let month = format!("{:04}-{:02}", at.year(), u8::from(at.month()));
    k(
        usage_events_pk(t, license, &month, shard_of(event_id, USAGE_EVENT_SHARDS)),
        format!("{}#{event_id}", at.unix_timestamp_nanos() / 1_000_000),
    )
}

/// Tenant-wide usage rows per period, for the export (GSI1), spread over
/// [`USAGE_SHARDS`] partitions by license so one tenant's records do not all
/// write the same index partition.
pub const USAGE_SHARDS: u8 = 16;
pub fn usage_shard(license: &LicenseId) -> u8 {
    u8::from_str_radix(&license.hex()[..2], 16).unwrap_or(0) % USAGE_SHARDS
}
pub fn usage_period_index_pk(t: &TenantId, period_key: &str, shard: u8) -> String {
    format!("T#{t}#USAGE#{period_key}#{shard:02}")
}

/// Stripe: processed events, subscription → license, charge → license,
/// one-off checkout session → license.
pub fn stripe_event(t: &TenantId, event_id: &str) -> Key {
    k(format!("T#{t}#STRIPE_EVT#{event_id}"), "EVT")
}
pub fn stripe_subscription(t: &TenantId, subscription_id: &str) -> Key {
    k(format!("T#{t}#STRIPE_SUB#{subscription_id}"), "SUB")
}
/// A one-off (`mode: payment`) checkout session → its license.
pub fn stripe_checkout(t: &TenantId, session_id: &str) -> Key {
    k(format!("T#{t}#STRIPE_CS#{session_id}"), "CS")
}
pub fn stripe_charge(t: &TenantId, charge_or_intent: &str) -> Key {
    k(format!("T#{t}#STRIPE_CH#{charge_or_intent}"), "CH")
}

// ------------------------------------------------ customer organizations
// A customer organization is a tenant (kind `customer`): its data keys begin
// with `T#<customer>` like any tenant's (its tenant item is [`tenant`], its
// app keys share [`api_keys_pk`], its audit trail [`audit_pk`], its sessions
// and sign-in links [`session`] / [`magic_link`]).

/// The members of an organization: one partition, one item per e-mail,
/// and a counter item of its admins (the last admin cannot go).
pub fn members_pk(t: &TenantId) -> String {
    format!("T#{t}#MEMBERS")
}
pub fn member(t: &TenantId, email: &Email) -> Key {
    k(members_pk(t), email.as_str())
}
pub fn admin_count(t: &TenantId) -> Key {
    k(members_pk(t), "#ADMINS")
}

/// A vendor's link of its CRM account id to a customer organization, kept
/// in the VENDOR's partition (another vendor never sees it), both ways:
/// CRM id → organization and organization → CRM id (one per organization
/// per vendor), written together in one transaction.
pub fn vendor_crm(vendor: &TenantId, crm_account_id: &str) -> Key {
    k(format!("T#{vendor}#CRM#{crm_account_id}"), "CRM")
}
pub fn vendor_customer(vendor: &TenantId, customer: &TenantId) -> Key {
    k(format!("T#{vendor}#CUST#{customer}"), "CUST")
}

// ------------------------------------------------ grants (issue 20, part B)
// The only link between a vendor and an organization. A grant lives in the
// ORGANIZATION's partition; the org reaches a vendor's license only through it.

/// The grants of an organization: one partition, one item per license.
pub fn grants_pk(org: &TenantId) -> String {
    format!("T#{org}#GRANTS")
}
pub const GRANT_SK_PREFIX: &str = "G#";
pub fn grant(org: &TenantId, license: &LicenseId) -> Key {
    k(grants_pk(org), format!("{GRANT_SK_PREFIX}{license}"))
}

/// Platform data: not any tenant's. Keys begin with `PLATFORM#`, which no
/// tenant key can (`T#...`).
pub const PLATFORM_PREFIX: &str = "PLATFORM#";

/// The claim of a domain by the one organization that verified it
/// (written, conditionally, in the verify transaction).
pub fn domain_claim(domain: &crate::ids::Domain) -> Key {
    k(format!("PLATFORM#DOMAIN#{domain}"), "CLAIM")
}

/// A rate-limit window of a subject of no tenant (the source address of
/// customer registrations).
pub fn platform_rate_window(subject: &str, window_start: i64) -> Key {
    k(format!("PLATFORM#RATE#{subject}"), window_start.to_string())
}

/// The directory of verified organizations vendors search: one partition,
/// one item per organization (sorted by id), carrying public fields only.
pub const DIRECTORY_PK: &str = "PLATFORM#CUSTOMERS";
pub fn directory_entry(customer: &TenantId) -> Key {
    k(DIRECTORY_PK.to_string(), customer.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tenant_key_starts_with_the_tenant() {
        let t = TenantId::parse("acme").unwrap();
        let lk = crate::ids::LicenseKey::generate();
        let lid = LicenseId::derive(&t, &lk);
        let fp = crate::ids::Fingerprint::parse("fp").unwrap();
        let keys = [
            tenant(&t),
            api_key(&t, &ApiKeyId::generate()),
            product(&t, &ProductCode::parse("app").unwrap()),
            policy(&t, &PolicyId::generate()),
            license(&t, &lid),
            activation(&t, &ActivationId::derive(&lid, &fp)),
            usage_counter(&t, &lid, &Metric::parse("m").unwrap(), "total"),
            counter_shard(&t, &lid, &Metric::parse("m").unwrap(), "total", 7),
            distinct_value(&t, &lid, &Metric::parse("m").unwrap(), "2026-12", "ab12"),
            audit(&t, "aud_1"),
            idempotency(&t, &lid, "k"),
            stripe_event(&t, "evt_1"),
            stripe_subscription(&t, "sub_1"),
            stripe_charge(&t, "ch_1"),
            stripe_checkout(&t, "cs_1"),
            magic_link(&t, "ab"),
            session(&t, "cd"),
            public_trial_day(&t, "2026-05-01"),
            email_verification(&t, "ef"),
            staff(&t, &Email::normalise("a@b.co").unwrap()),
            member(&t, &Email::normalise("a@b.co").unwrap()),
            admin_count(&t),
            vendor_crm(&t, "crm-1"),
            vendor_customer(&t, &TenantId::parse("other").unwrap()),
        ];
        for key in keys {
            assert!(
                key.pk == "T#acme" || key.pk.starts_with("T#acme#"),
                "{key:?}"
            );
        }
        assert!(email_index_pk(&t, &Email::normalise("a@b.co").unwrap()).starts_with("T#acme#"));
        assert!(search_index_pk(&t).starts_with("T#acme#"));
        let app = ProductCode::parse("app").unwrap();
        let claims = [
            trial_email_claim(&t, &app, &Email::normalise("a@b.co").unwrap()),
            trial_fingerprint_claim(&t, &app, &FingerprintDigest::of(&fp)),
        ];
        for key in claims {
            assert!(key.pk.starts_with("T#acme#"), "{key:?}");
        }
        assert!(usage_events_pk(&t, &lid, "2026-01", 3).starts_with("T#acme#"));
        for pk in audit_pks(&t)
            .into_iter()
            .chain(usage_event_pks(&t, &lid, "2026-01"))
        {
            assert!(pk.starts_with("T#acme#"), "{pk}");
        }
        assert!(usage_period_index_pk(&t, "2026-01", usage_shard(&lid)).starts_with("T#acme#"));
        assert!(usage_shard(&lid) < USAGE_SHARDS);
    }

    #[test]
    fn audit_items_spread_and_every_shard_is_recognised() {
        let t = TenantId::parse("acme").unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..400 {
            let key = audit(&t, &format!("aud_{i:026}"));
            assert_eq!(
                stream_source(&key.pk, &key.sk),
                Some(StreamSource::Audit(t.clone()))
            );
            seen.insert(key.pk);
        }
        assert_eq!(seen.len(), usize::from(AUDIT_SHARDS));
        assert_eq!(
            stream_source(&legacy_audit_pk(&t), "aud_1"),
            Some(StreamSource::Audit(t.clone()))
        );
        assert_eq!(stream_source("T#acme#AUDIT#x", "aud_1"), None);
        assert_eq!(stream_source("T#acme#AUDITS", "aud_1"), None);
    }

    #[test]
    fn counter_shards_are_recognised_by_the_stream() {
        let t = TenantId::parse("acme").unwrap();
        let lid = LicenseId::derive(&t, &crate::ids::LicenseKey::generate());
        let m = Metric::parse("api-calls").unwrap();
        let shards = counter_shards(&t, &lid, &m, "2026-11");
        assert_eq!(shards.len(), usize::from(COUNTER_SHARDS));
        for k in shards {
            assert_eq!(
                stream_source(&k.pk, &k.sk),
                Some(StreamSource::CounterShard(
                    t.clone(),
                    lid.clone(),
                    m.clone(),
                    "2026-11".into()
                ))
            );
        }
        // A distinct value is no counter: the outbox passes it by.
        let d = distinct_value(&t, &lid, &m, "2026-11", &"f".repeat(64));
        assert_eq!(stream_source(&d.pk, &d.sk), None);
    }

    #[test]
    fn platform_keys_are_no_tenants() {
        let d = crate::ids::Domain::normalise("Example.COM.").unwrap();
        let c = TenantId::parse("acme").unwrap();
        for key in [
            domain_claim(&d),
            directory_entry(&c),
            platform_rate_window("1.2.3.4", 60),
        ] {
            assert!(key.pk.starts_with(PLATFORM_PREFIX), "{key:?}");
            assert!(!key.pk.starts_with("T#"), "{key:?}");
        }
        assert_eq!(domain_claim(&d).pk, "PLATFORM#DOMAIN#example.com");
    }

    #[test]
    fn idempotency_keys_are_per_license() {
        let t = TenantId::parse("acme").unwrap();
        let a = LicenseId::derive(&t, &crate::ids::LicenseKey::generate());
        let b = LicenseId::derive(&t, &crate::ids::LicenseKey::generate());
        assert_ne!(idempotency(&t, &a, "job-1"), idempotency(&t, &b, "job-1"));
        assert_eq!(
            idempotency(&t, &a, "job-1").pk,
            format!("T#acme#IDEM#{a}#job-1")
        );
    }

    #[test]
    fn license_partitions_name_their_tenant() {
        let t = TenantId::parse("acme").unwrap();
        let lid = LicenseId::derive(&t, &crate::ids::LicenseKey::generate());
        assert_eq!(tenant_of_license_pk(&license_pk(&t, &lid)), Some(t));
        assert_eq!(tenant_of_license_pk("T#acme#KEYS"), None);
        assert_eq!(tenant_of_license_pk("T#acme#L#not-an-id"), None);
    }

    #[test]
    fn the_live_range_holds_live_activations_and_the_license_only() {
        let t = TenantId::parse("acme").unwrap();
        let lid = LicenseId::derive(&t, &crate::ids::LicenseKey::generate());
        let id = ActivationId::derive(&lid, &crate::ids::Fingerprint::parse("fp").unwrap());
        let (lo, hi) = live_range();
        let within = |sk: &str| lo <= sk && sk <= hi;
        assert!(within(&activation(&t, &id).sk));
        assert!(within(&license(&t, &lid).sk));
        assert!(!within(&retired_activation(&t, &id).sk));
        let m = Metric::parse("m").unwrap();
        assert!(!within(&usage_counter(&t, &lid, &m, "2026-01").sk));
        assert_eq!(retired_activation(&t, &id).pk, activation(&t, &id).pk);
    }

    #[test]
    fn activation_key_matches_derivation() {
        let t = TenantId::parse("acme").unwrap();
        let lid = LicenseId::derive(&t, &crate::ids::LicenseKey::generate());
        let fp = crate::ids::Fingerprint::parse("fp").unwrap();
        let id = ActivationId::derive(&lid, &fp);
        assert_eq!(
            activation(&t, &id),
            activation_of(&t, &lid, &FingerprintDigest::of(&fp))
        );
    }
}
