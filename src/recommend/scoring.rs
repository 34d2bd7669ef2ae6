//! The pure half of the hybrid recommender: hard filters, the intent signal, rank or
//! min-max normalisation, the weighted total, MMR diversity and explanations from the
//! breakdown.

use crate::analysis::ReplyLanguage;
use crate::catalog::attributes::ProductAttributes;
use crate::catalog::money::Currency;
use crate::config::ScoreNormalisation;
use crate::db::entities::product;
use crate::intent::{HardConstraint, ShoppingIntent};
use crate::recommend::explanation::{Explanation, Reason};
use crate::recommend::{RecommendedProduct, ScoreBreakdown};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub content: f32,
    pub collaborative: f32,
    pub intent: f32,
    /// Of the learned profile's boost (already in [0, 1], never normalised, so a weak or old
    /// profile stays weak).
    pub profile: f32,
    /// Subtracted × the member's rejection of the product (in [0, 1], never normalised).
    pub rejection: f32,
}

/// How the signals are normalised and combined, besides the weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fusion {
    pub normalisation: ScoreNormalisation,
    /// c of the rank normalisation (c + 1) / (c + rank).
    pub rank_constant: f32,
    /// Share of the content signal taken from the lexical match when there is one.
    pub lexical_share: f32,
    /// Share of popularity in the collaborative signal of a member with history.
    pub cf_popularity_share: f32,
}

impl Default for Fusion {
    fn default() -> Self {
        Self {
            normalisation: ScoreNormalisation::MinMax,
            rank_constant: 60.0,
            lexical_share: 0.0,
            cf_popularity_share: 0.2,
        }
    }
}

/// A candidate with its raw (unnormalised) signals and the facts its explanation may quote.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub product: product::Model,
    /// Embedding cosine to the query (or to the member's taste).
    pub content: f32,
    /// Full-text rank of the request's words (0: not among the lexical matches).
    pub lexical: f32,
    pub collaborative: f32,
    pub popularity: f32,
    /// The member's item that contributed most to `collaborative`, by title.
    pub bought_with: Option<String>,
    pub matched: Vec<Reason>,
    pub intent: f32,
    /// The learned profile's boost (`profile::ProfileBoost::score`) and its reasons.
    pub profile: f32,
    pub profile_reasons: Vec<Reason>,
    /// The member's rejection of the product (`rejection::penalties`), 0 when none.
    pub rejected: f32,
}

/// The product's colours and styles, lower-cased for matching.
fn lowercase_attributes(product: &product::Model) -> ProductAttributes {
    let mut parsed = ProductAttributes::of(&product.attributes);
    for word in parsed.colors.iter_mut().chain(parsed.styles.iter_mut()) {
        *word = word.to_lowercase();
    }
    parsed
}

/// Whether the product passes every hard constraint of the intent.
pub fn passes_filters(intent: &ShoppingIntent, product: &product::Model) -> bool {
    HardConstraint::RELAXATION_ORDER
        .iter()
        .all(|constraint| !breaks(intent, *constraint, product))
}

/// The hard constraints of the intent the product breaks, in relaxation order.
pub fn broken_constraints(
    intent: &ShoppingIntent,
    product: &product::Model,
) -> Vec<HardConstraint> {
    HardConstraint::RELAXATION_ORDER
        .into_iter()
        .filter(|constraint| breaks(intent, *constraint, product))
        .collect()
}

/// Whether the product breaks one hard constraint of the intent (the only place the filter
/// rules live).
fn breaks(intent: &ShoppingIntent, constraint: HardConstraint, product: &product::Model) -> bool {
    match constraint {
        HardConstraint::InStock => intent.in_stock_only && product.stock <= 0,
        HardConstraint::Category => !intent.category_matches(&product.category),
        HardConstraint::Price => intent.price_range.is_some_and(|range| {
            product
                .price_minor
                .is_none_or(|price| !range.contains(price))
        }),
        HardConstraint::ExcludedBrand => product.brand.as_ref().is_some_and(|brand| {
            intent
                .excluded_brands
                .iter()
                .any(|b| b.eq_ignore_ascii_case(brand))
        }),
        HardConstraint::ExcludedColor => {
            // A product whose only colours are excluded is out; one that also comes in an
            // allowed colour stays.
            let colors = lowercase_attributes(product).colors;
            !intent.excluded_colors.is_empty()
                && !colors.is_empty()
                && colors.iter().all(|c| intent.excluded_colors.contains(c))
        }
    }
}

