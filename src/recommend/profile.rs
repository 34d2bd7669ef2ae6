//! The member's learned preference profile (`user_preferences.profile`): how the
//! `preference-analysis` group merges behaviour and messages into it, and how the hybrid
//! engine turns it into soft boosts for one request. Pure: no I/O.
//!
//! The request wins over the profile: a family of the profile the current intent speaks
//! about (wanted colours, brands, styles, a price range; excluded colours and brands; the
//! kind of product) is dropped or narrowed, never added to what was asked.

use crate::catalog::attributes::ProductAttributes;
use crate::catalog::InteractionKind;
use crate::db::entities::product;
use crate::intent::{PriceRange, Sentiment, ShoppingIntent};
use crate::recommend::explanation::Reason;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Messages kept in the profile.
const RECENT_MESSAGES: usize = 5;
/// Event ids remembered so a redelivered event is not merged twice.
const APPLIED_IDS: usize = 32;
/// Entries kept per frequency map.
const MAX_ENTRIES: usize = 32;
const RECENT_COLORS: usize = 8;
/// Half-life of a category weight, in days.
const CATEGORY_HALF_LIFE_DAYS: f64 = 30.0;
/// Entries of each family that can earn a boost (the strongest, or the most recent colours).
const BOOSTED_ENTRIES: usize = 3;
/// The profile's price range is widened by this share on both ends before it boosts.
const PRICE_SLACK: f64 = 0.2;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreferenceProfile {
    /// Category path → decayed weight (views 1, carts 3, orders 5, asked for 2).
    pub categories: BTreeMap<String, f64>,
    /// Style → how often seen.
    pub styles: BTreeMap<String, u32>,
    /// Most recent first.
    pub colors: Vec<String>,
    pub brands: BTreeMap<String, u32>,
    pub keywords: BTreeMap<String, u32>,
    /// Lowest and highest price carted or bought, or asked for.
    pub price_min_minor: Option<i64>,
    pub price_max_minor: Option<i64>,
    pub sentiment: Sentiment,
    /// 0–1, grows with the number of signals.
    pub confidence: f64,
    pub signals: u64,
    pub recent_messages: Vec<String>,
    pub last_event_at: Option<DateTime<Utc>>,
    pub applied_event_ids: Vec<Uuid>,
}

fn bump(map: &mut BTreeMap<String, u32>, key: &str) {
    *map.entry(key.to_lowercase()).or_default() += 1;
    if map.len() > MAX_ENTRIES {
        if let Some(rarest) = map.iter().min_by_key(|(_, n)| **n).map(|(k, _)| k.clone()) {
            map.remove(&rarest);
        }
    }
}

impl PreferenceProfile {
    fn decay_to(&mut self, at: DateTime<Utc>) {
        if let Some(last) = self.last_event_at {
            let days = (at - last).num_seconds().max(0) as f64 / 86_400.0;
            let factor = 0.5f64.powf(days / CATEGORY_HALF_LIFE_DAYS);
            for weight in self.categories.values_mut() {
                *weight *= factor;
            }
        }
        if self.last_event_at.is_none_or(|last| at > last) {
            self.last_event_at = Some(at);
        }
    }

    fn count_signal(&mut self) {
        self.signals += 1;
        self.confidence = 1.0 - (-(self.signals as f64) / 10.0).exp();
    }

    fn note_color(&mut self, color: &str) {
        let color = color.to_lowercase();
        self.colors.retain(|c| *c != color);
        self.colors.insert(0, color);
        self.colors.truncate(RECENT_COLORS);
    }

    fn note_price(&mut self, price: i64) {
        self.price_min_minor = Some(self.price_min_minor.map_or(price, |p| p.min(price)));
        self.price_max_minor = Some(self.price_max_minor.map_or(price, |p| p.max(price)));
    }

    /// Merges a view (1), cart add (3) or order (5) of `product`.
    pub fn merge_behaviour(
        &mut self,
        kind: InteractionKind,
        product: &product::Model,
        at: DateTime<Utc>,
    ) {
        self.decay_to(at);
        *self.categories.entry(product.category.clone()).or_default() += kind.weight();
        let attributes = ProductAttributes::of(&product.attributes);
        for style in &attributes.styles {
            bump(&mut self.styles, style);
        }
        if kind != InteractionKind::View {
            if let Some(color) = attributes.colors.first() {
                self.note_color(color);
            }
            if let Some(price) = product.price_minor {
                self.note_price(price);
            }
            if let Some(brand) = &product.brand {
                bump(&mut self.brands, brand);
            }
        }
        self.count_signal();
    }

