//! Dialogue as feedback: what a message says about the products the previous reply showed
//! ("그거 말고", "두 번째 거 말고", "너무 비싸요", "not that one", "too expensive", "no more
//! red"). Pure rules, Korean and English, applied after the intent is analysed (by the LLM or
//! the local analyser alike): they pick the shown products the shopper turned down and move
//! the price ceiling below what was shown. The chat excludes the rejected products for the
//! rest of the conversation and records them as `reject` interactions, which lower them in
//! the member's later lists (`recommend::rejection`). The rules are in docs/intent.md.

use super::fallback::{contains_any, find_term};
use crate::intent::{PriceRange, ShoppingIntent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A product the previous reply showed, in the order it was shown.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownProduct {
    pub id: Uuid,
    pub title: String,
    pub brand: Option<String>,
    pub price_minor: Option<i64>,
    /// As the catalog's attributes spell them.
    pub colors: Vec<String>,
}

/// Why products were turned down (the `product.rejected` event's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RejectionReason {
    /// The products themselves: "그거 말고", "not the second one", a title.
    Product,
    /// Their price: "너무 비싸요", "something cheaper".
    Price,
    /// Their colour: "빨간색 말고", "no more red".
    Color,
    /// Their brand: "나이키 말고".
    Brand,
}

impl RejectionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Product => "product",
            Self::Price => "price",
            Self::Color => "color",
            Self::Brand => "brand",
        }
    }
}

/// What the message did to the previous reply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Feedback {
    /// The shown products turned down, in the order they were shown.
    pub rejected: Vec<Uuid>,
    /// The strongest reason (product, then price, colour, brand); `None` when nothing was.
    pub reason: Option<RejectionReason>,
    /// The new price ceiling a price complaint set (already in the intent).
    pub price_ceiling: Option<i64>,
}

/// How far (in characters) a Korean rejection word may follow what it rejects ("두 번째 거
/// 말고"), or an English one precede it ("don't like the second one").
const MARKER_REACH: usize = 14;

/// Words pointing at everything the previous reply showed; rejected when a rejection word
/// stands beside them.
const THOSE_SHOWN: &[&str] = &[
    "그거",
    "그것",
    "그건",
    "그걸",
    "이거",
    "이것",
    "이건",
    "이걸",
    "저거",
    "저것",
    "저건",
    "그 제품",
    "이 제품",
    "그 상품",
    "이 상품",
    "추천해준 거",
    "추천해 준 거",
    "추천한 거",
    "보여준 거",
    "보여 준 거",
    "that one",
    "this one",
    "those",
    "these",
    "them",
    "it",
    "that",
    "this",
];
/// Rejection words written after what they reject (Korean).
const REJECT_AFTER: &[&str] = &[
    "말고",
    "빼고",
    "제외",
    "별로",
    "싫",
    "아니",
    "마음에 안",
    "맘에 안",
    "안 들",
    "안들",
    "그만",
    "안 예뻐",
    "안 이뻐",
];
/// Rejection words written before what they reject (English).
const REJECT_BEFORE: &[&str] = &[
    "not",
    "no",
    "no more",
    "don't like",
    "dont like",
    "do not like",
    "don't want",
    "dont want",
    "do not want",
    "don't need",
    "without",
    "except",
    "other than",
    "hate",
    "dislike",
    "none of",
    "skip",
    "remove",
];
/// Phrases that turn down everything shown on their own.
const SOMETHING_ELSE: &[&str] = &[
    "다른 거",
    "다른거",
    "다른 걸",
    "다른걸",
    "다른 것",
    "다른 상품",
    "다른 제품",
    "딴 거",
    "something else",
    "anything else",
    "other ones",
    "different ones",
    "something different",
    "다 별로",
    "다 싫",
    "다 마음에 안",
    "전부 별로",
    "전부 싫",
    "모두 별로",
    "none of them",
    "none of these",
    "none of those",
    "show me others",
];
/// … unless the shopper wants more besides ("다른 것도 보여줘", "other ones too").
const ALSO: &[&str] = &[
    "것도",
    "거도",
    "걸도",
    "상품도",
    "제품도",
    "too",
    "also",
    "as well",
    "more options",
];
/// What stops a rejection word reaching a target ("그거 좋은데 빨간색 말고": the products are
/// liked, the colour is not).
const STOPS: &[&str] = &[
    ".", "!", "?", ",", "but", "인데", "는데", "좋", "지만", "대신",
];
/// Phrases that look like a rejection and are not.
const NOT_REJECTION: &[&str] = &["not bad", "no problem", "나쁘지 않", "아니면", "아닌가"];

