//! The local, rule-based intent analyser: used when no LLM is configured, its breaker is open,
//! or its answer is unusable. Korean and English; the rules are documented in docs/intent.md.

use super::language::is_hangul;
use super::lexicon::*;
use super::price::PriceParser;
use crate::db::entities::product;
use crate::intent::{
    AnalyzedIntent, IntentAnalyzer, IntentSource, PriceRange, Sentiment, ShoppingIntent,
    MAX_LIST_LEN,
};
use futures::future::BoxFuture;
use sea_orm::{ColumnTrait, QueryOrder};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect};

/// Longest gap (in characters) between a negation word and the colour or brand it negates,
/// or between two negated terms in a chain ("not red or pink").
/// Filler words ("anything from", "in", "or") do not count.
const NEGATION_REACH: usize = 8;
const NEGATION_FILLERS: &[&str] = &[
    "a", "an", "the", "any", "anything", "from", "by", "in", "or", "and", "nor", "color", "colour",
    "colors", "colours", "brand", "brands", "ones", "products", "stuff", "made",
];

#[derive(Debug, Clone)]
struct Brand {
    needle: String,
    name: String,
}

/// Rule-based Korean/English intent analysis; cheap, synchronous and deterministic.
#[derive(Debug, Clone)]
pub struct FallbackAnalyzer {
    brands: Vec<Brand>,
    /// The catalog's category paths (empty until loaded from a catalog).
    catalog_categories: Vec<String>,
    prices: PriceParser,
}

