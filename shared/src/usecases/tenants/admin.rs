//! Changes to an existing tenant: the operator's lifecycle moves, settings
//! and new admin keys, and the tenant's own signing-key rotation.

use crate::crypto::Pepper;
use crate::domain::*;
use crate::error::Error;
use crate::ids::TenantId;
use crate::store::Store;
use serde_json::json;
use time::OffsetDateTime;

/// A tenant's record, if there is one.
pub async fn get(store: &Store, t: &TenantId) -> Result<Option<Tenant>, Error> {
    store.get_tenant(t).await
}

/// Operator lifecycle: suspend, reactivate, close.
#[derive(Debug, Clone, Copy)]
pub enum TenantMove {
    Suspend,
    Reactivate,
    Close,
}

pub async fn lifecycle(
    store: &Store,
    t: &TenantId,
    what: TenantMove,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<Tenant, Error> {
    use TenantStatus::*;
    let (from, to, code): (&[TenantStatus], TenantStatus, AuditCode) = match what {
        TenantMove::Suspend => (&[Active], Suspended, AuditCode::TenantSuspended),
        TenantMove::Reactivate => (&[Suspended], Active, AuditCode::TenantReactivated),
        TenantMove::Close => (
            &[Active, Suspended, Failed, Provisioning],
            Closed,
            AuditCode::TenantClosed,
        ),
    };
    let audit = AuditEvent::new(t, code, "operator", t.as_str(), now, request_id);
    let moved = store
        .set_tenant_status(t, from, to, now, Some(&audit))
        .await?;
    let tenant = store
        .get_tenant(t)
        .await?
        .ok_or_else(|| Error::not_found("TENANT_NOT_FOUND", format!("no tenant '{t}'")))?;
    if moved || tenant.status == to {
        return Ok(tenant);
    }
    if tenant.status == Closed {
        return Err(Error::conflict(
            "TENANT_CLOSED",
            "the tenant is closed; closing is terminal",
        ));
    }
    Err(Error::conflict(
        "INVALID_TRANSITION",
        format!(
            "a {} tenant cannot move to {}",
            tenant.status.as_str(),
            to.as_str()
        ),
    ))
}

/// A new admin key for an existing tenant (the operator's way back in when
/// the first key was lost): shown once, audited with actor `operator`.
pub async fn new_admin_key(
    store: &Store,
    pepper: &Pepper,
    t: &TenantId,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<(ApiKeyRecord, String), Error> {
    let tenant = store
        .get_tenant(t)
        .await?
        .ok_or_else(|| Error::not_found("TENANT_NOT_FOUND", format!("no tenant '{t}'")))?;
    if tenant.status == TenantStatus::Closed {
        return Err(Error::conflict("TENANT_CLOSED", "the tenant is closed"));
    }
    let actor = Actor {
        actor: "operator".into(),
        request_id: request_id.to_string(),
    };
    crate::usecases::catalog::create_api_key(
        pepper,
        &store.tenant(t),
        &actor,
        "admin (operator)".into(),
        vec![Scope::Admin],
        None,
        now,
    )
    .await
}

/// `PATCH /v1/platform/tenants/{id}`: change a tenant's limits and defaults.
/// Every instance applies them within the API-key freshness (5 s).
pub async fn patch_settings(
    store: &Store,
    t: &TenantId,
    patch: &SettingsPatch,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<Tenant, Error> {
    patch.check()?;
    let audit = AuditEvent::new(
        t,
        AuditCode::TenantUpdated,
        "operator",
        t.as_str(),
        now,
        request_id,
    )
    .with_data(serde_json::to_value(patch).map_err(Error::internal)?);
    if !store.patch_tenant_settings(t, patch, now, &audit).await? {
        return Err(Error::not_found(
            "TENANT_NOT_FOUND",
            format!("no tenant '{t}'"),
        ));
    }
    store
        .get_tenant(t)
        .await?
        .ok_or_else(|| Error::internal("a patched tenant vanished"))
}

/// `POST /v1/manage/signing-keys/rotate`: the tenant's next signing key
/// version signs from now on; earlier versions stay listed (retired) so
/// files and answers they signed still verify.
pub async fn rotate_signing_key(
    store: &Store,
    t: &TenantId,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<(Tenant, u32), Error> {
    for _ in 0..3 {
        let tenant = store
            .get_tenant(t)
            .await?
            .ok_or_else(|| Error::not_found("TENANT_NOT_FOUND", format!("no tenant '{t}'")))?;
        let from = tenant.signing_key_version;
        let audit = actor
            .audit(t, AuditCode::SigningKeyRotated, t.as_str(), now)
            .with_data(
                json!({ "from": crate::crypto::kid(from), "to": crate::crypto::kid(from + 1) }),
            );
        if store.rotate_signing_key(t, from, now, &audit).await? {
            let tenant = store
                .get_tenant(t)
                .await?
                .ok_or_else(|| Error::internal("tenant vanished"))?;
            return Ok((tenant, from + 1));
        }
    }
    Err(Error::Unavailable(
        "the signing key kept changing; retry".into(),
    ))
}
