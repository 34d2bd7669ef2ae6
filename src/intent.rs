//! What a shopper is asking for, in the seed's intent schema: the LLM returns it as JSON, the
//! local analyser builds it, the recommender filters and scores with it, and the preference
//! profile accumulates it. Hard constraints (price, categories, colour and brand exclusions,
//! in stock) filter; the rest (styles, colours, brands, keywords) only weigh.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// Most entries any list may hold (an LLM answer is untrusted input).
pub const MAX_LIST_LEN: usize = 16;
/// Longest single entry.
pub const MAX_ENTRY_LEN: usize = 64;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sentiment {
    Positive,
    #[default]
    Neutral,
    Negative,
}

/// An inclusive price range in minor units of the shop's currency (KRW has none: won).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_minor: Option<i64>,
}

impl PriceRange {
    pub fn contains(&self, price_minor: i64) -> bool {
        self.min_minor.is_none_or(|min| price_minor >= min)
            && self.max_minor.is_none_or(|max| price_minor <= max)
    }

    pub fn is_unbounded(&self) -> bool {
        self.min_minor.is_none() && self.max_minor.is_none()
    }
}

/// A hard constraint of an intent: a product that breaks one is left out, unless nothing meets
/// them all (then the recommender relaxes them in [`HardConstraint::RELAXATION_ORDER`] and
/// marks each product with the ones it breaks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HardConstraint {
    /// Outside the price range.
    Price,
    /// Only in colours the shopper ruled out.
    ExcludedColor,
    /// From a brand the shopper ruled out.
    ExcludedBrand,
    /// Out of stock.
    InStock,
    /// Not of the asked kind.
    Category,
}