/// Price complaints ("너무 비싸요", "something cheaper"): the ceiling moves below the shown
/// prices. Korean "싼 거" counts only where it is not "비싼 거" (expensive ones).
const PRICE_COMPLAINTS: &[&str] = &[
    "비싸",
    "비쌈",
    "비싼데",
    "더 싸",
    "더 싼",
    "더 저렴",
    "저렴한 거",
    "저렴한 걸",
    "저렴한 것",
    "저렴한 제품",
    "저렴한 상품",
    "부담스",
    "예산 초과",
    "예산을 넘",
    "예산 넘",
    "가격 낮",
    "가격이 낮",
    "가격대 낮",
    "too expensive",
    "too pricey",
    "too costly",
    "costs too much",
    "too much money",
    "cheaper",
    "less expensive",
    "more affordable",
    "lower price",
    "lower-priced",
    "over my budget",
    "over budget",
    "out of my budget",
    "out of my price range",
];
const CHEAP_ONES: &[&str] = &[
    "싼 거",
    "싼거",
    "싼 걸",
    "싼걸",
    "싼 것",
    "싼 제품",
    "싼 상품",
];
/// "비싸도 괜찮아요": expensive is fine.
const PRICE_FINE: &[&str] = &[
    "비싸도 괜찮",
    "비싸도 돼",
    "비싸도 상관",
    "비싸도 좋",
    "비싸지 않아도",
    "expensive is fine",
    "expensive is ok",
    "don't mind expensive",
];

/// Ordinal words and the position they name (0-based; `usize::MAX` is the last).
const ORDINALS: &[(&str, usize)] = &[
    ("첫 번째", 0),
    ("첫번째", 0),
    ("첫째", 0),
    ("1번째", 0),
    ("1번", 0),
    ("두 번째", 1),
    ("두번째", 1),
    ("둘째", 1),
    ("2번째", 1),
    ("2번", 1),
    ("세 번째", 2),
    ("세번째", 2),
    ("셋째", 2),
    ("3번째", 2),
    ("3번", 2),
    ("네 번째", 3),
    ("네번째", 3),
    ("넷째", 3),
    ("4번째", 3),
    ("4번", 3),
    ("다섯 번째", 4),
    ("다섯번째", 4),
    ("5번째", 4),
    ("5번", 4),
    ("마지막", usize::MAX),
    ("first", 0),
    ("1st", 0),
    ("second", 1),
    ("2nd", 1),
    ("third", 2),
    ("3rd", 2),
    ("fourth", 3),
    ("4th", 3),
    ("fifth", 4),
    ("5th", 4),
    ("last", usize::MAX),
];

/// What the message points at among the shown products.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// Positions in the shown list.
    Some(Vec<usize>),
    All,
}