    /// Merges a message and, when analysed, its intent.
    pub fn merge_message(
        &mut self,
        text: &str,
        intent: Option<&ShoppingIntent>,
        at: DateTime<Utc>,
    ) {
        self.decay_to(at);
        self.recent_messages.push(text.chars().take(500).collect());
        let excess = self.recent_messages.len().saturating_sub(RECENT_MESSAGES);
        self.recent_messages.drain(..excess);
        if let Some(intent) = intent {
            for category in &intent.categories {
                *self.categories.entry(category.clone()).or_default() += 2.0;
            }
            for style in &intent.styles {
                bump(&mut self.styles, style);
            }
            for color in &intent.colors {
                self.note_color(color);
            }
            for brand in &intent.brands {
                bump(&mut self.brands, brand);
            }
            for keyword in &intent.keywords {
                bump(&mut self.keywords, keyword);
            }
            if let Some(range) = intent.price_range {
                for price in [range.min_minor, range.max_minor].into_iter().flatten() {
                    self.note_price(price);
                }
            }
            self.sentiment = intent.sentiment;
        }
        self.count_signal();
    }

    /// Whether `event_id` was merged already; remembers it otherwise.
    pub fn first_time(&mut self, event_id: Uuid) -> bool {
        if self.applied_event_ids.contains(&event_id) {
            return false;
        }
        self.applied_event_ids.push(event_id);
        let excess = self.applied_event_ids.len().saturating_sub(APPLIED_IDS);
        self.applied_event_ids.drain(..excess);
        true
    }

    /// The top categories, normalised to sum 1.
    pub fn top_categories(&self, n: usize) -> BTreeMap<String, f64> {
        let mut ranked: Vec<(&String, &f64)> = self.categories.iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(a.1));
        ranked.truncate(n);
        let total: f64 = ranked
            .iter()
            .map(|(_, w)| **w)
            .sum::<f64>()
            .max(f64::EPSILON);
        ranked
            .into_iter()
            .map(|(c, w)| (c.clone(), w / total))
            .collect()
    }
}

/// The strongest `n` entries of a map, each relative to the strongest (which is 1).
fn strongest<W: Copy + Into<f64>>(map: &BTreeMap<String, W>, n: usize) -> Vec<(String, f32)> {
    let mut ranked: Vec<(&String, f64)> = map
        .iter()
        .map(|(k, w)| (k, (*w).into()))
        .filter(|(_, w)| *w > 0.0)
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    ranked.truncate(n);
    let top = ranked.first().map_or(1.0, |(_, w)| *w);
    ranked
        .into_iter()
        .map(|(k, w)| (k.clone(), (w / top) as f32))
        .collect()
}

/// The profile as soft preferences for one request: what each family boosts and by how much
/// (each entry relative to its family's strongest, 1), after the request overrode it, and
/// the strength of the whole (confidence × age decay).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileBoost {
    pub strength: f32,
    /// Families the profile had before the request overrode any: the divisor of the score,
    /// so a family the request speaks about takes its share away rather than handing it to
    /// the others.
    pub families: usize,
    pub categories: Vec<(String, f32)>,
    pub brands: Vec<(String, f32)>,
    pub colors: Vec<(String, f32)>,
    pub styles: Vec<(String, f32)>,
    /// Widened by [`PRICE_SLACK`].
    pub price: Option<PriceRange>,
}

