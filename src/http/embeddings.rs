//! The embedding API of the seed's ML service: `POST /embed`, `POST /batch-embed`,
//! `POST /similarity` and `GET /stats`.

use crate::actors::embedding_batcher::GetBatcherStats;
use crate::config::EmbeddingSettings;
use crate::embeddings::EmbeddingError;
use crate::errors::{ErrorKind, PublicError};
use crate::http::error::respond_by_kind;
use crate::http::error::ErrorBody;
use crate::http::optional_json::JsonObject;
use crate::http::AppState;
use crate::ml::cosine;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Instant;
use utoipa::ToSchema;

/// What an overloaded answer tells the client to wait, in seconds.
pub const RETRY_AFTER_SECS: u32 = 1;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/embed", web::post().to(embed))
        .route("/batch-embed", web::post().to(batch_embed))
        .route("/similarity", web::post().to(similarity))
        .route("/stats", web::get().to(stats));
}

#[derive(Debug, thiserror::Error)]
pub enum EmbeddingsError {
    #[error("{0}")]
    InvalidText(String),
    #[error("texts must hold at least one text")]
    NoTexts,
    #[error("at most {max} texts per request, got {got}")]
    TooManyTexts { max: usize, got: usize },
    #[error("{0}")]
    InvalidVector(String),
    #[error("the embedding queue is full; retry in a moment")]
    Overloaded,
    #[error("the embedding model is not available")]
    ModelUnavailable,
    #[error("embedding failed")]
    Failed(String),
}

impl EmbeddingsError {
    /// The `outcome` label of `embedding_requests_total`.
    fn outcome(&self) -> &'static str {
        match self {
            EmbeddingsError::InvalidText(_)
            | EmbeddingsError::NoTexts
            | EmbeddingsError::TooManyTexts { .. }
            | EmbeddingsError::InvalidVector(_) => "invalid",
            EmbeddingsError::Overloaded => "overloaded",
            EmbeddingsError::ModelUnavailable => "unavailable",
            EmbeddingsError::Failed(_) => "error",
        }
    }
}

impl From<EmbeddingError> for EmbeddingsError {
    fn from(error: EmbeddingError) -> Self {
        match error {
            EmbeddingError::Overloaded { .. } => EmbeddingsError::Overloaded,
            EmbeddingError::Unavailable => EmbeddingsError::ModelUnavailable,
            EmbeddingError::Failed(message) => EmbeddingsError::Failed(message),
        }
    }
}

