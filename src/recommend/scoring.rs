//! The pure half of the hybrid recommender: hard filters, the intent signal, min-max
//! normalisation, the weighted total, MMR diversity and explanations from the breakdown.

use crate::catalog::money::Currency;
use crate::db::entities::product;
use crate::intent::ShoppingIntent;
use crate::recommend::{RecommendedProduct, ScoreBreakdown};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub content: f32,
    pub collaborative: f32,
    pub intent: f32,
}

/// A candidate with its raw (unnormalised) signals and the facts its explanation may quote.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub product: product::Model,
    pub content: f32,
    pub collaborative: f32,
    pub popularity: f32,
    /// The member's item that contributed most to `collaborative`, by title.
    pub bought_with: Option<String>,
    pub matched: Vec<String>,
    pub intent: f32,
}

fn string_list(attributes: &Value, key: &str) -> Vec<String> {
    match attributes.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_lowercase)
            .collect(),
        Some(Value::String(one)) => vec![one.to_lowercase()],
        _ => Vec::new(),
    }
}

/// Whether the product passes every hard constraint of the intent.
pub fn passes_filters(intent: &ShoppingIntent, product: &product::Model) -> bool {
    if intent.in_stock_only && product.stock <= 0 {
        return false;
    }
    if !intent.category_matches(&product.category) {
        return false;
    }
    if let Some(range) = &intent.price_range {
        match product.price_minor {
            Some(price) if range.contains(price) => {}
            _ => return false,
        }
    }
    if let Some(brand) = &product.brand {
        if intent
            .excluded_brands
            .iter()
            .any(|b| b.eq_ignore_ascii_case(brand))
        {
            return false;
        }
    }
    if !intent.excluded_colors.is_empty() {
        let colors = string_list(&product.attributes, "colors");
        // A product whose only colours are excluded is out; one that also comes in an
        // allowed colour stays.
        if !colors.is_empty() && colors.iter().all(|c| intent.excluded_colors.contains(c)) {
            return false;
        }
    }
    true
}