impl ProfileBoost {
    /// What `profile` may boost in a request for `intent`, at `now`; `None` when nothing (no
    /// profile, no confidence, or everything overridden). `half_life_days` ≤ 0: no decay.
    pub fn for_request(
        profile: &PreferenceProfile,
        intent: &ShoppingIntent,
        now: DateTime<Utc>,
        half_life_days: f64,
    ) -> Option<Self> {
        let age_days = profile
            .last_event_at
            .map_or(0.0, |at| (now - at).num_seconds().max(0) as f64 / 86_400.0);
        let decay = if half_life_days > 0.0 {
            0.5f64.powf(age_days / half_life_days)
        } else {
            1.0
        };
        let strength = (profile.confidence.clamp(0.0, 1.0) * decay) as f32;
        if strength <= f32::EPSILON {
            return None;
        }
        let categories = strongest(&profile.categories, BOOSTED_ENTRIES);
        let brands = strongest(&profile.brands, BOOSTED_ENTRIES);
        let styles = strongest(&profile.styles, BOOSTED_ENTRIES);
        // Most recent first: 1, 1/2, 1/3.
        let colors: Vec<(String, f32)> = profile
            .colors
            .iter()
            .take(BOOSTED_ENTRIES)
            .enumerate()
            .map(|(i, c)| (c.to_lowercase(), 1.0 / (i + 1) as f32))
            .collect();
        let price = match (profile.price_min_minor, profile.price_max_minor) {
            (Some(min), Some(max)) if max > 0 => Some(PriceRange {
                min_minor: Some(((min as f64) * (1.0 - PRICE_SLACK)).floor() as i64),
                max_minor: Some(((max as f64) * (1.0 + PRICE_SLACK)).ceil() as i64),
            }),
            _ => None,
        };
        let families = [
            !categories.is_empty(),
            !brands.is_empty(),
            !colors.is_empty(),
            !styles.is_empty(),
            price.is_some(),
        ]
        .into_iter()
        .filter(|has| *has)
        .count();
        // The request overrides: asked-for colours/brands/styles/price replace the profile's,
        // exclusions remove, and only profile categories of the asked kind stay.
        let boost = Self {
            strength,
            families,
            categories: categories
                .into_iter()
                .filter(|(c, _)| intent.category_matches(c))
                .collect(),
            brands: if intent.brands.is_empty() {
                brands
                    .into_iter()
                    .filter(|(b, _)| {
                        !intent
                            .excluded_brands
                            .iter()
                            .any(|x| x.eq_ignore_ascii_case(b))
                    })
                    .collect()
            } else {
                Vec::new()
            },
            colors: if intent.colors.is_empty() {
                colors
                    .into_iter()
                    .filter(|(c, _)| {
                        !intent
                            .excluded_colors
                            .iter()
                            .any(|x| x.eq_ignore_ascii_case(c))
                    })
                    .collect()
            } else {
                Vec::new()
            },
            styles: if intent.styles.is_empty() {
                styles
            } else {
                Vec::new()
            },
            price: price.filter(|_| intent.price_range.is_none()),
        };
        let empty = boost.categories.is_empty()
            && boost.brands.is_empty()
            && boost.colors.is_empty()
            && boost.styles.is_empty()
            && boost.price.is_none();
        (!empty).then_some(boost)
    }

