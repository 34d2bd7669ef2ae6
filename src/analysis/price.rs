//! Prices in the shopper's words ("10만원 이하", "5만원대", "3만~5만 원", "under $100",
//! "between 20 and 50 dollars") → a [`PriceRange`] in minor units of the shop currency (KRW).
//! Won amounts are taken as they are; dollar amounts are converted with a configured rate.

use crate::intent::PriceRange;

/// The smallest bare number (no currency, no magnitude) a price word makes a won amount.
const BARE_WON_FLOOR: f64 = 5_000.0;

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
    /// "100k": written with a `k`.
    thousands: bool,
    /// "5만원대": the fifty-thousands.
    decade: bool,
    start: usize,
    end: usize,
}

impl Amount {
    /// A number with a currency or a Korean magnitude; a bare number only counts as the other
    /// end of a range ("between 20 and 50 dollars") or after a price word ("under 50000").
    /// A small `k` ("4k 모니터") is a resolution unless a currency or a price word says money.
    fn is_price(&self) -> bool {
        self.unit.is_some() || (self.magnitude > 1.0 && !(self.thousands && self.value < 10_000.0))
    }

    /// Money when a price word stands beside it: a price, a `k` amount, or a bare number
    /// large enough to be won ("under 50000"; not "over 1000 reviews", "from 2020").
    fn could_be_price(&self) -> bool {
        self.is_price() || self.thousands || self.value >= BARE_WON_FLOOR
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
    /// Minor units of the shop currency per US dollar.
    pub fn usd_rate_minor(&self) -> f64 {
        self.usd_rate_minor
    }

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
            let bound = match self.cue(text, &amount) {
                Some(bound) if amount.could_be_price() => Some(bound),
                // A bare "10만원 패딩" is a budget.
                None if amount.is_price() => {
                    Some(Bound::Max(self.in_minor(amount.value, amount.unit)))
                }
                _ => None,
            };
            if let Some(bound) = bound {
                match bound {
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

    /// What the words around `amount` make of it: an upper or lower bound, a decade, or
    /// "around"; `None` when no word says.
    fn cue(&self, text: &str, amount: &Amount) -> Option<Bound> {
        let value = self.in_minor(amount.value, amount.unit);
        if amount.decade {
            return Some(Bound::Between(value, value + decade_span(value) - 1.0));
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
            return Some(Bound::Max(value - 1.0));
        }
        if after.starts_with("초과") {
            return Some(Bound::Min(value + 1.0));
        }
        if MAX_AFTER.iter().any(|word| after.starts_with(word)) {
            return Some(Bound::Max(value));
        }
        if MIN_AFTER.iter().any(|word| after.starts_with(word)) {
            return Some(Bound::Min(value));
        }
        if AROUND_AFTER.iter().any(|word| after.starts_with(word)) {
            return Some(around(value));
        }
        if MAX_BEFORE.iter().any(|word| ends_with_word(before, word)) {
            return Some(Bound::Max(value));
        }
        if MIN_BEFORE.iter().any(|word| ends_with_word(before, word)) {
            return Some(Bound::Min(value));
        }
        if AROUND_BEFORE
            .iter()
            .any(|word| ends_with_word(before, word))
        {
            return Some(around(value));
        }
        None
    }
}

/// Money amounts quoted in `text` (lower-cased): `(value, is_dollar)`, in major units; only
/// amounts with a currency ("₩89,000", "89,000원", "8만 9천원", "$20").
pub fn quoted_amounts(text: &str) -> Vec<(f64, bool)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    scan_amounts(text, &chars)
        .into_iter()
        .filter_map(|amount| amount.unit.map(|unit| (amount.value, unit == Unit::Dollar)))
        .collect()
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

/// 일 … 구: a Korean digit, only when a magnitude follows ("오천", not "오늘").
fn korean_digit(c: char) -> Option<f64> {
    "일이삼사오육칠팔구"
        .chars()
        .position(|digit| digit == c)
        .map(|position| (position + 1) as f64)
}

/// Words that make a number with a magnitude a count, not money: "3만보", "2만명", "1천개".
const COUNTERS: &[&str] = &[
    "보",
    "명",
    "개",
    "장",
    "권",
    "번",
    "회",
    "마리",
    "킬로",
    "키로",
    "미터",
    "시간",
    "분",
    "년",
    "살",
    "세",
    "평",
    "건",
    "톤",
    "리터",
    "그램",
    "점",
    "벌",
    "켤레",
    "병",
    "팩",
    "박스",
    "캔",
    "알",
    "포",
    "매",
    "줄",
    "쪽",
    "페이지",
    "곡",
    "편",
    "칼로리",
    "배",
    "mah",
    "mm",
    "km",
];

/// Words that start with 원 but are not won ("원피스" is a dress).
const NOT_WON: &[&str] = &[
    "원피스",
    "원룸",
    "원목",
    "원형",
    "원두",
    "원단",
    "원터치",
    "원석",
];

/// A number as Koreans write it: digits ("35,000", "1.5"), magnitudes ("3만5천", "만오천",
/// "십만"), or digits with a `k` ("100k").
#[derive(Debug, Clone, Copy)]
struct Number {
    value: f64,
    /// The largest magnitude in it, 1 without one.
    magnitude: f64,
    /// Written without any digit ("만오천"): only money when 원 follows.
    korean_only: bool,
    /// "100k".
    thousands: bool,
    end: usize,
}

/// Reads a number from `start`; `None` when nothing numeric starts there.
fn read_number(chars: &[(usize, char)], start: usize) -> Option<Number> {
    let char_at = |i: usize| chars.get(i).map(|(_, c)| *c);
    let skip_spaces = |mut i: usize| {
        while char_at(i) == Some(' ') {
            i += 1;
        }
        i
    };
    let mut index = start;
    // Below 만 ("오천" of "만오천"), and the number waiting for its magnitude.
    let (mut total, mut section, mut current) = (0.0f64, 0.0f64, None::<f64>);
    let mut magnitude = 1.0f64;
    let mut any_digit = false;
    let mut any_magnitude = false;
    let mut thousands = false;
    while let Some(c) = char_at(index) {
        if c.is_ascii_digit() && current.is_none() {
            let mut digits = String::new();
            while let Some(c) = char_at(index) {
                let next_is_digit = char_at(index + 1).is_some_and(|n| n.is_ascii_digit());
                if c.is_ascii_digit() {
                    digits.push(c);
                } else if c == ',' && next_is_digit && !digits.is_empty() && !digits.contains('.') {
                    // thousands separator
                } else if c == '.' && next_is_digit && !digits.contains('.') {
                    digits.push('.');
                } else {
                    break;
                }
                index += 1;
            }
            current = Some(digits.parse().ok()?);
            any_digit = true;
            // "100k" (but not "2kg").
            if !any_magnitude
                && char_at(index) == Some('k')
                && char_at(index + 1).is_none_or(|n| !n.is_alphanumeric())
            {
                current = current.map(|n| n * 1_000.0);
                thousands = true;
                index += 1;
                break;
            }
            // "10 만원": a space between the digits and their magnitude, when 원 follows.
            let after_spaces = skip_spaces(index);
            if after_spaces > index
                && char_at(after_spaces).is_some_and(|m| korean_multiplier(m).is_some())
                && char_at(skip_spaces(after_spaces + 1)) == Some('원')
            {
                index = after_spaces;
            }
            continue;
        }
        if current.is_none() {
            if let Some(digit) = korean_digit(c) {
                if char_at(index + 1).and_then(korean_multiplier).is_some() {
                    current = Some(digit);
                    index += 1;
                    continue;
                }
                break;
            }
        }
        let Some(factor) = korean_multiplier(c) else {
            break;
        };
        if factor < 10_000.0 {
            section += current.take().unwrap_or(1.0) * factor;
        } else {
            let group = section + current.take().unwrap_or(0.0);
            total += if group == 0.0 { 1.0 } else { group } * factor;
            section = 0.0;
        }
        any_magnitude = true;
        magnitude = magnitude.max(factor);
        index += 1;
        // "3만 5천": after spaces, a smaller group goes on.
        if factor >= 10_000.0 {
            let peek = skip_spaces(index);
            if peek > index {
                let mut probe = peek;
                while char_at(probe)
                    .is_some_and(|c| c.is_ascii_digit() || korean_digit(c).is_some())
                {
                    probe += 1;
                }
                let smaller = char_at(probe)
                    .and_then(korean_multiplier)
                    .is_some_and(|next| next < factor);
                if probe > peek && smaller {
                    index = peek;
                }
            }
        }
    }
    if !any_digit && !any_magnitude {
        return None;
    }
    total += section + current.unwrap_or(0.0);
    if thousands {
        magnitude = 1_000.0;
    }
    Some(Number {
        value: total,
        magnitude,
        korean_only: !any_digit,
        thousands,
        end: index,
    })
}

/// Parses one amount starting at `start` (a digit, a Korean numeral, `₩` or `$`); `None`
/// when there is none or it is a quantity ("2kg", "20L", "SPF50", "3만보", "사원").
fn parse_amount(text: &str, chars: &[(usize, char)], start: usize) -> Option<(Amount, usize)> {
    let char_at = |i: usize| chars.get(i).map(|(_, c)| *c);
    let first = char_at(start)?;
    let previous = start.checked_sub(1).and_then(char_at);
    if previous.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.') {
        return None;
    }
    let korean_start = korean_digit(first).is_some() || korean_multiplier(first).is_some();
    // Korean numerals only at a word start: inside a word they are syllables ("회사원").
    if korean_start && previous.is_some_and(super::language::is_hangul) {
        return None;
    }
    let mut index = start;
    let mut unit = match first {
        '₩' | '￦' => Some(Unit::Won),
        '$' => Some(Unit::Dollar),
        _ => None,
    };
    if unit.is_some() {
        index += 1;
        while char_at(index) == Some(' ') {
            index += 1;
        }
        if !char_at(index)?.is_ascii_digit() {
            return None;
        }
    }
    let number = read_number(chars, index)?;
    let number_end = number.end;
    let mut after = number_end;
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
    let not_won = NOT_WON.iter().any(|word| rest.starts_with(word));
    for (suffix, suffix_unit, is_word) in suffixes {
        if rest.starts_with(suffix)
            && !(*suffix == "원" && not_won)
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
    let has_suffix = end > number_end;
    // "만오천" is money only as "만오천원"; "사원" (an employee) has no magnitude.
    if number.korean_only && (!has_suffix || number.magnitude < 10.0) {
        return None;
    }
    if !has_suffix && unit.is_none() {
        let next_text = &text[byte_at(text, chars, number_end)..];
        if COUNTERS
            .iter()
            .any(|counter| next_text.starts_with(counter))
        {
            return None;
        }
        // No currency word: a letter or Hangul right after a plain number makes it a quantity.
        let next = char_at(number_end);
        if number.magnitude == 1.0
            && next.is_some_and(|c| (c.is_alphabetic() && c != '대') || c == '%')
        {
            return None;
        }
    }
    let decade = char_at(end) == Some('대') && (unit == Some(Unit::Won) || number.magnitude > 1.0);
    if decade {
        end += 1;
    }
    Some((
        Amount {
            value: number.value,
            unit,
            magnitude: number.magnitude,
            thousands: number.thousands,
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

    type Bounds = Option<(Option<i64>, Option<i64>)>;

    fn parse(text: &str) -> Bounds {
        PriceParser::new(1_400.0)
            .parse(&text.to_lowercase())
            .map(|range| (range.min_minor, range.max_minor))
    }

    const fn max(won: i64) -> Bounds {
        Some((None, Some(won)))
    }

    const fn min(won: i64) -> Bounds {
        Some((Some(won), None))
    }

    const fn between(low: i64, high: i64) -> Bounds {
        Some((Some(low), Some(high)))
    }

    /// Each phrasing → (min, max) in won; `None`: no price at all.
    const PHRASINGS: &[(&str, Bounds)] = &[
        // Korean magnitudes, with and without digits (issue 21).
        ("만원 이하 간식", max(10_000)),
        ("다이어트 도시락 만오천원 이하", max(15_000)),
        ("십만원 이하 패딩", max(100_000)),
        ("오만원 이하", max(50_000)),
        ("삼만 오천원 이하", max(35_000)),
        ("이십오만원까지", max(250_000)),
        ("백만원 이하 노트북", max(1_000_000)),
        ("천원짜리 양말", max(1_000)),
        ("1.5만원 이하", max(15_000)),
        ("5천원 이하 간식", max(5_000)),
        ("5천원", max(5_000)),
        ("3만5천원 이하", max(35_000)),
        ("3만오천원 이하", max(35_000)),
        ("3만 5천원 이하", max(35_000)),
        ("10만원 이하 패딩", max(100_000)),
        ("10 만원 이하", max(100_000)),
        ("10만 원 이하", max(100_000)),
        ("10 만 원 이하", max(100_000)),
        ("100,000원 이하", max(100_000)),
        ("1억", max(100_000_000)),
        // Decades: inclusive up to the last won of the decade.
        ("선물용 향수 7만원대", between(70_000, 79_999)),
        ("5만원대 운동화", between(50_000, 59_999)),
        ("10만원대", between(100_000, 199_999)),
        ("만원대 선물", between(10_000, 19_999)),
        // Korean bound words.
        ("5만원 미만", max(49_999)),
        ("5만원 미만으로", max(49_999)),
        ("3만원 이하로 찾아줘", max(30_000)),
        ("5만원까지", max(50_000)),
        ("5만원 안쪽", max(50_000)),
        ("5만원 이내", max(50_000)),
        ("5만원 아래로", max(50_000)),
        ("5만원 넘지 않는 선물", max(50_000)),
        ("5만원 이하로 러닝화 있어?", max(50_000)),
        ("2만원 이상", min(20_000)),
        ("2만 원 넘는 지갑", min(20_000)),
        ("5만원 초과", min(50_001)),
        ("10만원 넘게", min(100_000)),
        ("3만5천원 정도", between(28_000, 42_000)),
        ("5만원 내외", between(40_000, 60_000)),
        ("약 5만원", between(40_000, 60_000)),
        ("5만원쯤", between(40_000, 60_000)),
        // Ranges.
        ("3만~5만 원", between(30_000, 50_000)),
        ("3만원 ~ 5만원", between(30_000, 50_000)),
        ("3~5만원", between(30_000, 50_000)),
        ("3만원에서 5만원 사이", between(30_000, 50_000)),
        ("2만에서 4만원 사이", between(20_000, 40_000)),
        ("만원에서 2만원 사이", between(10_000, 20_000)),
        ("3만원 이상 5만원 이하", between(30_000, 50_000)),
        ("20~50달러", between(28_000, 70_000)),
        // Won signs, commas, k.
        ("₩18,900 간식", max(18_900)),
        ("₩ 50,000 이하", max(50_000)),
        ("￦30000", max(30_000)),
        ("around ₩30,000", between(24_000, 36_000)),
        ("I want a rain jacket, budget 100k won max", max(100_000)),
        ("100K won", max(100_000)),
        ("under 50k", max(50_000)),
        ("50k-100k", between(50_000, 100_000)),
        ("budget is 30000 won", max(30_000)),
        ("max 30,000 won", max(30_000)),
        ("under 50000", max(50_000)),
        ("70,000 krw", max(70_000)),
        // Dollars.
        ("under $100", max(140_000)),
        ("below 50 dollars", max(70_000)),
        ("less than $30", max(42_000)),
        ("up to $80", max(112_000)),
        ("at most 20 bucks", max(28_000)),
        ("no more than $50", max(70_000)),
        ("over $100", min(140_000)),
        ("above 100 dollars", min(140_000)),
        ("more than $20", min(28_000)),
        ("at least $19.99", min(27_986)),
        ("between 20 and 50 dollars", between(28_000, 70_000)),
        ("$20-$50", between(28_000, 70_000)),
        ("from $20 to $50", between(28_000, 70_000)),
        ("$100 or less", max(140_000)),
        ("20달러 이하", max(28_000)),
        // Not prices: sizes, counts, ages, years, model numbers, words with numerals.
        ("270mm 운동화", None),
        ("2개 묶음", None),
        ("2개 이상 사면 할인?", None),
        ("5살 아이 장난감", None),
        ("2024년 신상", None),
        ("20대 여자 선물", None),
        ("90년대 스타일", None),
        ("아이폰 15 케이스", None),
        ("WH-1000XM5 이어폰", None),
        ("갤럭시 s24 케이스", None),
        ("4k 모니터", None),
        ("2kg 견과류", None),
        ("SPF50 선크림", None),
        ("20L backpack", None),
        ("3 pairs of socks", None),
        ("3만보 걷기용 신발", None),
        ("만보기 추천", None),
        ("백팩 추천해줘", None),
        ("천연 가죽 지갑", None),
        ("만능 조리기", None),
        ("회사원 가방", None),
        ("사원증 케이스", None),
        ("오늘 입을 옷", None),
        ("3인용 소파", None),
        ("over 1000 reviews", None),
        ("1+1 행사", None),
        ("이만큼 큰 거", None),
    ];

    #[test]
    fn prices_as_shoppers_write_them() {
        assert!(PHRASINGS.len() >= 60, "{} phrasings", PHRASINGS.len());
        let failures: Vec<String> = PHRASINGS
            .iter()
            .filter_map(|(text, expected)| {
                let parsed = parse(text);
                (parsed != *expected)
                    .then(|| format!("{text:?}: expected {expected:?}, parsed {parsed:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn quoted_amounts_include_korean_numerals() {
        assert_eq!(
            quoted_amounts("만오천원짜리와 ₩89,000, $20"),
            vec![(15_000.0, false), (89_000.0, false), (20.0, true)]
        );
    }
}
