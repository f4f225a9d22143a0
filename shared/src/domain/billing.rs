//! Commercial terms of a license and what they bill: a commit (seats for a
//! fee each billing cycle) plus overage (each checkout beyond the commit at
//! a unit price, and each unit of a priced metric beyond its limit). Pure:
//! the figures come in, line items and totals go out.
//!
//! Billing periods are calendar months in UTC (`2026-12`). Overage is
//! counted per month; a monthly commit fee is billed every month of the
//! contract, a yearly one in the month the contract started (and its
//! anniversaries). See `docs/billing.md`.

use super::catalog::{EntitlementSpec, Entitlements, Overage, Period as UsagePeriod};
use super::money::{Currency, Money, MoneyError};
use super::{Aggregation, License};
use crate::error::Error;
use crate::ids::{Email, LicenseId, Metric, ProductCode, TenantId};
use serde::{Deserialize, Serialize};
use time::{Date, Month};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BillingCycle {
    Monthly,
    Yearly,
}

/// What one overage unit is. Only checkouts today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OveragePer {
    #[default]
    Checkout,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    pub start_date: String,
    pub end_date: String,
    #[serde(default)]
    pub auto_renew: bool,
}

/// A license's commercial terms, as sent and as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommercialTerms {
    pub currency: Currency,
    pub commit_qty: u32,
    pub commit_fee_minor: u64,
    pub billing_cycle: BillingCycle,
    pub overage_unit_price_minor: u64,
    #[serde(default)]
    pub overage_per: OveragePer,
    pub contract: Contract,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_opportunity_id: Option<String>,
}

/// Largest amount accepted in a term (fits an `i64` with room for sums).
const MAX_MINOR: u64 = 1_000_000_000_000_000;
const MAX_CRM_ID: usize = 128;

/// `YYYY-MM-DD`, a real calendar day.
pub fn parse_day(field: &str, s: &str) -> Result<Date, Error> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt)
        .map_err(|_| Error::validation(format!("{field} must be a date, YYYY-MM-DD")))
}

impl CommercialTerms {
    /// Every rule a stored term must meet; the message names the field.
    pub fn check(&self) -> Result<(), Error> {
        for (field, v) in [
            ("commercial.commit_fee_minor", self.commit_fee_minor),
            (
                "commercial.overage_unit_price_minor",
                self.overage_unit_price_minor,
            ),
        ] {
            if v > MAX_MINOR {
                return Err(Error::validation(format!(
                    "{field} must be at most {MAX_MINOR}"
                )));
            }
        }
        let start = parse_day("commercial.contract.start_date", &self.contract.start_date)?;
        let end = parse_day("commercial.contract.end_date", &self.contract.end_date)?;
        if end < start {
            return Err(Error::validation(
                "commercial.contract.end_date must not be before start_date",
            ));
        }
        for (field, v) in [
            ("commercial.crm_account_id", &self.crm_account_id),
            ("commercial.crm_opportunity_id", &self.crm_opportunity_id),
        ] {
            if let Some(v) = v {
                super::bounded(field, v, MAX_CRM_ID)?;
            }
        }
        Ok(())
    }

    fn start(&self) -> Option<Date> {
        parse_day("", &self.contract.start_date).ok()
    }

    fn end(&self) -> Option<Date> {
        parse_day("", &self.contract.end_date).ok()
    }

    /// Does the contract run during any day of `period`? An auto-renewing
    /// contract runs on past its end date.
    pub fn covers(&self, period: Period) -> bool {
        let (Some(start), Some(end)) = (self.start(), self.end()) else {
            return false;
        };
        let after_start = period.last_day() >= start;
        let before_end = self.contract.auto_renew || period.first_day() <= end;
        after_start && before_end
    }

    /// The commit fee billed for `period`.
    pub fn commit_fee_in(&self, period: Period) -> Money {
        let fee = Money::new(self.currency, to_i64(self.commit_fee_minor));
        let billed = self.covers(period)
            && match self.billing_cycle {
                BillingCycle::Monthly => true,
                BillingCycle::Yearly => self.start().is_some_and(|s| s.month() == period.month),
            };
        if billed {
            fee
        } else {
            Money::zero(self.currency)
        }
    }

