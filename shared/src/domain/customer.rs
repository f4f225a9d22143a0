//! Customer organizations: tenants of kind `customer` (an enterprise that
//! buys floating licenses from several vendors and pools them for its
//! people), their members and roles, and the API keys of their apps with the
//! bindings every call made with such a key must satisfy. Pure rules only.

use crate::clock::ts;
use crate::ids::{ApiKeyId, Domain, Email, TenantId};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use time::OffsetDateTime;

/// What a tenant item is. Items written before customer organizations
/// existed have no `kind`: they are vendors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TenantKind {
    #[default]
    Vendor,
    Customer,
}

impl TenantKind {
    pub const ATTR: &'static str = "kind";
    pub fn as_str(self) -> &'static str {
        match self {
            TenantKind::Vendor => "vendor",
            TenantKind::Customer => "customer",
        }
    }
}

/// A customer organization's lifecycle: registered, then `active` once its
/// domain is proven; the operator may suspend it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerStatus {
    PendingVerification,
    Active,
    Suspended,
}

impl CustomerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerStatus::PendingVerification => "pending_verification",
            CustomerStatus::Active => "active",
            CustomerStatus::Suspended => "suspended",
        }
    }
}

/// Requests per minute per customer API key (across instances).
pub const CUSTOMER_KEY_RATE_LIMIT_PER_MINUTE: u32 = 1_200;

/// The tenant item of a customer organization (`kind: "customer"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerOrg {
    pub tenant_id: TenantId,
    /// Always [`TenantKind::Customer`]; vendor code refuses items with it.
    pub kind: TenantKind,
    pub name: String,
    pub domain: Domain,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub admin_email: Email,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_name: Option<String>,
    pub status: CustomerStatus,
    /// The value the TXT record `_licensing-verify.<domain>` must hold is
    /// `licensing-verify=<token>` (public once published; not a credential).
    pub verification_token: String,
    /// Requests per minute per API key of this organization.
    #[serde(default = "default_key_rate")]
    pub rate_limit_per_minute: u32,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "ts")]
    pub updated_at: OffsetDateTime,
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<OffsetDateTime>,
}

fn default_key_rate() -> u32 {
    CUSTOMER_KEY_RATE_LIMIT_PER_MINUTE
}

impl CustomerOrg {
    /// The TXT record's name and value that prove the domain.
    pub fn dns_record(&self) -> (String, String) {
        (
            format!("_licensing-verify.{}", self.domain),
            format!("licensing-verify={}", self.verification_token),
        )
    }
}

/// A member's role in an organization. See [`Permission`] for the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Viewer,
    Manager,
    Admin,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Viewer => "viewer",
            MemberRole::Manager => "manager",
            MemberRole::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(MemberRole::Viewer),
            "manager" => Some(MemberRole::Manager),
            "admin" => Some(MemberRole::Admin),
            _ => None,
        }
    }
}

/// A person of an organization (the admin who registered it included).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    pub email: Email,
    pub role: MemberRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub invited_by: String,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "ts")]
    pub updated_at: OffsetDateTime,
}

/// What a customer API key may do (its apps' scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
pub enum CustomerScope {
    #[serde(rename = "license:checkout")]
    LicenseCheckout,
    #[serde(rename = "license:return")]
    LicenseReturn,
    #[serde(rename = "license:read")]
    LicenseRead,
}

impl CustomerScope {
    pub const ALL: [CustomerScope; 3] = [
        CustomerScope::LicenseCheckout,
        CustomerScope::LicenseReturn,
        CustomerScope::LicenseRead,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerScope::LicenseCheckout => "license:checkout",
            CustomerScope::LicenseReturn => "license:return",
            CustomerScope::LicenseRead => "license:read",
        }
    }
}

/// What kind of app holds a key (informational: shown in lists, audited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppType {
    Desktop,
    CiCd,
    CloudService,
}

