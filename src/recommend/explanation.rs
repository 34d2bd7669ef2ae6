//! Why a product is on a list: structured reasons (scoring decides which hold) and their
//! wording in the shopper's language. This file is the one place that words a card's
//! explanation; the reply text around the cards is the reply writer's.

use crate::analysis::labels::{category_label, color_label_ko, keyword_label, style_label_ko};
use crate::analysis::ReplyLanguage;
use crate::catalog::money::Currency;
use crate::intent::PriceRange;

/// One reason, with the facts its wording quotes.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// The product mentions a keyword of the request (canonical English: "waterproof").
    Matches(String),
    Style(String),
    Color(String),
    Brand(String),
    /// Within the asked price range.
    WithinPrice(PriceRange),
    /// The member's item it is most often bought with, by title.
    BoughtWith(String),
    /// Popular in this category path.
    PopularIn(String),
    PopularNow,
    /// Its embedding is close to the request's words.
    CloseToQuery,
    /// Its embedding is close to the member's taste.
    SimilarToTaste,
    /// In the same category as the product a "similar" list is for.
    AlsoIn(String),
    /// Nothing stronger to say: a product of this category.
    PickFrom(String),
    // From the member's learned profile (`recommend::profile`):
    /// Of a category path the member often looks at or buys.
    YouOftenLookAt(String),
    /// Of a brand the member likes (as the catalog spells it).
    BrandYouLike(String),
    /// In a colour the member likes.
    ColorYouLike(String),
    /// In a style the member likes.
    StyleYouLike(String),
    /// Within the prices the member usually carts, buys or asks for.
    YourUsualPrice,
    // Outside the request (only on lists that had to relax a constraint):
    /// Dearer than the asked maximum.
    AbovePrice {
        limit: i64,
        price: i64,
    },
    /// Cheaper than the asked minimum.
    BelowPrice {
        floor: i64,
        price: i64,
    },
    /// A price was asked and the product has none.
    NoPrice,
    /// Comes only in colours the shopper ruled out.
    ExcludedColors(Vec<String>),
    /// From a brand the shopper ruled out.
    ExcludedBrand(String),
    OutOfStock,
    /// Not of the asked kind; its own category path.
    OtherCategory(String),
}

/// A card's reasons and the currency its money reasons are in.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub reasons: Vec<Reason>,
    /// The product's currency; `None` (unparseable) words amounts as bare numbers.
    pub currency: Option<Currency>,
}

impl Explanation {
    /// The one-sentence explanation and the reasons it is made of, in `language`.
    pub fn render(&self, language: ReplyLanguage) -> (String, Vec<String>) {
        let reasons: Vec<String> = self
            .reasons
            .iter()
            .map(|reason| match language {
                ReplyLanguage::Korean => self.korean(reason),
                ReplyLanguage::English => self.english(reason),
            })
            .collect();
        let explanation = match language {
            ReplyLanguage::Korean => reasons.join(" · "),
            ReplyLanguage::English => {
                let joined = reasons.join(", ");
                let mut chars = joined.chars();
                match chars.next() {
                    Some(first) => first.to_uppercase().chain(chars).collect(),
                    None => joined,
                }
            }
        };
        (explanation, reasons)
    }

    fn money(&self, minor: i64) -> String {
        match self.currency {
            Some(currency) => currency.format(minor),
            None => minor.to_string(),
        }
    }

    fn english(&self, reason: &Reason) -> String {
        match reason {
            Reason::Matches(keyword) => format!("matches '{keyword}'"),
            Reason::Style(style) => format!("{style} style"),
            Reason::Color(color) => format!("comes in {color}"),
            Reason::Brand(brand) => format!("from {brand}"),
            Reason::WithinPrice(range) => match (range.min_minor, range.max_minor) {
                (Some(min), Some(max)) => {
                    format!("between {} and {}", self.money(min), self.money(max))
                }
                (None, Some(max)) => format!("under {}", self.money(max)),
                (Some(min), None) => format!("from {}", self.money(min)),
                (None, None) => "any price".into(),
            },
            Reason::BoughtWith(title) => format!("often bought with {title}"),
            Reason::PopularIn(category) => format!("popular in {category}"),
            Reason::PopularNow => "popular right now".into(),
            Reason::CloseToQuery => "close to what you asked for".into(),
            Reason::SimilarToTaste => "similar to what you like".into(),
            Reason::AlsoIn(category) => format!("also in {category}"),
            Reason::PickFrom(category) => format!("a pick from {category}"),
            Reason::YouOftenLookAt(category) => {
                format!("you often look at {}", category.replace('/', " "))
            }
            Reason::BrandYouLike(brand) => format!("from {brand}, which you like"),
            Reason::ColorYouLike(color) => format!("in {color}, which you like"),
            Reason::StyleYouLike(style) => format!("{style} style, which you like"),
            Reason::YourUsualPrice => "in your usual price range".into(),
            Reason::AbovePrice { limit, price } => format!(
                "above your {} limit ({})",
                self.money(*limit),
                self.money(*price)
            ),
            Reason::BelowPrice { floor, price } => format!(
                "below your {} minimum ({})",
                self.money(*floor),
                self.money(*price)
            ),
            Reason::NoPrice => "no price listed".into(),
            Reason::ExcludedColors(colors) => {
                format!("only in {}, which you ruled out", colors.join(" or "))
            }
            Reason::ExcludedBrand(brand) => format!("from {brand}, which you ruled out"),
            Reason::OutOfStock => "out of stock right now".into(),
            Reason::OtherCategory(category) => {
                format!(
                    "not the kind you asked for ({})",
                    category.replace('/', " ")
                )
            }
        }
    }

