//! The organization's pool of licenses: its catalog across vendors, who
//! holds what, and checkouts by product and user (floating leases on the
//! granted licenses, through the vendor's own seat code).
//!
//! Every function starts from the organization's store and finds the
//! vendor's license only through a grant in the organization's partition
//! (docs/customers.md, "Grants: the only link between a vendor and an
//! organization").

use crate::cache::LicenseTerms;
use crate::domain::billing::{Bill, Period};
use crate::domain::grants::{
    self, attempts, candidates, checkout_fingerprint, AttemptRefused, Grant, PickPass,
};
use crate::domain::seats::LiveLeases;
use crate::domain::{Activation, Actor, AuditCode, License};
use crate::error::{license_not_found, Error};
use crate::ids::{ActivationId, LicenseId, ProductCode, TenantId};
use crate::store::licenses::DeactivateOutcome;
use crate::store::seats::Through;
use crate::store::{Store, TenantStore};
use crate::usecases::billing::license_costs;
use serde_json::json;
use time::OffsetDateTime;

/// One license of the catalog, read live from the vendor's license item.
pub struct CatalogEntry {
    pub grant: Grant,
    pub license: License,
    pub leases: LiveLeases,
    /// What the license bills this month (UTC), computed as the vendor's
    /// overage export computes it; `None`: no commercial terms, or none
    /// in force this month.
    pub cost: Option<Bill>,
}

/// The month of `now` as a billing period.
pub fn this_period(now: OffsetDateTime) -> Period {
    Period::of(now.date())
}

/// Every license granted to the organization, oldest grant first. A grant
/// whose license is gone is left out.
pub async fn catalog(
    store: &Store,
    org: &TenantStore,
    now: OffsetDateTime,
) -> Result<Vec<CatalogEntry>, Error> {
    let mut grants = org.list_grants().await?;
    grants.sort_by(|a, b| (a.created_at, &a.license_id).cmp(&(b.created_at, &b.license_id)));
    let mut out = Vec::with_capacity(grants.len());
    for grant in grants {
        let vendor = store.tenant(&grant.vendor_id);
        let read = vendor.read_license(&grant.license_id, None, now).await?;
        if let Some(license) = read.license {
            let cost = license_costs(&vendor, &license, this_period(now)).await?;
            out.push(CatalogEntry {
                grant,
                license,
                leases: read.leases,
                cost,
            });
        }
    }
    Ok(out)
}

/// A lease held now through one of the organization's grants.
pub struct Held {
    pub grant: Grant,
    pub lease: Activation,
}

/// Who holds what now: the unexpired, unreturned leases of every granted
/// license.
pub async fn checkouts(
    store: &Store,
    org: &TenantStore,
    now: OffsetDateTime,
) -> Result<Vec<Held>, Error> {
    let mut out = Vec::new();
    for grant in org.list_grants().await? {
        let vendor = store.tenant(&grant.vendor_id);
        for a in vendor.list_activations(&grant.license_id).await? {
            if a.holds_seat(now) && a.lease_expires_epoch.is_some() {
                out.push(Held {
                    grant: grant.clone(),
                    lease: a,
                });
            }
        }
    }
    out.sort_by_key(|h| std::cmp::Reverse(h.lease.last_activated_at));
    Ok(out)
}

pub struct CheckoutRequest {
    pub vendor: Option<TenantId>,
    pub product: ProductCode,
    pub user: String,
    pub hostname: Option<String>,
}

/// How many times a checkout reads a grant again after its cap changed.
const GRANT_READS: usize = 4;

