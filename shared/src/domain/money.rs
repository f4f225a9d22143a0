//! Money: ISO 4217 currencies and amounts in integer minor units.
//!
//! An amount is an `i64` count of the currency's minor unit (cents for EUR,
//! yen for JPY, fils for KWD). Every operation is checked: an overflow is a
//! [`MoneyError`], never a wrapped value. The decimal form (`7500.00`) is
//! made only for display and export, from integers; no float appears on a
//! money path.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0:?} is not an ISO 4217 currency code")]
    UnknownCurrency(String),
    #[error("{0} has no minor unit and cannot be invoiced")]
    NoMinorUnit(&'static str),
    #[error("the amount is out of range")]
    Overflow,
    #[error("amounts in {0} and {1} cannot be added")]
    CurrencyMismatch(&'static str, &'static str),
    #[error("{0:?} is not a decimal amount in {1}")]
    BadDecimal(String, &'static str),
}

impl From<MoneyError> for crate::error::Error {
    fn from(e: MoneyError) -> Self {
        crate::error::Error::validation(e.to_string())
    }
}

/// An ISO 4217 currency with a minor unit (its exponent: 2 for EUR, 0 for
/// JPY, 3 for KWD). Precious metals and other codes without a minor unit
/// (XAU, XDR) are refused: nothing is invoiced in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// From its three-letter code, upper case (`EUR`).
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        let c = iso_currency::Currency::from_code(code)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.chars().take(16).collect()))?;
        if c.exponent().is_none() {
            return Err(MoneyError::NoMinorUnit(c.code()));
        }
        Ok(Currency(c))
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Decimal places of the minor unit.
    pub fn exponent(self) -> u32 {
        // `parse` admits only currencies with an exponent.
        u32::from(self.0.exponent().unwrap_or(0))
    }

    /// Minor units in one major unit (100 for EUR, 1 for JPY).
    fn scale(self) -> i64 {
        10_i64.pow(self.exponent())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount of one currency, in its minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub currency: Currency,
    pub minor: i64,
}

impl Money {
    pub fn new(currency: Currency, minor: i64) -> Money {
        Money { currency, minor }
    }