/// Everything a caller of the `/v1/customer/...` API may be allowed to do.
/// The RBAC matrix (docs/customers.md):
///
/// | permission      | viewer | manager | admin | key scope          |
/// |-----------------|--------|---------|-------|--------------------|
/// | `Read`          | yes    | yes     | yes   | `license:read`     |
/// | `Checkout`      | no     | yes     | yes   | `license:checkout` |
/// | `Return`        | no     | yes     | yes   | `license:return`   |
/// | `ManageLicenses`| no     | yes     | yes   | never              |
/// | `ManageKeys`    | no     | yes     | yes   | never              |
/// | `ManageMembers` | no     | no      | yes   | never              |
/// | `ReadMembers`   | yes    | yes     | yes   | never              |
/// | `ReadAudit`     | yes    | yes     | yes   | never              |
///
/// An app key works the pool only; people (portal sessions) run the
/// organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Catalog, checkouts held, the session itself.
    Read,
    Checkout,
    Return,
    /// Overage caps and other per-license settings of the organization.
    ManageLicenses,
    ManageKeys,
    ManageMembers,
    /// The member list (people are not an app's business).
    ReadMembers,
    ReadAudit,
}

impl Permission {
    /// The role a person needs at least.
    pub fn min_role(self) -> MemberRole {
        match self {
            Permission::Read | Permission::ReadMembers | Permission::ReadAudit => {
                MemberRole::Viewer
            }
            Permission::Checkout
            | Permission::Return
            | Permission::ManageLicenses
            | Permission::ManageKeys => MemberRole::Manager,
            Permission::ManageMembers => MemberRole::Admin,
        }
    }
    /// The scope an app key needs (`None`: no key may).
    pub fn key_scope(self) -> Option<CustomerScope> {
        match self {
            Permission::Read => Some(CustomerScope::LicenseRead),
            Permission::Checkout => Some(CustomerScope::LicenseCheckout),
            Permission::Return => Some(CustomerScope::LicenseReturn),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Checkout => "checkout",
            Permission::Return => "return",
            Permission::ManageLicenses => "manage licenses",
            Permission::ManageKeys => "manage API keys",
            Permission::ManageMembers => "manage members",
            Permission::ReadMembers => "list members",
            Permission::ReadAudit => "read the audit trail",
        }
    }
}

/// Where an app key may be used from. Empty lists bind nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBindings {
    /// Lowercase host names the app must name in `X-Hostname`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hostnames: Vec<String>,
    /// Source addresses (as API Gateway saw them) the app must call from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_cidrs: Vec<ipnet::IpNet>,
    /// Lowercase hex SHA-256 of the DER of the client certificate the app
    /// must present (API Gateway mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_sha256: Option<String>,
}

/// What a request shows of where it comes from.
#[derive(Debug, Clone, Default)]
pub struct RequestOrigin<'a> {
    pub hostname: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    /// Hex SHA-256 of the client certificate's DER, if one was presented.
    pub client_cert_sha256: Option<&'a str>,
}

