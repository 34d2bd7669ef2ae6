//! The Redis cache of embedding vectors.
//!
//! Key `{prefix}embed:{hex sha256(model_id + "\0" + text)}`: the model id is part of the
//! hash, so a new model never serves old vectors. Value: the vector as little-endian `f32`
//! bytes (1,536 for 384 dimensions), with a TTL. Hits and misses are also counted in Redis
//! (`{prefix}stats:hits`, `{prefix}stats:misses`), shared by every instance.
//!
//! The cache is an optimisation, never a dependency: every call has a short deadline, and a
//! failure (counted in `cache_errors_total`) makes the request go on uncached. After a
//! failure Redis is left alone for a moment, so an outage costs one timeout per
//! [`BACKOFF_AFTER_FAILURE`], not one per request.

use crate::metrics::Metrics;
use crate::redis::RedisKeys;
use crate::redis::RedisPool;
use redis::FromRedisValue;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the cache is bypassed after a failed or slow Redis call.
pub const BACKOFF_AFTER_FAILURE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct EmbeddingCache {
    pool: RedisPool,
    keys: RedisKeys,
    model_id: Arc<str>,
    dimension: usize,
    ttl_secs: u64,
    timeout: Duration,
    metrics: Metrics,
    backoff: Arc<Backoff>,
}

/// Hits and misses as counted in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
}

pub struct CacheConfig {
    pub keys: RedisKeys,
    pub model_id: Arc<str>,
    pub dimension: usize,
    pub ttl_secs: u64,
    pub timeout: Duration,
}

impl EmbeddingCache {
    pub fn new(pool: RedisPool, config: CacheConfig, metrics: Metrics) -> Self {
        Self {
            pool,
            keys: config.keys,
            model_id: config.model_id,
            dimension: config.dimension,
            ttl_secs: config.ttl_secs.max(1),
            timeout: config.timeout,
            metrics,
            backoff: Arc::new(Backoff::new()),
        }
    }

    pub fn key(&self, text: &str) -> String {
        self.keys.embedding(&self.model_id, text)
    }

    /// The cached vector of each key, `None` for a miss. Everything is a miss when Redis
    /// is unavailable.
    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    pub async fn get_many(&self, keys: &[String]) -> Vec<Option<Vec<f32>>> {
        if keys.is_empty() {
            return Vec::new();
        }
        let mut pipe = redis::pipe();
        pipe.cmd("MGET").arg(keys);
        match self.query::<(Vec<Option<Vec<u8>>>,)>("get", &pipe).await {
            Some((values,)) if values.len() == keys.len() => values
                .into_iter()
                .map(|value| value.and_then(|bytes| decode(&bytes, self.dimension)))
                .collect(),
            _ => vec![None; keys.len()],
        }
    }

    /// Stores freshly computed vectors and counts this request's hits and misses, in one
    /// round trip.
    #[tracing::instrument(skip_all, fields(entries = entries.len()))]
    pub async fn put_many(&self, entries: &[(&str, &[f32])], hits: u64, misses: u64) {
        let mut pipe = redis::pipe();
        for (key, vector) in entries {
            pipe.cmd("SET")
                .arg(*key)
                .arg(encode(vector))
                .arg("EX")
                .arg(self.ttl_secs)
                .ignore();
        }
        if hits > 0 {
            pipe.cmd("INCRBY")
                .arg(self.stats_key("hits"))
                .arg(hits)
                .ignore();
        }
        if misses > 0 {
            pipe.cmd("INCRBY")
                .arg(self.stats_key("misses"))
                .arg(misses)
                .ignore();
        }
        if pipe.cmd_iter().next().is_none() {
            return;
        }
        let _ = self.query::<()>("set", &pipe).await;
    }

    /// The hits and misses every instance has counted, if Redis answers.
    pub async fn counts(&self) -> Option<CacheCounts> {
        let mut pipe = redis::pipe();
        pipe.cmd("GET")
            .arg(self.stats_key("hits"))
            .cmd("GET")
            .arg(self.stats_key("misses"));
        let (hits, misses) = self
            .query::<(Option<u64>, Option<u64>)>("stats", &pipe)
            .await?;
        Some(CacheCounts {
            hits: hits.unwrap_or(0),
            misses: misses.unwrap_or(0),
        })
    }

    fn stats_key(&self, name: &str) -> String {
        self.keys.embedding_cache_counter(name)
    }

    /// Runs `pipe` within the deadline; `None` (counted and logged) when Redis fails, is
    /// slow, or is being left alone after a recent failure.
    async fn query<T: FromRedisValue>(
        &self,
        operation: &'static str,
        pipe: &redis::Pipeline,
    ) -> Option<T> {
        if self.backoff.active() {
            return None;
        }
        let attempt = async {
            let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
            pipe.query_async::<T>(&mut *conn)
                .await
                .map_err(|e| e.to_string())
        };
        let error = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(value)) => return Some(value),
            Ok(Err(error)) => error,
            Err(_) => format!("no answer within {:?}", self.timeout),
        };
        self.metrics
            .cache_errors
            .with_label_values(&[operation])
            .inc();
        self.backoff.start(BACKOFF_AFTER_FAILURE);
        tracing::warn!(operation, %error, "embedding cache unavailable; going on uncached");
        None
    }
}

pub fn encode(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `None` unless `bytes` holds exactly `dimension` floats (a foreign or truncated value is
/// a miss, not an error).
pub fn decode(bytes: &[u8], dimension: usize) -> Option<Vec<f32>> {
    if bytes.len() != dimension * 4 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

/// "Leave Redis alone until …", shared by every clone of the cache.
struct Backoff {
    origin: Instant,
    /// Milliseconds after `origin` until which calls are skipped.
    until_ms: AtomicU64,
}

impl Backoff {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            until_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn active(&self) -> bool {
        self.now_ms() < self.until_ms.load(Ordering::Relaxed)
    }

    fn start(&self, duration: Duration) {
        let until = self.now_ms() + u64::try_from(duration.as_millis()).unwrap_or(u64::MAX / 2);
        self.until_ms.fetch_max(until, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn keys_hash_the_model_and_the_text_apart() {
        let key = RedisKeys::new("t:").embedding("minilm@abc", "wool socks");
        let expected = {
            let digest = Sha256::digest(b"minilm@abc\0wool socks");
            format!("t:embed:{}", hex::encode(digest))
        };
        assert_eq!(key, expected);
        assert_eq!(key.len(), "t:embed:".len() + 64);
        assert_ne!(
            key,
            RedisKeys::new("t:").embedding("other-model", "wool socks")
        );
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            RedisKeys::new("").embedding("ab", "c"),
            RedisKeys::new("").embedding("a", "bc")
        );
    }

    #[test]
    fn vectors_round_trip_as_little_endian_bytes() {
        let vector = vec![1.0f32, -0.5, f32::MIN_POSITIVE, 0.123_456_79];
        let bytes = encode(&vector);
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[..4], &1.0f32.to_le_bytes());
        assert_eq!(decode(&bytes, 4), Some(vector));
    }

    #[test]
    fn a_value_of_the_wrong_length_is_a_miss() {
        assert_eq!(decode(&[0u8; 12], 4), None);
        assert_eq!(decode(&[], 384), None);
    }

    #[test]
    fn a_backoff_skips_calls_until_it_runs_out() {
        let backoff = Backoff::new();
        assert!(!backoff.active());
        backoff.start(Duration::from_secs(60));
        assert!(backoff.active());
        let short = Backoff::new();
        short.start(Duration::ZERO);
        assert!(!short.active());
    }
}
