//! The template reply: a short answer in the shopper's language that names only the products
//! it is given, with their real price display and stock, and says what was understood.

use super::{ReplyContext, ReplyWriter, WrittenReply};
use crate::analysis::labels::{category_label, color_label_ko, style_label_ko};
use crate::analysis::ReplyLanguage;
use crate::catalog::Currency;
use crate::intent::{HardConstraint, IntentSource, ShoppingIntent};
use crate::recommend::RecommendedProduct;
use futures::future::BoxFuture;
use std::fmt::Write;

/// At or below this stock a product is "selling out" (품절 임박).
pub const LOW_STOCK: i32 = 5;
/// Products named one by one; the rest are counted.
const LISTED: usize = 5;

#[derive(Debug, Clone, Copy)]
pub struct TemplateReplyWriter {
    /// The shop currency, for price constraints in the summary.
    currency: Currency,
}

impl Default for TemplateReplyWriter {
    fn default() -> Self {
        Self::new(Currency::Krw)
    }
}

impl TemplateReplyWriter {
    pub fn new(currency: Currency) -> Self {
        Self { currency }
    }

    pub fn compose(&self, context: &ReplyContext<'_>) -> String {
        let language = ReplyLanguage::detect(context.message);
        let summary = self.summary(context.intent, language);
        let mut reply = String::new();
        let broken = broken_constraints(context.products);
        if !broken.is_empty() {
            self.nearest_instead(&mut reply, &summary, &broken, language);
        }
        match (language, context.products.is_empty()) {
            _ if !broken.is_empty() => {}
            (ReplyLanguage::Korean, true) => {
                if !summary.is_empty() {
                    let _ = write!(reply, "말씀하신 조건({summary})에 맞는 ");
                } else {
                    reply.push_str("조건에 맞는 ");
                }
                reply.push_str(
                    "상품을 찾지 못했어요. 가격대나 색상 조건을 조금 넓혀서 다시 말씀해 주세요.",
                );
            }
            (ReplyLanguage::English, true) => {
                reply.push_str("I couldn't find products that match");
                if !summary.is_empty() {
                    let _ = write!(reply, " {summary}");
                }
                reply.push_str(". Try widening the price range or another colour.");
            }
            (ReplyLanguage::Korean, false) => {
                if !summary.is_empty() {
                    let _ = write!(reply, "{summary} 조건으로 ");
                }
                let _ = write!(reply, "{}개를 골라 봤어요.", context.products.len());
            }
            (ReplyLanguage::English, false) => {
                let count = context.products.len();
                let (verb, noun) = if count == 1 {
                    ("is", "product")
                } else {
                    ("are", "products")
                };
                let _ = write!(reply, "Here {verb} {count} {noun}");
                if !summary.is_empty() {
                    let _ = write!(reply, " for {summary}");
                }
                reply.push(':');
            }
        }
        for (index, product) in context.products.iter().take(LISTED).enumerate() {
            let _ = write!(
                reply,
                "\n{}. {} — {} ({})",
                index + 1,
                product.title,
                price_text(product, language),
                stock_text(product.stock, language)
            );
        }
        let rest = context.products.len().saturating_sub(LISTED);
        if rest > 0 {
            let _ = match language {
                ReplyLanguage::Korean => write!(reply, "\n외 {rest}개 상품도 함께 확인해 보세요."),
                ReplyLanguage::English => write!(reply, "\n…and {rest} more below."),
            };
        }
        reply
    }

    /// Nothing met the request: which constraints emptied the list, and that the products
    /// below are the nearest ones, outside it.
    fn nearest_instead(
        &self,
        reply: &mut String,
        summary: &str,
        broken: &[HardConstraint],
        language: ReplyLanguage,
    ) {
        let names: Vec<&str> = broken
            .iter()
            .map(|constraint| constraint_name(*constraint, language))
            .collect();
        match language {
            ReplyLanguage::Korean => {
                if summary.is_empty() {
                    reply.push_str("조건에 맞는 상품은 없어요. ");
                } else {
                    let _ = write!(reply, "말씀하신 조건({summary})에 맞는 상품은 없어요. ");
                }
                let _ = write!(
                    reply,
                    "{} 조건을 빼면 가장 가까운 상품은 이거예요 (요청하신 조건 밖이에요).",
                    names.join("·")
                );
            }
            ReplyLanguage::English => {
                reply.push_str("Nothing matches");
                if !summary.is_empty() {
                    let _ = write!(reply, " {summary}");
                }
                let _ = write!(
                    reply,
                    ": the {} emptied the list. The nearest products, outside your request:",
                    names.join(" and the ")
                );
            }
        }
    }