impl KeyBindings {
    /// Whether the request satisfies every binding; `Err` names the first
    /// that failed (for the log and the message, never a secret).
    pub fn check(&self, o: &RequestOrigin<'_>) -> Result<(), &'static str> {
        if !self.allowed_hostnames.is_empty() {
            let host = o.hostname.map(|h| h.trim().to_ascii_lowercase());
            let ok = host.is_some_and(|h| self.allowed_hostnames.contains(&h));
            if !ok {
                return Err("hostname");
            }
        }
        if !self.allowed_cidrs.is_empty() {
            let ip = o.source_ip.and_then(|s| s.parse::<IpAddr>().ok());
            let ok = ip.is_some_and(|ip| {
                let ip = canonical(ip);
                self.allowed_cidrs.iter().any(|n| n.contains(&ip))
            });
            if !ok {
                return Err("source address");
            }
        }
        if let Some(want) = &self.client_cert_sha256 {
            let ok = o.client_cert_sha256.is_some_and(|got| {
                crate::crypto::constant_time_eq(got.as_bytes(), want.as_bytes())
            });
            if !ok {
                return Err("client certificate");
            }
        }
        Ok(())
    }
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Most hostnames / CIDRs one key may name.
pub const MAX_BINDINGS: usize = 50;

/// Validate and normalise bindings as a request gives them.
pub fn parse_bindings(
    hostnames: Option<Vec<String>>,
    cidrs: Option<Vec<String>>,
    cert: Option<String>,
) -> Result<KeyBindings, crate::error::Error> {
    use crate::error::Error;
    let hostnames = hostnames.unwrap_or_default();
    let cidrs = cidrs.unwrap_or_default();
    if hostnames.len() > MAX_BINDINGS || cidrs.len() > MAX_BINDINGS {
        return Err(Error::validation(format!(
            "allowed_hostnames and allowed_cidrs take at most {MAX_BINDINGS} entries each"
        )));
    }
    let mut hosts = Vec::new();
    for h in hostnames {
        let h = h.trim().to_ascii_lowercase();
        let ok = !h.is_empty()
            && h.len() <= 253
            && h.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
        if !ok {
            return Err(Error::validation(format!(
                "allowed_hostnames: '{h}' is not a host name"
            )));
        }
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    let mut nets = Vec::new();
    for c in cidrs {
        let c = c.trim();
        let net = c
            .parse::<ipnet::IpNet>()
            .or_else(|_| c.parse::<IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                Error::validation(format!(
                    "allowed_cidrs: '{c}' is not an address or CIDR block"
                ))
            })?
            .trunc();
        if !nets.contains(&net) {
            nets.push(net);
        }
    }
    let cert = match cert {
        None => None,
        Some(c) => {
            let c = c.trim().to_ascii_lowercase().replace(':', "");
            if c.len() != 64 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::validation(
                    "client_cert_sha256 must be the 64 hex digits of a SHA-256",
                ));
            }
            Some(c)
        }
    };
    Ok(KeyBindings {
        allowed_hostnames: hosts,
        allowed_cidrs: nets,
        client_cert_sha256: cert,
    })
}

/// The hex SHA-256 of the DER of a PEM certificate (what
/// `client_cert_sha256` names). `None` if it is not a PEM certificate.
pub fn cert_sha256_of_pem(pem_text: &str) -> Option<String> {
    let p = pem::parse(pem_text.trim()).ok()?;
    if p.tag() != "CERTIFICATE" {
        return None;
    }
    Some(crate::crypto::sha256_hex(p.contents()))
}

/// An API key of a customer organization's app. Stored beside vendor keys
/// (`T#<customer>#KEYS`), with its own shape: a vendor key lookup never
/// reaches one, since it names a customer tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerKeyRecord {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub app_name: String,
    pub app_type: AppType,
    pub scopes: Vec<CustomerScope>,
    /// hex(HMAC-SHA256(pepper, secret)).
    pub hash: String,
    #[serde(flatten)]
    pub bindings: KeyBindings,
    pub created_by: String,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<OffsetDateTime>,
}

impl CustomerKeyRecord {
    pub fn usable_at(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// Most days a customer key may be made to live.
pub const MAX_KEY_DAYS: u32 = 3650;

/// An organization as vendors find it in the directory of verified
/// organizations: public fields only (never members, keys or e-mails).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirectoryEntry {
    pub customer_id: TenantId,
    pub name: String,
    /// The name in lowercase, for prefix search.
    pub name_lc: String,
    pub domain: Domain,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(with = "ts")]
    pub verified_at: OffsetDateTime,
}

impl DirectoryEntry {
    pub fn of(org: &CustomerOrg, now: OffsetDateTime) -> Self {
        Self {
            customer_id: org.tenant_id.clone(),
            name: org.name.clone(),
            name_lc: org.name.to_lowercase(),
            domain: org.domain.clone(),
            country: org.country.clone(),
            verified_at: org.verified_at.unwrap_or(now),
        }
    }
}

/// A registration as the request gives it, checked.
#[derive(Debug, Clone)]
pub struct Registration {
    pub customer_id: TenantId,
    pub name: String,
    pub domain: Domain,
    pub country: Option<String>,
    pub tax_id: Option<String>,
    pub region: Option<String>,
    pub admin_email: Email,
    pub admin_name: Option<String>,
}

/// An ISO 3166-1 alpha-2 country code (`DE`), stored uppercase.
pub fn parse_country(s: &str) -> Result<String, crate::error::Error> {
    let c = s.trim().to_ascii_uppercase();
    if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(c)
    } else {
        Err(crate::error::Error::validation(
            "company.country must be an ISO 3166-1 alpha-2 code (DE, US, ...)",
        ))
    }
}

