//! `RecommenderActor`: a pool of actors that each compute one uncached list at a time with
//! the [`HybridEngine`], and [`Recommender`], the cloneable handle in front of them that
//! implements [`ProductRanker`]. The handle serves a member's cached lists
//! (`recommend::list_cache`: generation-stamped, one key per variant) and `rec:similar:{id}:{n}`
//! from Redis, bounds the work waiting for the pool (overload → `Overloaded`), and goes on
//! uncached when Redis is away. The model trainer's loop runs on one more arbiter.
//!
//! Each actor runs on its own arbiter (thread), so the pool's CPU work (decoding candidates,
//! scoring, MMR) spreads over the cores instead of sharing the system arbiter's one thread,
//! and a list goes to an idle actor, never behind a slow one.

use crate::actors::model_trainer::{Trainer, TrainerMetrics};
use crate::embeddings::EmbeddingService;
use crate::ml::TextKind;
use crate::recommend::cf::{CfConfig, ServedNeighbours};
use crate::recommend::engine::HybridEngine;
use crate::recommend::list_cache::MemberListCache;
use crate::recommend::query_cache::QueryEmbeddingCache;
use crate::recommend::{ProductRanker, RecommendError, RecommendRequest, RecommendedProduct};
use crate::redis::{RedisKeys, RedisPool};
use actix::prelude::*;
use futures::future::BoxFuture;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};
use std::sync::{Arc, Mutex};
use std::time::Duration;
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

crate::actors::supervision::supervised!(RecommenderActor, "recommender");

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
    lists: MemberListCache,
    similar_ttl_secs: u64,
    redis_timeout: Duration,
    metrics: RecommenderMetrics,
    embeddings: EmbeddingService,
    query_embeddings: QueryEmbeddingCache,
    pub cf: ServedNeighbours,
}

impl Recommender {
    /// The pool's actors (each under a supervisor on its own thread).
    pub fn pool(&self) -> &[Addr<RecommenderActor>] {
        &self.actors
    }

    /// Starts `pool_size` actors over `engine`, and the model trainer's loop
    /// ([`Trainer`]) on one more arbiter: it trains when due (one instance at a time) and
    /// loads every newer model version into `engine.cf`.
    pub fn start(
        engine: HybridEngine,
        metrics: RecommenderMetrics,
        trainer_metrics: Option<TrainerMetrics>,
    ) -> Self {
        let settings = engine.settings.clone();
        let pool_size = settings.pool_size.max(1);
        let mut threads: Vec<ArbiterHandle> =
            (0..pool_size).map(|_| Arbiter::new().handle()).collect();
        let actors = threads
            .iter()
            .map(|arbiter| {
                let engine = engine.clone();
                // Supervised: a stopped actor comes back on its thread, same address.
                Supervisor::start_in_arbiter(arbiter, move |_| RecommenderActor { engine })
            })
            .collect();
        let cf = engine.cf.clone();
        let training = Arbiter::new().handle();
        Trainer {
            db: engine.db.clone(),
            served: cf.clone(),
            config: CfConfig::from(&settings),
            train_every: Duration::from_secs(settings.cf_rebuild_interval_secs.max(1)),
            poll_every: Duration::from_secs(settings.model_poll_interval_secs.max(1)),
            metrics: trainer_metrics,
        }
        .start_on(&training);
        threads.push(training);
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
            lists: MemberListCache::new(
                engine.redis.clone(),
                engine.keys.clone(),
                settings.cache_ttl_secs,
                settings.cache_max_lists_per_member,
            ),
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

    /// The request variant a cached list answers; `None` when the request is not cacheable
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

    /// Counts a lookup's outcome; `None` when Redis failed or was too slow.
    fn counted<T>(
        &self,
        cache: &str,
        result: Result<Result<T, String>, tokio::time::error::Elapsed>,
        hit: impl Fn(&T) -> bool,
    ) -> Option<T> {
        let outcome = match &result {
            Ok(Ok(found)) if hit(found) => "hit",
            Ok(Ok(_)) => "miss",
            Ok(Err(error)) => {
                tracing::debug!(%error, cache, "recommendation cache unavailable");
                "error"
            }
            Err(_) => "error",
        };
        self.metrics
            .cache_lookups
            .with_label_values(&[cache, outcome])
            .inc();
        result.ok().and_then(Result::ok)
    }

    async fn similar_cached(&self, key: &str) -> Option<Vec<RecommendedProduct>> {
        let lookup = async {
            let mut conn = self.redis.get().await.map_err(|e| e.to_string())?;
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<String>>(&mut *conn)
                .await
                .map_err(|e| e.to_string())
        };
        let found = tokio::time::timeout(self.redis_timeout, lookup).await;
        self.counted("similar", found, Option::is_some)
            .flatten()
            .and_then(|json| serde_json::from_str(&json).ok())
    }

    async fn similar_store(&self, key: &str, items: &[RecommendedProduct]) {
        let Ok(json) = serde_json::to_string(items) else {
            return;
        };
        let store = async {
            let mut conn = self.redis.get().await.map_err(|e| e.to_string())?;
            redis::cmd("SET")
                .arg(key)
                .arg(json)
                .arg("EX")
                .arg(self.similar_ttl_secs)
                .query_async::<()>(&mut *conn)
                .await
                .map_err(|e| e.to_string())
        };
        if let Ok(Err(error)) = tokio::time::timeout(self.redis_timeout, store).await {
            tracing::debug!(%error, "similar products not cached");
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
        let key = self.keys.similar_products(product_id, limit);
        if let Some(hit) = self.similar_cached(&key).await {
            return Ok(Some(hit));
        }
        let items = self.on_pool(Similar { product_id, limit }).await??;
        if let Some(items) = &items {
            self.similar_store(&key, items).await;
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
            let cached = match (&request.member_id, Self::variant(&request)) {
                (Some(member), Some(variant)) => Some((member.clone(), variant)),
                _ => None,
            };
            // The generation the list is computed under: storing it fails when the member's
            // lists were invalidated meanwhile (their event came in while it was computed).
            let mut generation = None;
            if let Some((member, variant)) = &cached {
                let lookup =
                    tokio::time::timeout(self.redis_timeout, self.lists.lookup(member, variant))
                        .await;
                if let Some(found) = self.counted("user", lookup, |l| l.hit.is_some()) {
                    if let Some(hit) = found.hit {
                        return Ok(hit);
                    }
                    generation = Some(found.generation);
                }
            }
            // After the cache variant is named: a request carrying its embedding is not cached.
            self.attach_query_embedding(&mut request).await;
            let items = self.on_pool(Recommend(request)).await??;
            if let (Some((member, variant)), Some(generation)) = (&cached, &generation) {
                let store = self.lists.store(member, generation, variant, &items);
                match tokio::time::timeout(self.redis_timeout, store).await {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => {
                        tracing::debug!(member, "list not cached: invalidated while computed")
                    }
                    Ok(Err(error)) => tracing::debug!(%error, "recommendation not cached"),
                    Err(_) => tracing::debug!("recommendation not cached: Redis too slow"),
                }
            }
            Ok(items)
        })
    }
}