    pub fn unit_price(&self) -> Money {
        Money::new(self.currency, to_i64(self.overage_unit_price_minor))
    }

    /// What `overage_checkouts` overage checkouts and the priced metrics'
    /// `metered` usage in `period` bill.
    pub fn bill(
        &self,
        period: Period,
        overage_checkouts: u64,
        metered: &[MeteredUsage],
    ) -> Result<Bill, MoneyError> {
        let commit_fee = self.commit_fee_in(period);
        let checkout_cost = self.unit_price().times(overage_checkouts)?;
        let metered: Vec<MeteredLine> = metered
            .iter()
            .map(|u| u.metric.line(self.currency, u.used))
            .collect::<Result<_, _>>()?;
        let overage_cost = Money::sum(
            self.currency,
            std::iter::once(checkout_cost).chain(metered.iter().map(|m| m.cost)),
        )?;
        let total = commit_fee.checked_add(overage_cost)?;
        Ok(Bill {
            period,
            overage_checkouts,
            commit_fee,
            checkout_cost,
            metered,
            overage_cost,
            total,
        })
    }
}

/// A metered entitlement priced per unit beyond its limit (`sum` or
/// `unique_count`, `period: month`, `overage: allow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedMetric {
    pub metric: Metric,
    pub limit: u64,
    pub unit_price_minor: u64,
}

/// A priced metric's usage in one month (the counter of that month, summed
/// over its shards; distinct values for `unique_count`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeteredUsage {
    pub metric: PricedMetric,
    pub used: u64,
}

/// What one priced metric bills in a month: the units beyond the limit at
/// the unit price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeteredLine {
    pub metric: Metric,
    pub used: u64,
    pub limit: u64,
    /// `used − limit`, or 0.
    pub units: u64,
    pub unit_price: Money,
    pub cost: Money,
}

impl PricedMetric {
    /// What `used` units in a month bill in `currency`.
    pub fn line(&self, currency: Currency, used: u64) -> Result<MeteredLine, MoneyError> {
        let units = used.saturating_sub(self.limit);
        let unit_price = Money::new(currency, to_i64(self.unit_price_minor));
        Ok(MeteredLine {
            metric: self.metric.clone(),
            used,
            limit: self.limit,
            units,
            unit_price,
            cost: unit_price.times(units)?,
        })
    }
}

/// The priced metrics among a license's entitlements in force (specs that
/// validation would refuse — see [`check_metered_price`] — are left out).
pub fn priced_metrics(specs: &Entitlements) -> Vec<PricedMetric> {
    specs
        .iter()
        .filter_map(|(feature, spec)| match spec {
            EntitlementSpec::Metered {
                limit: Some(limit),
                period: UsagePeriod::Month,
                overage: Overage::Allow,
                aggregation: Aggregation::Sum | Aggregation::UniqueCount,
                overage_unit_price_minor: Some(price),
                ..
            } => Some(PricedMetric {
                metric: Metric::parse(feature.as_str()).ok()?,
                limit: *limit,
                unit_price_minor: *price,
            }),
            _ => None,
        })
        .collect()
}

/// The rules of a metered entitlement's `overage_unit_price_minor`: at most
/// 10^15 minor units, on a monthly metric that allows overage and counts
/// with a limit (`sum` or `unique_count`) — its overage in a month is then
/// exactly `used − limit`.
pub fn check_metered_price(
    feature: &str,
    price: u64,
    period: UsagePeriod,
    overage: Overage,
    aggregation: Aggregation,
) -> Result<(), Error> {
    let field = format!("entitlements.{feature}.overage_unit_price_minor");
    if price > MAX_MINOR {
        return Err(Error::validation(format!(
            "{field} must be at most {MAX_MINOR}"
        )));
    }
    if period != UsagePeriod::Month {
        return Err(Error::validation(format!(
            "{field} needs period 'month' (overage is billed per calendar month)"
        )));
    }
    if overage != Overage::Allow {
        return Err(Error::validation(format!(
            "{field} needs overage 'allow' (denied usage has no overage to bill)"
        )));
    }
    if !matches!(aggregation, Aggregation::Sum | Aggregation::UniqueCount) {
        return Err(Error::validation(format!(
            "{field} needs aggregation 'sum' or 'unique_count' (a limit to go beyond)"
        )));
    }
    Ok(())
}