/// A tax id: 2 to 32 of letters, digits, spaces, '-', '.' and '/'.
pub fn parse_tax_id(s: &str) -> Result<String, crate::error::Error> {
    let t = s.trim().to_string();
    let ok = (2..=32).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'-' | b'.' | b'/'));
    if ok {
        Ok(t)
    } else {
        Err(crate::error::Error::validation(
            "company.tax_id must be 2 to 32 letters, digits, spaces, '-', '.' or '/'",
        ))
    }
}

/// The admin's address must be at the company's domain or one of its
/// subdomains (`ann@de.mercedes.com` for `mercedes.com`): whoever proves
/// the domain holds its subdomains too.
pub fn check_admin_email(domain: &Domain, email: &Email) -> Result<(), crate::error::Error> {
    if domain.covers(email.domain()) {
        Ok(())
    } else {
        Err(crate::error::Error::invalid(
            "ADMIN_EMAIL_DOMAIN_MISMATCH",
            format!("admin.email must be an address at {domain} (or a subdomain of it)"),
        ))
    }
}

impl Registration {
    /// The organization this registration makes, pending its domain proof.
    pub fn into_org(self, token: String, now: OffsetDateTime) -> (CustomerOrg, Member) {
        let admin = Member {
            email: self.admin_email.clone(),
            role: MemberRole::Admin,
            name: self.admin_name.clone(),
            invited_by: "registration".into(),
            created_at: now,
            updated_at: now,
        };
        let org = CustomerOrg {
            tenant_id: self.customer_id,
            kind: TenantKind::Customer,
            name: self.name,
            domain: self.domain,
            country: self.country,
            tax_id: self.tax_id,
            region: self.region,
            admin_email: self.admin_email,
            admin_name: self.admin_name,
            status: CustomerStatus::PendingVerification,
            verification_token: token,
            rate_limit_per_minute: CUSTOMER_KEY_RATE_LIMIT_PER_MINUTE,
            created_at: now,
            updated_at: now,
            verified_at: None,
        };
        (org, admin)
    }
}

