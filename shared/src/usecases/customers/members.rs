//! An organization's members and roles: invite (by e-mail, with a sign-in
//! link to the organization's portal), change a role, remove. The last
//! admin can be neither removed nor demoted (409 `LAST_ADMIN`).

use crate::domain::portal::LINK_TTL_SECS;
use crate::domain::{Actor, AuditCode, CustomerOrg, MagicLink, Member, MemberRole, Role};
use crate::error::Error;
use crate::ids::{Email, LicenseId};
use crate::mail::Mailer;
use crate::store::customers::MemberChange;
use crate::usecases::portal::{digest, new_secret};
use crate::usecases::TenantStore;
use serde_json::json;
use time::OffsetDateTime;

/// A member that is not one, or of another organization: the same 404.
pub fn member_not_found() -> Error {
    Error::not_found("MEMBER_NOT_FOUND", "no member with that e-mail")
}

pub fn last_admin() -> Error {
    Error::conflict(
        "LAST_ADMIN",
        "the organization's last admin cannot be removed or demoted; make another member admin first",
    )
}

pub async fn list(ts: &TenantStore) -> Result<Vec<Member>, Error> {
    let mut m = ts.list_members().await?;
    m.sort_by(|a, b| a.email.cmp(&b.email));
    Ok(m)
}

/// E-mail a one-time sign-in link to the organization's portal.
pub async fn send_link(
    ts: &TenantStore,
    org: &CustomerOrg,
    mailer: &Mailer,
    base_url: &str,
    email: &Email,
    intro: &str,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let token = new_secret();
    let link = MagicLink {
        email: email.clone(),
        role: Role::Member,
        expires_epoch: now.unix_timestamp() + LINK_TTL_SECS,
        created_at: now,
        used_at: None,
    };
    ts.put_magic_link(&digest(&token), &link).await?;
    let url = format!("{base_url}/portal/{}/auth?token={token}", org.tenant_id);
    if mailer.log_links {
        tracing::info!(link = %url, email = %email, "dev: organization sign-in link");
    }
    let text = format!(
        "{intro}\n\nSign in to {name}'s license pool:\n\n{url}\n\n\
         The link works once, within 15 minutes. If you did not expect it, ignore this e-mail.\n",
        name = org.name
    );
    mailer
        .send(email, &format!("Sign in to {}", org.name), &text)
        .await
}

/// Invite a member; they get a sign-in link. 409 `MEMBER_EXISTS` if they are one.
#[allow(clippy::too_many_arguments)]
pub async fn invite(
    ts: &TenantStore,
    org: &CustomerOrg,
    mailer: &Mailer,
    base_url: &str,
    actor: &Actor,
    email: Email,
    role: MemberRole,
    now: OffsetDateTime,
) -> Result<Member, Error> {
    let m = Member {
        email,
        role,
        name: None,
        invited_by: actor.actor.clone(),
        created_at: now,
        updated_at: now,
    };
    let audit = actor
        .audit(
            ts.tenant_id(),
            AuditCode::MemberAdded,
            m.email.as_str(),
            now,
        )
        .with_data(json!({ "role": role }));
    if !ts.add_member(&m, &audit).await? {
        return Err(Error::conflict(
            "MEMBER_EXISTS",
            "that address is already a member",
        ));
    }
    let intro = format!(
        "{} added you to {} as {}.",
        actor.actor,
        org.name,
        role.as_str()
    );
    send_link(ts, org, mailer, base_url, &m.email, &intro, now).await?;
    Ok(m)
}

pub async fn change_role(
    ts: &TenantStore,
    actor: &Actor,
    email: &Email,
    to: MemberRole,
    now: OffsetDateTime,
) -> Result<Member, Error> {
    let m = ts.get_member(email).await?.ok_or_else(member_not_found)?;
    if m.role == to {
        return Ok(m);
    }
    let audit = actor
        .audit(
            ts.tenant_id(),
            AuditCode::MemberRoleChanged,
            email.as_str(),
            now,
        )
        .with_data(json!({ "from": m.role, "to": to }));
    match ts
        .change_member_role(email, m.role, to, now, &audit)
        .await?
    {
        MemberChange::Done => Ok(Member {
            role: to,
            updated_at: now,
            ..m
        }),
        MemberChange::LastAdmin => Err(last_admin()),
        MemberChange::Moved => Err(Error::conflict(
            "MEMBER_CHANGED",
            "the member changed meanwhile; reload and try again",
        )),
    }
}

pub async fn remove(
    ts: &TenantStore,
    actor: &Actor,
    email: &Email,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let m = ts.get_member(email).await?.ok_or_else(member_not_found)?;
    let audit = actor
        .audit(
            ts.tenant_id(),
            AuditCode::MemberRemoved,
            email.as_str(),
            now,
        )
        .with_data(json!({ "role": m.role }));
    match ts.remove_member(email, m.role, &audit).await? {
        MemberChange::Done => Ok(()),
        MemberChange::LastAdmin => Err(last_admin()),
        MemberChange::Moved => Err(member_not_found()),
    }
}

/// E-mail the organization's admins that `vendor_name` granted it a
/// license for `product`. The license stands whatever happens here: a
/// failure is logged, never returned.
pub async fn notify_grant(
    org: &TenantStore,
    mailer: &Mailer,
    registered_admin: &Email,
    vendor_name: &str,
    product: &str,
    license: &LicenseId,
) {
    let members = match org.list_members().await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, license = %license, "grant notice: members not read");
            Vec::new()
        }
    };
    let text = format!(
        "{vendor_name} granted your organization a license for {product} ({license}).\n\
         It is in your catalog: the portal's Catalog page, or GET /v1/customer/catalog.\n"
    );
    for to in crate::domain::grant_recipients(&members, registered_admin) {
        if let Err(e) = mailer
            .send(&to, "A license was granted to your organization", &text)
            .await
        {
            tracing::warn!(error = %e, license = %license, "could not e-mail the grant notice");
        }
    }
}
