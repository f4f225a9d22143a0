//! The portal's use cases: sign-in by one-time link, sessions, staff
//! invitations, and the license search the vendor dashboard uses. The
//! licensing actions themselves are the ordinary use cases
//! ([`super::licensing`], [`super::catalog`]) with the signed-in person as
//! the audit actor.

use crate::crypto::{sha256_hex, Signer};
use crate::domain::portal::{
    LINK_REQUESTS_PER_WINDOW, LINK_TTL_SECS, LINK_WINDOW_SECS, SESSION_TTL_SECS,
};
use crate::domain::*;
use crate::error::Error;
use crate::ids::{Email, LicenseId, LicenseKey, TenantId};
use crate::mail::Mailer;
use crate::store::{Store, TenantStore};
use rand::RngCore;
use time::OffsetDateTime;

/// A random secret: 32 bytes, URL-safe base64 (43 characters).
pub fn new_secret() -> String {
    use base64::Engine as _;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// What a stored record is keyed by: a link token or a session id is never
/// stored, only this.
pub fn digest(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

/// An active tenant, or the portal's 404 (an inactive tenant's portal is closed).
pub async fn open_tenant(store: &Store, tenant: &TenantId) -> Result<Tenant, Error> {
    match store.get_tenant(tenant).await? {
        Some(t) if t.status == TenantStatus::Active => Ok(t),
        _ => Err(Error::not_found(
            "PORTAL_NOT_FOUND",
            "there is no portal here",
        )),
    }
}

/// Whether `email` is the tenant's staff: its admin e-mail, or invited.
pub async fn is_staff(ts: &TenantStore, tenant: &Tenant, email: &Email) -> Result<bool, Error> {
    Ok(&tenant.admin_email == email || ts.get_staff(email).await?.is_some())
}

/// Where a sign-in link may lead, from the e-mail alone.
async fn role_of(ts: &TenantStore, tenant: &Tenant, email: &Email) -> Result<Option<Role>, Error> {
    if is_staff(ts, tenant, email).await? {
        return Ok(Some(Role::Staff));
    }
    // A customer: an address with a license whose e-mail is verified. A
    // public trial's e-mail alone (anyone may type any address into one) is
    // not, until the link mailed to it is followed: no sign-in mail for it.
    Ok(ts
        .has_verified_license(email)
        .await?
        .then_some(Role::Customer))
}

/// `POST /portal/{tenant}/login`: e-mail a one-time link if the address is
/// the tenant's staff or one of its customers. The answer is the same
/// whether or not it is; only the per-address limit
/// ([`LINK_REQUESTS_PER_WINDOW`] per [`LINK_WINDOW_SECS`], counted for
/// unknown addresses too, across every instance) refuses with
/// `RATE_LIMITED`.
pub async fn request_link(
    ts: &TenantStore,
    tenant: &Tenant,
    mailer: &Mailer,
    base_url: &str,
    email: &Email,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let at = now.unix_timestamp();
    let window = at - at.rem_euclid(LINK_WINDOW_SECS);
    let subject = format!("LINK#{}", digest(email.as_str()));
    let claim = ts
        .take_tokens(&subject, window, 1, LINK_REQUESTS_PER_WINDOW)
        .await?;
    if claim.granted == 0 {
        return Err(Error::RateLimited {
            retry_after_secs: (window + LINK_WINDOW_SECS - at).max(1) as u64,
        });
    }
    let Some(role) = role_of(ts, tenant, email).await? else {
        return Ok(());
    };
    let token = new_secret();
    let link = MagicLink {
        email: email.clone(),
        role,
        expires_epoch: at + LINK_TTL_SECS,
        created_at: now,
        used_at: None,
    };
    ts.put_magic_link(&digest(&token), &link).await?;
    let url = format!("{base_url}/portal/{}/auth?token={token}", tenant.tenant_id);
    if mailer.log_links {
        tracing::info!(link = %url, email = %email, "dev: portal sign-in link");
    }
    let text = format!(
        "Sign in to {name}'s licensing portal:\n\n{url}\n\n\
         The link works once, within 15 minutes. If you did not ask for it, ignore this e-mail.\n",
        name = tenant.name
    );
    mailer
        .send(email, &format!("Sign in to {}", tenant.name), &text)
        .await
}

/// A refused link: unknown, used, expired or forged look the same.
pub fn link_refused() -> Error {
    Error::denied(
        "LINK_INVALID",
        "This sign-in link is not valid: it was already used, has expired, or was never issued. \
         Ask for a new one.",
    )
}

/// `POST /portal/{tenant}/auth`: consume the link (once, before it expires)
/// and open a session. Returns the session id (the cookie's value, never
/// stored) and the session.
pub async fn sign_in(
    ts: &TenantStore,
    tenant: &Tenant,
    token: &str,
    now: OffsetDateTime,
) -> Result<(String, Session), Error> {
    if token.is_empty() || token.len() > 128 {
        return Err(link_refused());
    }
    let link = ts
        .consume_magic_link(&digest(token), now)
        .await?
        .ok_or_else(link_refused)?;
    // Staff removed after the link was sent no longer get in as staff.
    if link.role == Role::Staff && !is_staff(ts, tenant, &link.email).await? {
        return Err(link_refused());
    }
    let id = new_secret();
    let session = Session {
        email: link.email,
        role: link.role,
        csrf: new_secret(),
        expires_epoch: now.unix_timestamp() + SESSION_TTL_SECS,
        created_at: now,
    };
    ts.put_session(&digest(&id), &session).await?;
    Ok((id, session))
}

/// The live session with this id, if any. A staff session is checked
/// against the staff list on every request: once its member is removed it
/// is deleted and this answers `None` (signed out).
pub async fn session(
    ts: &TenantStore,
    tenant: &Tenant,
    id: &str,
    now: OffsetDateTime,
) -> Result<Option<Session>, Error> {
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    let Some(s) = ts
        .get_session(&digest(id))
        .await?
        .filter(|s| s.live_at(now))
    else {
        return Ok(None);
    };
    if s.role == Role::Staff && !is_staff(ts, tenant, &s.email).await? {
        ts.delete_session(&digest(id)).await?;
        return Ok(None);
    }
    Ok(Some(s))
}

pub async fn sign_out(ts: &TenantStore, id: &str) -> Result<(), Error> {
    ts.delete_session(&digest(id)).await
}

/// The audit actor of a session's actions.
pub fn actor(session: &Session, request_id: &str) -> Actor {
    Actor {
        actor: session.actor_name(),
        request_id: request_id.to_string(),
    }
}

/// The vendor dashboard's license search: a license id, a license key, or
/// a customer e-mail. One function, so the tenant-wide search can replace
/// the e-mail listing here alone.
pub async fn search_licenses(
    ts: &TenantStore,
    signer: &Signer,
    query: &str,
    now: OffsetDateTime,
) -> Result<Vec<License>, Error> {
    let q = query.trim();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    if let Ok(id) = LicenseId::parse(q) {
        return Ok(ts.get_license(&id).await?.into_iter().collect());
    }
    if let Ok(key) = LicenseKey::parse(q) {
        let id = LicenseId::derive(ts.tenant_id(), &key);
        return Ok(ts.get_license(&id).await?.into_iter().collect());
    }
    if let Ok(email) = Email::normalise(q) {
        return Ok(ts
            .list_licenses_by_email(signer, &email, 50, None)
            .await?
            .items);
    }
    // Anything else: the start of a key or an e-mail (the tenant-wide search).
    let filter = crate::domain::LicenseFilter {
        q: Some(crate::domain::SearchPrefix::parse(q).map_err(|_| {
            Error::validation("search by customer e-mail (or its start), license id or key")
        })?),
        ..Default::default()
    };
    Ok(super::licensing::search(ts, signer, &filter, 50, None, now)
        .await?
        .items)
}

/// A customer's own licenses (not public trials whose e-mail is not
/// verified yet).
pub async fn my_licenses(
    ts: &TenantStore,
    signer: &Signer,
    session: &Session,
) -> Result<Vec<License>, Error> {
    Ok(ts
        .list_licenses_by_email(signer, &session.email, 100, None)
        .await?
        .items
        .into_iter()
        .filter(|l| !l.email_unverified)
        .collect())
}

/// A refused verification link: unknown, used, expired or forged look the same.
pub fn verification_refused() -> Error {
    Error::denied(
        "LINK_INVALID",
        "This confirmation link is not valid: it was already used, the trial has ended, or it was \
         never issued.",
    )
}

/// `POST /portal/{tenant}/verify`: follow a public trial's e-mail
/// verification link (once, while the trial lasts). From then on the
/// address signs in to the portal as that trial's customer.
pub async fn verify_trial_email(
    ts: &TenantStore,
    token: &str,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<EmailVerification, Error> {
    if token.is_empty() || token.len() > 128 {
        return Err(verification_refused());
    }
    let t = ts.tenant_id().clone();
    let audit_for = |v: &EmailVerification| {
        AuditEvent::new(
            &t,
            AuditCode::LicenseUpdated,
            &format!("{}:{}", Role::Customer.as_str(), v.email),
            v.license_id.as_str(),
            now,
            request_id,
        )
        .with_data(serde_json::json!({ "customer_email_verified": true }))
    };
    ts.verify_trial_email(&digest(token), now, audit_for)
        .await?
        .ok_or_else(verification_refused)
}

/// A license this session may see: any of the tenant's for staff, only
/// their own for a customer (another's is not found, not forbidden).
pub async fn license_for(
    ts: &TenantStore,
    session: &Session,
    id: &LicenseId,
) -> Result<License, Error> {
    let license = ts
        .get_license(id)
        .await?
        .ok_or_else(crate::error::license_not_found)?;
    // Another's license, or a public trial of theirs whose e-mail is not
    // verified yet: not found, like a missing one.
    if session.role == Role::Customer
        && (license.customer_email != session.email || license.email_unverified)
    {
        return Err(crate::error::license_not_found());
    }
    Ok(license)
}

/// Invite a staff member (staff only), audited in the same transaction.
pub async fn invite_staff(
    ts: &TenantStore,
    actor: &Actor,
    email: Email,
    now: OffsetDateTime,
) -> Result<StaffMember, Error> {
    let member = StaffMember {
        email,
        invited_by: actor.actor.clone(),
        created_at: now,
    };
    let audit = actor.audit(
        ts.tenant_id(),
        AuditCode::StaffInvited,
        member.email.as_str(),
        now,
    );
    if !ts.invite_staff(&member, &audit).await? {
        return Err(Error::conflict(
            "STAFF_EXISTS",
            "that address is already staff",
        ));
    }
    Ok(member)
}

/// Remove a staff member (the Management API or a staff member in the
/// portal), audited in the same transaction. Their sessions stop working at
/// their next request ([`session`] checks the staff list every time). The
/// tenant's admin e-mail is staff without a record and cannot be removed.
pub async fn remove_staff(
    ts: &TenantStore,
    tenant: &Tenant,
    actor: &Actor,
    email: &Email,
    now: OffsetDateTime,
) -> Result<(), Error> {
    if &tenant.admin_email == email {
        return Err(Error::conflict(
            "STAFF_IS_TENANT_ADMIN",
            "the tenant's admin e-mail is always staff; only the operator can change it",
        ));
    }
    let audit = actor.audit(ts.tenant_id(), AuditCode::StaffRemoved, email.as_str(), now);
    if !ts.remove_staff(email, &audit).await? {
        return Err(staff_not_found());
    }
    Ok(())
}

pub fn staff_not_found() -> Error {
    Error::not_found(
        "STAFF_NOT_FOUND",
        "no invited staff member with that e-mail",
    )
}

/// Usage per day (every metric together) for the `days` days up to `now`,
/// oldest first, from the license's usage events (one or two month
/// partitions, up to 10 pages of 1000 events each).
pub async fn daily_usage(
    ts: &TenantStore,
    signer: &Signer,
    id: &LicenseId,
    now: OffsetDateTime,
    days: i64,
) -> Result<Vec<(String, u64)>, Error> {
    let first = (now - time::Duration::days(days - 1)).date();
    let mut totals: Vec<(time::Date, u64)> = (0..days)
        .map(|i| (first + time::Duration::days(i), 0))
        .collect();
    let mut months = vec![crate::clock::month_of(now)];
    let first_month = crate::clock::month_of(first.midnight().assume_utc());
    if first_month != months[0] {
        months.insert(0, first_month);
    }
    for month in &months {
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let page = ts
                .list_usage_events(signer, id, month, 1000, cursor.as_deref())
                .await?;
            for e in &page.items {
                let day = e.timestamp.to_offset(time::UtcOffset::UTC).date();
                if let Some(slot) = totals.iter_mut().find(|(d, _)| *d == day) {
                    slot.1 = slot.1.saturating_add(e.quantity);
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    Ok(totals
        .into_iter()
        .map(|(d, v)| (d.to_string(), v))
        .collect())
}

/// The newest audit events about one license (its own events and its
/// activations'), from the newest `scan` events of the tenant.
pub async fn license_audit(
    ts: &TenantStore,
    signer: &Signer,
    id: &LicenseId,
    scan: i32,
) -> Result<Vec<AuditEvent>, Error> {
    let page = ts.list_audit(signer, None, scan, None).await?;
    Ok(page
        .items
        .into_iter()
        .filter(|e| {
            e.target_id == id.as_str()
                || e.data.get("license_id").and_then(|v| v.as_str()) == Some(id.as_str())
        })
        .collect())
}
