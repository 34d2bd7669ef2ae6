//! Building the application: connect the dependencies, start the actors, bind the server.

use crate::actors::dependency_monitor::{Dependencies, DependencyMonitor};
use crate::actors::embedding::start_embeddings;
use crate::actors::search_indexer::SearchIndexer;
use crate::actors::supervision::{StartSupervised, SupervisedActor};
use crate::config::{ModelSettings, Settings};
use crate::embeddings::EmbeddingService;
use crate::http::search::SearchState;
use crate::http::{self, AppState};
use crate::identity::MemberTokens;
use crate::metrics::Metrics;
use crate::ml::Embedder;
use crate::redis::{RedisKeys, RedisPool};
use crate::search::metrics::SearchMetrics;
use crate::search::SearchClient;
use actix::Addr;
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use std::net::TcpListener;

/// How long a starting instance waits for another one that is training the first model.
const MODEL_WAIT_AT_START: std::time::Duration = std::time::Duration::from_secs(30);
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct Application {
    port: u16,
    server: Server,
    pub state: web::Data<AppState>,
    pub events: crate::actors::event_backbone::Events,
    /// Chat message → shopping intent, and products → reply: the LLM, or the local fallback
    /// and template (the chat pipeline holds them; here for tests that call them directly).
    pub language: crate::llm::Language,
    /// Every long-lived actor, each under a supervisor (`actors::supervision`).
    pub supervised: Vec<SupervisedActor>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] crate::db::DbSetupError),
    #[error("cannot bind {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid Redis URL: {0}")]
    Redis(#[source] redis::RedisError),
    #[error("invalid Elasticsearch URL: {0}")]
    Elasticsearch(String),
    #[error("invalid Kafka settings: {0}")]
    Kafka(#[source] rdkafka::error::KafkaError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("cannot load the embedding model from {dir}: {source}")]
    Model {
        dir: PathBuf,
        #[source]
        source: crate::ml::bert::LoadError,
    },
    #[error("invalid rate_limit.trusted_proxies: {0}")]
    TrustedProxies(String),
    #[error("cannot load or train the item-item model: {0}")]
    CfModel(#[from] crate::recommend::cf_store::TrainingError),
    #[error("cannot set up intent analysis: {0}")]
    Language(#[from] crate::llm::BuildError),
}

pub fn elasticsearch_client(
    settings: &crate::config::ElasticsearchSettings,
) -> Result<elasticsearch::Elasticsearch, StartupError> {
    let transport =
        elasticsearch::http::transport::Transport::single_node(settings.url.expose_secret())
            .map_err(|e| StartupError::Elasticsearch(e.to_string()))?;
    Ok(elasticsearch::Elasticsearch::new(transport))
}

/// Loads the sentence encoder (reading and checking the weights takes a moment, so off the
/// async thread).
pub async fn load_model(settings: &ModelSettings) -> Result<Box<dyn Embedder>, StartupError> {
    let dir = settings.dir.clone();
    let loading = settings.clone();
    actix_web::rt::task::spawn_blocking(move || crate::ml::load_embedder(&loading))
        .await
        .map_err(|e| StartupError::Io(std::io::Error::other(e)))?
        .map_err(|source| StartupError::Model { dir, source })
}

/// Starts the actor that probes every dependency for the readiness endpoint.
fn start_monitor(
    settings: &Settings,
    db: &DatabaseConnection,
    redis: &RedisPool,
    metrics: &Metrics,
) -> Result<Addr<DependencyMonitor>, StartupError> {
    let deps = Dependencies {
        db: db.clone(),
        redis: redis.clone(),
        kafka: Arc::new(
            Dependencies::kafka_probe_client(&settings.kafka.brokers)
                .map_err(StartupError::Kafka)?,
        ),
        elasticsearch: elasticsearch_client(&settings.elasticsearch)?,
        model_dirs: settings.multilingual().map_or_else(
            || vec![settings.model.dir.clone()],
            |multilingual| vec![settings.model.dir.clone(), multilingual.dir],
        ),
    };
    Ok(DependencyMonitor::new(
        deps,
        metrics.clone(),
        Duration::from_secs(settings.server.readiness_interval_secs.max(1)),
    )
    .start_supervised())
}

/// The chat: its metrics and the message pipeline over the intent
/// analyser, the hybrid recommender and the reply writer, reading each message as feedback
/// on the previous reply (through the database and the cache Redis).
#[allow(clippy::too_many_arguments)]
fn start_chat(
    settings: &Settings,
    db: &DatabaseConnection,
    embeddings: &EmbeddingService,
    ranker: Arc<dyn crate::recommend::ProductRanker>,
    analyzer: Arc<dyn crate::intent::IntentAnalyzer>,
    writer: Arc<dyn crate::reply::ReplyWriter>,
    redis: &RedisPool,
    keys: &RedisKeys,
    metrics: &Metrics,
) -> crate::chat::ChatState {
    let chat_metrics = crate::chat::ChatMetrics::register(&metrics.registry);
    let pipeline = crate::chat::ChatPipeline::new(
        Arc::new(db.clone()),
        embeddings.clone(),
        analyzer,
        ranker,
        writer,
        settings.chat.clone(),
        chat_metrics.clone(),
    )
    .with_feedback(Arc::new(crate::chat::feedback::PgFeedback {
        db: db.clone(),
        redis: redis.clone(),
        keys: keys.clone(),
        cache_timeout: Duration::from_millis(settings.recommender.cache_timeout_ms.max(1)),
    }));
    let pipeline = Arc::new(pipeline);
    crate::actors::chat_recovery::start(pipeline.clone());
    crate::chat::ChatState {
        pipeline,
        metrics: chat_metrics,
    }
}

/// How long start-up waits for the search server to create the indices before leaving it to
/// the indexer.
const SEARCH_STARTUP_TIMEOUT: Duration = Duration::from_secs(5);

struct Search {
    indexer: Addr<SearchIndexer>,
    http: SearchState,
}

/// Creates the search indices (or leaves that to the indexer while the server is away) and
/// starts the `es-sync` owner.
async fn start_search(
    settings: &Settings,
    db: &DatabaseConnection,
    embeddings: &EmbeddingService,
    metrics: &Metrics,
) -> Result<Search, StartupError> {
    let es = &settings.elasticsearch;
    let client = SearchClient::new(elasticsearch_client(es)?, es);
    let search_metrics =
        SearchMetrics::register(&metrics.registry).expect("search metrics registered once");
    let ready = match tokio::time::timeout(SEARCH_STARTUP_TIMEOUT, client.ensure_indices()).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, "search indices not created at start-up; the indexer retries");
            false
        }
        Err(_) => {
            tracing::warn!("the search server did not answer at start-up; the indexer retries");
            false
        }
    };
    let indexer = SearchIndexer::new(
        client.clone(),
        db.clone(),
        embeddings.clone(),
        search_metrics.clone(),
        Duration::from_secs(es.product_sync_interval_secs.max(1)),
        ready,
    )
    .start_supervised();
    Ok(Search {
        indexer,
        http: SearchState {
            client,
            metrics: search_metrics,
            retry_after_secs: es.retry_after_secs,
        },
    })
}

