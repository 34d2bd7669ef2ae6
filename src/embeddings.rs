//! Embeddings as the rest of the service uses them: the Redis cache in front of the batcher,
//! which feeds the pool of model workers.

use crate::actors::dependency_monitor::RedisPool;
use crate::actors::embedding::{start_pool, EmbeddingActor};
use crate::actors::embedding_batcher::{
    BatchError, BatchPolicy, BatcherStats, Embed, EmbeddingBatcher, GetBatcherStats,
};
use crate::cache::{CacheConfig, EmbeddingCache};
use crate::config::EmbeddingSettings;
use crate::metrics::Metrics;
use crate::ml::{Embedder, TextKind, TextPrompts};
use actix::{Actor, Addr};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What callers may want to know about the loaded model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub id: Arc<str>,
    pub dimension: usize,
    pub max_tokens: usize,
    /// What the model wants before queries and passages (see [`EmbeddingService::embed_as`]).
    pub prompts: TextPrompts,
}

/// Vectors in the order of the texts, and which of them came from the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    pub cached: Vec<bool>,
}

impl Embedded {
    pub fn cached_count(&self) -> usize {
        self.cached.iter().filter(|c| **c).count()
    }
}

#[derive(Clone)]
pub struct EmbeddingService {
    pub pool: Addr<EmbeddingActor>,
    pub batcher: Addr<EmbeddingBatcher>,
    pub cache: EmbeddingCache,
    pub model: ModelInfo,
    metrics: Metrics,
}

impl EmbeddingService {
    /// Starts the worker pool (a copy of `model` per worker) and the batcher in front of it.
    pub fn start(
        model: Box<dyn Embedder>,
        settings: &EmbeddingSettings,
        redis: RedisPool,
        key_prefix: &str,
        metrics: Metrics,
    ) -> Self {
        let info = ModelInfo {
            id: model.model_id().into(),
            dimension: model.dimension(),
            max_tokens: model.max_tokens(),
            prompts: model.prompts().clone(),
        };
        let pool = start_pool(model.as_ref(), settings.workers, settings.max_batch_tokens);
        let batcher = EmbeddingBatcher::new(
            pool.clone().recipient(),
            BatchPolicy::from(settings),
            metrics.clone(),
        )
        .start();
        let cache = EmbeddingCache::new(
            redis,
            CacheConfig {
                key_prefix: key_prefix.to_string(),
                model_id: info.id.clone(),
                dimension: info.dimension,
                ttl_secs: settings.cache_ttl_secs,
                timeout: Duration::from_millis(settings.cache_timeout_ms),
            },
            metrics.clone(),
        );
        tracing::info!(
            model = %info.id,
            workers = settings.workers,
            max_batch_size = settings.max_batch_size,
            max_wait_ms = settings.max_wait_ms,
            "embedding workers started"
        );
        Self {
            pool,
            batcher,
            cache,
            model: info,
            metrics,
        }
    }

    /// Vectors for texts of one kind (a shopper's query, a product's text), each written
    /// the way the model was trained to see it (multilingual-e5's `query: `/`passage: `).
    pub async fn embed_as(
        &self,
        kind: TextKind,
        texts: Vec<String>,
    ) -> Result<Embedded, BatchError> {
        let texts = texts
            .iter()
            .map(|text| self.model.prompts.apply(kind, text))
            .collect();
        self.embed(texts).await
    }

    /// Vectors for `texts` exactly as given, from the cache where possible; the rest are
    /// computed (each distinct text once) and cached.
    #[tracing::instrument(skip_all, fields(texts = texts.len()))]
    pub async fn embed(&self, texts: Vec<String>) -> Result<Embedded, BatchError> {
        let keys: Vec<String> = texts.iter().map(|t| self.cache.key(t)).collect();
        let mut vectors = self.cache.get_many(&keys).await;
        let cached: Vec<bool> = vectors.iter().map(Option::is_some).collect();
        let hits = cached.iter().filter(|c| **c).count() as u64;
        let misses = texts.len() as u64 - hits;
        self.metrics.record_cache_lookups(hits, misses);

        // Each distinct missing text is embedded once: (position, slot in `to_embed`).
        let mut slot_of_key: HashMap<&str, usize> = HashMap::new();
        let mut to_embed: Vec<String> = Vec::new();
        let mut first_positions: Vec<usize> = Vec::new();
        let mut wanted: Vec<(usize, usize)> = Vec::new();
        for (position, text) in texts.into_iter().enumerate() {
            if vectors[position].is_some() {
                continue;
            }
            let slot = *slot_of_key
                .entry(keys[position].as_str())
                .or_insert_with(|| {
                    to_embed.push(text);
                    first_positions.push(position);
                    to_embed.len() - 1
                });
            wanted.push((position, slot));
        }

        let fresh = if to_embed.is_empty() {
            Vec::new()
        } else {
            self.batcher
                .send(Embed { texts: to_embed })
                .await
                .map_err(|_| BatchError::Unavailable)??
        };
        let entries: Vec<(&str, &[f32])> = first_positions
            .iter()
            .zip(&fresh)
            .map(|(&position, vector)| (keys[position].as_str(), vector.as_slice()))
            .collect();
        // Awaited (one round trip, within the cache deadline), so the caller's next request
        // finds what this one computed and the counters are exact.
        self.cache.put_many(&entries, hits, misses).await;
        for (position, slot) in wanted {
            vectors[position] = Some(fresh[slot].clone());
        }
        Ok(Embedded {
            vectors: vectors.into_iter().map(Option::unwrap_or_default).collect(),
            cached,
        })
    }

    pub async fn batcher_stats(&self) -> Result<BatcherStats, BatchError> {
        self.batcher
            .send(GetBatcherStats)
            .await
            .map_err(|_| BatchError::Unavailable)
    }
}