/// Applies the message's feedback on `shown` (the previous reply's products) to `intent`,
/// the message's analysed intent over `previous`: moves the price ceiling on a price
/// complaint, and answers which shown products were turned down.
pub fn apply(
    message: &str,
    shown: &[ShownProduct],
    previous: Option<&ShoppingIntent>,
    intent: &mut ShoppingIntent,
) -> Feedback {
    let text = message.to_lowercase().replace(['’', '‘'], "'");
    let mut feedback = Feedback::default();
    let reject = |positions: &[usize], reason: RejectionReason, feedback: &mut Feedback| {
        for &position in positions {
            let id = shown[position].id;
            if !feedback.rejected.contains(&id) {
                feedback.rejected.push(id);
            }
        }
        if !positions.is_empty() && feedback.reason.is_none() {
            feedback.reason = Some(reason);
        }
    };
    if shown.is_empty() {
        return feedback;
    }
    let all: Vec<usize> = (0..shown.len()).collect();

    match target(&text, shown) {
        Some(Target::Some(positions)) => {
            reject(&positions, RejectionReason::Product, &mut feedback)
        }
        Some(Target::All) => reject(&all, RejectionReason::Product, &mut feedback),
        None => {}
    }

    if complains_about_price(&text) {
        let old_floor = previous
            .and_then(|p| p.price_range)
            .and_then(|r| r.min_minor);
        if let Some(ceiling) = ceiling_below(shown) {
            let range = intent.price_range.get_or_insert_with(PriceRange::default);
            let max = range.max_minor.map_or(ceiling, |max| max.min(ceiling));
            range.max_minor = Some(max);
            // The shopper is moving down: a floor carried over ("10만원 이상") no longer
            // holds; one this message names does, below the ceiling.
            let carried = range.min_minor.is_some() && range.min_minor == old_floor;
            if carried || range.min_minor.is_some_and(|min| min > max) {
                range.min_minor = None;
            }
            feedback.price_ceiling = Some(max);
            let above: Vec<usize> = all
                .iter()
                .copied()
                .filter(|&i| shown[i].price_minor.is_some_and(|p| p > max))
                .collect();
            reject(&above, RejectionReason::Price, &mut feedback);
        }
    }

    // A colour or brand the message newly ruled out (the analyser read "빨간색 말고"): the
    // shown products only in those colours, or of those brands, were turned down.
    let before = |list: fn(&ShoppingIntent) -> &Vec<String>| -> Vec<String> {
        previous.map(|p| list(p).clone()).unwrap_or_default()
    };
    let old_colors = before(|i| &i.excluded_colors);
    let new_colors: Vec<&String> = intent
        .excluded_colors
        .iter()
        .filter(|c| !old_colors.contains(c))
        .collect();
    if !new_colors.is_empty() {
        let in_those: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| {
                let colors = &shown[i].colors;
                !colors.is_empty()
                    && colors
                        .iter()
                        .all(|c| new_colors.iter().any(|n| n.eq_ignore_ascii_case(c)))
            })
            .collect();
        reject(&in_those, RejectionReason::Color, &mut feedback);
    }
    let old_brands = before(|i| &i.excluded_brands);
    let new_brands: Vec<&String> = intent
        .excluded_brands
        .iter()
        .filter(|b| !old_brands.contains(b))
        .collect();
    if !new_brands.is_empty() {
        let of_those: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| {
                shown[i]
                    .brand
                    .as_ref()
                    .is_some_and(|b| new_brands.iter().any(|n| n.eq_ignore_ascii_case(b)))
            })
            .collect();
        reject(&of_those, RejectionReason::Brand, &mut feedback);
    }
    // Keep the shown order.
    feedback
        .rejected
        .sort_by_key(|id| shown.iter().position(|p| p.id == *id));
    feedback
}

/// Whether the message complains about the price of what was shown.
pub fn complains_about_price(text: &str) -> bool {
    if contains_any(text, PRICE_FINE) {
        return false;
    }
    contains_any(text, PRICE_COMPLAINTS)
        || CHEAP_ONES.iter().any(|phrase| {
            text.match_indices(phrase)
                .any(|(start, _)| !text[..start].ends_with('비'))
        })
}

/// The new ceiling: strictly below the cheapest shown price, rounded down to two significant
/// digits (₩89,000 shown → ₩88,000; $24.99 → $24.00), so every product of the next reply is
/// cheaper than everything the shopper called too expensive. `None` when nothing had a price.
pub fn ceiling_below(shown: &[ShownProduct]) -> Option<i64> {
    let cheapest = shown.iter().filter_map(|p| p.price_minor).min()?;
    let below = (cheapest - 1).max(0);
    if below < 100 {
        return Some(below);
    }
    let digits = below.ilog10();
    let step = 10i64.pow(digits - 1);
    Some(below / step * step)
}

/// Which shown products the message rejects by position, title or as a whole.
fn target(text: &str, shown: &[ShownProduct]) -> Option<Target> {
    if contains_any(text, NOT_REJECTION) {
        return None;
    }
    // By position or by title: only those.
    let mut positions = Vec::new();
    let mut taken: Vec<(usize, usize)> = Vec::new();
    for (word, position) in ORDINALS {
        for (start, end) in find_term(text, word, false) {
            if taken.iter().any(|&(s, e)| start < e && s < end) {
                continue;
            }
            taken.push((start, end));
            let position = if *position == usize::MAX {
                shown.len() - 1
            } else {
                *position
            };
            if position < shown.len() && rejected_here(text, start, end) {
                positions.push(position);
            }
        }
    }
    for (position, product) in shown.iter().enumerate() {
        let title = product.title.trim().to_lowercase();
        if title.chars().count() < 2 {
            continue;
        }
        for (start, _) in text.match_indices(title.as_str()) {
            if rejected_here(text, start, start + title.len()) {
                positions.push(position);
            }
        }
    }
    if !positions.is_empty() {
        positions.sort_unstable();
        positions.dedup();
        return Some(Target::Some(positions));
    }
    if contains_any(text, SOMETHING_ELSE) && !contains_any(text, ALSO) {
        return Some(Target::All);
    }
    THOSE_SHOWN
        .iter()
        .flat_map(|word| find_term(text, word, false))
        .any(|(start, end)| rejected_here(text, start, end))
        .then_some(Target::All)
}

