//! Trending and popular products as the analytics group keeps them in Redis ZSets
//! (`RedisKeys::trending`, `RedisKeys::popular`).

use crate::redis::RedisPool;
use uuid::Uuid;

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