/// How a product outside the request breaks it, for its explanation.
fn outside_reasons(
    intent: &ShoppingIntent,
    broken: &[HardConstraint],
    product: &product::Model,
) -> Vec<Reason> {
    broken
        .iter()
        .filter_map(|constraint| match constraint {
            HardConstraint::Price => {
                let range = intent.price_range?;
                Some(match product.price_minor {
                    None => Reason::NoPrice,
                    Some(price) => match (range.min_minor, range.max_minor) {
                        (_, Some(limit)) if price > limit => Reason::AbovePrice { limit, price },
                        (Some(floor), _) => Reason::BelowPrice { floor, price },
                        _ => return None,
                    },
                })
            }
            HardConstraint::ExcludedColor => {
                Some(Reason::ExcludedColors(lowercase_attributes(product).colors))
            }
            HardConstraint::ExcludedBrand => product.brand.clone().map(Reason::ExcludedBrand),
            HardConstraint::InStock => Some(Reason::OutOfStock),
            HardConstraint::Category => Some(Reason::OtherCategory(product.category.clone())),
        })
        .collect()
}

/// How well the product matches the soft preferences: the share of wanted styles, colours,
/// brands and keywords it has, with the reasons. `extra` are the profile's preferences
/// (weighted half).
pub fn intent_match(
    intent: &ShoppingIntent,
    profile: &ShoppingIntent,
    product: &product::Model,
) -> (f32, Vec<Reason>) {
    let ProductAttributes { colors, styles } = lowercase_attributes(product);
    let text = format!(
        "{} {} {} {}",
        product.title, product.description, product.category, product.attributes
    )
    .to_lowercase();
    let brand = product.brand.clone().unwrap_or_default();
    let mut score = 0.0;
    let mut reasons = Vec::new();
    for (source, factor) in [(intent, 1.0f32), (profile, 0.5)] {
        let mut hits = 0.0;
        let mut wanted = 0.0;
        for keyword in &source.keywords {
            wanted += 1.0;
            if text.contains(keyword.as_str()) {
                hits += 1.0;
                reasons.push(Reason::Matches(keyword.clone()));
            }
        }
        for style in &source.styles {
            wanted += 1.0;
            if styles.contains(style) {
                hits += 1.0;
                reasons.push(Reason::Style(style.clone()));
            }
        }
        for color in &source.colors {
            wanted += 1.0;
            if colors.contains(color) {
                hits += 1.0;
                reasons.push(Reason::Color(color.clone()));
            }
        }
        for wanted_brand in &source.brands {
            wanted += 1.0;
            if wanted_brand.eq_ignore_ascii_case(&brand) {
                hits += 1.0;
                reasons.push(Reason::Brand(brand.clone()));
            }
        }
        if !source.categories.is_empty() && source.category_matches(&product.category) {
            wanted += 1.0;
            hits += 1.0;
        }
        if wanted > 0.0 {
            score += factor * hits / wanted;
        }
    }
    reasons.dedup();
    (score, reasons)
}

/// Min-max normalises in place; a constant signal becomes 1 where positive, else 0.
pub fn normalise(values: &mut [f32]) {
    let (min, max) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    for v in values.iter_mut() {
        *v = if max - min > f32::EPSILON {
            (*v - min) / (max - min)
        } else if max > 0.0 {
            1.0
        } else {
            0.0
        };
    }
}