    /// What was understood, in a few words: "outdoor jackets, black, not red, under ₩100,000".
    fn summary(&self, intent: &ShoppingIntent, language: ReplyLanguage) -> String {
        let korean = language == ReplyLanguage::Korean;
        let mut parts: Vec<String> = Vec::new();
        for path in intent.categories.iter().take(2) {
            parts.push(category_label(path, language));
        }
        for style in intent.styles.iter().take(2) {
            parts.push(if korean {
                style_label_ko(style).to_string()
            } else {
                style.clone()
            });
        }
        for color in intent.colors.iter().take(3) {
            parts.push(if korean {
                color_label_ko(color).to_string()
            } else {
                color.clone()
            });
        }
        for color in intent.excluded_colors.iter().take(3) {
            parts.push(if korean {
                format!("{} 제외", color_label_ko(color))
            } else {
                format!("not {color}")
            });
        }
        for brand in intent.brands.iter().take(2) {
            parts.push(brand.clone());
        }
        for brand in intent.excluded_brands.iter().take(2) {
            parts.push(if korean {
                format!("{brand} 제외")
            } else {
                format!("not {brand}")
            });
        }
        if let Some(range) = intent.price_range {
            let format = |minor: i64| self.currency.format(minor);
            let text = match (range.min_minor, range.max_minor, korean) {
                (Some(min), Some(max), true) => format!("{}~{}", format(min), format(max)),
                (Some(min), Some(max), false) => format!("{} to {}", format(min), format(max)),
                (None, Some(max), true) => format!("{} 이하", format(max)),
                (None, Some(max), false) => format!("under {}", format(max)),
                (Some(min), None, true) => format!("{} 이상", format(min)),
                (Some(min), None, false) => format!("over {}", format(min)),
                (None, None, _) => String::new(),
            };
            if !text.is_empty() {
                parts.push(text);
            }
        }
        parts.join(if korean { " · " } else { ", " })
    }
}

impl ReplyWriter for TemplateReplyWriter {
    fn write<'a>(&'a self, context: ReplyContext<'a>) -> BoxFuture<'a, WrittenReply> {
        Box::pin(async move {
            WrittenReply {
                text: self.compose(&context),
                source: IntentSource::Fallback,
            }
        })
    }
}

/// The constraints the products break when every one of them breaks some (a relaxed list),
/// in relaxation order; empty when any product meets the request.
fn broken_constraints(products: &[RecommendedProduct]) -> Vec<HardConstraint> {
    if products.is_empty() || products.iter().any(|p| p.outside_request.is_empty()) {
        return Vec::new();
    }
    HardConstraint::RELAXATION_ORDER
        .into_iter()
        .filter(|constraint| {
            products
                .iter()
                .any(|product| product.outside_request.contains(constraint))
        })
        .collect()
}

fn constraint_name(constraint: HardConstraint, language: ReplyLanguage) -> &'static str {
    match (constraint, language) {
        (HardConstraint::Price, ReplyLanguage::Korean) => "가격",
        (HardConstraint::ExcludedColor, ReplyLanguage::Korean) => "색상",
        (HardConstraint::ExcludedBrand, ReplyLanguage::Korean) => "브랜드",
        (HardConstraint::InStock, ReplyLanguage::Korean) => "재고",
        (HardConstraint::Category, ReplyLanguage::Korean) => "종류",
        (HardConstraint::Price, ReplyLanguage::English) => "price limit",
        (HardConstraint::ExcludedColor, ReplyLanguage::English) => "colour you ruled out",
        (HardConstraint::ExcludedBrand, ReplyLanguage::English) => "brand you ruled out",
        (HardConstraint::InStock, ReplyLanguage::English) => "in-stock filter",
        (HardConstraint::Category, ReplyLanguage::English) => "kind of product",
    }
}

fn price_text(product: &RecommendedProduct, language: ReplyLanguage) -> String {
    match (&product.price_display, language) {
        (Some(display), _) => display.clone(),
        (None, ReplyLanguage::Korean) => "가격 문의".into(),
        (None, ReplyLanguage::English) => "price on request".into(),
    }
}