/// `check` bounds every amount far below `i64::MAX`.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A calendar month in UTC: the billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    pub year: i32,
    pub month: Month,
}

impl Period {
    /// `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Period, Error> {
        let bad = || Error::validation("period must be a month, YYYY-MM");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u8 = m.parse().map_err(|_| bad())?;
        let month = Month::try_from(month).map_err(|_| bad())?;
        if year < 1 {
            return Err(bad());
        }
        Ok(Period { year, month })
    }

    pub fn of(day: Date) -> Period {
        Period {
            year: day.year(),
            month: day.month(),
        }
    }

    pub fn first_day(self) -> Date {
        // Day 1 exists in every month of every year `parse` admits.
        Date::from_calendar_date(self.year, self.month, 1).unwrap_or(Date::MIN)
    }

    pub fn last_day(self) -> Date {
        let days = self.month.length(self.year);
        Date::from_calendar_date(self.year, self.month, days).unwrap_or(Date::MAX)
    }

    pub fn next(self) -> Period {
        match self.month {
            Month::December => Period {
                year: self.year + 1,
                month: Month::January,
            },
            m => Period {
                year: self.year,
                month: m.next(),
            },
        }
    }

    pub fn previous(self) -> Period {
        match self.month {
            Month::January => Period {
                year: self.year - 1,
                month: Month::December,
            },
            m => Period {
                year: self.year,
                month: m.previous(),
            },
        }
    }

    /// The months from the one holding `start` to the one holding `end`
    /// (at most `max`; `None` beyond it).
    pub fn range(start: Date, end: Date, max: usize) -> Option<Vec<Period>> {
        let (first, last) = (Period::of(start), Period::of(end));
        let mut out = Vec::new();
        let mut p = first;
        while p <= last {
            if out.len() == max {
                return None;
            }
            out.push(p);
            p = p.next();
        }
        Some(out)
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, u8::from(self.month))
    }
}

/// What one license bills for one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    pub period: Period,
    pub overage_checkouts: u64,
    pub commit_fee: Money,
    /// The overage checkouts at the unit price.
    pub checkout_cost: Money,
    /// Each priced metric of the license (units 0 when within its limit).
    pub metered: Vec<MeteredLine>,
    /// Every overage: `checkout_cost` plus each metered line's cost.
    pub overage_cost: Money,
    /// `commit_fee + overage_cost`.
    pub total: Money,
}

impl Bill {
    /// The metered lines with units beyond the limit (what is invoiced).
    pub fn metered_overage(&self) -> impl Iterator<Item = &MeteredLine> {
        self.metered.iter().filter(|m| m.units > 0)
    }
}

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineItem {
    pub description: String,
    pub quantity: u64,
    pub unit_price: String,
    pub amount: String,
}

/// The `invoice.ready` payload of one license for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invoice {
    pub period: String,
    pub crm_account_id: Option<String>,
    pub license_id: String,
    pub currency: Currency,
    pub line_items: Vec<LineItem>,
    pub total: String,
}

impl Invoice {
    /// The invoice of `bill` under `terms`: a commit line when a fee is due
    /// this period, an overage line when there was overage.
    pub fn of(license_id: &str, terms: &CommercialTerms, bill: &Bill) -> Invoice {
        let mut line_items = Vec::new();
        if bill.commit_fee.minor != 0 {
            let cycle = match terms.billing_cycle {
                BillingCycle::Monthly => "monthly",
                BillingCycle::Yearly => "yearly",
            };
            line_items.push(LineItem {
                description: format!("Commit: {} seats ({cycle})", terms.commit_qty),
                quantity: 1,
                unit_price: bill.commit_fee.decimal(),
                amount: bill.commit_fee.decimal(),
            });
        }
        if bill.overage_checkouts > 0 {
            line_items.push(LineItem {
                description: format!("Overage checkouts beyond {} seats", terms.commit_qty),
                quantity: bill.overage_checkouts,
                unit_price: terms.unit_price().decimal(),
                amount: bill.checkout_cost.decimal(),
            });
        }
        for m in bill.metered_overage() {
            line_items.push(LineItem {
                description: m.description(),
                quantity: m.units,
                unit_price: m.unit_price.decimal(),
                amount: m.cost.decimal(),
            });
        }
        Invoice {
            period: bill.period.to_string(),
            crm_account_id: terms.crm_account_id.clone(),
            license_id: license_id.to_string(),
            currency: terms.currency,
            line_items,
            total: bill.total.decimal(),
        }
    }
}

