//! The OpenAI-compatible model (async-openai) for intent analysis and reply writing, behind a
//! timeout, retries with capped backoff, a circuit breaker and a bulkhead; the local analyser
//! and the template answer whenever it cannot (docs/intent.md).

pub mod analyzer;
pub mod breaker;
pub mod client;
pub mod writer;

pub use analyzer::LlmIntentAnalyzer;
pub use breaker::{BreakerState, CircuitBreaker};
pub use client::{LlmClient, LlmError};
pub use writer::LlmReplyWriter;

use crate::analysis::FallbackAnalyzer;
use crate::config::Settings;
use crate::intent::IntentAnalyzer;
use crate::redis::{RedisKeys, RedisPool};
use crate::reply::{ReplyWriter, TemplateReplyWriter};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::time::Duration;

/// What the chat pipeline talks to.
#[derive(Clone)]
pub struct Language {
    pub analyzer: Arc<dyn IntentAnalyzer>,
    pub writer: Arc<dyn ReplyWriter>,
    /// The local analyser (also what `analyzer` falls back to).
    pub fallback: Arc<FallbackAnalyzer>,
    /// `None` when no LLM is configured.
    pub breaker: Option<Arc<CircuitBreaker>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read the catalog brands: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("cannot register the LLM metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Llm(#[from] LlmError),
}

/// The analyser and writer `settings.llm` asks for. Registers `llm_calls_total` and
/// `llm_circuit_breaker_state` on `registry`. Must run inside the Tokio runtime.
pub async fn build(
    settings: &Settings,
    db: &DatabaseConnection,
    redis: RedisPool,
    registry: &Registry,
) -> Result<Language, BuildError> {
    let llm = &settings.llm;
    let fallback = Arc::new(FallbackAnalyzer::load(db, llm.usd_krw_rate).await?);
    let template = TemplateReplyWriter::default();
    let calls = IntCounterVec::new(
        Opts::new(
            "llm_calls_total",
            "LLM calls by operation (intent, reply) and outcome",
        ),
        &["operation", "outcome"],
    )?;
    let breaker_state = IntGauge::new(
        "llm_circuit_breaker_state",
        "LLM circuit breaker: 0 closed, 1 open, 2 half-open",
    )?;
    registry.register(Box::new(calls.clone()))?;
    registry.register(Box::new(breaker_state.clone()))?;

    if llm.base_url.trim().is_empty() {
        tracing::info!("no LLM configured (llm.base_url is empty): the local fallback answers");
        return Ok(Language {
            analyzer: fallback.clone(),
            writer: Arc::new(template),
            fallback,
            breaker: None,
        });
    }
    let breaker = Arc::new(CircuitBreaker::new(
        llm.failure_threshold,
        Duration::from_secs_f64(llm.open_secs),
        breaker_state,
        redis,
        &RedisKeys::new(&settings.redis.key_prefix),
    ));
    let client = Arc::new(LlmClient::new(llm, breaker.clone(), calls)?);
    tracing::info!(base_url = %llm.base_url, model = %llm.model, "LLM configured");
    Ok(Language {
        analyzer: Arc::new(LlmIntentAnalyzer::new(client.clone(), fallback.clone())),
        writer: Arc::new(LlmReplyWriter::new(client, template, llm.max_reply_chars)),
        fallback,
        breaker: Some(breaker),
    })
}
