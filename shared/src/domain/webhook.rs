//! Outbound webhooks: event types, endpoints, the delivery schedule, the
//! signature, and which addresses a delivery may reach (no I/O here).

use crate::clock::ts;
use crate::domain::AuditCode;
use crate::error::Error;
use crate::ids::{DeliveryId, TenantId, WebhookEndpointId};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use time::OffsetDateTime;

/// A change to an endpoint (PATCH).
#[derive(Debug, Default, Clone)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub events: Option<EventFilter>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
}

/// The contract's event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "license.created")]
    LicenseCreated,
    #[serde(rename = "license.suspended")]
    LicenseSuspended,
    #[serde(rename = "license.resumed")]
    LicenseResumed,
    #[serde(rename = "license.cancelled")]
    LicenseCancelled,
    #[serde(rename = "license.renewed")]
    LicenseRenewed,
    #[serde(rename = "license.policy_changed")]
    LicensePolicyChanged,
    #[serde(rename = "license.past_due")]
    LicensePastDue,
    #[serde(rename = "activation.created")]
    ActivationCreated,
    #[serde(rename = "activation.deleted")]
    ActivationDeleted,
    #[serde(rename = "usage.quota_reached")]
    UsageQuotaReached,
    #[serde(rename = "webhook.test")]
    WebhookTest,
    #[serde(rename = "invoice.ready")]
    InvoiceReady,
}

impl EventType {
    pub const ALL: [EventType; 12] = [
        EventType::LicenseCreated,
        EventType::LicenseSuspended,
        EventType::LicenseResumed,
        EventType::LicenseCancelled,
        EventType::LicenseRenewed,
        EventType::LicensePolicyChanged,
        EventType::LicensePastDue,
        EventType::ActivationCreated,
        EventType::ActivationDeleted,
        EventType::UsageQuotaReached,
        EventType::WebhookTest,
        EventType::InvoiceReady,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::LicenseCreated => "license.created",
            EventType::LicenseSuspended => "license.suspended",
            EventType::LicenseResumed => "license.resumed",
            EventType::LicenseCancelled => "license.cancelled",
            EventType::LicenseRenewed => "license.renewed",
            EventType::LicensePolicyChanged => "license.policy_changed",
            EventType::LicensePastDue => "license.past_due",
            EventType::ActivationCreated => "activation.created",
            EventType::ActivationDeleted => "activation.deleted",
            EventType::UsageQuotaReached => "usage.quota_reached",
            EventType::WebhookTest => "webhook.test",
            EventType::InvoiceReady => "invoice.ready",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The event an audited change emits, if any: the audit item is the
    /// outbox, written in the change's own transaction.
    pub fn of_audit(code: AuditCode) -> Option<EventType> {
        use AuditCode as A;
        Some(match code {
            A::LicenseCreated => EventType::LicenseCreated,
            A::LicenseSuspended => EventType::LicenseSuspended,
            A::LicenseResumed => EventType::LicenseResumed,
            A::LicenseCancelled => EventType::LicenseCancelled,
            A::LicenseRenewed => EventType::LicenseRenewed,
            A::LicensePolicyChanged => EventType::LicensePolicyChanged,
            A::LicensePastDue => EventType::LicensePastDue,
            A::ActivationCreated => EventType::ActivationCreated,
            A::ActivationDeleted => EventType::ActivationDeleted,
            A::InvoiceReady => EventType::InvoiceReady,
            _ => return None,
        })
    }
}

/// Which events an endpoint receives: `["*"]` or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFilter {
    All,
    Only(Vec<EventType>),
}

