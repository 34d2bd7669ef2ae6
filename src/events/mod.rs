//! The event backbone (docs/events.md): the envelope, topics, the transactional outbox, and
//! the actors that move events: `OutboxDispatcher` → `KafkaEgress` → Kafka →
//! `KafkaIngress` (one per consumer group) → the group's owner.

pub mod apply;
pub mod envelope;
pub mod metrics;
pub mod outbox;
pub mod topics;

use crate::actors::analytics::{Analytics, AnalyticsKeys};
use crate::actors::dependency_monitor::RedisPool;
use crate::actors::event_sink::EventSink;
use crate::actors::kafka_egress::KafkaEgress;
use crate::actors::kafka_ingress::KafkaIngress;
use crate::actors::outbox_dispatcher::OutboxDispatcher;
use crate::actors::recommendation_cache::RecommendationCache;
use crate::config::Settings;
use actix::prelude::*;
use actix_web::web;
use apply::ApplyEvent;
use metrics::EventMetrics;
use rdkafka::error::KafkaError;
use sea_orm::DatabaseConnection;
use std::time::Duration;
use topics::ConsumerGroup;

/// How long start-up waits for topic creation before leaving it to the dispatcher.
const STARTUP_TOPICS_TIMEOUT: Duration = Duration::from_secs(5);

/// What the HTTP handlers of this module need (`web::Data<EventsState>`).
pub struct EventsState {
    pub redis: RedisPool,
    pub keys: AnalyticsKeys,
}

/// The running event actors.
pub struct Events {
    pub http: web::Data<EventsState>,
    pub metrics: EventMetrics,
    pub dispatcher: Option<Addr<OutboxDispatcher>>,
    pub ingress: Vec<Addr<KafkaIngress>>,
}

/// Registers the metrics and, when `events.enabled`, creates the topics (or leaves that to
/// the dispatcher when the broker is away) and starts the producer, the outbox dispatcher,
/// the four groups' owners and their consumers.
pub async fn start(
    settings: &Settings,
    db: &DatabaseConnection,
    redis: RedisPool,
    registry: &prometheus::Registry,
    es_sync: Recipient<ApplyEvent>,
) -> Result<Events, KafkaError> {
    let metrics = EventMetrics::register(registry).expect("event metrics registered once");
    let keys = AnalyticsKeys::new(&settings.redis.key_prefix);
    let http = web::Data::new(EventsState {
        redis: redis.clone(),
        keys,
    });
    let events = &settings.events;
    if !events.enabled {
        return Ok(Events {
            http,
            metrics,
            dispatcher: None,
            ingress: Vec::new(),
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
    .start();
    let dispatcher = OutboxDispatcher::new(
        db.clone(),
        egress,
        kafka.clone(),
        events.clone(),
        metrics.clone(),
        topics_ready,
    )
    .start();

    let analytics = Analytics::new(
        redis.clone(),
        &settings.redis.key_prefix,
        Duration::from_secs(events.trending_half_life_secs.max(1)),
        Duration::from_secs(events.outbox_retention_hours.max(1) * 3600),
    )
    .start();
    let recommendation = RecommendationCache::new(redis, &settings.redis.key_prefix).start();
    let sink = EventSink.start();
    let mut ingress = Vec::new();
    for group in ConsumerGroup::ALL {
        let owner: Recipient<ApplyEvent> = match group {
            ConsumerGroup::Analytics => analytics.clone().recipient(),
            ConsumerGroup::Recommendation => recommendation.clone().recipient(),
            ConsumerGroup::EsSync => es_sync.clone(),
            ConsumerGroup::PreferenceAnalysis => sink.clone().recipient(),
        };
        ingress.push(KafkaIngress::new(group, kafka, owner, db.clone(), metrics.clone())?.start());
    }
    Ok(Events {
        http,
        metrics,
        dispatcher: Some(dispatcher),
        ingress,
    })
}