/// Most catalog categories named to the LLM (a prompt is not a taxonomy dump).
pub(crate) const MAX_PROMPT_CATEGORIES: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq)]
enum HitKind {
    /// Index into `CATEGORY_TERMS`.
    Category(usize),
    Color(&'static str),
    Style(&'static str),
    Keyword(&'static str),
    /// Index into the analyser's brands.
    Brand(usize),
}

#[derive(Debug, Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
    kind: HitKind,
}

/// What one message says, before it is merged over the conversation so far.
#[derive(Debug, Default, PartialEq)]
struct Extracted {
    categories: Vec<String>,
    styles: Vec<String>,
    colors: Vec<String>,
    excluded_colors: Vec<String>,
    brands: Vec<String>,
    excluded_brands: Vec<String>,
    keywords: Vec<String>,
    sentiment: Sentiment,
    price: Option<PriceRange>,
    any_price: bool,
    any_color: bool,
    any_brand: bool,
    start_over: bool,
    in_stock_only: Option<bool>,
}

impl FallbackAnalyzer {
    /// `brands` as the catalog spells them; `usd_rate_minor` converts dollar amounts into
    /// minor units of the shop currency.
    pub fn new(brands: impl IntoIterator<Item = String>, usd_rate_minor: f64) -> Self {
        let mut brands: Vec<Brand> = brands
            .into_iter()
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .map(|name| Brand {
                needle: name.to_lowercase(),
                name,
            })
            .collect();
        brands.sort_by(|a, b| a.name.cmp(&b.name));
        brands.dedup_by(|a, b| a.needle == b.needle);
        Self {
            brands,
            catalog_categories: Vec::new(),
            prices: PriceParser::new(usd_rate_minor),
        }
    }

    /// An analyser that knows the distinct brands of the `products` table.
    pub async fn load(db: &DatabaseConnection, usd_rate_minor: f64) -> Result<Self, DbErr> {
        let brands: Vec<Option<String>> = product::Entity::find()
            .select_only()
            .column(product::Column::Brand)
            .distinct()
            .filter(product::Column::Brand.is_not_null())
            .order_by_asc(product::Column::Brand)
            .into_tuple()
            .all(db)
            .await?;
        let brands: Vec<String> = brands.into_iter().flatten().collect();
        let categories: Vec<String> = product::Entity::find()
            .select_only()
            .column(product::Column::Category)
            .distinct()
            .order_by_asc(product::Column::Category)
            .into_tuple()
            .all(db)
            .await?;
        tracing::info!(
            brands = brands.len(),
            categories = categories.len(),
            "fallback intent analyser loaded"
        );
        let mut analyzer = Self::new(brands, usd_rate_minor);
        analyzer.catalog_categories = categories;
        Ok(analyzer)
    }

    /// Whether `path` is, or is above, a category of the loaded catalog (always true before a
    /// catalog is loaded: the built-in vocabulary is then the taxonomy).
    fn catalog_has(&self, path: &str) -> bool {
        self.catalog_categories.is_empty()
            || self.catalog_categories.iter().any(|category| {
                category == path
                    || (category.starts_with(path)
                        && category.as_bytes().get(path.len()) == Some(&b'/'))
            })
    }

    /// Category paths an intent may name: the catalog's (and their top levels), or the
    /// built-in vocabulary's while the catalog is empty.
    pub fn known_categories(&self) -> Vec<String> {
        let mut known: Vec<String> = if self.catalog_categories.is_empty() {
            CATEGORY_TERMS
                .iter()
                .map(|(_, path, _)| path.to_string())
                .collect()
        } else {
            self.catalog_categories.clone()
        };
        let tops: Vec<String> = known
            .iter()
            .filter_map(|path| path.split_once('/').map(|(top, _)| top.to_string()))
            .collect();
        known.extend(tops);
        known.sort();
        known.dedup();
        known
    }

    /// The catalog brands it recognises, as the catalog spells them.
    /// Minor units of the shop currency per US dollar (`llm.usd_krw_rate`).
    pub fn usd_rate_minor(&self) -> f64 {
        self.prices.usd_rate_minor()
    }

    pub fn brand_names(&self) -> Vec<String> {
        self.brands.iter().map(|brand| brand.name.clone()).collect()
    }

    /// This message's constraints merged over `previous` (see docs/intent.md for the rules).
    pub fn analyze_message(
        &self,
        message: &str,
        previous: Option<&ShoppingIntent>,
    ) -> ShoppingIntent {
        let said = self.extract(message);
        let mut intent = match previous {
            Some(previous) if !said.start_over => previous.clone(),
            _ => ShoppingIntent::empty(),
        };
        if said.any_price {
            intent.price_range = None;
        }
        if said.price.is_some() {
            intent.price_range = said.price;
        }
        if !said.categories.is_empty() {
            if said.categories != intent.categories {
                // Old keywords described the old kind of product.
                intent.keywords.clear();
            }
            let another_kind = !intent.categories.is_empty()
                && !said
                    .categories
                    .iter()
                    .any(|c| intent.categories.contains(c));
            if another_kind && said.price.is_none() {
                // So did the old budget: "under ₩100,000" for a padded jacket says nothing
                // about hiking boots, and carrying it over silently empties the next list.
                intent.price_range = None;
            }
            intent.categories = said.categories;
        }
        if !said.styles.is_empty() {
            intent.styles = said.styles;
        }
        if said.any_color {
            intent.colors.clear();
            intent.excluded_colors.clear();
        }
        merge_wanted_and_excluded(
            &mut intent.colors,
            &mut intent.excluded_colors,
            said.colors,
            said.excluded_colors,
        );
        if said.any_brand {
            intent.brands.clear();
            intent.excluded_brands.clear();
        }
        merge_wanted_and_excluded(
            &mut intent.brands,
            &mut intent.excluded_brands,
            said.brands,
            said.excluded_brands,
        );
        for keyword in said.keywords {
            if !intent.keywords.contains(&keyword) {
                intent.keywords.push(keyword);
            }
        }
        intent.sentiment = said.sentiment;
        if let Some(in_stock_only) = said.in_stock_only {
            intent.in_stock_only = in_stock_only;
        }
        for list in [
            &mut intent.categories,
            &mut intent.styles,
            &mut intent.colors,
            &mut intent.excluded_colors,
            &mut intent.brands,
            &mut intent.excluded_brands,
            &mut intent.keywords,
        ] {
            // Keep the newest entries.
            if list.len() > MAX_LIST_LEN {
                list.drain(..list.len() - MAX_LIST_LEN);
            }
        }
        if let Err(error) = intent.validate() {
            tracing::warn!(%error, "fallback analyser built an invalid intent; starting afresh");
            return ShoppingIntent::empty();
        }
        intent
    }

    fn extract(&self, message: &str) -> Extracted {
        let text = message.to_lowercase().replace(['’', '‘'], "'");
        let hits = self.hits(&text);
        let negated = negated_hits(&text, &hits);
        let mut said = Extracted::default();
        for (index, hit) in hits.iter().enumerate() {
            let excluded = negated.contains(&index);
            match hit.kind {
                HitKind::Category(term) => {
                    let (term, path, keyword) = CATEGORY_TERMS[term];
                    if self.catalog_has(path) {
                        push_unique(&mut said.categories, path);
                        if !keyword.is_empty() && !term.is_ascii() {
                            push_unique(&mut said.keywords, keyword);
                        }
                    } else {
                        // A category this catalog does not have cannot filter (it would
                        // filter out everything); the words still say what is wanted.
                        let words = if keyword.is_empty() { term } else { keyword };
                        if words.is_ascii() {
                            push_unique(&mut said.keywords, words);
                        }
                    }
                }
                HitKind::Color(color) if excluded => push_unique(&mut said.excluded_colors, color),
                HitKind::Color(color) => push_unique(&mut said.colors, color),
                HitKind::Style(style) => push_unique(&mut said.styles, style),
                HitKind::Keyword(keyword) => push_unique(&mut said.keywords, keyword),
                HitKind::Brand(brand) if excluded => {
                    push_unique(&mut said.excluded_brands, &self.brands[brand].name)
                }
                HitKind::Brand(brand) => push_unique(&mut said.brands, &self.brands[brand].name),
            }
        }
        // "신발 중에 러닝화": the more specific path says it.
        let categories = said.categories.clone();
        said.categories.retain(|path| {
            !categories
                .iter()
                .any(|other| other.len() > path.len() && other.starts_with(&format!("{path}/")))
        });
        said.colors
            .retain(|color| !said.excluded_colors.contains(color));
        said.brands
            .retain(|brand| !said.excluded_brands.contains(brand));
        said.sentiment = if contains_any(&text, NEGATIVE_TERMS) {
            Sentiment::Negative
        } else if contains_any(&text, POSITIVE_TERMS) {
            Sentiment::Positive
        } else {
            Sentiment::Neutral
        };
        said.any_price = contains_any(&text, ANY_PRICE);
        if !said.any_price {
            said.price = self.prices.parse(&text);
        }
        said.any_color = contains_any(&text, ANY_COLOR);
        said.any_brand = contains_any(&text, ANY_BRAND);
        said.start_over = contains_any(&text, START_OVER);
        said.in_stock_only = if contains_any(&text, INCLUDE_OUT_OF_STOCK) {
            Some(false)
        } else if contains_any(&text, ONLY_IN_STOCK) {
            Some(true)
        } else {
            None
        };
        said
    }

    /// Every lexicon and brand term in `text`, a term inside a longer one dropped, in order.
    fn hits(&self, text: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        let mut add = |needle: &str, kind: HitKind, word_start: bool| {
            for (start, end) in find_term(text, needle, word_start) {
                hits.push(Hit { start, end, kind });
            }
        };
        for (index, (term, _, _)) in CATEGORY_TERMS.iter().enumerate() {
            add(term, HitKind::Category(index), false);
        }
        for (term, color) in COLOR_TERMS {
            add(term, HitKind::Color(color), false);
        }
        for (term, style) in STYLE_TERMS {
            add(term, HitKind::Style(style), false);
        }
        for (term, keyword) in KEYWORD_TERMS {
            add(term, HitKind::Keyword(keyword), false);
        }
        for (index, brand) in self.brands.iter().enumerate() {
            // Korean brand names are often plain words ("한결", "걸음"): only at a word start.
            add(&brand.needle, HitKind::Brand(index), true);
        }
        let longest: Vec<Hit> = hits
            .iter()
            .filter(|hit| {
                !hits.iter().any(|other| {
                    other.start <= hit.start
                        && other.end >= hit.end
                        && other.end - other.start > hit.end - hit.start
                })
            })
            .copied()
            .collect();
        let mut longest = longest;
        longest.sort_by_key(|hit| (hit.start, hit.end));
        longest
    }
}

impl IntentAnalyzer for FallbackAnalyzer {
    fn analyze<'a>(
        &'a self,
        message: &'a str,
        previous: Option<&'a ShoppingIntent>,
    ) -> BoxFuture<'a, AnalyzedIntent> {
        Box::pin(async move {
            AnalyzedIntent {
                intent: self.analyze_message(message, previous),
                source: IntentSource::Fallback,
            }
        })
    }
}