    /// The product's boost in [0, `strength`] and the reasons, strongest family first:
    /// strength × the mean over the profile's families of the matched entry's weight.
    pub fn score(&self, product: &product::Model) -> (f32, Vec<Reason>) {
        let attributes = ProductAttributes::of(&product.attributes);
        let colors: Vec<String> = attributes.colors.iter().map(|c| c.to_lowercase()).collect();
        let styles: Vec<String> = attributes.styles.iter().map(|s| s.to_lowercase()).collect();
        let brand = product.brand.as_deref().unwrap_or_default();
        let mut hits: Vec<(f32, Reason)> = Vec::new();
        let in_category = |wanted: &str| {
            product.category == wanted
                || (product.category.starts_with(wanted)
                    && product.category.as_bytes().get(wanted.len()) == Some(&b'/'))
        };
        if let Some((c, w)) = self.categories.iter().find(|(c, _)| in_category(c)) {
            hits.push((*w, Reason::YouOftenLookAt(c.clone())));
        }
        if let Some((_, w)) = self
            .brands
            .iter()
            .find(|(b, _)| !brand.is_empty() && b.eq_ignore_ascii_case(brand))
        {
            hits.push((*w, Reason::BrandYouLike(brand.to_string())));
        }
        if let Some((c, w)) = self.colors.iter().find(|(c, _)| colors.contains(c)) {
            hits.push((*w, Reason::ColorYouLike(c.clone())));
        }
        if let Some((s, w)) = self.styles.iter().find(|(s, _)| styles.contains(s)) {
            hits.push((*w, Reason::StyleYouLike(s.clone())));
        }
        if let (Some(range), Some(price)) = (self.price, product.price_minor) {
            if range.contains(price) {
                hits.push((1.0, Reason::YourUsualPrice));
            }
        }
        // A fold from +0.0: an empty float `sum` is -0.0.
        let sum = hits.iter().fold(0.0f32, |sum, (w, _)| sum + w);
        let score = self.strength * sum / self.families.max(1) as f32;
        hits.sort_by(|a, b| b.0.total_cmp(&a.0));
        (score, hits.into_iter().map(|(_, r)| r).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use serde_json::json;

    fn jacket() -> product::Model {
        let now = Utc::now().into();
        product::Model {
            id: Uuid::nil(),
            sku: "J".into(),
            title: "Rain jacket".into(),
            description: String::new(),
            category: "outdoor/jackets".into(),
            brand: Some("Peak".into()),
            price_minor: Some(120_000),
            currency: "KRW".into(),
            stock: 3,
            attributes: json!({"colors": ["navy"], "style": ["sporty"]}),
            image_url: None,
            embedding: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn product(category: &str, brand: &str, color: &str, price: i64) -> product::Model {
        product::Model {
            category: category.into(),
            brand: Some(brand.into()),
            price_minor: Some(price),
            attributes: json!({"colors": [color]}),
            ..jacket()
        }
    }

    #[test]
    fn behaviour_builds_the_profile_and_old_categories_fade() {
        let mut profile = PreferenceProfile::default();
        let start = Utc::now();
        profile.merge_behaviour(InteractionKind::Order, &jacket(), start);
        assert_eq!(profile.categories["outdoor/jackets"], 5.0);
        assert_eq!(profile.colors, vec!["navy"]);
        assert_eq!(profile.price_max_minor, Some(120_000));
        assert_eq!(profile.brands["peak"], 1);
        let mut later = jacket();
        later.category = "beauty/skincare".into();
        profile.merge_behaviour(InteractionKind::View, &later, start + Duration::days(30));
        assert!(
            (profile.categories["outdoor/jackets"] - 2.5).abs() < 1e-9,
            "one half-life"
        );
        assert!(profile.confidence > 0.0 && profile.signals == 2);
    }

    #[test]
    fn messages_are_kept_and_a_redelivered_event_is_merged_once() {
        let mut profile = PreferenceProfile::default();
        for i in 0..7 {
            profile.merge_message(&format!("m{i}"), None, Utc::now());
        }
        assert_eq!(profile.recent_messages, vec!["m2", "m3", "m4", "m5", "m6"]);
        let id = Uuid::now_v7();
        assert!(profile.first_time(id));
        assert!(!profile.first_time(id));
    }

    /// A member who said they like red and Nike, and ordered a ₩100,000 outdoor jacket.
    fn red_nike_profile(now: DateTime<Utc>) -> PreferenceProfile {
        let mut profile = PreferenceProfile::default();
        let said = ShoppingIntent {
            colors: vec!["red".into()],
            brands: vec!["Nike".into()],
            ..ShoppingIntent::empty()
        };
        profile.merge_message("빨간색 나이키 좋아해요", Some(&said), now);
        profile.merge_behaviour(
            InteractionKind::Order,
            &product("outdoor/jackets", "Peak", "navy", 100_000),
            now,
        );
        profile
    }

    fn boost(profile: &PreferenceProfile, intent: &ShoppingIntent) -> Option<ProfileBoost> {
        ProfileBoost::for_request(profile, intent, Utc::now(), 30.0)
    }

    #[test]
    fn the_profile_boosts_what_the_member_likes_with_reasons() {
        let profile = red_nike_profile(Utc::now());
        let any = ShoppingIntent::empty();
        let boost = boost(&profile, &any).unwrap();
        assert_eq!(boost.families, 4, "{boost:?}"); // no styles
        let (red_nike, reasons) = boost.score(&product("shoes/running", "Nike", "red", 500_000));
        let (plain, none) = boost.score(&product("shoes/running", "Adidas", "white", 500_000));
        assert!(red_nike > 0.0 && none.is_empty());
        assert!(plain == 0.0 && plain.is_sign_positive(), "{plain}");
        assert!(reasons.contains(&Reason::ColorYouLike("red".into())));
        assert!(reasons.contains(&Reason::BrandYouLike("Nike".into())));
        // Never more than the profile's strength (its confidence, fresh).
        let (everything, _) = boost.score(&product("outdoor/jackets", "nike", "red", 100_000));
        assert!(everything <= boost.strength + 1e-6 && everything > red_nike);
        // Usual price: within the ordered ₩100,000 ± 20 %.
        let (usual, reasons) = boost.score(&product("home", "X", "white", 115_000));
        assert!(usual > 0.0);
        assert_eq!(reasons, [Reason::YourUsualPrice]);
    }

    #[test]
    fn what_the_request_says_overrides_the_profile() {
        let profile = red_nike_profile(Utc::now());
        let red = product("shoes/running", "Adidas", "red", 500_000);
        let nike = product("shoes/running", "Nike", "white", 500_000);
        let usual = product("home", "X", "white", 100_000);
        let jacket = product("outdoor/jackets", "X", "white", 500_000);
        // Asking for blue: red is not boosted; Nike still is.
        let blue = ShoppingIntent {
            colors: vec!["blue".into()],
            ..ShoppingIntent::empty()
        };
        let b = boost(&profile, &blue).unwrap();
        assert_eq!(b.score(&red).0, 0.0);
        assert!(b.score(&nike).0 > 0.0);
        // Ruling red out, or asking for another brand.
        let not_red = ShoppingIntent {
            excluded_colors: vec!["red".into()],
            ..ShoppingIntent::empty()
        };
        assert_eq!(boost(&profile, &not_red).unwrap().score(&red).0, 0.0);
        let adidas = ShoppingIntent {
            brands: vec!["Adidas".into()],
            ..ShoppingIntent::empty()
        };
        assert_eq!(boost(&profile, &adidas).unwrap().score(&nike).0, 0.0);
        let no_nike = ShoppingIntent {
            excluded_brands: vec!["NIKE".into()],
            ..ShoppingIntent::empty()
        };
        assert_eq!(boost(&profile, &no_nike).unwrap().score(&nike).0, 0.0);
        // A price in the request: the usual price range does not act.
        let budget = ShoppingIntent {
            price_range: Some(PriceRange {
                min_minor: None,
                max_minor: Some(600_000),
            }),
            ..ShoppingIntent::empty()
        };
        assert_eq!(boost(&profile, &budget).unwrap().score(&usual).0, 0.0);
        // Another kind of product asked for: the profile's categories do not act.
        let shoes = ShoppingIntent {
            categories: vec!["shoes".into()],
            ..ShoppingIntent::empty()
        };
        let b = boost(&profile, &shoes).unwrap();
        assert_eq!(b.score(&jacket).0, 0.0);
        // …and an overridden family takes its share away instead of handing it on.
        let any = boost(&profile, &ShoppingIntent::empty()).unwrap();
        assert_eq!(b.score(&nike).0, any.score(&nike).0);
        // Everything overridden: nothing to boost.
        let all = ShoppingIntent {
            categories: vec!["shoes".into()],
            colors: vec!["blue".into()],
            brands: vec!["Adidas".into()],
            styles: vec!["minimal".into()],
            price_range: budget.price_range,
            ..ShoppingIntent::empty()
        };
        assert_eq!(boost(&profile, &all), None);
    }

    #[test]
    fn confidence_and_age_weigh_the_boost() {
        let now = Utc::now();
        let profile = red_nike_profile(now);
        let red = product("shoes/running", "Adidas", "red", 500_000);
        let any = ShoppingIntent::empty();
        let fresh = ProfileBoost::for_request(&profile, &any, now, 30.0).unwrap();
        assert!((fresh.strength as f64 - profile.confidence).abs() < 1e-6);
        let month =
            ProfileBoost::for_request(&profile, &any, now + Duration::days(30), 30.0).unwrap();
        assert!((month.score(&red).0 - fresh.score(&red).0 / 2.0).abs() < 1e-6);
        // No decay with a half-life of 0; more signals, more confidence, more boost.
        let never = ProfileBoost::for_request(&profile, &any, now + Duration::days(300), 0.0);
        assert_eq!(never.unwrap().strength, fresh.strength);
        let mut surer = profile.clone();
        for _ in 0..10 {
            surer.merge_message("빨간색", None, now);
        }
        let surer = ProfileBoost::for_request(&surer, &any, now, 30.0).unwrap();
        assert!(surer.score(&red).0 > fresh.score(&red).0);
        // An empty profile boosts nothing.
        assert_eq!(
            ProfileBoost::for_request(&PreferenceProfile::default(), &any, now, 30.0),
            None
        );
    }
}