/// Rank normalisation in place, as in reciprocal rank fusion: the candidate at rank r (by
/// descending value, ties sharing the better rank) gets (c + 1) / (c + r), so the best is
/// 1 and the curve flattens with c; a value ≤ 0 (the signal did not find it) gets 0.
/// Unlike min-max, one outlier cannot squash everyone else towards 0.
pub fn rank_normalise(values: &mut [f32], c: f32) {
    let mut order: Vec<usize> = (0..values.len()).filter(|&i| values[i] > 0.0).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let mut normalised = vec![0.0; values.len()];
    let mut rank = 0usize;
    let mut previous = f32::NAN;
    for (position, &i) in order.iter().enumerate() {
        if values[i] != previous {
            rank = position + 1;
            previous = values[i];
        }
        normalised[i] = (c + 1.0) / (c + rank as f32);
    }
    values.copy_from_slice(&normalised);
}

/// Standard scores beyond this many standard deviations are clipped by [`z_normalise`].
pub const Z_CLIP: f32 = 3.0;

/// Standard scores brought to [0, 1], in place: z = (v − mean) / standard deviation,
/// clipped to ±[`Z_CLIP`], then (z + clip) / (2 · clip); a constant signal becomes 0. Unlike
/// min-max, the spread of the bulk of the candidates sets the scale, not the two extremes;
/// every signal gets the same affine map, so the totals rank as the plain standard scores
/// would (but for the clipped tails), and stay on the scale of the (unnormalised) profile
/// boost and rejection penalty.
pub fn z_normalise(values: &mut [f32]) {
    if values.is_empty() {
        return;
    }
    let n = values.len() as f32;
    let mean = values.iter().sum::<f32>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt();
    for v in values.iter_mut() {
        *v = if sd > f32::EPSILON {
            let z = ((*v - mean) / sd).clamp(-Z_CLIP, Z_CLIP);
            (z + Z_CLIP) / (2.0 * Z_CLIP)
        } else {
            0.0
        };
    }
}

