//! License search: the filters of `GET /v1/manage/licenses` and what they
//! mean for one license. The store turns the same rules into a
//! FilterExpression; [`LicenseFilter::matches`] is the definition both follow.

use super::license::License;
use crate::error::Error;
use crate::ids::{PolicyId, ProductCode};
use time::OffsetDateTime;

/// A status as responses show it (`expired` and a lapsed `past_due` are
/// derived from times, never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShownStatus {
    Active,
    Suspended,
    Cancelled,
    Expired,
    PastDue,
}

impl ShownStatus {
    pub const ALL: [ShownStatus; 5] = [
        ShownStatus::Active,
        ShownStatus::Suspended,
        ShownStatus::Cancelled,
        ShownStatus::Expired,
        ShownStatus::PastDue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ShownStatus::Active => "active",
            ShownStatus::Suspended => "suspended",
            ShownStatus::Cancelled => "cancelled",
            ShownStatus::Expired => "expired",
            ShownStatus::PastDue => "past_due",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                Error::validation(
                    "status must be one of active, suspended, cancelled, expired, past_due",
                )
            })
    }
}

/// The longest `q`.
pub const MAX_QUERY_CHARS: usize = 254;

/// `q`: the start of a license key or of a customer e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPrefix(String);

impl SearchPrefix {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let t = s.trim();
        if t.is_empty()
            || t.chars().count() > MAX_QUERY_CHARS
            || t.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Error::validation(format!(
                "q must be 1 to {MAX_QUERY_CHARS} characters without spaces"
            )));
        }
        Ok(Self(t.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The forms a key may start with: as typed, and upper case (generated
    /// keys are upper case; a key chosen at issue may be either).
    pub fn key_forms(&self) -> Vec<String> {
        let upper = self.0.to_ascii_uppercase();
        if upper == self.0 {
            vec![upper]
        } else {
            vec![self.0.clone(), upper]
        }
    }
    /// E-mails are stored lower case.
    pub fn email_form(&self) -> String {
        self.0.to_lowercase()
    }
}

/// The filters of a tenant-wide license listing (all optional, ANDed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicenseFilter {
    pub status: Option<ShownStatus>,
    pub product: Option<ProductCode>,
    pub policy: Option<PolicyId>,
    /// Created strictly after.
    pub created_after: Option<OffsetDateTime>,
    /// Created strictly before.
    pub created_before: Option<OffsetDateTime>,
    pub q: Option<SearchPrefix>,
}

impl LicenseFilter {
    /// Filters other than the time range (which the index answers by key).
    pub fn filters_items(&self) -> bool {
        self.status.is_some() || self.product.is_some() || self.policy.is_some() || self.q.is_some()
    }

    /// A stable text of the filter: a cursor is bound to it, so a cursor of
    /// one search cannot page another.
    pub fn canonical(&self) -> String {
        let t = |v: Option<OffsetDateTime>| v.map(crate::clock::rfc3339).unwrap_or_default();
        format!(
            "status={}&product={}&policy={}&after={}&before={}&q={}",
            self.status.map(ShownStatus::as_str).unwrap_or(""),
            self.product.as_ref().map(|p| p.as_str()).unwrap_or(""),
            self.policy.as_ref().map(|p| p.as_str()).unwrap_or(""),
            t(self.created_after),
            t(self.created_before),
            self.q.as_ref().map(SearchPrefix::as_str).unwrap_or(""),
        )
    }

    /// Does `l` pass every filter at `now`?
    pub fn matches(&self, l: &License, now: OffsetDateTime) -> bool {
        self.status.is_none_or(|s| l.status_str(now) == s.as_str())
            && self.product.as_ref().is_none_or(|p| *p == l.product)
            && self.policy.as_ref().is_none_or(|p| *p == l.policy)
            && self.created_after.is_none_or(|t| l.created_at > t)
            && self.created_before.is_none_or(|t| l.created_at < t)
            && self.q.as_ref().is_none_or(|q| {
                q.key_forms().iter().any(|k| l.key.as_str().starts_with(k))
                    || l.customer_email.as_str().starts_with(&q.email_form())
            })
    }

    /// Refuse a range that can hold nothing.
    pub fn check(&self) -> Result<(), Error> {
        if let (Some(a), Some(b)) = (self.created_after, self.created_before) {
            if a >= b {
                return Err(Error::validation(
                    "created_before must be later than created_after",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_and_name_the_field() {
        for s in ShownStatus::ALL {
            assert_eq!(ShownStatus::parse(s.as_str()).unwrap(), s);
        }
        let e = ShownStatus::parse("Active").unwrap_err();
        assert!(e.to_string().starts_with("status "), "{e}");
    }

    #[test]
    fn prefixes() {
        assert!(SearchPrefix::parse(" ").is_err());
        assert!(SearchPrefix::parse("a b").is_err());
        let q = SearchPrefix::parse("abC").unwrap();
        assert_eq!(q.key_forms(), vec!["abC".to_string(), "ABC".to_string()]);
        assert_eq!(q.email_form(), "abc");
        assert_eq!(SearchPrefix::parse("AB").unwrap().key_forms().len(), 1);
    }

    #[test]
    fn an_empty_range_is_refused() {
        let t = time::macros::datetime!(2026-01-01 0:00 UTC);
        let f = LicenseFilter {
            created_after: Some(t),
            created_before: Some(t),
            ..Default::default()
        };
        assert!(f.check().is_err());
        assert_ne!(f.canonical(), LicenseFilter::default().canonical());
    }
}