pub fn stock_text(stock: i32, language: ReplyLanguage) -> String {
    match (language, stock) {
        (ReplyLanguage::Korean, ..=0) => "품절".into(),
        (ReplyLanguage::Korean, s) if s <= LOW_STOCK => format!("품절 임박, {s}개 남음"),
        (ReplyLanguage::Korean, s) => format!("재고 {s}개"),
        (ReplyLanguage::English, ..=0) => "out of stock".into(),
        (ReplyLanguage::English, s) if s <= LOW_STOCK => format!("only {s} left"),
        (ReplyLanguage::English, s) => format!("{s} in stock"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::PriceRange;
    use crate::recommend::ScoreBreakdown;
    use uuid::Uuid;

    fn product(title: &str, price: i64, stock: i32) -> RecommendedProduct {
        RecommendedProduct {
            id: Uuid::new_v4(),
            sku: format!("SKU-{price}"),
            title: title.into(),
            category: "outdoor/jackets".into(),
            brand: None,
            price_minor: Some(price),
            currency: "KRW".into(),
            price_display: Some(Currency::Krw.format(price)),
            stock,
            image_url: None,
            score: ScoreBreakdown::default(),
            explanation: String::new(),
            reasons: Vec::new(),
            outside_request: Vec::new(),
        }
    }

    /// Every `₩…` amount in the reply.
    fn won_amounts(text: &str) -> Vec<String> {
        text.split('₩')
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_digit() || *c == ',')
                    .collect::<String>()
            })
            .collect()
    }

    fn intent() -> ShoppingIntent {
        ShoppingIntent {
            categories: vec!["outdoor/jackets".into()],
            colors: vec!["black".into()],
            excluded_colors: vec!["red".into()],
            price_range: Some(PriceRange {
                min_minor: None,
                max_minor: Some(100_000),
            }),
            ..ShoppingIntent::empty()
        }
    }

    #[test]
    fn a_korean_reply_names_only_the_listed_products_with_price_and_stock() {
        let products = [
            product("초경량 방수 레인 자켓", 89_000, 3),
            product("Waterproof Hiking Jacket", 99_000, 40),
        ];
        let intent = intent();
        let reply = TemplateReplyWriter::default().compose(&ReplyContext {
            message: "10만원 이하 검은색 자켓, 빨간색 말고",
            intent: &intent,
            products: &products,
        });
        assert!(
            reply.contains("초경량 방수 레인 자켓 — ₩89,000 (품절 임박, 3개 남음)"),
            "{reply}"
        );
        assert!(
            reply.contains("Waterproof Hiking Jacket — ₩99,000 (재고 40개)"),
            "{reply}"
        );
        assert!(
            reply.contains("검은색") && reply.contains("빨간색 제외"),
            "{reply}"
        );
        let allowed = ["89,000", "99,000", "100,000"];
        for amount in won_amounts(&reply) {
            assert!(
                allowed.contains(&amount.as_str()),
                "unexpected price {amount} in {reply}"
            );
        }
        assert_eq!(reply.lines().count(), 1 + products.len());
    }

    #[test]
    fn an_english_reply_is_in_english() {
        let products = [product("Waterproof Hiking Jacket", 99_000, 0)];
        let intent = intent();
        let reply = TemplateReplyWriter::default().compose(&ReplyContext {
            message: "black jacket under $100, not red",
            intent: &intent,
            products: &products,
        });
        assert!(
            reply.starts_with(
                "Here is 1 product for outdoor jackets, black, not red, under ₩100,000"
            ),
            "{reply}"
        );
        assert!(
            reply.contains("Waterproof Hiking Jacket — ₩99,000 (out of stock)"),
            "{reply}"
        );
    }

    #[test]
    fn an_empty_list_gets_a_graceful_answer_without_products() {
        let intent = intent();
        for message in ["검은색 자켓", "black jacket"] {
            let reply = TemplateReplyWriter::default().compose(&ReplyContext {
                message,
                intent: &intent,
                products: &[],
            });
            assert_eq!(reply.lines().count(), 1, "{reply}");
            assert_eq!(won_amounts(&reply), ["100,000"], "{reply}");
        }
    }

    #[test]
    fn a_relaxed_list_names_the_constraint_that_emptied_it() {
        let mut over = product("Trail Runner", 59_000, 12);
        over.outside_request = vec![HardConstraint::Price];
        let intent = ShoppingIntent {
            categories: vec!["shoes/running".into()],
            price_range: Some(PriceRange {
                min_minor: None,
                max_minor: Some(50_000),
            }),
            ..ShoppingIntent::empty()
        };
        let products = [over];
        let korean = TemplateReplyWriter::default().compose(&ReplyContext {
            message: "5만원 이하로 러닝화 있어?",
            intent: &intent,
            products: &products,
        });
        assert!(
            korean.starts_with(
                "말씀하신 조건(러닝화 · ₩50,000 이하)에 맞는 상품은 없어요. 가격 조건을 빼면"
            ),
            "{korean}"
        );
        assert!(korean.contains("Trail Runner — ₩59,000"), "{korean}");
        let english = TemplateReplyWriter::default().compose(&ReplyContext {
            message: "running shoes under $35",
            intent: &intent,
            products: &products,
        });
        assert!(
            english.starts_with(
                "Nothing matches shoes running, under ₩50,000: the price limit emptied the list."
            ),
            "{english}"
        );
    }

    #[test]
    fn long_lists_are_cut_and_counted() {
        let products: Vec<_> = (0..8)
            .map(|i| product(&format!("상품 {i}"), 10_000 + i, 10))
            .collect();
        let reply = TemplateReplyWriter::default().compose(&ReplyContext {
            message: "추천해줘",
            intent: &ShoppingIntent::empty(),
            products: &products,
        });
        assert!(
            reply.contains("상품 4") && !reply.contains("상품 5"),
            "{reply}"
        );
        assert!(reply.contains("외 3개"), "{reply}");
    }
}