impl Application {
    /// Loads the model, connects, migrates (if configured) and binds; the server runs once
    /// awaited.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let settings = Arc::new(settings);
        // First, so a missing or corrupt model fails start-up before anything is touched.
        let api_settings = settings.embed_api_model();
        let content_settings = settings.content_model();
        let api_model = load_model(&api_settings).await?;
        let content_model = if content_settings.dir == api_settings.dir {
            None
        } else {
            Some(load_model(&content_settings).await?)
        };
        if settings.multilingual().is_some() {
            let content = content_model.as_ref().unwrap_or(&api_model);
            if content.prompts() == &crate::ml::TextPrompts::default() {
                // e5 was trained with `query: `/`passage: `; without them it ranks worse.
                tracing::warn!(
                    dir = %content_settings.dir.display(),
                    "the multilingual model has no prompts: add config_sentence_transformers.json \
                     with {{\"prompts\": {{\"query\": \"query: \", \"passage\": \"passage: \"}}}}"
                );
            }
        }
        crate::db::ensure_database(&settings.database).await?;
        let db = crate::db::connect(&settings.database).await?;
        if settings.database.migrate_on_start {
            crate::db::migrate(&db).await?;
        }
        let metrics = Metrics::new();
        let redis = crate::redis::connect(&settings.redis).map_err(StartupError::Redis)?;
        let state_redis =
            crate::redis::connect_state(&settings.redis).map_err(StartupError::Redis)?;
        let keys = RedisKeys::new(&settings.redis.key_prefix);
        let monitor = start_monitor(&settings, &db, &redis, &metrics)?;
        let start = |model| {
            start_embeddings(
                model,
                &settings.embedding,
                redis.clone(),
                keys.clone(),
                metrics.clone(),
            )
        };
        let (embeddings, embedding_batcher) = start(api_model);
        // Each model has its own workers, batcher and cache keys (the model id is in them).
        let mut batchers = vec![embedding_batcher.clone()];
        let content_embeddings = content_model
            .map(|model| {
                let (service, batcher) = start(model);
                batchers.push(batcher);
                service
            })
            .unwrap_or_else(|| embeddings.clone());