impl MeteredLine {
    /// How an invoice, the PDF and the CSV name the line.
    pub fn description(&self) -> String {
        format!("Overage {} beyond {}", self.metric, self.limit)
    }
}

/// The customer organization a license is granted to, as the license (and
/// its commercial index entry) keeps it: the export names the customer by
/// it. Copied when the license is issued to the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantedOrg {
    pub id: TenantId,
    pub name: String,
}

/// The index entry of a license with commercial terms: what the export
/// and the period close need, without reading the license.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BilledLicense {
    pub license_id: LicenseId,
    pub product: ProductCode,
    pub customer_email: Email,
    pub commercial: CommercialTerms,
    /// The organization the license is granted to (absent: none, or a
    /// license granted before the index kept it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<GrantedOrg>,
}

impl BilledLicense {
    pub fn of(l: &License) -> Option<BilledLicense> {
        Some(BilledLicense {
            license_id: l.id.clone(),
            product: l.product.clone(),
            customer_email: l.customer_email.clone(),
            commercial: l.commercial.clone()?,
            organization: l.organization.clone(),
        })
    }

    /// The CRM account the export groups this license under (empty: none).
    pub fn crm_account_id(&self) -> &str {
        self.commercial.crm_account_id.as_deref().unwrap_or("")
    }

    /// The customer's name as the export and invoices show it: the
    /// organization's name for a license granted to one, else the
    /// license's customer e-mail.
    pub fn customer_name(&self) -> String {
        match &self.organization {
            Some(o) => o.name.clone(),
            None => self.customer_email.to_string(),
        }
    }