impl EventFilter {
    /// From the request's `events`; unknown names and an empty list are refused.
    pub fn parse(names: &[String]) -> Result<EventFilter, Error> {
        if names.is_empty() || names.len() > EventType::ALL.len() {
            return Err(Error::validation(
                "events must list 1 to 12 event types, or be [\"*\"]",
            ));
        }
        if names.iter().any(|n| n == "*") {
            if names.len() > 1 {
                return Err(Error::validation("events: \"*\" stands alone"));
            }
            return Ok(EventFilter::All);
        }
        let mut out = Vec::new();
        for n in names {
            let e = EventType::parse(n)
                .ok_or_else(|| Error::validation(format!("events: unknown event type {n:?}")))?;
            if !out.contains(&e) {
                out.push(e);
            }
        }
        Ok(EventFilter::Only(out))
    }

    pub fn names(&self) -> Vec<String> {
        match self {
            EventFilter::All => vec!["*".into()],
            EventFilter::Only(v) => v.iter().map(|e| e.as_str().to_string()).collect(),
        }
    }

    /// `webhook.test` reaches every endpoint it is sent to.
    pub fn matches(&self, e: EventType) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Only(v) => e == EventType::WebhookTest || v.contains(&e),
        }
    }
}

impl Serialize for EventFilter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

impl<'de> Deserialize<'de> for EventFilter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        EventFilter::parse(&names).map_err(serde::de::Error::custom)
    }
}

/// A vendor's receiver. Its signing secret is never stored: it is derived
/// from the webhook master secret, the tenant, the endpoint id and `salt`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    pub tenant_id: TenantId,
    pub url: String,
    pub events: EventFilter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub enabled: bool,
    /// Why it was disabled: `manual` or `failing` (3 days of failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Random hex mixed into the secret's derivation.
    pub salt: String,
    /// Since when every delivery has failed (cleared by a success). Absent,
    /// not null, when healthy: the store sets it with `if_not_exists`.
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<OffsetDateTime>,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "ts")]
    pub updated_at: OffsetDateTime,
}

/// How long an endpoint may fail every delivery before it is disabled.
pub const DISABLE_AFTER: time::Duration = time::Duration::days(3);
/// Deliveries wait at most this long for an answer.
pub const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// An endpoint's answer body is kept in the log up to this many bytes.
pub const RESPONSE_EXCERPT: usize = 512;
/// SQS visibility timeouts cannot pass 12 hours.
pub const MAX_BACKOFF_SECS: u64 = 12 * 3600;
/// Attempts before a message moves to the DLQ (the queue's maxReceiveCount):
/// with a 60 s base the last one is made about 29 hours after the first.
pub const MAX_ATTEMPTS: u32 = 12;

/// Seconds to wait after failed attempt `attempt` (1-based): `base`,
/// doubling, at most 12 hours.
pub fn backoff_secs(base: u64, attempt: u32) -> u64 {
    let exp = attempt.saturating_sub(1).min(30);
    base.max(1)
        .saturating_mul(1u64 << exp)
        .min(MAX_BACKOFF_SECS)
}

/// The event as the receiver gets it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboundEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    pub tenant_id: TenantId,
    pub data: serde_json::Value,
}

/// The event of an audited change: `evt_` + the audit event's ULID, so
/// every delivery of one change carries one id.
pub fn event_id_of_audit(audit_id: &str) -> String {
    let ulid = audit_id.strip_prefix("aud_").unwrap_or(audit_id);
    format!("evt_{}", ulid.to_ascii_lowercase())
}

/// The event of a usage counter reaching its limit: one per counter (a
/// counter is one metric and period of one license, and never goes down).
pub fn counter_event_id(pk: &str, sk: &str) -> String {
    let digest = crate::crypto::sha256_hex(format!("quota\0{pk}\0{sk}").as_bytes());
    format!("evt_q{}", &digest[..25])
}

/// One attempt to deliver one event to one endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub endpoint_id: WebhookEndpointId,
    pub event_id: String,
    pub event_type: EventType,
    /// 1 for the first automatic attempt; manual resends count on.
    pub attempt: u32,
    pub manual: bool,
    #[serde(with = "ts")]
    pub at: OffsetDateTime,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub succeeded: bool,
    /// Why it failed without an answer (timeout, refused address, ...).
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub response_excerpt: Option<String>,
    /// The exact body sent, so a manual retry resends the same event.
    pub payload: String,
}