/// Who hears of a license granted to the organization: every member with
/// the admin role; the registering admin when the member list names none
/// (an organization verified before members were listed).
pub fn grant_recipients(members: &[Member], registered_admin: &Email) -> Vec<Email> {
    let admins: Vec<Email> = members
        .iter()
        .filter(|m| m.role == MemberRole::Admin)
        .map(|m| m.email.clone())
        .collect();
    if admins.is_empty() {
        vec![registered_admin.clone()]
    } else {
        admins
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin<'a>(
        h: Option<&'a str>,
        ip: Option<&'a str>,
        c: Option<&'a str>,
    ) -> RequestOrigin<'a> {
        RequestOrigin {
            hostname: h,
            source_ip: ip,
            client_cert_sha256: c,
        }
    }

    #[test]
    fn the_admin_is_at_the_domain_or_below() {
        let d = Domain::normalise("Mercedes.com").unwrap();
        let ok = |e: &str| check_admin_email(&d, &Email::normalise(e).unwrap()).is_ok();
        assert!(ok("ann@mercedes.com"));
        assert!(ok("ann@de.mercedes.com"));
        assert!(!ok("ann@evilmercedes.com"));
        assert!(!ok("ann@mercedes.com.evil.io"));
        assert_eq!(parse_country(" de ").unwrap(), "DE");
        assert!(parse_country("DEU").is_err());
        assert!(parse_tax_id("DE 123/456-7").is_ok());
        assert!(parse_tax_id("<script>").is_err());
        assert!(Domain::normalise("localhost").is_err());
        assert!(Domain::normalise("-a.com").is_err());
        assert!(Domain::normalise("a.c0m").is_err());
    }

    #[test]
    fn unbound_keys_pass_anything() {
        assert!(KeyBindings::default()
            .check(&origin(None, None, None))
            .is_ok());
    }

    #[test]
    fn hostnames_must_be_named_and_listed() {
        let b = parse_bindings(Some(vec!["Build-01.corp".into()]), None, None).unwrap();
        assert_eq!(b.allowed_hostnames, vec!["build-01.corp"]);
        assert!(b.check(&origin(Some("BUILD-01.corp"), None, None)).is_ok());
        assert_eq!(
            b.check(&origin(Some("build-02.corp"), None, None)),
            Err("hostname")
        );
        assert_eq!(b.check(&origin(None, None, None)), Err("hostname"));
    }

    #[test]
    fn cidrs_match_the_source_address() {
        let b = parse_bindings(
            None,
            Some(vec!["10.1.2.3/16".into(), "2001:db8::1".into()]),
            None,
        )
        .unwrap();
        assert_eq!(b.allowed_cidrs[0].to_string(), "10.1.0.0/16");
        assert!(b.check(&origin(None, Some("10.1.200.7"), None)).is_ok());
        assert!(b
            .check(&origin(None, Some("::ffff:10.1.0.9"), None))
            .is_ok());
        assert!(b.check(&origin(None, Some("2001:db8::1"), None)).is_ok());
        assert_eq!(
            b.check(&origin(None, Some("10.2.0.1"), None)),
            Err("source address")
        );
        assert_eq!(b.check(&origin(None, None, None)), Err("source address"));
        assert!(parse_bindings(None, Some(vec!["10.0.0.0/33".into()]), None).is_err());
    }

    #[test]
    fn client_certificates_are_compared_by_digest() {
        let d = "AB".repeat(32);
        let b = parse_bindings(None, None, Some(d.clone())).unwrap();
        let want = "ab".repeat(32);
        assert!(b.check(&origin(None, None, Some(&want))).is_ok());
        assert_eq!(
            b.check(&origin(None, None, Some(&"cd".repeat(32)))),
            Err("client certificate")
        );
        assert_eq!(
            b.check(&origin(None, None, None)),
            Err("client certificate")
        );
        assert!(parse_bindings(None, None, Some("abc".into())).is_err());
    }

    #[test]
    fn the_rbac_matrix() {
        use Permission::*;
        let all = [
            Read,
            Checkout,
            Return,
            ManageLicenses,
            ManageKeys,
            ManageMembers,
            ReadMembers,
            ReadAudit,
        ];
        let may = |r: MemberRole| all.iter().filter(|p| r >= p.min_role()).count();
        assert_eq!(may(MemberRole::Viewer), 3);
        assert_eq!(may(MemberRole::Manager), 7);
        assert_eq!(may(MemberRole::Admin), 8);
        let keyed: Vec<_> = all.iter().filter_map(|p| p.key_scope()).collect();
        assert_eq!(keyed.len(), 3);
    }

    #[test]
    fn pem_certificates_hash_their_der() {
        let der = b"not really DER but bytes";
        let text = pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()));
        assert_eq!(
            cert_sha256_of_pem(&text).unwrap(),
            crate::crypto::sha256_hex(der)
        );
        let key = pem::encode(&pem::Pem::new("PRIVATE KEY", der.to_vec()));
        assert_eq!(cert_sha256_of_pem(&key), None);
        assert_eq!(cert_sha256_of_pem("garbage"), None);
    }
}

#[cfg(test)]
mod grant_tests {
    use super::*;
    use crate::ids::Email;
    use time::macros::datetime;

    fn member(email: &str, role: MemberRole) -> Member {
        Member {
            email: Email::normalise(email).unwrap(),
            role,
            name: None,
            invited_by: "admin@acme.example".into(),
            created_at: datetime!(2026-12-01 00:00 UTC),
            updated_at: datetime!(2026-12-01 00:00 UTC),
        }
    }

    #[test]
    fn every_admin_hears_of_a_grant_and_nobody_else() {
        let first = Email::normalise("first@acme.example").unwrap();
        let members = [
            member("a@acme.example", MemberRole::Admin),
            member("m@acme.example", MemberRole::Manager),
            member("v@acme.example", MemberRole::Viewer),
            member("b@acme.example", MemberRole::Admin),
        ];
        let to: Vec<String> = grant_recipients(&members, &first)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(to, ["a@acme.example", "b@acme.example"]);
        assert_eq!(grant_recipients(&[], &first), [first]);
    }
}
