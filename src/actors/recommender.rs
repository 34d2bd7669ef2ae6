//! `RecommenderActor`: a pool of actors that each compute one uncached list at a time with
//! the [`HybridEngine`], and [`Recommender`], the cloneable handle in front of them that
//! implements [`ProductRanker`]. The handle serves `rec:user:{id}` (a hash, one field per
//! request variant) and `rec:similar:{id}` from Redis, bounds the work waiting for the pool
//! (overload → `Overloaded`), and goes on uncached when Redis is away.
//!
//! Each actor runs on its own arbiter (thread), so the pool's CPU work (decoding candidates,
//! scoring, MMR) spreads over the cores instead of sharing the system arbiter's one thread,
//! and a list goes to an idle actor, never behind a slow one.

use crate::embeddings::EmbeddingService;
use crate::ml::TextKind;
use crate::recommend::engine::{HybridEngine, SharedCf};
use crate::recommend::query_cache::QueryEmbeddingCache;
use crate::recommend::{ProductRanker, RecommendError, RecommendRequest, RecommendedProduct};
use crate::redis::{RedisKeys, RedisPool};
use actix::prelude::*;
use futures::future::BoxFuture;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use uuid::Uuid;

#[derive(Message)]
#[rtype(result = "Result<Vec<RecommendedProduct>, RecommendError>")]
pub struct Recommend(pub RecommendRequest);

#[derive(Message)]
#[rtype(result = "Result<Option<Vec<RecommendedProduct>>, RecommendError>")]
pub struct Similar {
    pub product_id: Uuid,
    pub limit: usize,
}

pub struct RecommenderActor {
    engine: HybridEngine,
}

impl Actor for RecommenderActor {
    type Context = Context<Self>;
}

impl Handler<Recommend> for RecommenderActor {
    // Atomic: one list at a time per actor, so the pool size bounds the work in flight.
    type Result = AtomicResponse<Self, Result<Vec<RecommendedProduct>, RecommendError>>;

    fn handle(&mut self, msg: Recommend, _: &mut Self::Context) -> Self::Result {
        let engine = self.engine.clone();
        AtomicResponse::new(Box::pin(
            async move { engine.recommend(msg.0).await }.into_actor(self),
        ))
    }
}

impl Handler<Similar> for RecommenderActor {
    type Result = AtomicResponse<Self, Result<Option<Vec<RecommendedProduct>>, RecommendError>>;

    fn handle(&mut self, msg: Similar, _: &mut Self::Context) -> Self::Result {
        let engine = self.engine.clone();
        AtomicResponse::new(Box::pin(
            async move { engine.similar(msg.product_id, msg.limit).await }.into_actor(self),
        ))
    }
}

/// Cache hits/misses and generation time.
#[derive(Clone)]
pub struct RecommenderMetrics {
    pub cache_lookups: IntCounterVec,
    pub generation_time: Histogram,
}

impl RecommenderMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let cache_lookups = IntCounterVec::new(
            Opts::new(
                "recommendation_cache_lookups_total",
                "Recommendation cache lookups by cache (user, similar) and result (hit, miss, error)",
            ),
            &["cache", "result"],
        )?;
        let generation_time = Histogram::with_opts(
            HistogramOpts::new(
                "recommendation_generation_time",
                "Seconds to compute one uncached recommendation list",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5,
            ]),
        )?;
        registry.register(Box::new(cache_lookups.clone()))?;
        registry.register(Box::new(generation_time.clone()))?;
        Ok(Self {
            cache_lookups,
            generation_time,
        })
    }
}

/// The pool's arbiters, stopped when the last handle goes (a test app's pool does not
/// outlive its test).
struct PoolThreads(Vec<ArbiterHandle>);

impl Drop for PoolThreads {
    fn drop(&mut self) {
        for arbiter in &self.0 {
            arbiter.stop();
        }
    }
}

/// The actors not computing a list right now; `free` has one permit per entry.
struct IdleActors {
    free: Semaphore,
    indices: Mutex<Vec<usize>>,
}

/// An idle actor lent to one list; back in the idle set when dropped (also when the caller
/// goes away mid-list).
struct LentActor<'a> {
    idle: &'a IdleActors,
    index: usize,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Drop for LentActor<'_> {
    fn drop(&mut self) {
        self.idle
            .indices
            .lock()
            .expect("idle actors lock not poisoned")
            .push(self.index);
    }
}