/// Normalises every signal over the candidates and computes the weighted totals. The
/// content signal is the query relevance: the embedding cosine, blended with the lexical
/// match when the request had words (`has_lexical`). With no member history the
/// collaborative signal is popularity alone (cold start); otherwise popularity contributes
/// `cf_popularity_share` of it. The intent signal is a share of matched preferences, with many ties, so
/// it is always min-max normalised.
pub fn score(
    candidates: &[Candidate],
    weights: Weights,
    has_history: bool,
    fusion: Fusion,
    has_lexical: bool,
) -> Vec<ScoreBreakdown> {
    let column = |f: &dyn Fn(&Candidate) -> f32, normalisation: ScoreNormalisation| {
        let mut values: Vec<f32> = candidates.iter().map(f).collect();
        match normalisation {
            ScoreNormalisation::MinMax => normalise(&mut values),
            ScoreNormalisation::Rank => rank_normalise(&mut values, fusion.rank_constant),
            ScoreNormalisation::ZScore => z_normalise(&mut values),
        }
        values
    };
    let by = fusion.normalisation;
    let mut content = column(&|c| c.content, by);
    if has_lexical {
        let share = fusion.lexical_share.clamp(0.0, 1.0);
        let lexical = column(&|c| c.lexical, by);
        for (value, lexical) in content.iter_mut().zip(lexical) {
            *value = (1.0 - share) * *value + share * lexical;
        }
    }
    let cf = column(&|c| c.collaborative, by);
    let popularity = column(&|c| c.popularity, by);
    let intent = column(&|c| c.intent, ScoreNormalisation::MinMax);
    (0..candidates.len())
        .map(|i| {
            let collaborative = if has_history {
                let share = fusion.cf_popularity_share.clamp(0.0, 1.0);
                (1.0 - share) * cf[i] + share * popularity[i]
            } else {
                popularity[i]
            };
            let profile = candidates[i].profile;
            let rejected = candidates[i].rejected;
            ScoreBreakdown {
                content: content[i],
                collaborative,
                intent: intent[i],
                profile,
                rejected,
                total: weights.content * content[i]
                    + weights.collaborative * collaborative
                    + weights.intent * intent[i]
                    + weights.profile * profile
                    - weights.rejection * rejected,
            }
        })
        .collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    // The stored embeddings are L2-normalised.
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Maximal marginal relevance: picks `limit` indices, each maximising
/// `λ·total − (1−λ)·redundancy`, where redundancy is the largest similarity to a picked
/// product above `threshold`, rescaled to [0, 1] ((s − t) / (1 − t); with t = 0 the plain
/// similarity). Similarity is the embedding cosine, or 1 for the same brand in the same
/// category when either has no embedding. A threshold near 1 makes diversity a tie-breaker
/// among near-copies instead of a pull away from everything the list already has.
pub fn diversify(
    candidates: &[Candidate],
    scores: &[ScoreBreakdown],
    lambda: f32,
    threshold: f32,
    limit: usize,
) -> Vec<usize> {
    let threshold = threshold.clamp(0.0, 0.99);
    let embeddings: Vec<Option<&[f32]>> = candidates
        .iter()
        .map(|c| c.product.embedding.as_ref().map(|e| e.as_slice()))
        .collect();
    let similarity = |a: usize, b: usize| match (&embeddings[a], &embeddings[b]) {
        (Some(x), Some(y)) => cosine(x, y),
        _ => {
            let (pa, pb) = (&candidates[a].product, &candidates[b].product);
            if pa.category == pb.category && pa.brand == pb.brand {
                1.0
            } else {
                0.0
            }
        }
    };
    // Each candidate's largest similarity to the picked so far, updated with only the newest
    // pick: limit × n similarities instead of limit² × n / 2 (the same maxima, so the same
    // picks as comparing against every picked product each round).
    let mut redundancy = vec![0.0f32; candidates.len()];
    let mut picked: Vec<usize> = Vec::new();
    let mut left: Vec<usize> = (0..candidates.len()).collect();
    while picked.len() < limit && !left.is_empty() {
        if let Some(&last) = picked.last() {
            for &i in &left {
                // Only near-copies count: similarity above the threshold, rescaled to [0, 1].
                let near_copy = ((similarity(i, last) - threshold) / (1.0 - threshold)).max(0.0);
                redundancy[i] = redundancy[i].max(near_copy);
            }
        }
        let (position, _) = left
            .iter()
            .enumerate()
            .map(|(position, &i)| {
                (
                    position,
                    lambda * scores[i].total - (1.0 - lambda) * redundancy[i],
                )
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .expect("left is not empty");
        picked.push(left.remove(position));
    }
    picked
}

/// The reasons for a card, from the breakdown and real facts; a product outside the request
/// (`broken` not empty) says first how it breaks it.
pub fn explain(
    candidate: &Candidate,
    score: &ScoreBreakdown,
    intent: &ShoppingIntent,
    has_query: bool,
    popular_in: Option<&str>,
    broken: &[HardConstraint],
) -> Explanation {
    let product = &candidate.product;
    let mut reasons = outside_reasons(intent, broken, product);
    reasons.extend(candidate.matched.iter().take(2).cloned());
    // What the learned profile boosted, strongest first (the request's own matches before).
    if candidate.profile > 0.0 {
        reasons.extend(candidate.profile_reasons.iter().take(2).cloned());
    }
    if let Some(range) = intent.price_range {
        if !broken.contains(&HardConstraint::Price) && !range.is_unbounded() {
            reasons.push(Reason::WithinPrice(range));
        }
    }
    if score.collaborative >= 0.5 {
        match (&candidate.bought_with, popular_in) {
            (Some(title), _) if candidate.collaborative > 0.0 => {
                reasons.push(Reason::BoughtWith(title.clone()))
            }
            (_, Some(category)) => reasons.push(Reason::PopularIn(category.to_string())),
            _ if candidate.popularity > 0.0 => reasons.push(Reason::PopularNow),
            _ => {}
        }
    }
    if score.content >= 0.5 && candidate.content > 0.0 {
        reasons.push(if has_query {
            Reason::CloseToQuery
        } else {
            Reason::SimilarToTaste
        });
    }
    if reasons.is_empty() {
        reasons.push(Reason::PickFrom(product.category.clone()));
    }
    Explanation {
        reasons,
        currency: product.currency.trim().parse::<Currency>().ok(),
    }
}

/// The response item for a scored candidate, explained in `language`; `outside_request`:
/// the hard constraints it breaks (empty when it meets the request).
pub fn to_recommended(
    candidate: &Candidate,
    score: ScoreBreakdown,
    explanation: &Explanation,
    language: ReplyLanguage,
    outside_request: Vec<HardConstraint>,
) -> RecommendedProduct {
    let (explanation, reasons) = explanation.render(language);
    let p = &candidate.product;
    RecommendedProduct {
        id: p.id,
        sku: p.sku.clone(),
        title: p.title.clone(),
        category: p.category.clone(),
        brand: p.brand.clone(),
        price_minor: p.price_minor,
        currency: p.currency.clone(),
        price_display: p.price_minor.and_then(|m| {
            p.currency
                .trim()
                .parse::<Currency>()
                .ok()
                .map(|c| c.format(m))
        }),
        stock: p.stock,
        image_url: p.image_url.clone(),
        score,
        explanation,
        reasons,
        outside_request,
    }
}

/// Ids in `ids` not yet in `seen`, in order.
pub fn fresh(ids: impl IntoIterator<Item = Uuid>, seen: &mut Vec<Uuid>) -> Vec<Uuid> {
    let mut out = Vec::new();
    for id in ids {
        if !seen.contains(&id) {
            seen.push(id);
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::prelude::PgVector;

    fn candidate(n: u128, embedding: &[f32], content: f32, lexical: f32) -> Candidate {
        let now = chrono::Utc::now().into();
        Candidate {
            product: product::Model {
                id: Uuid::from_u128(n),
                sku: format!("S{n}"),
                title: format!("Product {n}"),
                description: String::new(),
                category: "home".into(),
                brand: None,
                price_minor: None,
                currency: "KRW".into(),
                stock: 1,
                attributes: serde_json::json!({}),
                image_url: None,
                embedding: Some(PgVector::from(embedding.to_vec())),
                created_at: now,
                updated_at: now,
            },
            content,
            lexical,
            collaborative: 0.0,
            popularity: 0.0,
            bought_with: None,
            matched: Vec::new(),
            intent: 0.0,
            profile: 0.0,
            profile_reasons: Vec::new(),
            rejected: 0.0,
        }
    }

    fn clustered_candidate(n: usize, embedding: Option<Vec<f32>>, brand: &str) -> Candidate {
        let now = chrono::Utc::now().fixed_offset();
        Candidate {
            product: product::Model {
                id: Uuid::from_u128(n as u128),
                sku: format!("sku-{n}"),
                title: format!("product {n}"),
                description: String::new(),
                category: format!("cat-{}", n % 3),
                brand: Some(brand.to_string()),
                price_minor: Some(1000),
                currency: "KRW".into(),
                stock: 1,
                attributes: serde_json::json!({}),
                image_url: None,
                embedding: embedding.map(PgVector::from),
                created_at: now,
                updated_at: now,
            },
            content: 0.0,
            lexical: 0.0,
            collaborative: 0.0,
            popularity: 0.0,
            bought_with: None,
            matched: Vec::new(),
            intent: 0.0,
            profile: 0.0,
            profile_reasons: Vec::new(),
            rejected: 0.0,
        }
    }

    /// MMR as written in its definition: every round compares each candidate with every
    /// product picked so far.
    fn diversify_by_definition(
        candidates: &[Candidate],
        scores: &[ScoreBreakdown],
        lambda: f32,
        threshold: f32,
        limit: usize,
    ) -> Vec<usize> {
        let similarity = |a: usize, b: usize| {
            let (pa, pb) = (&candidates[a].product, &candidates[b].product);
            match (&pa.embedding, &pb.embedding) {
                (Some(x), Some(y)) => cosine(x.as_slice(), y.as_slice()),
                _ if pa.category == pb.category && pa.brand == pb.brand => 1.0,
                _ => 0.0,
            }
        };
        let mut picked: Vec<usize> = Vec::new();
        let mut left: Vec<usize> = (0..candidates.len()).collect();
        while picked.len() < limit && !left.is_empty() {
            let (position, _) = left
                .iter()
                .enumerate()
                .map(|(position, &i)| {
                    let redundancy = picked
                        .iter()
                        .map(|&p| ((similarity(i, p) - threshold) / (1.0 - threshold)).max(0.0))
                        .fold(0.0f32, f32::max);
                    (
                        position,
                        lambda * scores[i].total - (1.0 - lambda) * redundancy,
                    )
                })
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                .expect("left is not empty");
            picked.push(left.remove(position));
        }
        picked
    }

    #[test]
    fn incremental_mmr_picks_what_the_definition_picks() {
        // A deterministic pseudo-random catalog: clusters of near-duplicates, some products
        // without an embedding, repeated totals (ties).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 10_000) as f32 / 10_000.0
        };
        for round in 0..20 {
            let count = 5 + round * 10;
            let centres: Vec<Vec<f32>> = (0..4)
                .map(|_| (0..16).map(|_| next() - 0.5).collect())
                .collect();
            let candidates: Vec<Candidate> = (0..count)
                .map(|n| {
                    let embedding = (next() > 0.1).then(|| {
                        let mut v: Vec<f32> = centres[n % 4]
                            .iter()
                            .map(|c| c + 0.2 * (next() - 0.5))
                            .collect();
                        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                        v.iter_mut().for_each(|x| *x /= norm);
                        v
                    });
                    clustered_candidate(n, embedding, if n % 2 == 0 { "a" } else { "b" })
                })
                .collect();
            let scores: Vec<ScoreBreakdown> = (0..count)
                .map(|_| ScoreBreakdown {
                    total: (next() * 5.0).round() / 5.0,
                    ..ScoreBreakdown::default()
                })
                .collect();
            for (lambda, threshold, limit) in [
                (0.7, 0.0, 10),
                (0.7, 0.9, 10),
                (0.3, 0.5, 25),
                (1.0, 0.9, 5),
                (0.0, 0.0, count + 3),
            ] {
                assert_eq!(
                    diversify(&candidates, &scores, lambda, threshold, limit),
                    diversify_by_definition(&candidates, &scores, lambda, threshold, limit),
                    "round {round}, lambda {lambda}, threshold {threshold}, limit {limit}"
                );
            }
        }
    }

    #[test]
    fn rank_normalisation_shares_ties_and_zeroes_the_missing() {
        let mut values = [0.9, 0.0, 0.5, 0.9, 0.1];
        rank_normalise(&mut values, 60.0);
        // Ranks 1, –, 3, 1, 4.
        assert_eq!(values[0], 1.0);
        assert_eq!(values[3], 1.0);
        assert_eq!(values[1], 0.0);
        assert!((values[2] - 61.0 / 63.0).abs() < 1e-6);
        assert!((values[4] - 61.0 / 64.0).abs() < 1e-6);
    }

    #[test]
    fn z_normalisation_maps_clipped_standard_scores_to_the_unit_interval() {
        let mut values = [1.0, 2.0, 3.0];
        z_normalise(&mut values);
        let z = 1.0 / (2.0f32 / 3.0).sqrt();
        let map = |z: f32| (z + Z_CLIP) / (2.0 * Z_CLIP);
        assert!((values[0] - map(-z)).abs() < 1e-5);
        assert!((values[1] - 0.5).abs() < 1e-6);
        assert!((values[2] - map(z)).abs() < 1e-5);
        // One outlier among many equal values: clipped at +3 standard deviations.
        let mut outlier = [0.0; 20];
        outlier[0] = 1.0;
        z_normalise(&mut outlier);
        assert_eq!(outlier[0], 1.0);
        assert!(outlier[1] > 0.0 && outlier[1] < 0.5);
        let mut constant = [0.4, 0.4];
        z_normalise(&mut constant);
        assert_eq!(constant, [0.0, 0.0]);
    }

    #[test]
    fn the_popularity_share_of_the_collaborative_signal_is_a_setting() {
        // 1 is the CF favourite, 2 the popular one.
        let mut candidates = [
            candidate(1, &[1.0, 0.0], 0.0, 0.0),
            candidate(2, &[0.0, 1.0], 0.0, 0.0),
        ];
        candidates[0].collaborative = 1.0;
        candidates[1].popularity = 1.0;
        let weights = Weights {
            content: 0.0,
            collaborative: 1.0,
            intent: 0.0,
            profile: 0.0,
            rejection: 0.0,
        };
        let with = |share: f32| {
            let fusion = Fusion {
                cf_popularity_share: share,
                ..Fusion::default()
            };
            score(&candidates, weights, true, fusion, false)
        };
        let default = with(0.2);
        assert!((default[0].total - 0.8).abs() < 1e-6);
        assert!((default[1].total - 0.2).abs() < 1e-6);
        let pure = with(0.0);
        assert_eq!((pure[0].total, pure[1].total), (1.0, 0.0));
    }

    #[test]
    fn the_lexical_match_is_blended_into_the_content_signal() {
        let candidates = [
            candidate(1, &[1.0, 0.0], 0.9, 0.0),
            candidate(2, &[0.0, 1.0], 0.8, 0.4),
        ];
        let weights = Weights {
            content: 1.0,
            collaborative: 0.0,
            intent: 0.0,
            profile: 0.0,
            rejection: 0.0,
        };
        let fusion = Fusion {
            normalisation: ScoreNormalisation::Rank,
            rank_constant: 1.0,
            lexical_share: 0.5,
            ..Fusion::default()
        };
        let scores = score(&candidates, weights, false, fusion, true);
        // 1: content rank 1 (1.0), no lexical; 2: content rank 2 (2/3), lexical rank 1.
        assert!((scores[0].content - 0.5).abs() < 1e-6);
        assert!((scores[1].content - (0.5 * 2.0 / 3.0 + 0.5)).abs() < 1e-6);
        let without = score(&candidates, weights, false, fusion, false);
        assert!(without[0].total > without[1].total);
    }

    #[test]
    fn a_diversity_threshold_only_separates_near_copies() {
        // 1 is a near-copy of 0 (cosine 0.99); 2 is merely related to 0 (cosine 0.6);
        // 3 is unrelated to 0.
        let candidates = [
            candidate(1, &[1.0, 0.0], 0.0, 0.0),
            candidate(2, &[0.99, (1.0f32 - 0.99 * 0.99).sqrt()], 0.0, 0.0),
            candidate(3, &[0.6, 0.8], 0.0, 0.0),
            candidate(4, &[0.0, 1.0], 0.0, 0.0),
        ];
        let scores: Vec<ScoreBreakdown> = [1.0, 0.95, 0.8, 0.75]
            .into_iter()
            .map(|total| ScoreBreakdown {
                total,
                ..Default::default()
            })
            .collect();
        // Classic MMR pushes the related product below the unrelated one.
        assert_eq!(diversify(&candidates, &scores, 0.7, 0.0, 4), [0, 3, 1, 2]);
        // With a threshold only the near-copy drops; the rest keep their order.
        assert_eq!(diversify(&candidates, &scores, 0.7, 0.9, 4), [0, 2, 3, 1]);
        // λ = 1: by score alone.
        assert_eq!(diversify(&candidates, &scores, 1.0, 0.9, 4), [0, 1, 2, 3]);
    }
}