/// How well the product matches the soft preferences: the share of wanted styles, colours,
/// brands and keywords it has, with the reasons. `extra` are the profile's preferences
/// (weighted half).
pub fn intent_match(
    intent: &ShoppingIntent,
    profile: &ShoppingIntent,
    product: &product::Model,
) -> (f32, Vec<String>) {
    let styles = string_list(&product.attributes, "style");
    let colors = string_list(&product.attributes, "colors");
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
                reasons.push(format!("matches '{keyword}'"));
            }
        }
        for style in &source.styles {
            wanted += 1.0;
            if styles.contains(style) {
                hits += 1.0;
                reasons.push(format!("{style} style"));
            }
        }
        for color in &source.colors {
            wanted += 1.0;
            if colors.contains(color) {
                hits += 1.0;
                reasons.push(format!("comes in {color}"));
            }
        }
        for wanted_brand in &source.brands {
            wanted += 1.0;
            if wanted_brand.eq_ignore_ascii_case(&brand) {
                hits += 1.0;
                reasons.push(format!("from {brand}"));
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

/// Normalises every signal over the candidates and computes the weighted totals. With no
/// member history the collaborative signal is popularity alone (cold start); otherwise
/// popularity contributes a fifth of it.
pub fn score(candidates: &[Candidate], weights: Weights, has_history: bool) -> Vec<ScoreBreakdown> {
    let column = |f: &dyn Fn(&Candidate) -> f32| {
        let mut values: Vec<f32> = candidates.iter().map(f).collect();
        normalise(&mut values);
        values
    };
    let content = column(&|c| c.content);
    let cf = column(&|c| c.collaborative);
    let popularity = column(&|c| c.popularity);
    let intent = column(&|c| c.intent);
    (0..candidates.len())
        .map(|i| {
            let collaborative = if has_history {
                0.8 * cf[i] + 0.2 * popularity[i]
            } else {
                popularity[i]
            };
            ScoreBreakdown {
                content: content[i],
                collaborative,
                intent: intent[i],
                total: weights.content * content[i]
                    + weights.collaborative * collaborative
                    + weights.intent * intent[i],
            }
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    // The stored embeddings are L2-normalised.
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Maximal marginal relevance: picks `limit` indices, each maximising
/// `λ·total − (1−λ)·max similarity to the picked`, where similarity is the embedding cosine,
/// or 1 for the same brand in the same category when either has no embedding.
pub fn diversify(
    candidates: &[Candidate],
    scores: &[ScoreBreakdown],
    lambda: f32,
    limit: usize,
) -> Vec<usize> {
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
                redundancy[i] = redundancy[i].max(similarity(i, last));
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

/// The reasons and the one-sentence explanation, from the breakdown and real facts.
pub fn explain(
    candidate: &Candidate,
    score: &ScoreBreakdown,
    intent: &ShoppingIntent,
    has_query: bool,
    popular_in: Option<&str>,
) -> (String, Vec<String>) {
    let mut reasons: Vec<String> = candidate.matched.iter().take(2).cloned().collect();
    if let (Some(range), Some(currency)) = (
        intent.price_range,
        candidate.product.currency.trim().parse::<Currency>().ok(),
    ) {
        match (range.min_minor, range.max_minor) {
            (Some(min), Some(max)) => reasons.push(format!(
                "between {} and {}",
                currency.format(min),
                currency.format(max)
            )),
            (None, Some(max)) => reasons.push(format!("under {}", currency.format(max))),
            (Some(min), None) => reasons.push(format!("from {}", currency.format(min))),
            (None, None) => {}
        }
    }
    if score.collaborative >= 0.5 {
        match (&candidate.bought_with, popular_in) {
            (Some(title), _) if candidate.collaborative > 0.0 => {
                reasons.push(format!("often bought with {title}"))
            }
            (_, Some(category)) => reasons.push(format!("popular in {category}")),
            _ if candidate.popularity > 0.0 => reasons.push("popular right now".into()),
            _ => {}
        }
    }
    if score.content >= 0.5 && candidate.content > 0.0 {
        reasons.push(if has_query {
            "close to what you asked for".into()
        } else {
            "similar to what you like".into()
        });
    }
    if reasons.is_empty() {
        reasons.push(format!("a pick from {}", candidate.product.category));
    }
    let mut explanation = reasons.join(", ");
    if let Some(first) = explanation.get(..1) {
        explanation = first.to_uppercase() + &explanation[1..];
    }
    (explanation, reasons)
}

/// The response item for a scored candidate.
pub fn to_recommended(
    candidate: &Candidate,
    score: ScoreBreakdown,
    explanation: String,
    reasons: Vec<String>,
) -> RecommendedProduct {
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

    fn candidate(n: usize, embedding: Option<Vec<f32>>, brand: &str) -> Candidate {
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
            collaborative: 0.0,
            popularity: 0.0,
            bought_with: None,
            matched: Vec::new(),
            intent: 0.0,
        }
    }

    /// MMR as written in its definition: every round compares each candidate with every
    /// product picked so far.
    fn diversify_by_definition(
        candidates: &[Candidate],
        scores: &[ScoreBreakdown],
        lambda: f32,
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
                        .map(|&p| similarity(i, p))
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
                    candidate(n, embedding, if n % 2 == 0 { "a" } else { "b" })
                })
                .collect();
            let scores: Vec<ScoreBreakdown> = (0..count)
                .map(|_| ScoreBreakdown {
                    total: (next() * 5.0).round() / 5.0,
                    ..ScoreBreakdown::default()
                })
                .collect();
            for (lambda, limit) in [(0.7, 10), (0.3, 25), (1.0, 5), (0.0, count + 3)] {
                assert_eq!(
                    diversify(&candidates, &scores, lambda, limit),
                    diversify_by_definition(&candidates, &scores, lambda, limit),
                    "round {round}, lambda {lambda}, limit {limit}"
                );
            }
        }
    }
}
