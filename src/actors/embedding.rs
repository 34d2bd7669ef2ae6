//! The `EmbeddingActor` pool: inference blocks a thread, so each worker runs on its own
//! `SyncArbiter` thread with its own copy of the model (encoders are `Send`, not `Sync`).
//!
//! A worker also keeps each forward pass within the token budget: a batch whose padded size
//! (texts × longest text) could exceed `max_batch_tokens` is split into passes of similar
//! length. Counting happens here, where the texts are tokenised anyway, so the batcher in
//! front stays pure bookkeeping.

use crate::actors::embedding_batcher::{BatchPolicy, EmbeddingBatcher};
use crate::actors::supervision::StartSupervised;
use crate::cache::{CacheConfig, EmbeddingCache};
use crate::config::EmbeddingSettings;
use crate::embeddings::{EmbeddingService, ModelInfo};
use crate::metrics::Metrics;
use crate::ml::{EmbedError, Embedder};
use crate::redis::{RedisKeys, RedisPool};
use actix::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Embeds `texts` in one go; the vectors come back in the same order.
#[derive(Message)]
#[rtype(result = "Result<Vec<Vec<f32>>, EmbedError>")]
pub struct EmbedBatch {
    pub texts: Vec<String>,
}

pub struct EmbeddingActor {
    embedder: Box<dyn Embedder>,
    max_batch_tokens: usize,
}

impl EmbeddingActor {
    pub fn new(embedder: Box<dyn Embedder>, max_batch_tokens: usize) -> Self {
        Self {
            embedder,
            max_batch_tokens: max_batch_tokens.max(1),
        }
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        // Truncation caps every text at max_tokens, so a batch that fits even then needs no
        // counting (the default settings: 32 × 256 = 8192).
        if texts.len() * self.embedder.max_tokens() <= self.max_batch_tokens {
            return self.embedder.embed_batch(texts);
        }
        let counts = self.embedder.token_counts(texts)?;
        let mut vectors = vec![Vec::new(); texts.len()];
        for pass in plan_passes(&counts, self.max_batch_tokens) {
            let batch: Vec<String> = pass.iter().map(|&i| texts[i].clone()).collect();
            let embedded = self.embedder.embed_batch(&batch)?;
            if embedded.len() != pass.len() {
                return Err(EmbedError::Inference(format!(
                    "encoder returned {} vectors for {} texts",
                    embedded.len(),
                    pass.len()
                )));
            }
            for (index, vector) in pass.into_iter().zip(embedded) {
                vectors[index] = vector;
            }
        }
        Ok(vectors)
    }
}

/// Groups text indices into forward passes whose padded size (texts × longest) stays within
/// `budget`. Texts are taken shortest first so each pass pads little; a text over the
/// budget on its own gets a pass to itself.
pub fn plan_passes(counts: &[usize], budget: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by_key(|&i| counts[i]);
    let mut passes: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for index in order {
        // Sorted ascending, so this text is the longest of the pass it joins.
        if !current.is_empty() && (current.len() + 1) * counts[index] > budget {
            passes.push(std::mem::take(&mut current));
        }
        current.push(index);
    }
    if !current.is_empty() {
        passes.push(current);
    }
    passes
}

impl Actor for EmbeddingActor {
    type Context = SyncContext<Self>;
}

impl Handler<EmbedBatch> for EmbeddingActor {
    type Result = Result<Vec<Vec<f32>>, EmbedError>;

    fn handle(&mut self, msg: EmbedBatch, _: &mut Self::Context) -> Self::Result {
        self.embed(&msg.texts)
    }
}

/// Starts `workers` threads, each with its own copy of `model`.
pub fn start_pool(
    model: &dyn Embedder,
    workers: usize,
    max_batch_tokens: usize,
) -> Addr<EmbeddingActor> {
    // The factory must be `Sync`; the encoder is not, so copies are made under a lock.
    let prototype = Mutex::new(model.clone_boxed());
    SyncArbiter::start(workers.max(1), move || {
        let copy = prototype
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone_boxed();
        EmbeddingActor::new(copy, max_batch_tokens)
    })
}

/// Starts the worker pool (a copy of `model` per worker) and the batcher in front of it, and
/// answers the embedding service over them and the Redis cache, with the batcher (for its
/// counters).
pub fn start_embeddings(
    model: Box<dyn Embedder>,
    settings: &EmbeddingSettings,
    redis: RedisPool,
    keys: RedisKeys,
    metrics: Metrics,
) -> (EmbeddingService, Addr<EmbeddingBatcher>) {
    let info = ModelInfo::of(model.as_ref());
    let pool = start_pool(model.as_ref(), settings.workers, settings.max_batch_tokens);
    let batcher = EmbeddingBatcher::new(
        pool.recipient(),
        BatchPolicy::from(settings),
        metrics.clone(),
    )
    .start_supervised();
    let cache = EmbeddingCache::new(
        redis,
        CacheConfig {
            keys,
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
    let service = EmbeddingService::new(info, Arc::new(batcher.clone()), Some(cache), metrics);
    (service, batcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_share_a_pass_and_long_ones_are_split_off() {
        let passes = plan_passes(&[10, 200, 12, 200, 11], 400);
        assert_eq!(passes, vec![vec![0, 4, 2], vec![1, 3]]);
    }

    #[test]
    fn every_pass_stays_within_the_budget_and_every_text_is_planned_once() {
        let counts = [5, 256, 17, 256, 3, 128, 64, 256, 9, 100];
        let budget = 512;
        let passes = plan_passes(&counts, budget);
        for pass in &passes {
            let longest = pass.iter().map(|&i| counts[i]).max().unwrap();
            assert!(pass.len() * longest <= budget, "{pass:?}");
        }
        let mut planned: Vec<usize> = passes.concat();
        planned.sort_unstable();
        assert_eq!(planned, (0..counts.len()).collect::<Vec<_>>());
    }

    #[test]
    fn a_text_over_the_budget_gets_a_pass_of_its_own() {
        assert_eq!(plan_passes(&[50, 3], 20), vec![vec![1], vec![0]]);
        assert!(plan_passes(&[], 20).is_empty());
    }
}