fn push_unique(list: &mut Vec<String>, value: &str) {
    if !list.iter().any(|existing| existing == value) {
        list.push(value.to_string());
    }
}

/// New wanted values replace the old wanted ones; new exclusions add to the old ones; a value
/// is never both wanted and excluded (the newer statement wins).
fn merge_wanted_and_excluded(
    wanted: &mut Vec<String>,
    excluded: &mut Vec<String>,
    new_wanted: Vec<String>,
    new_excluded: Vec<String>,
) {
    if !new_wanted.is_empty() {
        excluded.retain(|value| !new_wanted.contains(value));
        *wanted = new_wanted;
    }
    for value in new_excluded {
        wanted.retain(|wanted| *wanted != value);
        if !excluded.contains(&value) {
            excluded.push(value);
        }
    }
}

/// Byte spans of `needle` in `text`. ASCII needles match whole words (a plural `s` or `es`
/// included); others match anywhere, or only where no Hangul precedes when `word_start`.
pub(crate) fn find_term(text: &str, needle: &str, word_start: bool) -> Vec<(usize, usize)> {
    if needle.is_empty() {
        return Vec::new();
    }
    let ascii = needle.is_ascii();
    let mut spans = Vec::new();
    for (start, _) in text.match_indices(needle) {
        let before = text[..start].chars().next_back();
        let mut end = start + needle.len();
        if ascii {
            if before.is_some_and(|c| c.is_ascii_alphanumeric()) {
                continue;
            }
            let rest = &text[end..];
            for plural in ["es", "s"] {
                if rest.starts_with(plural)
                    && rest[plural.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| !c.is_ascii_alphanumeric())
                {
                    end += plural.len();
                    break;
                }
            }
            if text[end..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            {
                continue;
            }
        } else if word_start && before.is_some_and(is_hangul) {
            continue;
        }
        spans.push((start, end));
    }
    spans
}

pub(crate) fn contains_any(text: &str, phrases: &[&str]) -> bool {
    phrases
        .iter()
        .any(|phrase| !find_term(text, phrase, false).is_empty())
}

/// Whether the text between a negation and a term (or two negated terms) keeps them together.
fn negation_gap_ok(gap: &str) -> bool {
    if NEGATION_STOPS
        .iter()
        .any(|stop| !find_term(gap, stop, false).is_empty())
    {
        return false;
    }
    let meaningful: usize = gap
        .split(|c: char| c.is_whitespace() || c == ',' || c == '/')
        .filter(|word| !NEGATION_FILLERS.contains(word))
        .map(|word| word.chars().count())
        .sum();
    meaningful <= NEGATION_REACH
}

/// Indices of the colour and brand hits a negation rules out: "빨간색이나 분홍색은 말고",
/// "not red or pink", "except Nike".
fn negated_hits(text: &str, hits: &[Hit]) -> Vec<usize> {
    let negatable: Vec<usize> = hits
        .iter()
        .enumerate()
        .filter(|(_, hit)| matches!(hit.kind, HitKind::Color(_) | HitKind::Brand(_)))
        .map(|(index, _)| index)
        .collect();
    let mut negated = Vec::new();
    for marker in NEGATION_AFTER {
        for (marker_start, _) in find_term(text, marker, false) {
            // Walk back from the marker through a chain of terms.
            let mut edge = marker_start;
            for &index in negatable.iter().rev() {
                let hit = hits[index];
                if hit.end > edge {
                    continue;
                }
                if !negation_gap_ok(&text[hit.end..edge]) {
                    break;
                }
                negated.push(index);
                edge = hit.start;
            }
        }
    }
    for marker in NEGATION_BEFORE {
        for (_, marker_end) in find_term(text, marker, false) {
            let mut edge = marker_end;
            for &index in &negatable {
                let hit = hits[index];
                if hit.start < edge {
                    continue;
                }
                if !negation_gap_ok(&text[edge..hit.start]) {
                    break;
                }
                negated.push(index);
                edge = hit.end;
            }
        }
    }
    negated
}

#[cfg(test)]
mod tests;