        let search = start_search(&settings, &db, &content_embeddings, &metrics).await?;
        let reco = &settings.recommender;
        // The newest trained model version, or on a deployment's first start one trained now.
        let cf = crate::recommend::cf_store::load_or_train(
            &db,
            crate::recommend::cf::CfConfig::from(reco),
            MODEL_WAIT_AT_START,
        )
        .await
        .map_err(StartupError::CfModel)?;
        let recommender = crate::actors::recommender::Recommender::start(
            crate::recommend::engine::HybridEngine {
                db: db.clone(),
                redis: redis.clone(),
                state: state_redis.clone(),
                embeddings: content_embeddings.clone(),
                keys: keys.clone(),
                settings: reco.clone(),
                cf,
                as_of: None,
            },
            crate::actors::recommender::RecommenderMetrics::register(&metrics.registry)
                .expect("recommender metrics registered once"),
            Some(
                crate::actors::model_trainer::TrainerMetrics::register(&metrics.registry)
                    .expect("trainer metrics registered once"),
            ),
        );

        let language = crate::llm::build(&settings, &db, redis.clone(), &metrics.registry).await?;
        let events = crate::actors::event_backbone::start(
            &settings,
            &db,
            crate::redis::connect(&settings.redis).map_err(StartupError::Redis)?,
            state_redis.clone(),
            &metrics.registry,
            search.indexer.clone().recipient(),
            Some(language.analyzer.clone()),
        )
        .await
        .map_err(StartupError::Kafka)?;
        let search_data = web::Data::new(search.http);

        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener.local_addr()?.port();
        let chat = start_chat(
            &settings,
            &db,
            &content_embeddings,
            Arc::new(recommender.clone()),
            language.analyzer.clone(),
            language.writer.clone(),
            &redis,
            &keys,
            &metrics,
        );
        // Rate limits shared by the instances through the cache Redis (a bucket lost to
        // eviction only refills early); each instance falls back to its own buckets.
        let trusted_proxies =
            crate::rate_limit::TrustedProxies::parse(&settings.rate_limit.trusted_proxies)
                .map_err(StartupError::TrustedProxies)?;
        let limiter = Arc::new(crate::rate_limit::RateLimiter::new(
            &settings.rate_limit,
            Some(crate::rate_limit::SharedStore {
                redis: redis.clone(),
                keys: keys.clone(),
                timeout: std::time::Duration::from_millis(
                    settings.recommender.cache_timeout_ms.max(1),
                ),
            }),
            // A socket whose instance died stops counting after two client timeouts.
            std::time::Duration::from_secs(settings.chat.client_timeout_secs.max(1) * 2),
        ));
        let mut supervised = vec![
            SupervisedActor::new("dependency_monitor", &monitor),
            SupervisedActor::new("search_indexer", &search.indexer),
        ];
        supervised.extend(
            batchers
                .iter()
                .map(|batcher| SupervisedActor::new("embedding_batcher", batcher)),
        );
        supervised.extend(
            recommender
                .pool()
                .iter()
                .map(|actor| SupervisedActor::new("recommender", actor)),
        );
        supervised.extend(events.supervised.iter().cloned());
        let state = web::Data::new(AppState {
            settings: settings.clone(),
            db,
            metrics,
            monitor,
            redis,
            state_redis,
            keys,
            embeddings,
            embedding_batcher,
            content_embeddings,
            tokens: MemberTokens::new(&settings.security),
            recommender,
            chat,
            limiter,
            trusted_proxies,
        });
        let max_body = settings.server.max_body_bytes;
        let cors_origins = settings.server.cors_allowed_origins.clone();
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(search_data.clone())
                .wrap(from_fn(http::rate_limit::limit_requests))
                .wrap(from_fn(http::metrics::record_request))
                .wrap(http::cors(&cors_origins))
                .wrap(http::default_headers())
                .configure(|cfg| http::configure(cfg, max_body))
        })
        .listen(listener)?
        .shutdown_timeout(settings.server.shutdown_timeout_secs);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        Ok(Self {
            port,
            server: server.run(),
            state,
            events,
            language,
            supervised,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT/SIGTERM, then drains in-flight requests (graceful shutdown is
    /// actix-web's own signal handling).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