/// `X-Licensing-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>`
/// (Stripe's scheme).
pub fn signature_header(secret: &str, t: i64, body: &[u8]) -> String {
    let t_text = t.to_string();
    let mac = crate::crypto::hmac_sha256(secret.as_bytes(), &[t_text.as_bytes(), b".", body]);
    format!("t={t},v1={}", hex::encode(mac))
}

/// What a webhook URL may point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlPolicy {
    /// `https://` to public addresses only (the deployed setting).
    PublicHttps,
    /// Also `http://` to loopback: the local development setting.
    AllowLoopbackHttp,
}

fn invalid_url(why: impl Into<String>) -> Error {
    Error::invalid("INVALID_WEBHOOK_URL", why)
}

/// A syntactically acceptable webhook URL: scheme, no credentials, a host;
/// an IP-literal host must pass [`UrlPolicy::permits`]. Names are checked
/// again, resolved, before every delivery.
pub fn check_url(raw: &str, policy: UrlPolicy) -> Result<url::Url, Error> {
    if raw.len() > 2048 {
        return Err(invalid_url("the URL is longer than 2048 characters"));
    }
    let u = url::Url::parse(raw).map_err(|e| invalid_url(format!("not a URL: {e}")))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err(invalid_url("the URL may not carry credentials"));
    }
    if u.fragment().is_some() {
        return Err(invalid_url("the URL may not have a fragment"));
    }
    let host = u.host().ok_or_else(|| invalid_url("the URL has no host"))?;
    let ip = match host {
        url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
        url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") || d.ends_with(".internal") {
                return Err(invalid_url(format!("{d} is not a public host")));
            }
            None
        }
    };
    match (u.scheme(), policy) {
        ("https", _) => {}
        ("http", UrlPolicy::AllowLoopbackHttp) if ip.is_some_and(|a| policy.permits(a)) => {}
        ("http", _) => return Err(invalid_url("the URL must use https://")),
        (other, _) => return Err(invalid_url(format!("scheme {other}:// is not allowed"))),
    }
    if let Some(a) = ip {
        if !policy.permits(a) {
            return Err(invalid_url(format!(
                "{a} is a loopback, private, link-local or metadata address"
            )));
        }
    }
    Ok(u)
}

impl UrlPolicy {
    /// Whether a delivery may connect to `a`.
    pub fn permits(self, a: IpAddr) -> bool {
        if is_public(a) {
            return true;
        }
        // Local development: 127.0.0.0/8 only (not ::1, not a name).
        self == UrlPolicy::AllowLoopbackHttp && matches!(a, IpAddr::V4(v4) if v4.is_loopback())
    }
}

/// Globally routable unicast. IPv4: not loopback, private, link-local,
/// shared (CGNAT), unspecified, broadcast, multicast, documentation,
/// benchmarking, reserved or a cloud metadata address. IPv6: see
/// [`is_public_v6`].
pub fn is_public(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    !(a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 192 && o[1] == 88 && o[2] == 99)
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
        || o[0] >= 240)
}

