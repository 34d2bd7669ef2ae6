//! Prices in the shopper's words ("10만원 이하", "5만원대", "3만~5만 원", "under $100",
//! "between 20 and 50 dollars") → a [`PriceRange`] in minor units of the shop currency (KRW).
//! Won amounts are taken as they are; dollar amounts are converted with a configured rate.

use crate::intent::PriceRange;

/// How far "around ₩30,000" reaches either side.
const AROUND_SPREAD: f64 = 0.2;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Won,
    Dollar,
}

#[derive(Debug, Clone, Copy)]
struct Amount {
    /// In the major unit of `unit` (or of the shop currency when unknown).
    value: f64,
    unit: Option<Unit>,
    /// The multiplier of the last Korean magnitude ("만" = 10,000), 1 without one: "3~5만원"
    /// lends it to the bare "3".
    magnitude: f64,
    /// "5만원대": the fifty-thousands.
    decade: bool,
    start: usize,
    end: usize,
}

impl Amount {
    /// A number with a currency or a Korean magnitude; a bare number only counts as the other
    /// end of a range ("between 20 and 50 dollars").
    fn is_price(&self) -> bool {
        self.unit.is_some() || self.magnitude > 1.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Bound {
    Max(f64),
    Min(f64),
    Between(f64, f64),
}

#[derive(Debug, Clone, Copy)]
pub struct PriceParser {
    /// Minor units of the shop currency per US dollar.
    usd_rate_minor: f64,
}

impl PriceParser {
    pub fn new(usd_rate_minor: f64) -> Self {
        Self { usd_rate_minor }
    }

    /// The price constraint in `text` (already lower-cased), if it names one.
    pub fn parse(&self, text: &str) -> Option<PriceRange> {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let amounts = scan_amounts(text, &chars);
        let mut min: Option<f64> = None;
        let mut max: Option<f64> = None;
        let mut index = 0;
        while index < amounts.len() {
            let amount = amounts[index];
            if let Some(next) = amounts.get(index + 1) {
                if let Some((low, high)) = self.as_range(text, &amount, next) {
                    min = Some(low.min(high));
                    max = Some(low.max(high));
                    index += 2;
                    continue;
                }
            }
            if amount.is_price() {
                match self.bound_of(text, &amount) {
                    Bound::Max(value) => max = Some(value),
                    Bound::Min(value) => min = Some(value),
                    Bound::Between(low, high) => {
                        min = Some(low);
                        max = Some(high);
                    }
                }
            }
            index += 1;
        }
        if min.is_none() && max.is_none() {
            return None;
        }
        let (mut min, mut max) = (min.map(round_minor), max.map(round_minor));
        if let (Some(low), Some(high)) = (min, max) {
            if low > high {
                (min, max) = (Some(high), Some(low));
            }
        }
        Some(PriceRange {
            min_minor: min,
            max_minor: max,
        })
    }

    fn in_minor(&self, value: f64, unit: Option<Unit>) -> f64 {
        match unit {
            Some(Unit::Dollar) => value * self.usd_rate_minor,
            Some(Unit::Won) | None => value,
        }
    }

    /// "3만~5만 원", "3만원에서 5만원 사이", "between 20 and 50 dollars", "$20-$50".
    fn as_range(&self, text: &str, first: &Amount, second: &Amount) -> Option<(f64, f64)> {
        if !first.is_price() && !second.is_price() {
            return None;
        }
        let between = text[first.end..second.start].trim();
        let connected = match between {
            "~" | "-" | "–" | "에서" | "부터" | "to" | "에서부터" => true,
            "and" => text[..first.start].trim_end().ends_with("between"),
            _ => false,
        };
        if !connected {
            return None;
        }
        let unit = first.unit.or(second.unit);
        let low_magnitude = if first.magnitude > 1.0 {
            1.0
        } else {
            second.magnitude
        };
        let low = self.in_minor(first.value * low_magnitude, unit);
        let high = self.in_minor(second.value, unit);
        // "5만원대까지": the top of the decade.
        let high = if second.decade {
            high + decade_span(high) - 1.0
        } else {
            high
        };
        Some((low, high))
    }

    fn bound_of(&self, text: &str, amount: &Amount) -> Bound {
        let value = self.in_minor(amount.value, amount.unit);
        if amount.decade {
            return Bound::Between(value, value + decade_span(value) - 1.0);
        }
        let after = text[amount.end..].trim_start();
        let before = text[..amount.start].trim_end();
        const MAX_AFTER: &[&str] = &[
            "이하",
            "까지",
            "안쪽",
            "이내",
            "아래",
            "밑",
            "안으로",
            "내로",
            "선에서",
            "or less",
            "or under",
            "or below",
            "or cheaper",
            "max",
            "tops",
        ];
        const MIN_AFTER: &[&str] = &[
            "이상",
            "넘는",
            "넘게",
            "넘어",
            "위로",
            "부터",
            "or more",
            "and up",
            "and above",
            "plus",
            "+",
        ];
        const AROUND_AFTER: &[&str] = &[
            "정도",
            "쯤",
            "내외",
            "전후",
            "안팎",
            "언저리",
            "or so",
            "ish",
        ];
        const MAX_BEFORE: &[&str] = &[
            "under",
            "below",
            "less than",
            "cheaper than",
            "up to",
            "at most",
            "max",
            "maximum",
            "within",
            "no more than",
            "not more than",
            "budget of",
            "budget is",
            "budget",
        ];
        const MIN_BEFORE: &[&str] = &[
            "over",
            "above",
            "more than",
            "at least",
            "from",
            "starting at",
            "min",
            "minimum",
        ];
        const AROUND_BEFORE: &[&str] = &[
            "around",
            "about",
            "approximately",
            "roughly",
            "approx.",
            "약",
            "대략",
        ];
        if after.starts_with("미만") {
            return Bound::Max(value - 1.0);
        }
        if after.starts_with("초과") {
            return Bound::Min(value + 1.0);
        }
        if MAX_AFTER.iter().any(|word| after.starts_with(word)) {
            return Bound::Max(value);
        }
        if MIN_AFTER.iter().any(|word| after.starts_with(word)) {
            return Bound::Min(value);
        }
        if AROUND_AFTER.iter().any(|word| after.starts_with(word)) {
            return around(value);
        }
        if MAX_BEFORE.iter().any(|word| ends_with_word(before, word)) {
            return Bound::Max(value);
        }
        if MIN_BEFORE.iter().any(|word| ends_with_word(before, word)) {
            return Bound::Min(value);
        }
        if AROUND_BEFORE
            .iter()
            .any(|word| ends_with_word(before, word))
        {
            return around(value);
        }
        // A bare "10만원 패딩" is a budget.
        Bound::Max(value)
    }
}

fn around(value: f64) -> Bound {
    Bound::Between(value * (1.0 - AROUND_SPREAD), value * (1.0 + AROUND_SPREAD))
}

/// "5만원대" spans 10,000; "10만원대" spans 100,000.
fn decade_span(value: f64) -> f64 {
    if value < 1.0 {
        return 1.0;
    }
    10f64.powi(value.log10().floor() as i32)
}

fn round_minor(value: f64) -> i64 {
    value.round().max(0.0) as i64
}

fn ends_with_word(text: &str, word: &str) -> bool {
    text.ends_with(word)
        && text[..text.len() - word.len()]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric())
}

fn scan_amounts(text: &str, chars: &[(usize, char)]) -> Vec<Amount> {
    let mut amounts = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        match parse_amount(text, chars, index) {
            Some((amount, next)) => {
                amounts.push(amount);
                index = next;
            }
            None => index += 1,
        }
    }
    amounts
}