impl HardConstraint {
    /// Which constraint gives way first when nothing fits: the kind of product last (the
    /// cheapest of the kind, or the kind in another colour, is nearer than another kind).
    pub const RELAXATION_ORDER: [HardConstraint; 5] = [
        HardConstraint::ExcludedColor,
        HardConstraint::ExcludedBrand,
        HardConstraint::Price,
        HardConstraint::InStock,
        HardConstraint::Category,
    ];
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShoppingIntent {
    /// Catalog category paths (`outdoor/jackets`) or top levels (`outdoor`); a product matches
    /// when its category is one of them or below one.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Style words (`casual`, `minimal`, `formal`…), lower case English.
    #[serde(default)]
    pub styles: Vec<String>,
    /// Wanted colours, lower case English (`black`, `navy`).
    #[serde(default)]
    pub colors: Vec<String>,
    /// Colours the shopper ruled out ("빨간색 말고", "not red"): a hard filter.
    #[serde(default)]
    pub excluded_colors: Vec<String>,
    #[serde(default)]
    pub price_range: Option<PriceRange>,
    /// Wanted brands, as the catalog spells them.
    #[serde(default)]
    pub brands: Vec<String>,
    /// Brands ruled out: a hard filter.
    #[serde(default)]
    pub excluded_brands: Vec<String>,
    /// Canonical English keywords for the content signal ("패딩" → "padded down jacket").
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub sentiment: Sentiment,
    /// Only products in stock (the default: a shop rarely wants to sell what it cannot ship).
    #[serde(default = "default_true")]
    pub in_stock_only: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid intent: {0}")]
pub struct IntentError(pub String);

impl ShoppingIntent {
    pub fn empty() -> Self {
        Self {
            in_stock_only: true,
            ..Self::default()
        }
    }

    /// Checks an intent from an untrusted source (the LLM): bounded lists and entries, a sane
    /// price range. Lists are lower-cased (except brands) and deduplicated in place.
    pub fn validate(&mut self) -> Result<(), IntentError> {
        for (name, list, lower) in [
            ("categories", &mut self.categories, true),
            ("styles", &mut self.styles, true),
            ("colors", &mut self.colors, true),
            ("excluded_colors", &mut self.excluded_colors, true),
            ("brands", &mut self.brands, false),
            ("excluded_brands", &mut self.excluded_brands, false),
            ("keywords", &mut self.keywords, true),
        ] {
            if list.len() > MAX_LIST_LEN {
                return Err(IntentError(format!(
                    "{name} has {} entries (at most {MAX_LIST_LEN})",
                    list.len()
                )));
            }
            let mut seen = Vec::with_capacity(list.len());
            for entry in list.drain(..) {
                let entry = entry.trim();
                let entry = if lower {
                    entry.to_lowercase()
                } else {
                    entry.to_string()
                };
                if entry.is_empty() {
                    continue;
                }
                if entry.chars().count() > MAX_ENTRY_LEN || entry.chars().any(char::is_control) {
                    return Err(IntentError(format!(
                        "{name} entry is longer than {MAX_ENTRY_LEN} characters or has control characters"
                    )));
                }
                if !seen.contains(&entry) {
                    seen.push(entry);
                }
            }
            *list = seen;
        }
        if let Some(range) = &self.price_range {
            let negative =
                range.min_minor.is_some_and(|v| v < 0) || range.max_minor.is_some_and(|v| v < 0);
            if negative {
                return Err(IntentError("price_range has a negative bound".into()));
            }
            if let (Some(min), Some(max)) = (range.min_minor, range.max_minor) {
                if min > max {
                    return Err(IntentError(format!(
                        "price_range min {min} is above max {max}"
                    )));
                }
            }
            if range.is_unbounded() {
                self.price_range = None;
            }
        }
        Ok(())
    }

    /// Whether this intent sets `constraint`.
    pub fn has(&self, constraint: HardConstraint) -> bool {
        match constraint {
            HardConstraint::Price => self.price_range.is_some_and(|r| !r.is_unbounded()),
            HardConstraint::ExcludedColor => !self.excluded_colors.is_empty(),
            HardConstraint::ExcludedBrand => !self.excluded_brands.is_empty(),
            HardConstraint::InStock => self.in_stock_only,
            HardConstraint::Category => !self.categories.is_empty(),
        }
    }

    /// This intent with `constraint` lifted.
    pub fn without(&self, constraint: HardConstraint) -> Self {
        let mut relaxed = self.clone();
        match constraint {
            HardConstraint::Price => relaxed.price_range = None,
            HardConstraint::ExcludedColor => relaxed.excluded_colors.clear(),
            HardConstraint::ExcludedBrand => relaxed.excluded_brands.clear(),
            HardConstraint::InStock => relaxed.in_stock_only = false,
            HardConstraint::Category => relaxed.categories.clear(),
        }
        relaxed
    }

    /// Whether a category path satisfies the category constraint (none means any).
    pub fn category_matches(&self, category: &str) -> bool {
        self.categories.is_empty()
            || self.categories.iter().any(|wanted| {
                category == wanted
                    || (category.starts_with(wanted.as_str())
                        && category.as_bytes().get(wanted.len()) == Some(&b'/'))
            })
    }
}

/// Where an analysed intent came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IntentSource {
    /// The configured OpenAI-compatible model.
    Llm,
    /// The local rule-based analyser (no endpoint configured, breaker open, or a bad answer).
    Fallback,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnalyzedIntent {
    /// What this message asks for, merged over the conversation's earlier constraints.
    pub intent: ShoppingIntent,
    pub source: IntentSource,
}

/// Turns a shopper's message into a [`ShoppingIntent`]. `previous` is the conversation's
/// intent so far: constraints persist across turns until the shopper changes them. Never
/// fails: an implementation that calls a remote model falls back to the local analyser.
pub trait IntentAnalyzer: Send + Sync {
    fn analyze<'a>(
        &'a self,
        message: &'a str,
        previous: Option<&'a ShoppingIntent>,
    ) -> BoxFuture<'a, AnalyzedIntent>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_schema_parses_and_defaults_fill_in() {
        let intent: ShoppingIntent = serde_json::from_str(
            r#"{"categories":["outdoor/jackets"],"price_range":{"max_minor":100000},"sentiment":"positive"}"#,
        )
        .unwrap();
        assert!(intent.in_stock_only);
        assert_eq!(intent.price_range.unwrap().max_minor, Some(100_000));
        assert_eq!(intent.sentiment, Sentiment::Positive);
    }

    #[test]
    fn validation_normalises_and_rejects_nonsense() {
        let mut intent = ShoppingIntent {
            colors: vec!["Black".into(), "black ".into(), "".into()],
            ..ShoppingIntent::empty()
        };
        intent.validate().unwrap();
        assert_eq!(intent.colors, vec!["black"]);

        let mut inverted = ShoppingIntent {
            price_range: Some(PriceRange {
                min_minor: Some(50_000),
                max_minor: Some(10_000),
            }),
            ..ShoppingIntent::empty()
        };
        assert!(inverted.validate().is_err());

        let mut flooded = ShoppingIntent {
            keywords: vec!["x".into(); MAX_LIST_LEN + 1],
            ..ShoppingIntent::empty()
        };
        assert!(flooded.validate().is_err());
    }

    #[test]
    fn a_category_matches_itself_and_what_is_below_it_only() {
        let intent = ShoppingIntent {
            categories: vec!["outdoor".into()],
            ..ShoppingIntent::empty()
        };
        assert!(intent.category_matches("outdoor"));
        assert!(intent.category_matches("outdoor/jackets"));
        assert!(!intent.category_matches("outdoorsy"));
        assert!(!intent.category_matches("fashion/outerwear"));
        assert!(ShoppingIntent::empty().category_matches("anything"));
    }

    #[test]
    fn price_ranges_are_inclusive() {
        let range = PriceRange {
            min_minor: Some(30_000),
            max_minor: Some(50_000),
        };
        assert!(range.contains(30_000) && range.contains(50_000));
        assert!(!range.contains(29_999) && !range.contains(50_001));
    }
}