/// The IPv4 address in segments `hi` and `lo`.
fn v4_of(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// An IPv6 address is public only if it is listed here (an allow-list, so
/// a form nobody thought of is refused):
///
/// - global unicast (`2000::/3`) outside every block of the IANA IPv6
///   special-purpose registry that lies in it: `2001::/23` (IETF protocol
///   assignments: Teredo `2001::/32`, benchmarking `2001:2::/48`, ORCHID,
///   AMT, …), documentation `2001:db8::/32` and `3fff::/20`, the AS112
///   delegation `2620:4f:8000::/48` and SRv6 SIDs `5f00::/16`;
/// - forms that embed an IPv4 address, when that address is public:
///   IPv4-mapped `::ffff:0:0/96`, IPv4-translated `::ffff:0:0:0/96`, the
///   NAT64 well-known prefix `64:ff9b::/96`, and 6to4 `2002::/16`.
///
/// Everything else is refused: loopback, unspecified, IPv4-compatible
/// `::/96`, discard-only `100::/64`, local-use NAT64 `64:ff9b:1::/48`
/// (where the IPv4 address sits is up to the network), unique-local,
/// link-local, site-local, multicast, and whatever is not yet allocated.
fn is_public_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    // IPv4-mapped ::ffff:a.b.c.d and IPv4-translated ::ffff:0:a.b.c.d.
    if s[..4] == [0; 4] && ((s[4] == 0 && s[5] == 0xffff) || (s[4] == 0xffff && s[5] == 0)) {
        return is_public_v4(v4_of(s[6], s[7]));
    }
    // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return is_public_v4(v4_of(s[6], s[7]));
    }
    // Everything else must be global unicast.
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    // 6to4: the relay is the embedded IPv4 address.
    if s[0] == 0x2002 {
        return is_public_v4(v4_of(s[1], s[2]));
    }
    // 2001::/23 (IETF protocol assignments) and 2001:db8::/32 (documentation).
    let special = (s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0db8))
        || (s[0] == 0x2620 && s[1] == 0x004f && s[2] == 0x8000) // 2620:4f:8000::/48
        || (s[0] == 0x3fff && s[1] < 0x1000) // 3fff::/20
        || s[0] == 0x5f00; // 5f00::/16
    !special
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn refused(u: &str, p: UrlPolicy) -> bool {
        matches!(
            check_url(u, p),
            Err(Error::Invalid {
                code: "INVALID_WEBHOOK_URL",
                ..
            })
        )
    }

    #[test]
    fn urls_that_point_inside_are_refused() {
        let p = UrlPolicy::PublicHttps;
        for u in [
            "https://127.0.0.1/hook",
            "https://10.0.0.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://[fd00:ec2::254]/",
            "https://[::ffff:10.1.2.3]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://192.168.1.1:8443/",
            "https://localhost/",
            "https://metadata.google.internal/",
            "http://example.com/hook",
            "http://127.0.0.1:8080/hook",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "not a url",
        ] {
            assert!(refused(u, p), "{u} was accepted");
        }
        assert!(check_url("https://hooks.example.com/x?y=1", p).is_ok());
        assert!(check_url("https://93.184.216.34/x", p).is_ok());
    }

    /// The IPv6 forms that reach inside, listed by how they do it; each is
    /// refused at creation, at PATCH (both [`check_url`]) and at delivery
    /// (the resolver's [`UrlPolicy::permits`]).
    pub(crate) const INSIDE_V6: &[&str] = &[
        "::ffff:0:127.0.0.1",                   // IPv4-translated loopback
        "::ffff:0:10.0.0.1",                    // IPv4-translated private
        "::ffff:169.254.169.254",               // IPv4-mapped metadata
        "64:ff9b::10.0.0.1",                    // NAT64 well-known prefix, private
        "64:ff9b:1::a9fe:a9fe",                 // local-use NAT64 (metadata)
        "64:ff9b:1::5db8:d822",                 // local-use NAT64, even a public IPv4
        "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo
        "2001::1",                              // Teredo
        "2001:2::1",                            // benchmarking 2001:2::/48
        "2001:10::1",                           // ORCHID
        "2001:1ff:ffff::1",                     // the rest of 2001::/23
        "2001:db8::1",                          // documentation
        "3fff::1",                              // documentation 3fff::/20
        "3fff:fff::1",                          // its end
        "2620:4f:8000::1",                      // AS112 delegation
        "5f00::1",                              // SRv6 SIDs
        "2002:a00:1::1",                        // 6to4 of 10.0.0.1
        "2002:7f00:1::1",                       // 6to4 of 127.0.0.1
        "100::1",                               // discard-only 100::/64
        "100::ffff:1",                          // discard-only
        "::7f00:1",                             // IPv4-compatible (deprecated)
        "::5db8:d822",                          // IPv4-compatible, public IPv4
        "::",                                   // unspecified
        "::1",                                  // loopback
        "fd00:ec2::254",                        // unique-local (AWS metadata)
        "fe80::1",                              // link-local
        "fec0::1",                              // site-local
        "ff02::1",                              // multicast
        "4000::1",                              // not allocated (outside 2000::/3)
        "e000::1",                              // not allocated
    ];

    #[test]
    fn ipv6_outside_global_unicast_or_special_or_embedding_an_inside_ipv4_is_refused() {
        for a in INSIDE_V6 {
            let ip: Ipv6Addr = a.parse().unwrap_or_else(|e| panic!("{a}: {e}"));
            for p in [UrlPolicy::PublicHttps, UrlPolicy::AllowLoopbackHttp] {
                assert!(!p.permits(IpAddr::V6(ip)), "{a} permitted under {p:?}");
                assert!(refused(&format!("https://[{a}]/hook"), p), "{a} accepted");
            }
        }
        for a in [
            "2606:4700::1111",          // global unicast
            "2a00:1450:4001:82b::200e", // global unicast
            "2001:200::1",              // just past 2001::/23
            "2001:db9::1",              // just past the documentation block
            "2620:4f:8001::1",          // just past the AS112 delegation
            "3ffe::1",                  // just below 3fff::/20
            "3fff:1000::1",             // just past it
            "::ffff:93.184.216.34",     // IPv4-mapped, public
            "::ffff:0:93.184.216.34",   // IPv4-translated, public
            "64:ff9b::93.184.216.34",   // NAT64 well-known prefix, public
            "2002:5db8:d822::1",        // 6to4 of a public IPv4
        ] {
            let ip: Ipv6Addr = a.parse().unwrap();
            assert!(is_public(IpAddr::V6(ip)), "{a} refused");
            assert!(
                check_url(&format!("https://[{a}]/hook"), UrlPolicy::PublicHttps).is_ok(),
                "{a}"
            );
        }
        assert!(
            !is_public("192.88.99.1".parse().unwrap()),
            "6to4 relay anycast"
        );
    }

    #[test]
    fn the_local_setting_allows_http_to_loopback_only() {
        let p = UrlPolicy::AllowLoopbackHttp;
        assert!(check_url("http://127.0.0.1:8080/hook", p).is_ok());
        assert!(refused("http://[::1]:8080/hook", p));
        assert!(refused("http://10.0.0.1/hook", p));
        assert!(refused("http://example.com/hook", p));
        assert!(refused("https://169.254.169.254/", p));
    }

    #[test]
    fn backoff_doubles_to_twelve_hours_and_spans_a_day() {
        assert_eq!(backoff_secs(60, 1), 60);
        assert_eq!(backoff_secs(60, 2), 120);
        assert_eq!(backoff_secs(60, 40), MAX_BACKOFF_SECS);
        let total: u64 = (1..MAX_ATTEMPTS).map(|a| backoff_secs(60, a)).sum();
        assert!(total >= 24 * 3600, "retries span only {total} s");
    }

    #[test]
    fn signature_matches_stripe_scheme() {
        let h = signature_header("whsec_test", 1_700_000_000, b"{}");
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(h.len(), "t=1700000000,v1=".len() + 64);
        let v =
            crate::domain::stripe::verify_signature("whsec_test", Some(&h), b"{}", 1_700_000_000);
        assert!(v.is_ok());
    }

    #[test]
    fn filters() {
        assert!(EventFilter::parse(&[]).is_err());
        assert!(EventFilter::parse(&["*".into(), "license.created".into()]).is_err());
        assert!(EventFilter::parse(&["license.exploded".into()]).is_err());
        let f = EventFilter::parse(&["license.created".into()]).unwrap();
        assert!(f.matches(EventType::LicenseCreated));
        assert!(f.matches(EventType::WebhookTest));
        assert!(!f.matches(EventType::LicenseSuspended));
    }
}
