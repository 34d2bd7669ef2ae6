//! Money as integer minor units with an ISO-4217 currency; never floats in storage.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Currencies the shop accepts. The exponent is the number of minor-unit digits.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Currency {
    #[default]
    Krw,
    Usd,
    Eur,
    Gbp,
    Jpy,
}

impl Currency {
    pub fn code(self) -> &'static str {
        match self {
            Currency::Krw => "KRW",
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
            Currency::Gbp => "GBP",
            Currency::Jpy => "JPY",
        }
    }

    /// Digits after the decimal point in the major unit (KRW and JPY have none).
    pub fn exponent(self) -> u32 {
        match self {
            Currency::Krw | Currency::Jpy => 0,
            Currency::Usd | Currency::Eur | Currency::Gbp => 2,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Currency::Krw => "₩",
            Currency::Usd => "$",
            Currency::Eur => "€",
            Currency::Gbp => "£",
            Currency::Jpy => "¥",
        }
    }

    /// Converts a decimal amount in major units ("12.5", "129000") to minor units exactly,
    /// without going through a float.
    pub fn parse_major(self, text: &str) -> Result<i64, MoneyError> {
        let text = text.trim().replace(',', "");
        let text = text.trim_start_matches(['$', '₩', '€', '£', '¥']);
        if text.is_empty() {
            return Err(MoneyError::Empty);
        }
        if text.starts_with('-') {
            return Err(MoneyError::Negative);
        }
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && frac.is_empty()
            || !whole.chars().all(|c| c.is_ascii_digit())
            || !frac.chars().all(|c| c.is_ascii_digit())
        {
            return Err(MoneyError::NotANumber(text.to_string()));
        }
        let exp = self.exponent() as usize;
        let significant = frac.trim_end_matches('0');
        if significant.len() > exp {
            return Err(MoneyError::TooPrecise {
                currency: self.code(),
                digits: exp as u32,
            });
        }
        let mut frac_digits = significant.to_string();
        while frac_digits.len() < exp {
            frac_digits.push('0');
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| MoneyError::TooLarge)?
        };
        let frac: i64 = if frac_digits.is_empty() {
            0
        } else {
            frac_digits.parse().map_err(|_| MoneyError::TooLarge)?
        };
        whole
            .checked_mul(10_i64.pow(exp as u32))
            .and_then(|w| w.checked_add(frac))
            .ok_or(MoneyError::TooLarge)
    }

    /// Human-readable price, e.g. `₩129,000` or `$19.99`.
    pub fn format(self, amount_minor: i64) -> String {
        let exp = self.exponent();
        let divisor = 10_i64.pow(exp);
        let whole = amount_minor / divisor;
        let frac = (amount_minor % divisor).abs();
        let digits = whole.abs().to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let sign = if amount_minor < 0 { "-" } else { "" };
        if exp == 0 {
            format!("{sign}{}{grouped}", self.symbol())
        } else {
            format!(
                "{sign}{}{grouped}.{frac:0width$}",
                self.symbol(),
                width = exp as usize
            )
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "KRW" => Ok(Currency::Krw),
            "USD" => Ok(Currency::Usd),
            "EUR" => Ok(Currency::Eur),
            "GBP" => Ok(Currency::Gbp),
            "JPY" => Ok(Currency::Jpy),
            other => Err(MoneyError::UnknownCurrency(other.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MoneyError {
    #[error("price is empty")]
    Empty,
    #[error("price must not be negative")]
    Negative,
    #[error("price {0:?} is not a number")]
    NotANumber(String),
    #[error("{currency} prices have at most {digits} decimal digits")]
    TooPrecise { currency: &'static str, digits: u32 },
    #[error("price is too large")]
    TooLarge,
    #[error("unknown currency {0:?} (accepted: KRW, USD, EUR, GBP, JPY)")]
    UnknownCurrency(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_units_convert_exactly_to_minor_units() {
        assert_eq!(Currency::Usd.parse_major("19.99"), Ok(1999));
        assert_eq!(Currency::Usd.parse_major("19.9"), Ok(1990));
        assert_eq!(Currency::Usd.parse_major("$1,234.50"), Ok(123450));
        assert_eq!(Currency::Gbp.parse_major(".5"), Ok(50));
        assert_eq!(Currency::Krw.parse_major("129000"), Ok(129000));
        assert_eq!(Currency::Krw.parse_major("129,000.00"), Ok(129000));
    }

    #[test]
    fn bad_prices_are_rejected_with_a_reason() {
        assert_eq!(Currency::Krw.parse_major("-5"), Err(MoneyError::Negative));
        assert_eq!(Currency::Krw.parse_major(""), Err(MoneyError::Empty));
        assert!(matches!(
            Currency::Krw.parse_major("12.5"),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            Currency::Usd.parse_major("abc"),
            Err(MoneyError::NotANumber(_))
        ));
        assert_eq!(
            Currency::Usd.parse_major("99999999999999999999"),
            Err(MoneyError::TooLarge)
        );
    }

    #[test]
    fn prices_format_with_symbol_and_grouping() {
        assert_eq!(Currency::Krw.format(129000), "₩129,000");
        assert_eq!(Currency::Usd.format(1999), "$19.99");
        assert_eq!(Currency::Gbp.format(5), "£0.05");
        assert_eq!(Currency::Krw.format(100), "₩100");
    }

    #[test]
    fn currency_codes_parse_case_insensitively() {
        assert_eq!("krw".parse::<Currency>(), Ok(Currency::Krw));
        assert!("XYZ".parse::<Currency>().is_err());
    }
}