    fn korean(&self, reason: &Reason) -> String {
        let korean = ReplyLanguage::Korean;
        match reason {
            Reason::Matches(keyword) => {
                let label = keyword_label(keyword, korean);
                match final_consonant(&label) {
                    Some(true) => format!("'{label}'과 일치해요"),
                    Some(false) => format!("'{label}'와 일치해요"),
                    None => format!("'{label}' 키워드와 일치해요"),
                }
            }
            Reason::Style(style) => {
                let label = style_label_ko(style);
                if label.ends_with("스타일") {
                    format!("{label}이에요")
                } else {
                    format!("{label} 스타일이에요")
                }
            }
            Reason::Color(color) => {
                let label = color_label_ko(color);
                // 으로 after a final consonant other than ㄹ.
                let rieul = label.chars().next_back().is_some_and(|c| {
                    ('\u{AC00}'..='\u{D7A3}').contains(&c) && (c as u32 - 0xAC00) % 28 == 8
                });
                match final_consonant(label) {
                    Some(true) if !rieul => format!("{label}으로 나와요"),
                    _ => format!("{label}로 나와요"),
                }
            }
            Reason::Brand(brand) => format!("{brand} 제품이에요"),
            Reason::WithinPrice(range) => match (range.min_minor, range.max_minor) {
                (Some(min), Some(max)) => {
                    format!("{}~{} 사이예요", self.money(min), self.money(max))
                }
                (None, Some(max)) => format!("{} 이하예요", self.money(max)),
                (Some(min), None) => format!("{} 이상이에요", self.money(min)),
                (None, None) => "가격 조건 없음".into(),
            },
            Reason::BoughtWith(title) => match final_consonant(title) {
                Some(true) => format!("{title}과 함께 자주 구매해요"),
                Some(false) => format!("{title}와 함께 자주 구매해요"),
                None => format!("함께 자주 구매하는 상품: {title}"),
            },
            Reason::PopularIn(category) => {
                format!("{} 인기 상품이에요", category_label(category, korean))
            }
            Reason::PopularNow => "지금 인기 있는 상품이에요".into(),
            Reason::CloseToQuery => "찾으시는 것과 비슷해요".into(),
            Reason::SimilarToTaste => "좋아하시는 상품과 비슷해요".into(),
            Reason::AlsoIn(category) => {
                format!("같은 {} 상품이에요", category_label(category, korean))
            }
            Reason::PickFrom(category) => {
                format!("{} 추천 상품이에요", category_label(category, korean))
            }
            Reason::YouOftenLookAt(category) => {
                format!("자주 보시는 {}", copula(&category_label(category, korean)))
            }
            Reason::BrandYouLike(brand) => format!("좋아하시는 {brand} 제품이에요"),
            Reason::ColorYouLike(color) => format!("좋아하시는 {}", copula(color_label_ko(color))),
            Reason::StyleYouLike(style) => {
                let label = style_label_ko(style);
                if label.ends_with("스타일") {
                    format!("좋아하시는 {label}이에요")
                } else {
                    format!("좋아하시는 {label} 스타일이에요")
                }
            }
            Reason::YourUsualPrice => "자주 찾으시는 가격대예요".into(),
            Reason::AbovePrice { limit, price } => format!(
                "요청하신 {}보다 비싸요 — {}",
                self.money(*limit),
                self.money(*price)
            ),
            Reason::BelowPrice { floor, price } => format!(
                "요청하신 {}보다 저렴해요 — {}",
                self.money(*floor),
                self.money(*price)
            ),
            Reason::NoPrice => "가격 정보가 없어요".into(),
            Reason::ExcludedColors(colors) => {
                let labels: Vec<&str> = colors.iter().map(|c| color_label_ko(c)).collect();
                format!("제외하신 {}만 있어요", labels.join("·"))
            }
            Reason::ExcludedBrand(brand) => format!("제외하신 {brand} 제품이에요"),
            Reason::OutOfStock => "지금은 품절이에요".into(),
            Reason::OtherCategory(category) => format!(
                "요청하신 종류가 아니에요 ({})",
                category_label(category, korean)
            ),
        }
    }
}

/// `word` with the polite copula: 이에요 after a final consonant, 예요 after a vowel, and
/// " 상품이에요" after anything that is not Hangul or a digit ("Gore-Tex 상품이에요").
fn copula(word: &str) -> String {
    match final_consonant(word) {
        Some(true) => format!("{word}이에요"),
        Some(false) => format!("{word}예요"),
        None => format!("{word} 상품이에요"),
    }
}