impl PublicError for EmbeddingsError {
    fn kind(&self) -> ErrorKind {
        match self {
            EmbeddingsError::InvalidText(_)
            | EmbeddingsError::NoTexts
            | EmbeddingsError::TooManyTexts { .. }
            | EmbeddingsError::InvalidVector(_) => ErrorKind::BadRequest,
            EmbeddingsError::Overloaded => ErrorKind::Overloaded,
            EmbeddingsError::ModelUnavailable => ErrorKind::Unavailable,
            EmbeddingsError::Failed(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            EmbeddingsError::InvalidText(_) => "invalid_text",
            EmbeddingsError::NoTexts => "no_texts",
            EmbeddingsError::TooManyTexts { .. } => "too_many_texts",
            EmbeddingsError::InvalidVector(_) => "invalid_vector",
            EmbeddingsError::Overloaded => "overloaded",
            EmbeddingsError::ModelUnavailable => "model_unavailable",
            EmbeddingsError::Failed(_) => "embedding_failed",
        }
    }

    fn retry_after_secs(&self) -> Option<u32> {
        matches!(self, EmbeddingsError::Overloaded).then_some(RETRY_AFTER_SECS)
    }
}

respond_by_kind!(EmbeddingsError);

/// A text the model may embed: not blank, at most `max_text_chars` characters.
fn check_text(text: &str, label: &str, limits: &EmbeddingSettings) -> Result<(), EmbeddingsError> {
    if text.trim().is_empty() {
        return Err(EmbeddingsError::InvalidText(format!(
            "{label} must not be empty or only whitespace"
        )));
    }
    let chars = text.chars().count();
    if chars > limits.max_text_chars {
        return Err(EmbeddingsError::InvalidText(format!(
            "{label} has {chars} characters; at most {} are accepted",
            limits.max_text_chars
        )));
    }
    Ok(())
}

/// A vector comparable with the model's: `dimension` finite numbers. JSON cannot write NaN
/// or infinity, but a number beyond `f32` (say `1e39`) arrives as infinity.
fn check_vector(vector: &[f32], label: &str, dimension: usize) -> Result<(), EmbeddingsError> {
    if vector.len() != dimension {
        return Err(EmbeddingsError::InvalidVector(format!(
            "{label} has {} numbers; the model's vectors have {dimension}",
            vector.len()
        )));
    }
    if let Some(position) = vector.iter().position(|x| !x.is_finite()) {
        return Err(EmbeddingsError::InvalidVector(format!(
            "{label}[{position}] is not a finite 32-bit float"
        )));
    }
    Ok(())
}

/// Counts and times one call of `endpoint`.
async fn observed<T>(
    state: &AppState,
    endpoint: &'static str,
    work: impl Future<Output = Result<T, EmbeddingsError>>,
) -> Result<T, EmbeddingsError> {
    let started = Instant::now();
    let result = work.await;
    let metrics = &state.metrics;
    let outcome = result
        .as_ref()
        .map_or_else(EmbeddingsError::outcome, |_| "ok");
    metrics
        .embedding_requests
        .with_label_values(&[endpoint, outcome])
        .inc();
    metrics
        .embedding_response_time
        .with_label_values(&[endpoint])
        .observe(started.elapsed().as_secs_f64());
    result
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbedResponse {
    pub vector: Vec<f32>,
    pub cached: bool,
    pub dimension: usize,
    pub processing_time_ms: f64,
}

/// The model's embedding of one text (384 numbers, L2-normalised).
#[utoipa::path(
    post,
    path = "/embed",
    tag = "embeddings",
    request_body = EmbedRequest,
    responses(
        (status = 200, description = "The vector", body = EmbedResponse),
        (status = 400, description = "`invalid_text`: blank or too long", body = ErrorBody),
        (status = 429, description = "`overloaded`: the queue is full, or `rate_limited`: too many requests from this IP; see `Retry-After`", body = ErrorBody,
         headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 503, description = "`model_unavailable`", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
async fn embed(
    state: web::Data<AppState>,
    body: JsonObject<EmbedRequest>,
) -> Result<HttpResponse, EmbeddingsError> {
    let started = Instant::now();
    observed(&state, "embed", async {
        let text = body.into_inner().text;
        check_text(&text, "text", &state.settings.embedding)?;
        let mut embedded = state.embeddings.embed(vec![text]).await?;
        Ok(HttpResponse::Ok().json(EmbedResponse {
            vector: embedded.vectors.pop().unwrap_or_default(),
            cached: embedded.cached.first().copied().unwrap_or(false),
            dimension: state.embeddings.model.dimension,
            processing_time_ms: elapsed_ms(started),
        }))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchEmbedRequest {
    pub texts: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchEmbedResponse {
    pub vectors: Vec<Vec<f32>>,
    pub cached_count: usize,
    pub dimension: usize,
    pub processing_time_ms: f64,
    pub batch_size: usize,
}

/// Embeddings of up to `embedding.max_batch_texts` texts, in order.
#[utoipa::path(
    post,
    path = "/batch-embed",
    tag = "embeddings",
    request_body = BatchEmbedRequest,
    responses(
        (status = 200, description = "The vectors, in the order of the texts", body = BatchEmbedResponse),
        (status = 400, description = "`no_texts`, `too_many_texts` or `invalid_text`", body = ErrorBody),
        (status = 429, description = "`overloaded`: the queue is full, or `rate_limited`: too many requests from this IP; see `Retry-After`", body = ErrorBody,
         headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 503, description = "`model_unavailable`", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
async fn batch_embed(
    state: web::Data<AppState>,
    body: JsonObject<BatchEmbedRequest>,
) -> Result<HttpResponse, EmbeddingsError> {
    let started = Instant::now();
    observed(&state, "batch_embed", async {
        let texts = body.into_inner().texts;
        let limits = &state.settings.embedding;
        if texts.is_empty() {
            return Err(EmbeddingsError::NoTexts);
        }
        if texts.len() > limits.max_batch_texts {
            return Err(EmbeddingsError::TooManyTexts {
                max: limits.max_batch_texts,
                got: texts.len(),
            });
        }
        for (index, text) in texts.iter().enumerate() {
            check_text(text, &format!("texts[{index}]"), limits)?;
        }
        let batch_size = texts.len();
        let embedded = state.embeddings.embed(texts).await?;
        Ok(HttpResponse::Ok().json(BatchEmbedResponse {
            cached_count: embedded.cached_count(),
            vectors: embedded.vectors,
            dimension: state.embeddings.model.dimension,
            processing_time_ms: elapsed_ms(started),
            batch_size,
        }))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimilarityRequest {
    pub vector1: Vec<f32>,
    pub vector2: Vec<f32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarityResponse {
    pub similarity: f32,
}

/// Cosine similarity of two vectors of the model's dimension.
#[utoipa::path(
    post,
    path = "/similarity",
    tag = "embeddings",
    request_body = SimilarityRequest,
    responses(
        (status = 200, description = "The cosine, in [-1, 1]", body = SimilarityResponse),
        (status = 400, description = "`invalid_vector`: wrong length or not finite", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many requests from this IP; see `Retry-After`", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
async fn similarity(
    state: web::Data<AppState>,
    body: JsonObject<SimilarityRequest>,
) -> Result<HttpResponse, EmbeddingsError> {
    observed(&state, "similarity", async {
        let SimilarityRequest { vector1, vector2 } = body.into_inner();
        let dimension = state.embeddings.model.dimension;
        check_vector(&vector1, "vector1", dimension)?;
        check_vector(&vector2, "vector2", dimension)?;
        // Rounding can carry a cosine a hair past ±1.
        let similarity = cosine(&vector1, &vector2).clamp(-1.0, 1.0);
        Ok(HttpResponse::Ok().json(SimilarityResponse { similarity }))
    })
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsResponse {
    pub model: ModelStats,
    pub workers: usize,
    pub batching: BatchingStats,
    pub queue_depth: usize,
    pub cache: CacheStats,
    /// Successful `/embed` and `/batch-embed` calls of this instance.
    pub requests_served: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelStats {
    pub id: String,
    pub dimension: usize,
    pub max_tokens: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchingStats {
    pub max_batch_size: usize,
    pub max_batch_tokens: usize,
    pub max_wait_ms: u64,
    pub queue_capacity: usize,
    pub batches: u64,
    pub texts: u64,
    pub average_batch_size: f64,
    pub largest_batch: usize,
    pub in_flight: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub hit_rate: f64,
    /// `redis`: every instance's counts; `instance`: this one's (Redis did not answer).
    pub scope: &'static str,
    pub errors: u64,
    pub ttl_secs: u64,
}

/// The encoder's configuration, batching and cache counters.
#[utoipa::path(
    get,
    path = "/stats",
    tag = "embeddings",
    responses(
        (status = 200, description = "Counters of this instance (cache: of every instance when Redis answers)", body = StatsResponse),
        (status = 503, description = "`model_unavailable`: the batcher did not answer", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, EmbeddingsError> {
    let service = &state.embeddings;
    let settings = &state.settings.embedding;
    let metrics = &state.metrics;
    let batcher = state
        .embedding_batcher
        .send(GetBatcherStats)
        .await
        .map_err(|_| EmbeddingError::Unavailable)?;
    let counts = match &service.cache {
        Some(cache) => cache.counts().await,
        None => None,
    };
    let ((hits, misses), scope) = match counts {
        Some(counts) => ((counts.hits, counts.misses), "redis"),
        None => (metrics.cache_lookups(), "instance"),
    };
    let served = ["embed", "batch_embed"]
        .iter()
        .map(|endpoint| {
            metrics
                .embedding_requests
                .with_label_values(&[endpoint, "ok"])
                .get()
        })
        .sum();
    let errors = ["get", "set", "stats"]
        .iter()
        .map(|op| metrics.cache_errors.with_label_values(&[op]).get())
        .sum();
    Ok(HttpResponse::Ok().json(StatsResponse {
        model: ModelStats {
            id: service.model.id.to_string(),
            dimension: service.model.dimension,
            max_tokens: service.model.max_tokens,
        },
        workers: settings.workers,
        batching: BatchingStats {
            max_batch_size: settings.max_batch_size,
            max_batch_tokens: settings.max_batch_tokens,
            max_wait_ms: settings.max_wait_ms,
            queue_capacity: settings.queue_capacity,
            batches: batcher.batches,
            texts: batcher.texts,
            average_batch_size: if batcher.batches == 0 {
                0.0
            } else {
                batcher.texts as f64 / batcher.batches as f64
            },
            largest_batch: batcher.largest_batch,
            in_flight: batcher.in_flight,
        },
        queue_depth: batcher.waiting_texts,
        cache: CacheStats {
            hits,
            misses,
            hit_rate: if hits + misses == 0 {
                0.0
            } else {
                hits as f64 / (hits + misses) as f64
            },
            scope,
            errors,
            ttl_secs: settings.cache_ttl_secs,
        },
        requests_served: served,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn limits() -> EmbeddingSettings {
        Settings::load_with_env(None, Vec::new()).unwrap().embedding
    }

    #[test]
    fn blank_and_overlong_texts_are_refused_and_ordinary_ones_pass() {
        let limits = limits();
        assert!(check_text("wool socks", "text", &limits).is_ok());
        assert!(matches!(
            check_text(" \n\t", "text", &limits),
            Err(EmbeddingsError::InvalidText(m)) if m.contains("empty")
        ));
        let long = "가".repeat(limits.max_text_chars + 1);
        assert!(matches!(
            check_text(&long, "texts[2]", &limits),
            Err(EmbeddingsError::InvalidText(m)) if m.starts_with("texts[2]")
        ));
        // Characters, not bytes: a Korean text at the limit is fine.
        assert!(check_text(&"가".repeat(limits.max_text_chars), "text", &limits).is_ok());
    }

    #[test]
    fn vectors_must_have_the_dimension_and_finite_numbers() {
        assert!(check_vector(&[0.5, 0.5], "vector1", 2).is_ok());
        assert!(check_vector(&[0.5], "vector1", 2).is_err());
        let err = check_vector(&[0.5, f32::INFINITY], "vector2", 2).unwrap_err();
        assert!(err.to_string().contains("vector2[1]"), "{err}");
    }

    #[test]
    fn json_numbers_beyond_f32_arrive_as_infinity_and_beyond_f64_do_not_parse() {
        let parsed: SimilarityRequest =
            serde_json::from_str(r#"{"vector1": [1e39], "vector2": [1.0]}"#).unwrap();
        assert!(parsed.vector1[0].is_infinite());
        assert!(serde_json::from_str::<SimilarityRequest>(
            r#"{"vector1": [1e999], "vector2": [1.0]}"#
        )
        .is_err());
    }
}
