//! Embeddings as the rest of the service uses them: the Redis cache in front of a vector
//! source (in the service, the batcher that feeds the pool of model workers).

use crate::cache::EmbeddingCache;
use crate::metrics::Metrics;
use crate::ml::{Embedder, TextKind, TextPrompts};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a request got no vectors. `Clone` because one failed batch answers every request in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbeddingError {
    #[error("the embedding queue is full ({waiting} texts waiting, capacity {capacity})")]
    Overloaded { waiting: usize, capacity: usize },
    #[error("the embedding workers are not running")]
    Unavailable,
    #[error("embedding failed: {0}")]
    Failed(String),
}

/// Computes the vectors the cache does not have: the batcher in front of the model workers
/// (`actors::embedding_batcher`), or a model called in place in unit tests.
pub trait VectorSource: Send + Sync {
    /// The vectors of `texts`, in their order.
    fn compute(
        &self,
        texts: Vec<String>,
    ) -> BoxFuture<'static, Result<Vec<Vec<f32>>, EmbeddingError>>;
}

/// What callers may want to know about the loaded model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub id: Arc<str>,
    pub dimension: usize,
    pub max_tokens: usize,
    /// What the model wants before queries and passages (see [`EmbeddingService::embed_as`]).
    pub prompts: TextPrompts,
}

impl ModelInfo {
    pub fn of(model: &dyn Embedder) -> Self {
        Self {
            id: model.model_id().into(),
            dimension: model.dimension(),
            max_tokens: model.max_tokens(),
            prompts: model.prompts().clone(),
        }
    }
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

/// Embeddings as the rest of the service uses them: the cache, then the vector source for
/// what it does not have.
#[derive(Clone)]
pub struct EmbeddingService {
    source: Arc<dyn VectorSource>,
    pub cache: Option<EmbeddingCache>,
    pub model: ModelInfo,
    metrics: Metrics,
}

impl EmbeddingService {
    /// Vectors from `source`, cached in `cache` (none in unit tests).
    pub fn new(
        model: ModelInfo,
        source: Arc<dyn VectorSource>,
        cache: Option<EmbeddingCache>,
        metrics: Metrics,
    ) -> Self {
        Self {
            source,
            cache,
            model,
            metrics,
        }
    }

    /// Vectors for texts of one kind (a shopper's query, a product's text), each written
    /// the way the model was trained to see it (multilingual-e5's `query: `/`passage: `).
    pub async fn embed_as(
        &self,
        kind: TextKind,
        texts: Vec<String>,
    ) -> Result<Embedded, EmbeddingError> {
        let texts = texts
            .iter()
            .map(|text| self.model.prompts.apply(kind, text))
            .collect();
        self.embed(texts).await
    }

    /// Vectors for `texts` exactly as given, from the cache where possible; the rest are
    /// computed (each distinct text once) and cached.
    #[tracing::instrument(skip_all, fields(texts = texts.len()))]
    pub async fn embed(&self, texts: Vec<String>) -> Result<Embedded, EmbeddingError> {
        let keys: Vec<String> = match &self.cache {
            Some(cache) => texts.iter().map(|t| cache.key(t)).collect(),
            None => texts.clone(),
        };
        let mut vectors = match &self.cache {
            Some(cache) => cache.get_many(&keys).await,
            None => vec![None; texts.len()],
        };
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
            self.source.compute(to_embed).await?
        };
        let entries: Vec<(&str, &[f32])> = first_positions
            .iter()
            .zip(&fresh)
            .map(|(&position, vector)| (keys[position].as_str(), vector.as_slice()))
            .collect();
        // Awaited (one round trip, within the cache deadline), so the caller's next request
        // finds what this one computed and the counters are exact.
        if let Some(cache) = &self.cache {
            cache.put_many(&entries, hits, misses).await;
        }
        for (position, slot) in wanted {
            vectors[position] = Some(fresh[slot].clone());
        }
        Ok(Embedded {
            vectors: vectors.into_iter().map(Option::unwrap_or_default).collect(),
            cached,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Vectors computed in place, counting the texts it was asked for.
    #[derive(Default)]
    struct CountingSource {
        texts: AtomicUsize,
    }

    impl VectorSource for CountingSource {
        fn compute(
            &self,
            texts: Vec<String>,
        ) -> BoxFuture<'static, Result<Vec<Vec<f32>>, EmbeddingError>> {
            self.texts.fetch_add(texts.len(), Ordering::SeqCst);
            let vectors = texts
                .iter()
                .map(|t| vec![t.chars().count() as f32])
                .collect();
            Box::pin(async move { Ok(vectors) })
        }
    }

    fn service(source: Arc<CountingSource>, prompts: TextPrompts) -> EmbeddingService {
        let model = ModelInfo {
            id: "test".into(),
            dimension: 1,
            max_tokens: 16,
            prompts,
        };
        EmbeddingService::new(model, source, None, Metrics::new())
    }

    #[tokio::test]
    async fn each_distinct_text_is_computed_once_and_answers_keep_their_order() {
        let source = Arc::new(CountingSource::default());
        let embedded = service(source.clone(), TextPrompts::default())
            .embed(vec!["ab".into(), "abc".into(), "ab".into()])
            .await
            .unwrap();
        assert_eq!(embedded.vectors, vec![vec![2.0], vec![3.0], vec![2.0]]);
        assert_eq!(embedded.cached_count(), 0);
        assert_eq!(source.texts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn queries_get_the_models_query_prompt() {
        let source = Arc::new(CountingSource::default());
        let prompts = TextPrompts::new("query: ", "passage: ");
        let embedded = service(source, prompts)
            .embed_as(TextKind::Query, vec!["패딩".into()])
            .await
            .unwrap();
        assert_eq!(embedded.vectors, vec![vec![9.0]]);
    }
}
