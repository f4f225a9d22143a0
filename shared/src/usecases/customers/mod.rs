//! Customer organizations: registration, domain proof, members, app keys.
//! A customer organization is a tenant of kind `customer` (docs/customers.md).

pub mod crm;
pub mod keys;
pub mod members;

use crate::domain::{AuditCode, AuditEvent, CustomerOrg, DirectoryEntry, Registration};
use crate::error::Error;
use crate::store::customers::VerifyOutcome;
use crate::store::Store;
use time::OffsetDateTime;

/// The actor of what the registration flow writes.
pub const REGISTRATION_ACTOR: &str = "registration";

/// A customer id that is taken (by a vendor or a customer).
pub fn customer_exists() -> Error {
    Error::conflict(
        "CUSTOMER_EXISTS",
        "that customer_id is taken; choose another",
    )
}

/// Another organization has verified this domain already.
pub fn domain_claimed() -> Error {
    Error::conflict(
        "DOMAIN_ALREADY_CLAIMED",
        "another organization has already verified this domain",
    )
}

/// Create the organization, pending its domain proof, with its admin as
/// its first member. The verification token is random.
pub async fn create(
    store: &Store,
    reg: Registration,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<CustomerOrg, Error> {
    let token = crate::usecases::portal::new_secret();
    let (org, admin) = reg.into_org(token, now);
    let audit = AuditEvent::new(
        &org.tenant_id,
        AuditCode::CustomerRegistered,
        REGISTRATION_ACTOR,
        org.tenant_id.as_str(),
        now,
        request_id,
    )
    .with_data(serde_json::json!({ "domain": org.domain, "admin": admin.email }));
    if !store.create_customer(&org, &admin, &audit).await? {
        return Err(customer_exists());
    }
    Ok(org)
}

/// Activate an organization whose domain is proven (the DNS check is the
/// caller's): status, domain claim, directory entry, audit, at once.
pub async fn activate(
    store: &Store,
    org: &CustomerOrg,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<VerifyOutcome, Error> {
    let mut verified = org.clone();
    verified.verified_at = Some(now);
    let entry = DirectoryEntry::of(&verified, now);
    let audit = AuditEvent::new(
        &org.tenant_id,
        AuditCode::CustomerVerified,
        REGISTRATION_ACTOR,
        org.tenant_id.as_str(),
        now,
        request_id,
    )
    .with_data(serde_json::json!({ "domain": org.domain }));
    store.verify_customer(org, &entry, now, &audit).await
}

/// Open a session for a member (after their sign-in link was consumed):
/// returns the session id (never stored) and the session. The API cookie's
/// value is [`api_cookie_value`] of it.
pub async fn open_session(
    ts: &crate::usecases::TenantStore,
    email: &crate::ids::Email,
    now: OffsetDateTime,
) -> Result<(String, crate::domain::Session), Error> {
    use crate::domain::portal::SESSION_TTL_SECS;
    use crate::usecases::portal::{digest, new_secret};
    let id = new_secret();
    let session = crate::domain::Session {
        email: email.clone(),
        role: crate::domain::Role::Member,
        csrf: new_secret(),
        expires_epoch: now.unix_timestamp() + SESSION_TTL_SECS,
        created_at: now,
    };
    ts.put_session(&digest(&id), &session).await?;
    Ok((id, session))
}

/// The value of the `customer_session` cookie (`/v1/customer` API) for a
/// session of `customer`: `<customer_id>.<session id>`.
pub fn api_cookie_value(customer: &crate::ids::TenantId, session_id: &str) -> String {
    format!("{customer}.{session_id}")
}

/// The `Set-Cookie` of the API cookie (Path `/v1/customer`).
pub fn api_cookie(customer: &crate::ids::TenantId, session_id: &str, max_age: i64) -> String {
    format!(
        "{}={}; Path=/v1/customer; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict",
        crate::http::CUSTOMER_COOKIE,
        api_cookie_value(customer, session_id)
    )
}

/// Registrations per minute per source address.
pub const REGISTRATIONS_PER_MINUTE: u32 = 5;

/// Admit one registration from `address`: a shared window per address and
/// minute (credential-less, like public trials). Refused → 429.
pub async fn admit_registration(
    store: &Store,
    address: &str,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let at = now.unix_timestamp();
    let window = at - at.rem_euclid(60);
    let subject = format!("REGISTER#{address}");
    let claim = store
        .take_platform_tokens(&subject, window, 1, REGISTRATIONS_PER_MINUTE)
        .await?;
    if claim.granted == 0 {
        return Err(Error::RateLimited {
            retry_after_secs: (window + 60 - at).max(1) as u64,
        });
    }
    Ok(())
}

pub fn customer_not_found() -> Error {
    Error::not_found(
        "CUSTOMER_NOT_FOUND",
        "no customer organization with that id",
    )
}

/// `POST /v1/public/customers/{id}/verify`: look the TXT record up; if it
/// holds the organization's value, activate it (one verified organization
/// per domain) and e-mail its admin a sign-in link. Verifying an active
/// organization again answers it unchanged (no second e-mail).
#[allow(clippy::too_many_arguments)]
pub async fn verify(
    store: &Store,
    dns: &crate::dns::TxtResolver,
    mailer: &crate::mail::Mailer,
    base_url: &str,
    id: &crate::ids::TenantId,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<CustomerOrg, Error> {
    use crate::domain::CustomerStatus;
    let org = store
        .get_customer(id)
        .await?
        .ok_or_else(customer_not_found)?;
    match org.status {
        CustomerStatus::Active => return Ok(org),
        CustomerStatus::Suspended => {
            return Err(Error::conflict(
                "CUSTOMER_SUSPENDED",
                "this organization is suspended",
            ))
        }
        CustomerStatus::PendingVerification => {}
    }
    let (name, value) = org.dns_record();
    let found = dns.txt(&name).await?;
    if !found.iter().any(|t| t.trim() == value) {
        let what = if found.is_empty() {
            format!("there is no TXT record at {name}")
        } else {
            format!("the TXT record at {name} does not hold {value}")
        };
        return Err(Error::conflict(
            "DOMAIN_NOT_VERIFIED",
            format!("{what}; publish it and try again (DNS changes can take a while)"),
        ));
    }
    match activate(store, &org, request_id, now).await? {
        VerifyOutcome::Verified => {}
        VerifyOutcome::AlreadyVerified => {
            return store.get_customer(id).await?.ok_or_else(customer_not_found)
        }
        VerifyOutcome::DomainTaken => return Err(domain_claimed()),
        VerifyOutcome::NotPending => return Err(customer_not_found()),
    }
    let mut active = org;
    active.status = CustomerStatus::Active;
    active.verified_at = Some(now);
    let ts = store.tenant(id);
    let intro = format!(
        "{} is verified: {} is yours on the licensing platform.",
        active.name, active.domain
    );
    members::send_link(
        &ts,
        &active,
        mailer,
        base_url,
        &active.admin_email,
        &intro,
        now,
    )
    .await?;
    Ok(active)
}