fn byte_at(text: &str, chars: &[(usize, char)], index: usize) -> usize {
    chars.get(index).map_or(text.len(), |(byte, _)| *byte)
}

fn korean_multiplier(c: char) -> Option<f64> {
    match c {
        '십' => Some(10.0),
        '백' => Some(100.0),
        '천' => Some(1_000.0),
        '만' => Some(10_000.0),
        '억' => Some(100_000_000.0),
        _ => None,
    }
}

/// Parses one amount starting at `start` (a digit, `₩` or `$`); `None` when there is none or
/// it is a quantity ("2kg", "20L", "SPF50").
fn parse_amount(text: &str, chars: &[(usize, char)], start: usize) -> Option<(Amount, usize)> {
    let char_at = |i: usize| chars.get(i).map(|(_, c)| *c);
    if start > 0 && char_at(start - 1).is_some_and(|c| c.is_ascii_alphanumeric() || c == '.') {
        return None;
    }
    let mut index = start;
    let mut unit = match char_at(index)? {
        '₩' | '￦' => Some(Unit::Won),
        '$' => Some(Unit::Dollar),
        _ => None,
    };
    if unit.is_some() {
        index += 1;
        while char_at(index) == Some(' ') {
            index += 1;
        }
    }
    if !char_at(index)?.is_ascii_digit() {
        return None;
    }
    let mut total = 0.0;
    let mut magnitude = 1.0;
    loop {
        let mut digits = String::new();
        while let Some(c) = char_at(index) {
            let next_is_digit = char_at(index + 1).is_some_and(|n| n.is_ascii_digit());
            if c.is_ascii_digit() {
                digits.push(c);
            } else if c == ',' && next_is_digit && !digits.is_empty() {
                // thousands separator
            } else if c == '.' && next_is_digit && !digits.contains('.') {
                digits.push('.');
            } else {
                break;
            }
            index += 1;
        }
        let number: f64 = digits.parse().ok()?;
        let mut multiplier = 1.0;
        while let Some(factor) = char_at(index).and_then(korean_multiplier) {
            multiplier *= factor;
            index += 1;
        }
        total += number * multiplier;
        if multiplier > 1.0 {
            magnitude = multiplier;
        }
        // "3만5천": another group follows right away.
        if multiplier > 1.0 && char_at(index).is_some_and(|c| c.is_ascii_digit()) {
            continue;
        }
        break;
    }
    let number_end = index;
    let mut after = index;
    while char_at(after) == Some(' ') {
        after += 1;
    }
    let rest = &text[byte_at(text, chars, after)..];
    let suffixes: &[(&str, Unit, bool)] = &[
        ("원", Unit::Won, false),
        ("달러", Unit::Dollar, false),
        ("불", Unit::Dollar, false),
        ("dollars", Unit::Dollar, true),
        ("dollar", Unit::Dollar, true),
        ("usd", Unit::Dollar, true),
        ("bucks", Unit::Dollar, true),
        ("won", Unit::Won, true),
        ("krw", Unit::Won, true),
    ];
    let mut end = number_end;
    for (suffix, suffix_unit, is_word) in suffixes {
        if rest.starts_with(suffix)
            && (!is_word
                || rest[suffix.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_ascii_alphanumeric()))
        {
            unit = unit.or(Some(*suffix_unit));
            end = after + suffix.chars().count();
            break;
        }
    }
    if end == number_end {
        // No currency word: a letter or Hangul right after the number makes it a quantity.
        let next = char_at(number_end);
        if magnitude == 1.0 && next.is_some_and(|c| (c.is_alphabetic() && c != '대') || c == '%') {
            return None;
        }
    }
    let decade = char_at(end) == Some('대') && (unit == Some(Unit::Won) || magnitude > 1.0);
    if decade {
        end += 1;
    }
    Some((
        Amount {
            value: total,
            unit,
            magnitude,
            decade,
            start: byte_at(text, chars, start),
            end: byte_at(text, chars, end),
        },
        end,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<(Option<i64>, Option<i64>)> {
        PriceParser::new(1_400.0)
            .parse(&text.to_lowercase())
            .map(|range| (range.min_minor, range.max_minor))
    }

    #[test]
    fn korean_and_english_prices() {
        type Bounds = Option<(Option<i64>, Option<i64>)>;
        let cases: &[(&str, Bounds)] = &[
            ("10만원 이하 패딩", Some((None, Some(100_000)))),
            ("5만원대 운동화", Some((Some(50_000), Some(59_999)))),
            ("10만원대", Some((Some(100_000), Some(199_999)))),
            ("3만~5만 원", Some((Some(30_000), Some(50_000)))),
            ("3~5만원", Some((Some(30_000), Some(50_000)))),
            ("3만원에서 5만원 사이", Some((Some(30_000), Some(50_000)))),
            ("2만원 이상", Some((Some(20_000), None))),
            ("100,000원 이하", Some((None, Some(100_000)))),
            ("5만원 미만", Some((None, Some(49_999)))),
            ("3만5천원 정도", Some((Some(28_000), Some(42_000)))),
            ("under $100", Some((None, Some(140_000)))),
            ("below 50 dollars", Some((None, Some(70_000)))),
            (
                "between 20 and 50 dollars",
                Some((Some(28_000), Some(70_000))),
            ),
            ("around ₩30,000", Some((Some(24_000), Some(36_000)))),
            ("at least $19.99", Some((Some(27_986), None))),
            ("$20-$50", Some((Some(28_000), Some(70_000)))),
            ("2kg 견과류", None),
            ("SPF50 선크림", None),
            ("20L backpack", None),
            ("3 pairs of socks", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), *expected, "{text}");
        }
    }
}
