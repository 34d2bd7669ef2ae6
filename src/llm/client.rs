//! One guarded chat-completions call: bulkhead → breaker → attempts with a timeout each,
//! retrying only what may succeed next time (timeouts, connection errors, 429, 5xx) with
//! capped exponential backoff. Every call ends in `llm_calls_total{operation,outcome}`.

use super::breaker::CircuitBreaker;
use crate::config::LlmSettings;
use crate::retry::Backoff;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs, ResponseFormat,
};
use async_openai::Client;
use prometheus::IntCounterVec;
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Why a call produced no answer; each is also the `outcome` label.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the circuit breaker is open")]
    BreakerOpen,
    #[error("too many LLM calls in flight")]
    BulkheadFull,
    #[error("no answer within the timeout")]
    Timeout,
    #[error("the endpoint failed: {0}")]
    Endpoint(String),
    #[error("the endpoint refused the request: {0}")]
    Rejected(String),
    #[error("the answer is unusable: {0}")]
    Invalid(String),
    #[error("invalid LLM settings: {0}")]
    Settings(String),
}

impl LlmError {
    pub fn outcome(&self) -> &'static str {
        match self {
            LlmError::BreakerOpen => "breaker_open",
            LlmError::BulkheadFull => "bulkhead_full",
            LlmError::Timeout => "timeout",
            LlmError::Endpoint(_) => "error",
            LlmError::Rejected(_) => "rejected",
            LlmError::Invalid(_) => "invalid",
            LlmError::Settings(_) => "settings",
        }
    }
}

/// What one attempt tells the retry loop.
enum AttemptError {
    Retryable(LlmError),
    Final(LlmError),
}

pub struct LlmClient {
    client: Client<OpenAIConfig>,
    model: String,
    max_completion_tokens: u32,
    timeout: Duration,
    max_retries: u32,
    backoff: Duration,
    backoff_max: Duration,
    breaker: Arc<CircuitBreaker>,
    bulkhead: Arc<Semaphore>,
    calls: IntCounterVec,
}

/// Releases a half-open probe slot if the call is dropped before it reports.
struct BreakerCall<'a> {
    breaker: &'a CircuitBreaker,
    reported: bool,
}

impl BreakerCall<'_> {
    fn success(mut self) {
        self.reported = true;
        self.breaker.on_success();
    }

    fn failure(mut self) {
        self.reported = true;
        self.breaker.on_failure();
    }
}

impl Drop for BreakerCall<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.on_abandoned();
        }
    }
}

impl LlmClient {
    pub fn new(
        settings: &LlmSettings,
        breaker: Arc<CircuitBreaker>,
        calls: IntCounterVec,
    ) -> Result<Self, LlmError> {
        let mut api_key = settings.api_key.expose_secret().to_string();
        if api_key.is_empty() {
            api_key = std::env::var("OPENAI_API_KEY").unwrap_or_default();
        }
        let config = OpenAIConfig::new()
            .with_api_base(settings.base_url.trim_end_matches('/'))
            .with_api_key(api_key);
        // The retry policy is ours (configurable, breaker-aware): the plain service has none.
        // Each attempt's timeout is a `tokio::time::timeout` around the call.
        let client = Client::with_config(config).with_http_service(ReqwestService::default());
        Ok(Self {
            client,
            model: settings.model.clone(),
            max_completion_tokens: settings.max_completion_tokens.max(1),
            timeout: Duration::from_millis(settings.timeout_ms.max(1)),
            max_retries: settings.max_retries,
            backoff: Duration::from_millis(settings.retry_backoff_ms),
            backoff_max: Duration::from_millis(settings.retry_backoff_max_ms),
            breaker,
            bulkhead: Arc::new(Semaphore::new(settings.max_concurrent)),
            calls,
        })
    }

    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    /// The model's answer to `system` + `user`, accepted by `accept`; `json` asks for a JSON
    /// object. An answer `accept` refuses is `Invalid` (the endpoint itself worked).
    pub async fn complete<T>(
        &self,
        operation: &str,
        system: &str,
        user: &str,
        json: bool,
        accept: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, LlmError> {
        let result = self
            .guarded(system, user, json)
            .await
            .and_then(|text| accept(&text).map_err(LlmError::Invalid));
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.outcome(),
        };
        self.calls.with_label_values(&[operation, outcome]).inc();
        if let Err(error) = &result {
            tracing::warn!(operation, %error, "LLM call failed; the fallback answers");
        }
        result
    }

    async fn guarded(&self, system: &str, user: &str, json: bool) -> Result<String, LlmError> {
        let _slot = self
            .bulkhead
            .clone()
            .try_acquire_owned()
            .map_err(|_| LlmError::BulkheadFull)?;
        if !self.breaker.try_acquire() {
            return Err(LlmError::BreakerOpen);
        }
        let call = BreakerCall {
            breaker: &self.breaker,
            reported: false,
        };
        let mut attempt = 0;
        loop {
            match self.attempt(system, user, json).await {
                Ok(text) => {
                    call.success();
                    return Ok(text);
                }
                Err(AttemptError::Retryable(error)) if attempt < self.max_retries => {
                    let delay = Backoff::new(self.backoff, self.backoff_max).delay(attempt + 1);
                    tracing::debug!(%error, attempt, ?delay, "retrying the LLM call");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(AttemptError::Retryable(error)) | Err(AttemptError::Final(error)) => {
                    call.failure();
                    return Err(error);
                }
            }
        }
    }

    async fn attempt(&self, system: &str, user: &str, json: bool) -> Result<String, AttemptError> {
        let messages: Vec<ChatCompletionRequestMessage> = vec![
            ChatCompletionRequestSystemMessage::from(system).into(),
            ChatCompletionRequestUserMessage::from(user).into(),
        ];
        let mut request = CreateChatCompletionRequestArgs::default();
        request
            .model(self.model.clone())
            .max_completion_tokens(self.max_completion_tokens)
            .messages(messages);
        if json {
            request.response_format(ResponseFormat::JsonObject);
        }
        let request = request
            .build()
            .map_err(|e| AttemptError::Final(LlmError::Settings(e.to_string())))?;
        let response = tokio::time::timeout(self.timeout, self.client.chat().create(request))
            .await
            .map_err(|_| AttemptError::Retryable(LlmError::Timeout))?
            .map_err(classify)?;
        // The endpoint answered: an empty answer is the model's fault, judged by the caller.
        Ok(response
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.message.content)
            .unwrap_or_default())
    }
}

fn classify(error: OpenAIError) -> AttemptError {
    match error {
        OpenAIError::Reqwest(error) if error.is_timeout() => {
            AttemptError::Retryable(LlmError::Timeout)
        }
        OpenAIError::Reqwest(error) => {
            let retryable = error
                .status()
                .is_none_or(|status| status.as_u16() == 429 || status.is_server_error());
            let error = LlmError::Endpoint(error.to_string());
            if retryable {
                AttemptError::Retryable(error)
            } else {
                AttemptError::Final(error)
            }
        }
        OpenAIError::ApiError(response) => {
            let status = response.status_code;
            let message = format!("{status}: {}", truncate(&response.api_error.message, 200));
            if status.as_u16() == 429 || status.is_server_error() {
                AttemptError::Retryable(LlmError::Endpoint(message))
            } else {
                AttemptError::Final(LlmError::Rejected(message))
            }
        }
        OpenAIError::JSONDeserialize(error, _) => AttemptError::Final(LlmError::Endpoint(format!(
            "not a chat-completions response: {error}"
        ))),
        other => AttemptError::Final(LlmError::Endpoint(other.to_string())),
    }
}

fn truncate(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}
