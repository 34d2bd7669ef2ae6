//! Starts the event backbone's actors (docs/events.md): `OutboxDispatcher` → `KafkaEgress`
//! → Kafka → `KafkaIngress` (one per consumer group) → the group's owner.

use crate::actors::analytics::Analytics;
use crate::actors::kafka_egress::KafkaEgress;
use crate::actors::kafka_ingress::KafkaIngress;
use crate::actors::outbox_dispatcher::OutboxDispatcher;
use crate::actors::preference::PreferenceActor;
use crate::actors::recommendation_cache::RecommendationCache;
use crate::actors::supervision::{StartSupervised, SupervisedActor};
use crate::config::Settings;
use crate::events::apply::ApplyEvent;
use crate::events::metrics::EventMetrics;
use crate::events::topics::{self, ConsumerGroup};
use crate::redis::{RedisKeys, RedisPool};
use actix::prelude::*;
use rdkafka::error::KafkaError;
use sea_orm::DatabaseConnection;
use std::time::Duration;

/// How long start-up waits for topic creation before leaving it to the dispatcher.
const STARTUP_TOPICS_TIMEOUT: Duration = Duration::from_secs(5);

/// The running event actors.
pub struct Events {
    pub metrics: EventMetrics,
    pub dispatcher: Option<Addr<OutboxDispatcher>>,
    pub ingress: Vec<Addr<KafkaIngress>>,
    /// Every actor of the backbone, each under a supervisor.
    pub supervised: Vec<SupervisedActor>,
}

/// Registers the metrics and, when `events.enabled`, creates the topics (or leaves that to
/// the dispatcher when the broker is away) and starts the producer, the outbox dispatcher,
/// the four groups' owners and their consumers. `redis` is the cache, `state` the state
/// store (trending, popular and the analytics group's markers).
#[allow(clippy::too_many_arguments)]
pub async fn start(
    settings: &Settings,
    db: &DatabaseConnection,
    redis: RedisPool,
    state: RedisPool,
    registry: &prometheus::Registry,
    es_sync: Recipient<ApplyEvent>,
    analyzer: Option<std::sync::Arc<dyn crate::intent::IntentAnalyzer>>,
) -> Result<Events, KafkaError> {
    let metrics = EventMetrics::register(registry).expect("event metrics registered once");
    let keys = RedisKeys::new(&settings.redis.key_prefix);
    let events = &settings.events;
    if !events.enabled {
        return Ok(Events {
            metrics,
            dispatcher: None,
            ingress: Vec::new(),
            supervised: Vec::new(),
        });
    }
    let kafka = &settings.kafka;
    let created = tokio::time::timeout(
        STARTUP_TOPICS_TIMEOUT,
        topics::ensure_topics(
            &kafka.brokers,
            &kafka.client_id,
            &kafka.topic_prefix,
            events.partitions,
            events.replication_factor,
        ),
    )
    .await;
    let topics_ready = match created {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, "topics not created at start-up; the dispatcher retries");
            false
        }
        Err(_) => {
            tracing::warn!(
                "Kafka did not answer at start-up; the dispatcher creates the topics later"
            );
            false
        }
    };
    let egress = KafkaEgress::new(
        &kafka.brokers,
        &kafka.client_id,
        &kafka.topic_prefix,
        Duration::from_millis(events.delivery_timeout_ms),
        events.idempotent_producer,
    )?
    .start_supervised();
    let dispatcher = OutboxDispatcher::new(
        db.clone(),
        egress.clone(),
        kafka.clone(),
        events.clone(),
        metrics.clone(),
        topics_ready,
    )
    .start_supervised();

    let analytics = Analytics::new(
        db.clone(),
        state,
        keys.clone(),
        Duration::from_secs(events.trending_half_life_secs.max(1)),
        Duration::from_secs(events.outbox_retention_hours.max(1) * 3600),
    )
    .start_supervised();
    let redis_for_preferences = redis.clone();
    let recommendation = RecommendationCache::new(redis, keys.clone()).start_supervised();
    // Messages are analysed (LLM or the local fallback) and merged into the profile.
    let preference = PreferenceActor::new(
        db.clone(),
        redis_for_preferences,
        keys,
        settings.recommender.preference_cache_ttl_secs,
        analyzer,
    )
    .start_supervised();
    let mut ingress = Vec::new();
    for group in ConsumerGroup::ALL {
        let owner: Recipient<ApplyEvent> = match group {
            ConsumerGroup::Analytics => analytics.clone().recipient(),
            ConsumerGroup::Recommendation => recommendation.clone().recipient(),
            ConsumerGroup::EsSync => es_sync.clone(),
            ConsumerGroup::PreferenceAnalysis => preference.clone().recipient(),
        };
        ingress.push(
            KafkaIngress::new(group, kafka, owner, db.clone(), metrics.clone())?.start_supervised(),
        );
    }
    let mut supervised = vec![
        SupervisedActor::new("kafka_egress", &egress),
        SupervisedActor::new("outbox_dispatcher", &dispatcher),
        SupervisedActor::new("analytics", &analytics),
        SupervisedActor::new("recommendation_cache", &recommendation),
        SupervisedActor::new("preference", &preference),
    ];
    supervised.extend(
        ingress
            .iter()
            .map(|consumer| SupervisedActor::new("kafka_ingress", consumer)),
    );
    Ok(Events {
        metrics,
        dispatcher: Some(dispatcher),
        ingress,
        supervised,
    })
}