/// Whether `word` ends in a final consonant (받침), which picks the particle: 과/와, 으로/로.
/// Hangul syllables and digits (read in Korean) are known; `None` for anything else.
fn final_consonant(word: &str) -> Option<bool> {
    let last = word
        .trim_end_matches(['\'', '"', ')', ' '])
        .chars()
        .next_back()?;
    match last {
        '\u{AC00}'..='\u{D7A3}' => Some(!(last as u32 - 0xAC00).is_multiple_of(28)),
        // 영 일 이 삼 사 오 육 칠 팔 구
        '0' | '1' | '3' | '6' | '7' | '8' => Some(true),
        '2' | '4' | '5' | '9' => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explanation(reasons: Vec<Reason>) -> Explanation {
        Explanation {
            reasons,
            currency: Some(Currency::Krw),
        }
    }

    #[test]
    fn a_card_explains_in_english() {
        let card = explanation(vec![
            Reason::Matches("winter".into()),
            Reason::WithinPrice(PriceRange {
                min_minor: None,
                max_minor: Some(100_000),
            }),
            Reason::CloseToQuery,
        ]);
        let (sentence, reasons) = card.render(ReplyLanguage::English);
        assert_eq!(
            sentence,
            "Matches 'winter', under ₩100,000, close to what you asked for"
        );
        assert_eq!(reasons.len(), 3);
    }

    #[test]
    fn a_card_explains_in_korean_with_the_right_particles() {
        let card = explanation(vec![
            Reason::Matches("waterproof".into()),
            Reason::Matches("warm".into()),
            Reason::Color("black".into()),
            Reason::Color("navy".into()),
            Reason::WithinPrice(PriceRange {
                min_minor: None,
                max_minor: Some(100_000),
            }),
            Reason::CloseToQuery,
        ]);
        let (sentence, reasons) = card.render(ReplyLanguage::Korean);
        assert_eq!(
            reasons,
            [
                "'방수'와 일치해요",
                "'보온'과 일치해요",
                "검은색으로 나와요",
                "네이비로 나와요",
                "₩100,000 이하예요",
                "찾으시는 것과 비슷해요",
            ]
        );
        assert_eq!(sentence, reasons.join(" · "));
        assert!(
            !sentence.chars().any(|c| c.is_ascii_alphabetic()),
            "{sentence}"
        );
    }

    #[test]
    fn products_outside_the_request_say_how_in_both_languages() {
        let card = explanation(vec![
            Reason::AbovePrice {
                limit: 50_000,
                price: 59_000,
            },
            Reason::ExcludedColors(vec!["red".into()]),
            Reason::OutOfStock,
        ]);
        let (korean, _) = card.render(ReplyLanguage::Korean);
        assert_eq!(
            korean,
            "요청하신 ₩50,000보다 비싸요 — ₩59,000 · 제외하신 빨간색만 있어요 · 지금은 품절이에요"
        );
        let (english, _) = card.render(ReplyLanguage::English);
        assert_eq!(
            english,
            "Above your ₩50,000 limit (₩59,000), only in red, which you ruled out, out of stock right now"
        );
    }

    #[test]
    fn profile_reasons_say_the_shopper_likes_it_in_both_languages() {
        let card = explanation(vec![
            Reason::YouOftenLookAt("outdoor/jackets".into()),
            Reason::ColorYouLike("red".into()),
            Reason::BrandYouLike("Nike".into()),
            Reason::StyleYouLike("casual".into()),
            Reason::YourUsualPrice,
        ]);
        let (english, _) = card.render(ReplyLanguage::English);
        assert_eq!(
            english,
            "You often look at outdoor jackets, in red, which you like, from Nike, which you \
             like, casual style, which you like, in your usual price range"
        );
        let (_, korean) = card.render(ReplyLanguage::Korean);
        assert_eq!(korean[1], "좋아하시는 빨간색이에요");
        assert_eq!(korean[2], "좋아하시는 Nike 제품이에요");
        assert_eq!(korean[3], "좋아하시는 캐주얼 스타일이에요");
        assert_eq!(korean[4], "자주 찾으시는 가격대예요");
        assert!(korean[0].starts_with("자주 보시는 "), "{}", korean[0]);
        assert!(korean[0].ends_with("에요"), "{}", korean[0]);
        assert_eq!(copula("네이비"), "네이비예요");
        assert_eq!(copula("Gore-Tex"), "Gore-Tex 상품이에요");
    }

    #[test]
    fn particles_follow_the_last_syllable() {
        assert_eq!(final_consonant("방수"), Some(false));
        assert_eq!(final_consonant("겨울"), Some(true));
        assert_eq!(final_consonant("'패딩'"), Some(true));
        assert_eq!(final_consonant("Gore-Tex"), None);
        assert_eq!(final_consonant("₩59,000"), Some(true));
    }
}