    pub fn zero(currency: Currency) -> Money {
        Money::new(currency, 0)
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(
                self.currency.code(),
                other.currency.code(),
            ));
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(self.currency, minor))
    }

    /// `quantity` units at this unit price.
    pub fn times(self, quantity: u64) -> Result<Money, MoneyError> {
        let q = i64::try_from(quantity).map_err(|_| MoneyError::Overflow)?;
        let minor = self.minor.checked_mul(q).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(self.currency, minor))
    }

    /// The sum of `items`, all in `currency`.
    pub fn sum(
        currency: Currency,
        items: impl IntoIterator<Item = Money>,
    ) -> Result<Money, MoneyError> {
        items
            .into_iter()
            .try_fold(Money::zero(currency), Money::checked_add)
    }

    /// The decimal form: `7500.00` (EUR), `1200` (JPY), `-0.05`.
    pub fn decimal(self) -> String {
        let exp = self.currency.exponent();
        let scale = self.currency.scale().unsigned_abs();
        let abs = self.minor.unsigned_abs();
        let sign = if self.minor < 0 { "-" } else { "" };
        if exp == 0 {
            return format!("{sign}{abs}");
        }
        let width = exp as usize;
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale)
    }

    /// Parse the decimal form back: exactly the currency's decimals (none
    /// for a currency without them), an optional leading `-`, digits only.
    pub fn parse_decimal(currency: Currency, s: &str) -> Result<Money, MoneyError> {
        let bad = || MoneyError::BadDecimal(s.chars().take(32).collect(), currency.code());
        let (neg, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let exp = currency.exponent() as usize;
        let (whole, frac) = match body.split_once('.') {
            Some((w, f)) if exp > 0 && f.len() == exp => (w, f),
            None if exp == 0 => (body, ""),
            _ => return Err(bad()),
        };
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (exp > 0 && !digits(frac)) {
            return Err(bad());
        }
        let whole: i64 = whole.parse().map_err(|_| MoneyError::Overflow)?;
        let frac: i64 = if exp > 0 {
            frac.parse().map_err(|_| bad())?
        } else {
            0
        };
        let minor = whole
            .checked_mul(currency.scale())
            .and_then(|m| m.checked_add(frac))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(currency, if neg { -minor } else { minor }))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.decimal(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn currencies_and_exponents() {
        assert_eq!(eur().exponent(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
        assert!(matches!(
            Currency::parse("eur"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(Currency::parse("ZZZ").is_err());
        assert!(Currency::parse("EURO").is_err());
        assert!(matches!(
            Currency::parse("XAU"),
            Err(MoneyError::NoMinorUnit(_))
        ));
        let c: Currency = serde_json::from_str("\"USD\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"USD\"");
        assert!(serde_json::from_str::<Currency>("\"US\"").is_err());
    }

    #[test]
    fn decimal_rendering() {
        assert_eq!(Money::new(eur(), 750_000).decimal(), "7500.00");
        assert_eq!(Money::new(eur(), 5).decimal(), "0.05");
        assert_eq!(Money::new(eur(), -5).decimal(), "-0.05");
        assert_eq!(Money::new(eur(), 0).decimal(), "0.00");
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::new(jpy, 1200).decimal(), "1200");
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(Money::new(kwd, 1_001).decimal(), "1.001");
        assert_eq!(
            Money::new(eur(), i64::MIN).decimal(),
            "-92233720368547758.08"
        );
    }

    #[test]
    fn overflow_is_an_error_never_a_wrap() {
        let max = Money::new(eur(), i64::MAX);
        assert_eq!(
            max.checked_add(Money::new(eur(), 1)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(eur(), 50_000).times(u64::MAX),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(eur(), i64::MAX / 2 + 1).times(2),
            Err(MoneyError::Overflow)
        );
        let usd = Currency::parse("USD").unwrap();
        assert!(matches!(
            Money::new(eur(), 1).checked_add(Money::new(usd, 1)),
            Err(MoneyError::CurrencyMismatch(..))
        ));
    }

    #[test]
    fn parse_decimal_is_strict() {
        let e = eur();
        assert_eq!(Money::parse_decimal(e, "7500.00").unwrap().minor, 750_000);
        for bad in ["7500", "7500.0", "7500.000", "1e3", "", "-", ".50", "1.-5"] {
            assert!(Money::parse_decimal(e, bad).is_err(), "{bad}");
        }
        let jpy = Currency::parse("JPY").unwrap();
        assert!(Money::parse_decimal(jpy, "12.00").is_err());
        assert_eq!(Money::parse_decimal(jpy, "12").unwrap().minor, 12);
    }

    fn currency() -> impl Strategy<Value = Currency> {
        prop::sample::select(vec!["EUR", "USD", "JPY", "KWD", "CLF", "GBP"])
            .prop_map(|c| Currency::parse(c).unwrap())
    }

    proptest! {
        #[test]
        fn rendering_round_trips(c in currency(), minor in any::<i64>()) {
            // i64::MIN has no positive twin; everything else round-trips.
            prop_assume!(minor != i64::MIN);
            let m = Money::new(c, minor);
            prop_assert_eq!(Money::parse_decimal(c, &m.decimal()), Ok(m));
        }

        #[test]
        fn sums_are_exact(c in currency(), xs in prop::collection::vec(-1_000_000_000_000i64..1_000_000_000_000, 0..50)) {
            let exact: i128 = xs.iter().map(|&x| i128::from(x)).sum();
            let total = Money::sum(c, xs.iter().map(|&x| Money::new(c, x))).unwrap();
            prop_assert_eq!(i128::from(total.minor), exact);
        }

        #[test]
        fn products_are_exact_or_refused(price in any::<i64>(), qty in any::<u64>()) {
            let exact = i128::from(price) * i128::from(qty);
            match Money::new(eur(), price).times(qty) {
                Ok(m) => prop_assert_eq!(i128::from(m.minor), exact),
                Err(e) => {
                    prop_assert_eq!(e, MoneyError::Overflow);
                    prop_assert!(i64::try_from(exact).is_err() || i64::try_from(qty).is_err());
                }
            }
        }
    }
}