/// Whether a rejection word stands beside `text[start..end]`: a Korean one after it, an
/// English one before it, within [`MARKER_REACH`] and with no stop between.
fn rejected_here(text: &str, start: usize, end: usize) -> bool {
    let near = |gap: &str| {
        gap.chars().count() <= MARKER_REACH
            && !STOPS
                .iter()
                .any(|stop| !find_term(gap, stop, false).is_empty())
    };
    let after = REJECT_AFTER.iter().any(|marker| {
        text[end..]
            .match_indices(marker)
            .next()
            .is_some_and(|(offset, _)| near(&text[end..end + offset]))
    });
    let before = REJECT_BEFORE.iter().any(|marker| {
        find_term(&text[..start], marker, false)
            .last()
            .is_some_and(|&(_, marker_end)| near(&text[marker_end..start]))
    });
    after || before
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::FallbackAnalyzer;

    fn product(n: u128, title: &str, price: i64, color: &str) -> ShownProduct {
        ShownProduct {
            id: Uuid::from_u128(n),
            title: title.into(),
            brand: Some(format!("Brand {n}")),
            price_minor: Some(price),
            colors: vec![color.into()],
        }
    }

    fn shown() -> Vec<ShownProduct> {
        vec![
            product(1, "노스 롱패딩", 129_000, "black"),
            product(2, "Alpine Down Parka", 89_000, "red"),
            product(3, "어반 숏패딩", 99_000, "navy"),
        ]
    }

    /// The message analysed by the local analyser over `previous`, then the feedback rules.
    fn turn(message: &str, previous: &ShoppingIntent) -> (Feedback, ShoppingIntent) {
        let analyzer = FallbackAnalyzer::new(Vec::new(), 1_400.0);
        let mut intent = analyzer.analyze_message(message, Some(previous));
        let feedback = apply(message, &shown(), Some(previous), &mut intent);
        (feedback, intent)
    }

    fn ids(positions: &[u128]) -> Vec<Uuid> {
        positions.iter().map(|&n| Uuid::from_u128(n)).collect()
    }

    #[test]
    fn that_one_rejects_everything_shown_in_korean_and_english() {
        for message in [
            "그거 말고",
            "그건 별로예요",
            "이거 마음에 안 들어요",
            "추천해준 거 다 별로네요",
            "다른 거 보여줘",
            "not that one",
            "I don't like these",
            "none of these",
            "something else please",
        ] {
            let (feedback, _) = turn(message, &ShoppingIntent::empty());
            assert_eq!(feedback.rejected, ids(&[1, 2, 3]), "{message}");
            assert_eq!(feedback.reason, Some(RejectionReason::Product), "{message}");
        }
    }

    #[test]
    fn a_position_or_a_title_rejects_only_that_one() {
        for (message, rejected) in [
            ("두 번째 거 말고", &[2][..]),
            ("두번째는 별로", &[2]),
            ("첫 번째랑 세 번째는 빼고", &[1, 3]),
            ("마지막 건 싫어요", &[3]),
            ("not the second one", &[2]),
            ("I don't like the first one", &[1]),
            ("노스 롱패딩 말고", &[1]),
            ("no alpine down parka please", &[2]),
        ] {
            let (feedback, _) = turn(message, &ShoppingIntent::empty());
            assert_eq!(feedback.rejected, ids(rejected), "{message}");
        }
    }

    #[test]
    fn praise_questions_and_wanting_more_are_not_rejections() {
        for message in [
            "좋아요",
            "그거 좋아요",
            "두 번째 거 마음에 들어요",
            "이거 얼마예요?",
            "다른 것도 보여줘",
            "that one looks great",
            "the second one is perfect",
            "not bad, that one",
            "show me other ones too",
            "비싼 거 보여줘",
            "비싸도 괜찮아요",
            "그거 좋은데 빨간색 말고 다른 색은 없어요?",
        ] {
            let (feedback, intent) = turn(message, &ShoppingIntent::empty());
            let rejected_products = feedback.reason == Some(RejectionReason::Product)
                || feedback.reason == Some(RejectionReason::Price);
            assert!(!rejected_products, "{message}: {feedback:?}");
            assert_eq!(feedback.price_ceiling, None, "{message}");
            assert!(intent.price_range.is_none(), "{message}");
        }
    }

    #[test]
    fn too_expensive_moves_the_ceiling_below_every_shown_price() {
        for message in [
            "너무 비싸요",
            "좀 비싸네",
            "더 싼 거 없어요?",
            "더 저렴한 걸로",
            "싼 거 보여줘",
            "too expensive",
            "something cheaper",
            "that's over my budget",
        ] {
            let previous = ShoppingIntent {
                price_range: Some(PriceRange {
                    min_minor: Some(50_000),
                    max_minor: Some(150_000),
                }),
                ..ShoppingIntent::empty()
            };
            let (feedback, intent) = turn(message, &previous);
            let range = intent.price_range.expect(message);
            // Cheapest shown: ₩89,000 → ₩88,000, below every shown price.
            assert_eq!(range.max_minor, Some(88_000), "{message}");
            assert!(shown()
                .iter()
                .all(|p| p.price_minor.unwrap() > range.max_minor.unwrap()));
            // The old floor goes: the shopper is moving down.
            assert_eq!(range.min_minor, None, "{message}");
            assert_eq!(feedback.price_ceiling, Some(88_000), "{message}");
            assert_eq!(feedback.rejected, ids(&[1, 2, 3]), "{message}");
            assert_eq!(feedback.reason, Some(RejectionReason::Price), "{message}");
        }
    }

    #[test]
    fn a_lower_price_the_shopper_names_wins_and_the_old_floor_goes() {
        let (_, intent) = turn("너무 비싸요 5만원 이하로", &ShoppingIntent::empty());
        assert_eq!(intent.price_range.unwrap().max_minor, Some(50_000));
        let previous = ShoppingIntent {
            price_range: Some(PriceRange {
                min_minor: Some(95_000),
                max_minor: None,
            }),
            ..ShoppingIntent::empty()
        };
        let (_, intent) = turn("too expensive", &previous);
        assert_eq!(
            intent.price_range,
            Some(PriceRange {
                min_minor: None,
                max_minor: Some(88_000)
            })
        );
    }

    #[test]
    fn ceilings_round_down_to_two_significant_digits() {
        let at = |price| ceiling_below(&[product(1, "x", price, "red")]);
        assert_eq!(at(89_000), Some(88_000));
        assert_eq!(at(19_000), Some(18_000));
        assert_eq!(at(1_250_000), Some(1_200_000));
        assert_eq!(at(2_499), Some(2_400));
        assert_eq!(at(50), Some(49));
        assert_eq!(at(0), Some(0));
        assert_eq!(ceiling_below(&[]), None);
    }

    #[test]
    fn no_more_red_rejects_the_red_ones_and_rules_red_out() {
        let previous = ShoppingIntent {
            colors: vec!["red".into()],
            ..ShoppingIntent::empty()
        };
        for message in [
            "빨간색 말고",
            "빨간색은 이제 싫어요",
            "no more red",
            "not red",
        ] {
            let (feedback, intent) = turn(message, &previous);
            assert!(
                intent.excluded_colors.contains(&"red".to_string()),
                "{message}"
            );
            assert!(!intent.colors.contains(&"red".to_string()), "{message}");
            assert_eq!(feedback.rejected, ids(&[2]), "{message}");
            assert_eq!(feedback.reason, Some(RejectionReason::Color), "{message}");
        }
        // "빨간색 말고 다른 색도 좋아요": a colour rejection only, not of everything shown.
        let (feedback, _) = turn("빨간색 말고 다른 색도 좋아요", &previous);
        assert_eq!(feedback.rejected, ids(&[2]));
        // Red ruled out already: saying it again rejects nothing new.
        let (_, said) = turn("빨간색 말고", &previous);
        let (feedback, _) = turn("파란색 보여줘", &said);
        assert!(feedback.rejected.is_empty(), "{feedback:?}");
    }

    #[test]
    fn nothing_shown_nothing_rejected() {
        let analyzer = FallbackAnalyzer::new(Vec::new(), 1_400.0);
        let mut intent = analyzer.analyze_message("너무 비싸요", None);
        assert_eq!(
            apply("너무 비싸요", &[], None, &mut intent),
            Feedback::default()
        );
        assert!(intent.price_range.is_none());
    }
}
