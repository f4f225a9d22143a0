//! Grants: the only link between a vendor and a customer organization.
//! Pure types and rules (the pick of a grant for a checkout, the checkout's
//! fingerprint, the organization's overage cap).
//!
//! A vendor issuing a license to an organization writes a [`Grant`] in the
//! ORGANIZATION's partition, in the license's own transaction. An
//! organization reaches a vendor's license only through a grant found in
//! its own partition; the grant copies nothing that can change (no status,
//! no seats): checkouts and the catalog read the license item live.

use crate::clock::ts;
use crate::error::Error;
use crate::ids::{Fingerprint, LicenseId, ProductCode, TenantId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A license granted to an organization (`T#<org>#GRANTS` / `G#<license>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub customer_id: TenantId,
    pub vendor_id: TenantId,
    pub vendor_name: String,
    pub license_id: LicenseId,
    pub product: ProductCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_opportunity_id: Option<String>,
    /// The organization's cap on overage seats (`None`: the license's own
    /// `max_overage`). Set by its admins or managers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overage_limit: Option<u32>,
    /// Bumped on every change of `overage_limit`: a checkout that read the
    /// cap is conditional on this version being unchanged.
    #[serde(default)]
    pub cap_version: u64,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
}

impl Grant {
    /// The cap a checkout of this grant obeys, under the license's own
    /// `max_overage`.
    pub fn overage_cap(&self, max_overage: u32) -> u32 {
        self.overage_limit
            .map_or(max_overage, |c| c.min(max_overage))
    }
}

/// The organization's cap must lie within the license's overage.
pub fn check_overage_limit(limit: u32, max_overage: u32) -> Result<(), Error> {
    if limit > max_overage {
        return Err(Error::validation(format!(
            "overage_limit must be 0 to {max_overage} (the license's max_overage)"
        )));
    }
    Ok(())
}

/// Who borrows a seat: a user name as the organization's app names it.
pub fn check_user(user: &str) -> Result<(), Error> {
    super::bounded("user", user, 128)
}

/// The fingerprint of a checkout by `user` on `hostname`: the same user on
/// the same host holds one lease (a second checkout renews it). The user's
/// length comes first so no (user, host) pair can spell another's.
pub fn checkout_fingerprint(user: &str, hostname: Option<&str>) -> Result<Fingerprint, Error> {
    check_user(user)?;
    if let Some(h) = hostname {
        super::bounded("hostname", h, 100)?;
    }
    let fp = format!("user:{}:{}@{}", user.len(), user, hostname.unwrap_or(""));
    Fingerprint::parse(fp).map_err(|e| Error::validation(e.to_string()))
}

/// One pass of a checkout over the candidate grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickPass {
    /// Committed seats only (no overage), on every grant in order.
    Committed,
    /// Then overage seats, on every grant in order, within each grant's cap.
    Overage,
}

/// The grants a checkout of `product` (of `vendor`, if named) may draw
/// from, in the order it tries them: oldest grant first, then by license
/// id. The checkout makes two passes over this order: first committed
/// seats only ([`PickPass::Committed`]), then overage ([`PickPass::Overage`]),
/// so no overage is spent while any granted committed seat is free.
pub fn candidates<'a>(
    grants: &'a [Grant],
    vendor: Option<&TenantId>,
    product: &ProductCode,
) -> Vec<&'a Grant> {
    let mut c: Vec<&Grant> = grants
        .iter()
        .filter(|g| g.product == *product && vendor.is_none_or(|v| g.vendor_id == *v))
        .collect();
    c.sort_by(|a, b| {
        (a.created_at, a.license_id.as_str()).cmp(&(b.created_at, b.license_id.as_str()))
    });
    c
}

/// The order of attempts: every candidate in the committed pass, then every
/// candidate in the overage pass.
pub fn attempts<'a>(candidates: &[&'a Grant]) -> Vec<(&'a Grant, PickPass)> {
    [PickPass::Committed, PickPass::Overage]
        .into_iter()
        .flat_map(|p| candidates.iter().map(move |g| (*g, p)))
        .collect()
}

/// Why one attempt of a checkout was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptRefused {
    /// No seat of the pass's pool left (the license's limits).
    Full,
    /// Overage left on the license, but not under the organization's cap.
    OverCap,
}

/// The answer after every attempt failed: the cap, if it is what stopped
/// some attempt; else no seat anywhere.
pub fn exhausted(refusals: &[AttemptRefused]) -> Error {
    if refusals.contains(&AttemptRefused::OverCap) {
        return overage_max_exceeded();
    }
    license_unavailable()
}

pub fn license_unavailable() -> Error {
    Error::conflict(
        "LICENSE_UNAVAILABLE",
        "every seat and overage seat of the organization's licenses for this product is taken; \
         retry later",
    )
}

pub fn overage_max_exceeded() -> Error {
    Error::conflict(
        "OVERAGE_MAX_EXCEEDED",
        "the organization's overage cap for this license is reached; contact your license admin",
    )
}

pub fn checkout_not_found() -> Error {
    Error::not_found("CHECKOUT_NOT_FOUND", "no checkout with that id")
}

pub fn granted_license_not_found() -> Error {
    crate::error::license_not_found()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn g(vendor: &str, lic: &str, product: &str, at: OffsetDateTime) -> Grant {
        Grant {
            customer_id: TenantId::parse("org-a").unwrap(),
            vendor_id: TenantId::parse(vendor).unwrap(),
            vendor_name: vendor.into(),
            license_id: LicenseId::parse(lic).unwrap(),
            product: ProductCode::parse(product).unwrap(),
            product_name: None,
            crm_account_id: None,
            crm_opportunity_id: None,
            overage_limit: None,
            cap_version: 0,
            created_at: at,
        }
    }

    const L1: &str = "lic_00000000000000000000000000000001";
    const L2: &str = "lic_00000000000000000000000000000002";
    const L3: &str = "lic_00000000000000000000000000000003";

    #[test]
    fn oldest_grant_first_then_license_id_then_overage_pass() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let t1 = datetime!(2026-02-01 0:00 UTC);
        let grants = vec![
            g("vendor-x", L3, "cad", t1),
            g("vendor-y", L2, "cad", t0),
            g("vendor-x", L1, "cad", t0),
            g("vendor-x", L1.replace('1', "9").as_str(), "other", t0),
        ];
        let p = ProductCode::parse("cad").unwrap();
        let c = candidates(&grants, None, &p);
        let ids: Vec<&str> = c.iter().map(|g| g.license_id.as_str()).collect();
        assert_eq!(ids, [L1, L2, L3]);
        let a = attempts(&c);
        assert_eq!(a.len(), 6);
        assert!(a[..3].iter().all(|(_, p)| *p == PickPass::Committed));
        assert!(a[3..].iter().all(|(_, p)| *p == PickPass::Overage));
        assert_eq!(a[3].0.license_id.as_str(), L1);
        let vx = TenantId::parse("vendor-x").unwrap();
        let only_x = candidates(&grants, Some(&vx), &p);
        assert_eq!(only_x.len(), 2);
        assert!(only_x.iter().all(|g| g.vendor_id == vx));
        let none = candidates(&grants, None, &ProductCode::parse("nope").unwrap());
        assert!(none.is_empty());
    }

    #[test]
    fn cap_is_under_the_license_overage() {
        let mut grant = g("vendor-x", L1, "cad", datetime!(2026-01-01 0:00 UTC));
        assert_eq!(grant.overage_cap(2), 2);
        grant.overage_limit = Some(1);
        assert_eq!(grant.overage_cap(2), 1);
        grant.overage_limit = Some(5);
        assert_eq!(grant.overage_cap(2), 2);
        assert!(check_overage_limit(2, 2).is_ok());
        assert!(check_overage_limit(3, 2).is_err());
    }

    #[test]
    fn fingerprint_is_per_user_and_host_and_unambiguous() {
        let a = checkout_fingerprint("ann", Some("h1")).unwrap();
        assert_eq!(a, checkout_fingerprint("ann", Some("h1")).unwrap());
        assert_ne!(a, checkout_fingerprint("ann", Some("h2")).unwrap());
        assert_ne!(a, checkout_fingerprint("bob", Some("h1")).unwrap());
        assert_ne!(
            checkout_fingerprint("a@b", Some("c")).unwrap(),
            checkout_fingerprint("a", Some("b@c")).unwrap()
        );
        assert!(checkout_fingerprint("", None).is_err());
        assert!(checkout_fingerprint("x\u{7}", None).is_err());
    }

    #[test]
    fn the_cap_explains_exhaustion_only_when_it_stopped_someone() {
        let e = exhausted(&[AttemptRefused::Full, AttemptRefused::Full]);
        assert_eq!(e.parts().1, "LICENSE_UNAVAILABLE");
        let e = exhausted(&[AttemptRefused::Full, AttemptRefused::OverCap]);
        assert_eq!(e.parts().1, "OVERAGE_MAX_EXCEEDED");
    }
}