    /// The organization's id, for a license granted to one.
    pub fn customer_id(&self) -> Option<&TenantId> {
        self.organization.as_ref().map(|o| &o.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn terms() -> CommercialTerms {
        serde_json::from_value(serde_json::json!({
            "currency": "EUR", "commit_qty": 5, "commit_fee_minor": 500000,
            "billing_cycle": "monthly", "overage_unit_price_minor": 50000,
            "overage_per": "checkout",
            "contract": { "start_date": "2026-01-01", "end_date": "2026-12-31", "auto_renew": false },
            "crm_account_id": "0015g00000ABC"
        }))
        .unwrap()
    }

    #[test]
    fn validation_names_the_field() {
        let mut t = terms();
        assert!(t.check().is_ok());
        t.contract.end_date = "2025-12-31".into();
        assert!(t.check().unwrap_err().to_string().contains("end_date"));
        t.contract.end_date = "2026-02-30".into();
        assert!(t.check().unwrap_err().to_string().contains("end_date"));
        let mut t = terms();
        t.overage_unit_price_minor = u64::MAX;
        assert!(t.check().unwrap_err().to_string().contains("overage_unit"));
        let bad = serde_json::json!({ "currency": "EURO" });
        assert!(serde_json::from_value::<CommercialTerms>(bad).is_err());
    }

    #[test]
    fn the_must_show_bill() {
        let p = Period::parse("2026-12").unwrap();
        let b = terms().bill(p, 15, &[]).unwrap();
        assert_eq!(b.overage_cost.decimal(), "7500.00");
        assert_eq!(b.commit_fee.decimal(), "5000.00");
        assert_eq!(b.total.decimal(), "12500.00");
        let inv = Invoice::of("lic_x", &terms(), &b);
        assert_eq!(inv.line_items.len(), 2);
        assert_eq!(inv.line_items[1].quantity, 15);
        assert_eq!(inv.line_items[1].unit_price, "500.00");
        assert_eq!(inv.total, "12500.00");
    }

    #[test]
    fn contract_window_and_yearly_fee() {
        let mut t = terms();
        assert!(!t.covers(Period::parse("2027-01").unwrap()));
        assert_eq!(t.commit_fee_in(Period::parse("2025-12").unwrap()).minor, 0);
        t.contract.auto_renew = true;
        assert!(t.covers(Period::parse("2031-05").unwrap()));
        t.billing_cycle = BillingCycle::Yearly;
        t.contract.start_date = "2026-03-15".into();
        assert_eq!(t.commit_fee_in(Period::parse("2026-02").unwrap()).minor, 0);
        assert_eq!(
            t.commit_fee_in(Period::parse("2026-03").unwrap()).minor,
            500000
        );
        assert_eq!(t.commit_fee_in(Period::parse("2026-04").unwrap()).minor, 0);
        assert_eq!(
            t.commit_fee_in(Period::parse("2027-03").unwrap()).minor,
            500000
        );
    }

    #[test]
    fn periods() {
        for bad in [
            "2026-13", "2026-1", "26-01", "2026-00", "2026/01", "abcd-ef", "0000-01",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
        let p = Period::parse("2026-12").unwrap();
        assert_eq!(p.next().to_string(), "2027-01");
        assert_eq!(p.next().previous(), p);
        assert_eq!(p.last_day().day(), 31);
        let r = Period::range(
            parse_day("", "2026-11-15").unwrap(),
            parse_day("", "2027-02-01").unwrap(),
            24,
        )
        .unwrap();
        assert_eq!(r.len(), 4);
        assert!(Period::range(
            parse_day("", "2000-01-01").unwrap(),
            parse_day("", "2026-01-01").unwrap(),
            24
        )
        .is_none());
    }

    #[test]
    fn the_customer_is_named_by_its_organization() {
        let mut l = BilledLicense {
            license_id: LicenseId::derive(
                &TenantId::parse("acme").unwrap(),
                &crate::ids::LicenseKey::generate(),
            ),
            product: ProductCode::parse("cad").unwrap(),
            customer_email: Email::normalise("admin@mercedes.example").unwrap(),
            commercial: terms(),
            organization: None,
        };
        assert_eq!(l.customer_name(), "admin@mercedes.example");
        assert_eq!(l.customer_id(), None);
        l.organization = Some(GrantedOrg {
            id: TenantId::parse("mercedes").unwrap(),
            name: "Mercedes-Benz AG".into(),
        });
        assert_eq!(l.customer_name(), "Mercedes-Benz AG");
        assert_eq!(l.customer_id().map(|i| i.as_str()), Some("mercedes"));
    }

    fn api_calls(limit: u64, price: u64) -> PricedMetric {
        PricedMetric {
            metric: Metric::parse("api-calls").unwrap(),
            limit,
            unit_price_minor: price,
        }
    }

    #[test]
    fn metered_overage_is_priced_per_unit_beyond_the_limit() {
        let p = Period::parse("2026-12").unwrap();
        let usage = [
            MeteredUsage {
                metric: api_calls(1000, 2),
                used: 1250,
            },
            // Within its limit: a line of 0 units, not invoiced.
            MeteredUsage {
                metric: PricedMetric {
                    metric: Metric::parse("seats-seen").unwrap(),
                    limit: 10,
                    unit_price_minor: 999,
                },
                used: 7,
            },
        ];
        let b = terms().bill(p, 3, &usage).unwrap();
        assert_eq!(b.metered[0].units, 250);
        assert_eq!(b.metered[0].cost.decimal(), "5.00");
        assert_eq!(b.metered[1].units, 0);
        assert_eq!(b.metered[1].cost.minor, 0);
        assert_eq!(b.checkout_cost.decimal(), "1500.00");
        assert_eq!(b.overage_cost.decimal(), "1505.00");
        assert_eq!(b.total.decimal(), "6505.00");
        let inv = Invoice::of("lic_x", &terms(), &b);
        let lines: Vec<_> = inv
            .line_items
            .iter()
            .map(|l| l.description.as_str())
            .collect();
        assert_eq!(
            lines,
            [
                "Commit: 5 seats (monthly)",
                "Overage checkouts beyond 5 seats",
                "Overage api-calls beyond 1000"
            ]
        );
        assert_eq!(inv.line_items[2].quantity, 250);
        assert_eq!(inv.line_items[2].unit_price, "0.02");
        assert_eq!(inv.line_items[2].amount, "5.00");
        assert_eq!(inv.total, "6505.00");
        // At exactly the limit: nothing.
        let b = terms()
            .bill(
                p,
                0,
                &[MeteredUsage {
                    metric: api_calls(1000, 2),
                    used: 1000,
                }],
            )
            .unwrap();
        assert_eq!(b.overage_cost.minor, 0);
    }

    #[test]
    fn only_monthly_allowed_limited_metrics_are_priced() {
        let spec = |j: serde_json::Value| -> EntitlementSpec { serde_json::from_value(j).unwrap() };
        let f = |s: &str| crate::ids::Feature::parse(s).unwrap();
        let mut e = Entitlements::new();
        e.insert(
            f("api-calls"),
            spec(serde_json::json!({ "type": "metered", "limit": 100,
            "period": "month", "overage": "allow", "overage_unit_price_minor": 5 })),
        );
        e.insert(
            f("users"),
            spec(serde_json::json!({ "type": "metered", "limit": 3,
            "period": "month", "overage": "allow", "aggregation": "unique_count",
            "unique_by": "user_id", "overage_unit_price_minor": 700 })),
        );
        e.insert(
            f("unpriced"),
            spec(serde_json::json!({ "type": "metered", "limit": 3,
            "period": "month", "overage": "allow" })),
        );
        e.insert(f("sso"), spec(serde_json::json!({ "type": "boolean" })));
        let got = priced_metrics(&e);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], api_calls(100, 5));
        assert_eq!(
            (
                got[1].metric.as_str(),
                got[1].limit,
                got[1].unit_price_minor
            ),
            ("users", 3, 700)
        );
        for e in e.values() {
            assert!(e.check(&f("x")).is_ok());
        }
        // Refused on input, each naming the field.
        for bad in [
            serde_json::json!({ "type": "metered", "limit": 1, "period": "day", "overage": "allow", "overage_unit_price_minor": 1 }),
            serde_json::json!({ "type": "metered", "limit": 1, "period": "total", "overage": "allow", "overage_unit_price_minor": 1 }),
            serde_json::json!({ "type": "metered", "limit": 1, "period": "month", "overage_unit_price_minor": 1 }),
            serde_json::json!({ "type": "metered", "period": "month", "aggregation": "max", "overage": "allow", "overage_unit_price_minor": 1 }),
            serde_json::json!({ "type": "metered", "limit": 1, "period": "month", "overage": "allow", "overage_unit_price_minor": MAX_MINOR + 1 }),
        ] {
            let err = spec(bad.clone())
                .check(&f("api-calls"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("entitlements.api-calls."), "{bad}: {err}");
        }
        // Not an integer of minor units: not even parsed.
        for bad in [
            serde_json::json!(-1),
            serde_json::json!(1.5),
            serde_json::json!("5"),
        ] {
            let j = serde_json::json!({ "type": "metered", "limit": 1, "period": "month",
                "overage": "allow", "overage_unit_price_minor": bad });
            assert!(serde_json::from_value::<EntitlementSpec>(j).is_err());
        }
    }

    proptest! {
        #[test]
        fn metered_cost_is_units_beyond_the_limit_times_the_price(
            used in 0u64..10_000_000, limit in 0u64..10_000_000, price in 0u64..1_000_000_000, n in 0u64..1000,
        ) {
            let u = [MeteredUsage { metric: api_calls(limit, price), used }];
            let b = terms().bill(Period::parse("2026-06").unwrap(), n, &u).unwrap();
            let units = used.saturating_sub(limit);
            prop_assert_eq!(b.metered[0].units, units);
            prop_assert_eq!(i128::from(b.metered[0].cost.minor), i128::from(price) * i128::from(units));
            prop_assert_eq!(
                i128::from(b.total.minor),
                500_000 + 50_000 * i128::from(n) + i128::from(price) * i128::from(units)
            );
            prop_assert_eq!(b.overage_cost.checked_add(b.commit_fee).unwrap(), b.total);
        }

        #[test]
        fn total_is_commit_plus_overage(n in 0u64..1_000_000, fee in 0u64..MAX_MINOR, price in 0u64..1_000_000_000) {
            let mut t = terms();
            t.commit_fee_minor = fee;
            t.overage_unit_price_minor = price;
            let b = t.bill(Period::parse("2026-06").unwrap(), n, &[]).unwrap();
            prop_assert_eq!(i128::from(b.total.minor), i128::from(fee) + i128::from(price) * i128::from(n));
        }
    }
}
