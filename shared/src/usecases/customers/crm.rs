//! A vendor's view of the directory of verified organizations: search by
//! domain, name prefix or its own CRM id, and linking its CRM accounts.

use crate::domain::{Actor, AuditCode, CustomerStatus, DirectoryEntry};
use crate::error::Error;
use crate::ids::{CrmAccountId, Domain, TenantId};
use crate::store::crm::CrmLink;
use crate::store::{Store, TenantStore};
use time::OffsetDateTime;

/// At most this many organizations per name search.
pub const SEARCH_LIMIT: usize = 50;

/// The one filter of a search.
#[derive(Debug, PartialEq, Eq)]
pub enum Search {
    Domain(Domain),
    /// Lowercase name prefix.
    Name(String),
    Crm(CrmAccountId),
}

impl Search {
    /// Exactly one of the filters, each valid.
    pub fn parse(
        domain: Option<&str>,
        name: Option<&str>,
        crm: Option<&str>,
    ) -> Result<Self, Error> {
        let one = "give exactly one of domain, name, crm_account_id";
        match (domain, name, crm) {
            (Some(d), None, None) => Domain::normalise(d)
                .map(Search::Domain)
                .map_err(|e| Error::validation(format!("domain {e}"))),
            (None, Some(n), None) => {
                let n = n.trim().to_lowercase();
                if n.is_empty() || n.chars().count() > 200 {
                    return Err(Error::validation("name must be 1 to 200 characters"));
                }
                Ok(Search::Name(n))
            }
            (None, None, Some(c)) => CrmAccountId::parse(c.to_string())
                .map(Search::Crm)
                .map_err(|e| Error::validation(format!("crm_account_id {e}"))),
            _ => Err(Error::validation(one)),
        }
    }
}

/// A found organization: its public fields and this vendor's CRM id.
pub struct Found {
    pub entry: DirectoryEntry,
    pub crm_account_id: Option<CrmAccountId>,
}

pub fn customer_not_found() -> Error {
    Error::not_found(
        "CUSTOMER_NOT_FOUND",
        "no verified organization with that id",
    )
}

/// A verified, active organization's directory entry.
async fn verified(store: &Store, c: &TenantId) -> Result<Option<DirectoryEntry>, Error> {
    let Some(org) = store.get_customer(c).await? else {
        return Ok(None);
    };
    if org.status != CustomerStatus::Active {
        return Ok(None);
    }
    store.directory_entry(c).await
}

pub async fn search(store: &Store, vendor: &TenantStore, q: Search) -> Result<Vec<Found>, Error> {
    let entries = match q {
        Search::Domain(d) => match store.directory_by_domain(&d).await? {
            Some(e) => verified(store, &e.customer_id).await?.into_iter().collect(),
            None => Vec::new(),
        },
        Search::Name(p) => store.directory_by_name(&p, SEARCH_LIMIT).await?,
        Search::Crm(crm) => match vendor.customer_by_crm(&crm).await? {
            Some(c) => verified(store, &c).await?.into_iter().collect(),
            None => Vec::new(),
        },
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let crm_account_id = vendor.crm_of(&entry.customer_id).await?;
        out.push(Found {
            entry,
            crm_account_id,
        });
    }
    Ok(out)
}

/// Link this vendor's CRM account `crm` to verified organization `c`,
/// replacing its previous CRM id.
pub async fn link(
    store: &Store,
    vendor: &TenantStore,
    actor: &Actor,
    c: &TenantId,
    crm: &CrmAccountId,
    now: OffsetDateTime,
) -> Result<Found, Error> {
    let entry = verified(store, c).await?.ok_or_else(customer_not_found)?;
    let old = vendor.crm_of(c).await?;
    if old.as_ref() == Some(crm) {
        return Ok(Found {
            entry,
            crm_account_id: old,
        });
    }
    let audit = actor
        .audit(
            vendor.tenant_id(),
            AuditCode::CustomerCrmLinked,
            c.as_str(),
            now,
        )
        .with_data(serde_json::json!({ "crm_account_id": crm, "previous": old }));
    match vendor.link_crm(c, crm, old.as_ref(), &audit).await? {
        CrmLink::Linked => Ok(Found {
            entry,
            crm_account_id: Some(crm.clone()),
        }),
        CrmLink::InUse => Err(Error::conflict(
            "CRM_ID_IN_USE",
            "that CRM id is linked to another organization",
        )),
        // Another request changed the link between our read and write: a
        // retryable race (503, as any write that kept racing).
        CrmLink::Raced => Err(Error::Unavailable(
            "the organization's CRM link changed meanwhile".into(),
        )),
    }
}

/// A verified organization as this vendor sees it, with the licenses this
/// vendor granted it (oldest grant first; never another vendor's).
pub struct Customer {
    pub found: Found,
    pub licenses: Vec<crate::domain::License>,
}

/// [`Customer`] `c`: 404 `CUSTOMER_NOT_FOUND` unless verified and active.
/// The organization's grants are filtered to this vendor's, and each
/// license is read from this vendor's own partition.
pub async fn customer(
    store: &Store,
    vendor: &TenantStore,
    c: &TenantId,
) -> Result<Customer, Error> {
    let entry = verified(store, c).await?.ok_or_else(customer_not_found)?;
    let crm_account_id = vendor.crm_of(c).await?;
    let mut grants: Vec<_> = store
        .tenant(c)
        .list_grants()
        .await?
        .into_iter()
        .filter(|g| &g.vendor_id == vendor.tenant_id())
        .collect();
    grants.sort_by(|a, b| (a.created_at, &a.license_id).cmp(&(b.created_at, &b.license_id)));
    let mut licenses = Vec::with_capacity(grants.len());
    for g in grants {
        if let Some(l) = vendor.get_license(&g.license_id).await? {
            licenses.push(l);
        }
    }
    Ok(Customer {
        found: Found {
            entry,
            crm_account_id,
        },
        licenses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_takes_exactly_one_valid_filter() {
        assert!(Search::parse(None, None, None).is_err());
        assert!(Search::parse(Some("a.com"), Some("a"), None).is_err());
        assert!(Search::parse(Some("not a domain"), None, None).is_err());
        assert!(Search::parse(None, Some("  "), None).is_err());
        assert!(Search::parse(None, None, Some("has space")).is_err());
        assert_eq!(
            Search::parse(Some("Example.COM."), None, None).unwrap(),
            Search::Domain(Domain::parse("example.com".to_string()).unwrap())
        );
        assert_eq!(
            Search::parse(None, Some(" Mercedes "), None).unwrap(),
            Search::Name("mercedes".into())
        );
        assert!(matches!(
            Search::parse(None, None, Some("0015g00000XyZ")).unwrap(),
            Search::Crm(_)
        ));
    }
}