/// Check out a floating lease for `user` on a license of `product` granted
/// to the organization: the pick rule of [`grants::candidates`] (a lease
/// this user and host already hold is renewed first), committed seats on
/// every candidate before any overage, overage within the organization's
/// cap. `LICENSE_UNAVAILABLE` / `OVERAGE_MAX_EXCEEDED` when nothing is left.
pub async fn checkout(
    store: &Store,
    terms: &LicenseTerms,
    org: &TenantStore,
    actor: &Actor,
    req: CheckoutRequest,
    now: OffsetDateTime,
) -> Result<Activation, Error> {
    let fp = checkout_fingerprint(&req.user, req.hostname.as_deref())?;
    let all = org.list_grants().await?;
    let cands = candidates(&all, req.vendor.as_ref(), &req.product);
    if cands.is_empty() {
        return Err(Error::not_found(
            "LICENSE_NOT_FOUND",
            "no license for that product is granted to this organization",
        ));
    }
    // A lease this user already holds on this host is renewed, not doubled.
    let mut order = attempts(&cands);
    for g in &cands {
        let id = ActivationId::derive(&g.license_id, &fp);
        let held = store.tenant(&g.vendor_id).get_activation(&id).await?;
        if held.is_some_and(|a| a.deactivated_at.is_none()) {
            order.insert(0, (*g, PickPass::Overage));
            break;
        }
    }
    let mut refusals = Vec::new();
    let mut other: Option<Error> = None;
    for (grant, pass) in order {
        match take(store, terms, org, actor, grant, pass, &req, &fp, now).await {
            Ok(a) => return Ok(a),
            Err(Error::TooManyActivations { .. }) => refusals.push(AttemptRefused::Full),
            Err(Error::Conflict {
                code: "OVERAGE_MAX_EXCEEDED",
                ..
            }) => refusals.push(match pass {
                PickPass::Committed => AttemptRefused::Full,
                PickPass::Overage => AttemptRefused::OverCap,
            }),
            Err(
                e @ (Error::LicenseNotActive(_) | Error::LicenseNotFound | Error::NotFound { .. }),
            ) => {
                other.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    match other {
        Some(e) if refusals.is_empty() => Err(e),
        _ => Err(grants::exhausted(&refusals)),
    }
}

/// One attempt on one grant in one pass (reading the grant again if its
/// cap changed meanwhile).
#[allow(clippy::too_many_arguments)]
async fn take(
    store: &Store,
    terms: &LicenseTerms,
    org: &TenantStore,
    actor: &Actor,
    grant: &Grant,
    pass: PickPass,
    req: &CheckoutRequest,
    fp: &crate::ids::Fingerprint,
    now: OffsetDateTime,
) -> Result<Activation, Error> {
    let vendor = store.tenant(&grant.vendor_id);
    let mut grant = grant.clone();
    for _ in 0..GRANT_READS {
        let mut new = Activation::new(
            &grant.license_id,
            fp.clone(),
            None,
            req.hostname.clone(),
            Default::default(),
            now,
        );
        new.user = Some(req.user.clone());
        let data = json!({
            "license_id": grant.license_id,
            "customer_id": org.tenant_id(),
            "vendor_id": grant.vendor_id,
            "user": req.user,
            "hostname": req.hostname,
        });
        let code = AuditCode::ActivationCreated;
        let vendor_audit = actor
            .audit(vendor.tenant_id(), code, new.id.as_str(), now)
            .with_data(data.clone());
        let org_audit = actor
            .audit(org.tenant_id(), code, new.id.as_str(), now)
            .with_data(data);
        let cap = match pass {
            PickPass::Committed => 0,
            PickPass::Overage => grant.overage_limit.unwrap_or(u32::MAX),
        };
        let through = Through {
            org,
            cap,
            grant: org.grant_unchanged(&grant),
            audit: &org_audit,
        };
        let assumed = terms.get(vendor.tenant_id(), &grant.license_id);
        let done = vendor
            .activate_through(&new, assumed, now, &vendor_audit, Some(&through))
            .await?;
        match done {
            Some(d) => {
                terms.remember(vendor.tenant_id(), &grant.license_id, d.terms);
                return Ok(d.outcome.activation().clone());
            }
            None => match org.get_grant(&grant.license_id).await? {
                Some(g) => grant = g,
                None => return Err(license_not_found()),
            },
        }
    }
    Err(Error::Unavailable(
        "the organization's overage cap kept changing; retry".into(),
    ))
}

/// The grant and vendor store a checkout id leads to, or `CHECKOUT_NOT_FOUND`
/// (a lease of a license not granted to this organization does not exist
/// for it).
async fn through_grant(
    store: &Store,
    org: &TenantStore,
    id: &ActivationId,
) -> Result<(Grant, TenantStore), Error> {
    let grant = org
        .get_grant(&id.license_id())
        .await?
        .ok_or_else(grants::checkout_not_found)?;
    let vendor = store.tenant(&grant.vendor_id);
    Ok((grant, vendor))
}

/// Renew a checkout's lease.
pub async fn heartbeat(
    store: &Store,
    org: &TenantStore,
    id: &ActivationId,
    now: OffsetDateTime,
) -> Result<Activation, Error> {
    let (_, vendor) = through_grant(store, org, id).await?;
    match crate::usecases::licensing::heartbeat(&vendor, id, now).await {
        Err(Error::NotFound { .. }) => Err(grants::checkout_not_found()),
        r => r,
    }
}

/// Return a checkout: the vendor's floating-lease return, then the
/// organization's audit event.
pub async fn give_back(
    store: &Store,
    org: &TenantStore,
    actor: &Actor,
    id: &ActivationId,
    now: OffsetDateTime,
) -> Result<Activation, Error> {
    let (grant, vendor) = through_grant(store, org, id).await?;
    let data = json!({ "license_id": grant.license_id, "customer_id": org.tenant_id() });
    let code = AuditCode::ActivationDeleted;
    let audit = actor
        .audit(vendor.tenant_id(), code, id.as_str(), now)
        .with_data(data.clone());
    let a = match vendor.deactivate(id, now, &audit).await? {
        DeactivateOutcome::Deactivated(a) => a,
        DeactivateOutcome::AlreadyInactive(a) => return Ok(a),
        DeactivateOutcome::NotFound => return Err(grants::checkout_not_found()),
        DeactivateOutcome::ChurnLimit { count, resets_at } => {
            let retry_after_secs =
                resets_at.map(|r| (r - now).whole_seconds().max(1).unsigned_abs());
            return Err(Error::DeactivationLimitReached {
                count,
                retry_after_secs,
            });
        }
    };
    let org_audit = actor
        .audit(org.tenant_id(), code, id.as_str(), now)
        .with_data(data);
    org.put_audit(&org_audit).await?;
    Ok(a)
}

/// Set the organization's overage cap on a granted license
/// (`0..=max_overage`), with its audit event.
pub async fn set_overage_limit(
    store: &Store,
    org: &TenantStore,
    actor: &Actor,
    license: &LicenseId,
    limit: u32,
    now: OffsetDateTime,
) -> Result<CatalogEntry, Error> {
    let grant = org
        .get_grant(license)
        .await?
        .ok_or_else(license_not_found)?;
    let vendor = store.tenant(&grant.vendor_id);
    let l = vendor
        .get_license(license)
        .await?
        .ok_or_else(license_not_found)?;
    grants::check_overage_limit(limit, l.terms.max_overage)?;
    let audit = actor
        .audit(
            org.tenant_id(),
            AuditCode::GrantUpdated,
            license.as_str(),
            now,
        )
        .with_data(json!({ "overage_limit": limit, "vendor_id": grant.vendor_id }));
    let grant = org
        .set_grant_cap(license, limit, &audit)
        .await?
        .ok_or_else(license_not_found)?;
    let read = vendor.read_license(license, None, now).await?;
    let license = read.license.ok_or_else(license_not_found)?;
    let cost = license_costs(&vendor, &license, this_period(now)).await?;
    Ok(CatalogEntry {
        grant,
        license,
        leases: read.leases,
        cost,
    })
}

/// The pool's figures for the organization's portal home page.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PoolFigures {
    /// Granted licenses in force now.
    pub active_licenses: u32,
    /// Overage leases held now, across every granted license.
    pub overage_in_use: u32,
    /// Checkouts (leases, returned or not) started this calendar month (UTC).
    pub checkouts_this_month: u32,
    /// Of those, the ones that took an overage seat.
    pub overage_checkouts_this_month: u32,
}

/// [`PoolFigures`] from the catalog and every lease of the granted licenses. Pure.
pub fn figures_of(
    catalog: &[CatalogEntry],
    leases: &[Activation],
    now: OffsetDateTime,
) -> PoolFigures {
    let month = (now.year(), now.month());
    let this_month =
        |a: &&Activation| a.user.is_some() && (a.created_at.year(), a.created_at.month()) == month;
    PoolFigures {
        active_licenses: catalog
            .iter()
            .filter(|e| matches!(e.license.standing(now), crate::domain::Standing::Valid(_)))
            .count() as u32,
        overage_in_use: catalog.iter().map(|e| e.leases.overage_used).sum(),
        checkouts_this_month: leases.iter().filter(this_month).count() as u32,
        overage_checkouts_this_month: leases
            .iter()
            .filter(this_month)
            .filter(|a| a.overage)
            .count() as u32,
    }
}

/// The pool's figures for the organization's home page (one read of each
/// granted license's partition).
pub async fn figures(
    store: &Store,
    org: &TenantStore,
    now: OffsetDateTime,
) -> Result<PoolFigures, Error> {
    let cat = catalog(store, org, now).await?;
    let mut leases = Vec::new();
    for e in &cat {
        let vendor = store.tenant(&e.grant.vendor_id);
        leases.extend(vendor.list_activations(&e.grant.license_id).await?);
    }
    Ok(figures_of(&cat, &leases, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Fingerprint;

    #[test]
    fn this_months_checkouts_and_their_overage_are_counted() {
        // 2026-03-15 12:00 UTC, and the last minute of February.
        let now = OffsetDateTime::from_unix_timestamp(1_773_576_000).unwrap();
        let lic = LicenseId::parse("lic_00000000000000000000000000000001").unwrap();
        let lease = |fp: &str, user: bool, overage: bool, at: OffsetDateTime| {
            let mut a = Activation::new(
                &lic,
                Fingerprint::parse(fp).unwrap(),
                None,
                None,
                Default::default(),
                at,
            );
            a.user = user.then(|| "ann".to_string());
            a.overage = overage;
            a
        };
        let last_month = OffsetDateTime::from_unix_timestamp(1_772_323_140).unwrap();
        let leases = [
            lease("a", true, false, now),
            lease("b", true, true, now),
            lease("c", true, true, last_month),
            // A node-locked machine is no checkout.
            lease("d", false, true, now),
        ];
        let f = figures_of(&[], &leases, now);
        assert_eq!(
            (f.checkouts_this_month, f.overage_checkouts_this_month),
            (2, 1)
        );
    }
}
