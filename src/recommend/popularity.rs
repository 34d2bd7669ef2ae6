//! Trending and popular products as the analytics group keeps them in Redis ZSets
//! (`RedisKeys::trending`, `RedisKeys::popular`), in the state store (`redis.state_url`).
//! The rules both the live counters (`actors::analytics`) and their rebuild from
//! `interactions` (`recommend::analytics_rebuild`) follow are here.

use crate::redis::RedisPool;
use std::time::Duration;
use uuid::Uuid;

/// Trending scores below this are dropped from `rec:trending`.
pub const MIN_TRENDING_SCORE: f64 = 0.01;

/// `a/b/c` → `a`, `a/b`, `a/b/c`: a product counts as popular in its category and in each
/// parent category, so `fashion` includes `fashion/outerwear`.
pub fn category_levels(category: &str) -> Vec<&str> {
    category
        .match_indices('/')
        .map(|(i, _)| &category[..i])
        .chain(std::iter::once(category))
        .filter(|c| !c.is_empty())
        .collect()
}

/// What a trending weight is worth `age` later: halved every `half_life` (a half-life under
/// a second counts as one second; an interaction from the future counts in full).
pub fn decay_factor(age: Duration, half_life: Duration) -> f64 {
    0.5f64.powf(age.as_secs_f64() / half_life.as_secs_f64().max(1.0))
}

/// The top `limit` products of a ZSet, best first, with their scores.
pub async fn top_products(
    redis: &RedisPool,
    key: &str,
    limit: usize,
) -> Result<Vec<(Uuid, f64)>, String> {
    let mut conn = redis.get().await.map_err(|e| e.to_string())?;
    let stop = limit.max(1) as isize - 1;
    let pairs: Vec<(String, f64)> = redis::cmd("ZREVRANGE")
        .arg(key)
        .arg(0)
        .arg(stop)
        .arg("WITHSCORES")
        .query_async(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(pairs
        .into_iter()
        .filter_map(|(id, score)| Uuid::parse_str(&id).ok().map(|id| (id, score)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_category_counts_for_each_of_its_parents() {
        assert_eq!(
            category_levels("fashion/outerwear/padding"),
            vec!["fashion", "fashion/outerwear", "fashion/outerwear/padding"]
        );
        assert_eq!(category_levels("books"), vec!["books"]);
    }

    #[test]
    fn a_weight_halves_every_half_life() {
        let hour = Duration::from_secs(3600);
        assert_eq!(decay_factor(Duration::ZERO, hour), 1.0);
        assert!((decay_factor(hour, hour) - 0.5).abs() < 1e-12);
        assert!((decay_factor(3 * hour, hour) - 0.125).abs() < 1e-12);
        // A sub-second half-life is a second, not a division by zero.
        assert!((decay_factor(Duration::from_secs(2), Duration::ZERO) - 0.25).abs() < 1e-12);
    }
}