/// The handle: cache in front, bounded pool behind.
#[derive(Clone)]
pub struct Recommender {
    actors: Arc<Vec<Addr<RecommenderActor>>>,
    idle: Arc<IdleActors>,
    _threads: Arc<PoolThreads>,
    waiting: Arc<Semaphore>,
    redis: RedisPool,
    keys: RedisKeys,
    cache_ttl_secs: u64,
    similar_ttl_secs: u64,
    redis_timeout: Duration,
    metrics: RecommenderMetrics,
    embeddings: EmbeddingService,
    query_embeddings: QueryEmbeddingCache,
    pub cf: SharedCf,
}

impl Recommender {
    /// Starts `pool_size` actors over `engine` and a task that rebuilds the CF similarities
    /// every `cf_rebuild_interval_secs`.
    pub fn start(engine: HybridEngine, metrics: RecommenderMetrics) -> Self {
        let settings = engine.settings.clone();
        let pool_size = settings.pool_size.max(1);
        let threads: Vec<ArbiterHandle> = (0..pool_size).map(|_| Arbiter::new().handle()).collect();
        let actors = threads
            .iter()
            .map(|arbiter| {
                let engine = engine.clone();
                RecommenderActor::start_in_arbiter(arbiter, move |_| RecommenderActor { engine })
            })
            .collect();
        let cf = engine.cf.clone();
        let interval = Duration::from_secs(settings.cf_rebuild_interval_secs.max(1));
        let rebuilding = cf.clone();
        actix::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let model = rebuilding.clone();
                let started = Instant::now();
                let done = tokio::task::spawn_blocking(move || {
                    let now = chrono::Utc::now().timestamp();
                    model.write().expect("CF lock not poisoned").rebuild(now);
                })
                .await;
                if done.is_ok() {
                    tracing::debug!(took = ?started.elapsed(), "CF similarities rebuilt");
                }
            }
        });
        Self {
            actors: Arc::new(actors),
            idle: Arc::new(IdleActors {
                free: Semaphore::new(pool_size),
                indices: Mutex::new((0..pool_size).collect()),
            }),
            _threads: Arc::new(PoolThreads(threads)),
            waiting: Arc::new(Semaphore::new(settings.queue_capacity.max(1))),
            redis: engine.redis.clone(),
            keys: engine.keys.clone(),
            cache_ttl_secs: settings.cache_ttl_secs.max(1),
            similar_ttl_secs: settings.similar_cache_ttl_secs.max(1),
            redis_timeout: Duration::from_millis(settings.cache_timeout_ms.max(1)),
            metrics,
            embeddings: engine.embeddings.clone(),
            query_embeddings: QueryEmbeddingCache::new(settings.query_embedding_cache_entries),
            cf,
        }
    }

    /// Waits for an idle actor (first come, first served).
    async fn idle_actor(&self) -> Result<LentActor<'_>, RecommendError> {
        let permit = self
            .idle
            .free
            .acquire()
            .await
            .map_err(|e| RecommendError::Unavailable(e.to_string()))?;
        let index = self
            .idle
            .indices
            .lock()
            .expect("idle actors lock not poisoned")
            .pop()
            .expect("a permit means an idle actor");
        Ok(LentActor {
            idle: &self.idle,
            index,
            _permit: permit,
        })
    }

    /// A hash field naming the request variant; `None` when the request is not cacheable
    /// (it carries its own embedding).
    fn variant(request: &RecommendRequest) -> Option<String> {
        if request.query_embedding.is_some() {
            return None;
        }
        let intent = serde_json::to_string(&request.intent).ok()?;
        Some(format!(
            "q={}|limit={}|exclude={:?}|language={:?}|intent={intent}",
            request.query_text.as_deref().unwrap_or_default(),
            request.limit,
            request.exclude,
            request.language
        ))
    }

    async fn cache_get(
        &self,
        cache: &str,
        key: &str,
        field: &str,
    ) -> Option<Vec<RecommendedProduct>> {
        let lookup = async {
            let mut conn = self.redis.get().await.map_err(|e| e.to_string())?;
            redis::cmd("HGET")
                .arg(key)
                .arg(field)
                .query_async::<Option<String>>(&mut *conn)
                .await
                .map_err(|e| e.to_string())
        };
        let result = match tokio::time::timeout(self.redis_timeout, lookup).await {
            Ok(Ok(Some(json))) => serde_json::from_str(&json).ok(),
            Ok(Ok(None)) => None,
            Ok(Err(error)) => {
                tracing::debug!(%error, "recommendation cache unavailable");
                self.metrics
                    .cache_lookups
                    .with_label_values(&[cache, "error"])
                    .inc();
                return None;
            }
            Err(_) => {
                self.metrics
                    .cache_lookups
                    .with_label_values(&[cache, "error"])
                    .inc();
                return None;
            }
        };
        let outcome = if result.is_some() { "hit" } else { "miss" };
        self.metrics
            .cache_lookups
            .with_label_values(&[cache, outcome])
            .inc();
        result
    }

    async fn cache_put(&self, key: &str, field: &str, ttl: u64, items: &[RecommendedProduct]) {
        let Ok(json) = serde_json::to_string(items) else {
            return;
        };
        let store = async {
            let mut conn = self.redis.get().await.map_err(|e| e.to_string())?;
            redis::pipe()
                .atomic()
                .cmd("HSET")
                .arg(key)
                .arg(field)
                .arg(json)
                .ignore()
                .cmd("EXPIRE")
                .arg(key)
                .arg(ttl)
                .ignore()
                .query_async::<()>(&mut *conn)
                .await
                .map_err(|e| e.to_string())
        };
        if let Ok(Err(error)) = tokio::time::timeout(self.redis_timeout, store).await {
            tracing::debug!(%error, "recommendation not cached");
        }
    }

    /// Gives a request with words (`q`, a chat message) but no embedding the embedding of its
    /// words, from the in-process cache or the embedding service (which remembers it in
    /// Redis). When the service fails the request goes on without, and the engine tries again.
    async fn attach_query_embedding(&self, request: &mut RecommendRequest) {
        let Some(text) = request
            .query_text
            .as_deref()
            .filter(|t| !t.trim().is_empty())
        else {
            return;
        };
        if request.query_embedding.is_some() {
            return;
        }
        if let Some(vector) = self.query_embeddings.get(text) {
            request.query_embedding = Some(vector.as_ref().clone());
            return;
        }
        if let Ok(mut embedded) = self
            .embeddings
            .embed_as(TextKind::Query, vec![text.to_string()])
            .await
        {
            if let Some(vector) = embedded.vectors.pop().filter(|v| !v.is_empty()) {
                self.query_embeddings
                    .insert(text.to_string(), vector.clone());
                request.query_embedding = Some(vector);
            }
        }
    }

    /// Computes on the pool, or `Overloaded` when `queue_capacity` requests already wait.
    async fn on_pool<M>(&self, message: M) -> Result<M::Result, RecommendError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        RecommenderActor: Handler<M>,
    {
        let _permit = self
            .waiting
            .try_acquire()
            .map_err(|_| RecommendError::Overloaded)?;
        let timer = self.metrics.generation_time.start_timer();
        let actor = self.idle_actor().await?;
        let result = self.actors[actor.index]
            .send(message)
            .await
            .map_err(|e| RecommendError::Unavailable(e.to_string()))?;
        drop(actor);
        timer.observe_duration();
        Ok(result)
    }

    /// Products like `product_id`; `None` for an unknown product.
    pub async fn similar(
        &self,
        product_id: Uuid,
        limit: usize,
    ) -> Result<Option<Vec<RecommendedProduct>>, RecommendError> {
        let key = self.keys.similar_products(product_id);
        let field = format!("limit={limit}");
        if let Some(hit) = self.cache_get("similar", &key, &field).await {
            return Ok(Some(hit));
        }
        let items = self.on_pool(Similar { product_id, limit }).await??;
        if let Some(items) = &items {
            self.cache_put(&key, &field, self.similar_ttl_secs, items)
                .await;
        }
        Ok(items)
    }
}

impl ProductRanker for Recommender {
    fn recommend(
        &self,
        request: RecommendRequest,
    ) -> BoxFuture<'_, Result<Vec<RecommendedProduct>, RecommendError>> {
        Box::pin(async move {
            let mut request = request;
            if request.limit == 0 {
                return Err(RecommendError::Invalid("limit must be at least 1".into()));
            }
            let cache = match (&request.member_id, Self::variant(&request)) {
                (Some(member), Some(field)) => {
                    Some((self.keys.member_recommendations(member), field))
                }
                _ => None,
            };
            if let Some((key, field)) = &cache {
                if let Some(hit) = self.cache_get("user", key, field).await {
                    return Ok(hit);
                }
            }
            // After the cache field is named: a request carrying its embedding is not cached.
            self.attach_query_embedding(&mut request).await;
            let items = self.on_pool(Recommend(request)).await??;
            if let Some((key, field)) = &cache {
                self.cache_put(key, field, self.cache_ttl_secs, &items)
                    .await;
            }
            Ok(items)
        })
    }
}
