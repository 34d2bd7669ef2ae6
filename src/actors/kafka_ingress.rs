//! `KafkaIngress`: one per consumer group. It reads the group's topics, hands each record to
//! the actor that owns the group's work and stores the record's offset for commit only after
//! that actor finished, so a crash redelivers instead of losing. A redelivered event is
//! skipped by its `event_id` (table `processed_events`); a record no reader understands is
//! parked (table `parked_events`), counted and skipped, never retried in a loop. While the
//! owner asks to retry, the group's partitions are paused, not dropped.

use crate::events::apply::{ApplyError, ApplyEvent};
use crate::events::envelope::Envelope;
use crate::events::metrics::EventMetrics;
use crate::events::topics::ConsumerGroup;
use crate::retry::Backoff;
use actix::prelude::*;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message as _, OwnedMessage};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Retry delays while the owner or the database cannot take a record.
const RETRY_BASE: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// How often librdkafka reports statistics (the lag gauge's refresh).
const STATS_INTERVAL_MS: &str = "2000";

/// The librdkafka context: turns statistics into the `kafka_consumer_lag` gauge.
pub struct IngressContext {
    group: &'static str,
    topic_prefix: String,
    metrics: EventMetrics,
}

impl ClientContext for IngressContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            let name = topic.strip_prefix(&self.topic_prefix).unwrap_or(topic);
            for (partition, p) in &stats.partitions {
                if *partition < 0 || p.consumer_lag < 0 {
                    continue;
                }
                self.metrics
                    .consumer_lag
                    .with_label_values(&[self.group, name, &partition.to_string()])
                    .set(p.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for IngressContext {}

type GroupConsumer = StreamConsumer<IngressContext>;

/// Dropping a consumer waits until it left its group, which against a broken or unreachable
/// broker can take indefinitely; that wait happens on a thread of its own, never on the
/// actor system's.
struct OwnedConsumer(Option<GroupConsumer>);

impl std::ops::Deref for OwnedConsumer {
    type Target = GroupConsumer;

    fn deref(&self) -> &GroupConsumer {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for OwnedConsumer {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            let closing = std::thread::Builder::new()
                .name("kafka-consumer-close".into())
                .spawn(move || drop(consumer));
            if let Err(error) = closing {
                tracing::warn!(%error, "cannot close a Kafka consumer in the background");
            }
        }
    }
}

pub struct KafkaIngress {
    group: ConsumerGroup,
    consumer: Arc<OwnedConsumer>,
    owner: Recipient<ApplyEvent>,
    db: DatabaseConnection,
    metrics: EventMetrics,
    topic_prefix: String,
    task: Option<tokio::task::AbortHandle>,
}

impl KafkaIngress {
    pub fn new(
        group: ConsumerGroup,
        kafka: &crate::config::KafkaSettings,
        owner: Recipient<ApplyEvent>,
        db: DatabaseConnection,
        metrics: EventMetrics,
    ) -> Result<Self, KafkaError> {
        let prefix = kafka.topic_prefix.clone();
        let context = IngressContext {
            group: group.base_name(),
            topic_prefix: prefix.clone(),
            metrics: metrics.clone(),
        };
        let mut config = ClientConfig::new();
        if !kafka.instance_id.is_empty() {
            // Static membership: a restarted instance takes its own place in the group back.
            config.set(
                "group.instance.id",
                format!("{}-{}", kafka.instance_id, group.base_name()),
            );
        }
        let consumer: GroupConsumer = config
            .set("bootstrap.servers", &kafka.brokers)
            .set("group.id", group.group_id(&prefix))
            .set(
                "client.id",
                format!("{}-{}", kafka.client_id, group.base_name()),
            )
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "500")
            // Offsets are stored by hand, after the owner finished with the record.
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Tolerates a broker that stalls for a while (a loaded Tansu misses heartbeats for
            // 10 s and more), at the cost of a dead instance's partitions waiting this long.
            .set("session.timeout.ms", "30000")
            .set("heartbeat.interval.ms", "3000")
            // Also the rebalance timeout: how long a rejoin waits for members of a killed
            // instance before the group goes on without them.
            .set("max.poll.interval.ms", "45000")
            .set("topic.metadata.refresh.interval.ms", "5000")
            .set("reconnect.backoff.max.ms", "2000")
            .set("queued.max.messages.kbytes", "16384")
            .set("statistics.interval.ms", STATS_INTERVAL_MS)
            .create_with_context(context)?;
        let topics: Vec<String> = group.topics().iter().map(|t| t.name(&prefix)).collect();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(Self {
            group,
            consumer: Arc::new(OwnedConsumer(Some(consumer))),
            owner,
            db,
            metrics,
            topic_prefix: prefix,
            task: None,
        })
    }
}

impl Actor for KafkaIngress {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let worker = Worker {
            group: self.group,
            consumer: self.consumer.clone(),
            owner: self.owner.clone(),
            db: self.db.clone(),
            metrics: self.metrics.clone(),
            topic_prefix: self.topic_prefix.clone(),
        };
        // A runtime task rather than one in the actor's local set: dropped at shutdown where
        // sqlx can still return an in-use connection.
        let task = tokio::spawn(worker.run());
        self.task = Some(task.abort_handle());
        // The loop ends only by failing: the actor stops and its supervisor starts a new loop
        // on the same consumer (still subscribed; uncommitted records come again).
        let group = self.group.base_name();
        ctx.spawn(task.into_actor(self).map(move |outcome, _, ctx| {
            match outcome {
                Err(e) if e.is_cancelled() => return,
                Err(e) => tracing::error!(group, error = %e, "consume loop panicked"),
                Ok(()) => tracing::error!(group, "consume loop ended"),
            }
            ctx.stop();
        }));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

crate::actors::supervision::supervised!(KafkaIngress, "kafka_ingress");

/// The consume loop; one record at a time per group keeps per-member order.
struct Worker {
    group: ConsumerGroup,
    consumer: Arc<OwnedConsumer>,
    owner: Recipient<ApplyEvent>,
    db: DatabaseConnection,
    metrics: EventMetrics,
    topic_prefix: String,
}

enum Outcome {
    Applied,
    Duplicate,
    Parked,
}

impl Worker {
    async fn run(self) {
        let group = self.group.base_name();
        tracing::info!(group, "consumer group started");
        loop {
            let message = match self.consumer.recv().await {
                Ok(message) => message.detach(),
                Err(error) => {
                    tracing::debug!(group, %error, "consumer error");
                    tokio::time::sleep(RETRY_BASE).await;
                    continue;
                }
            };
            let outcome = self.handle(&message).await;
            let label = match outcome {
                Outcome::Applied => "applied",
                Outcome::Duplicate => "duplicate",
                Outcome::Parked => "parked",
            };
            self.metrics
                .ingress_records
                .with_label_values(&[group, label])
                .inc();
            if let Err(error) =
                self.consumer
                    .store_offset(message.topic(), message.partition(), message.offset())
            {
                // The partition was revoked meanwhile; its new owner redelivers the record
                // and skips it by event id.
                tracing::debug!(group, %error, "offset not stored");
            }
        }
    }

    async fn handle(&self, message: &OwnedMessage) -> Outcome {
        let event = match Envelope::decode(message.payload().unwrap_or_default()) {
            Ok(event) => event,
            Err(error) => {
                self.park(message, &error.to_string()).await;
                return Outcome::Parked;
            }
        };
        let id = event.event_id;
        if self.db_retry(|| self.already_applied(id)).await {
            return Outcome::Duplicate;
        }
        let mut paused = false;
        let mut attempt = 0u32;
        loop {
            let answer = self
                .owner
                .send(ApplyEvent {
                    group: self.group,
                    event: event.clone(),
                })
                .await;
            let reason = match answer {
                Ok(Ok(())) => break,
                Ok(Err(ApplyError::Invalid(reason))) => {
                    self.resume(paused);
                    self.park(message, &reason).await;
                    return Outcome::Parked;
                }
                Ok(Err(ApplyError::Retry(reason))) => reason,
                Err(error) => error.to_string(),
            };
            if !paused {
                paused = self.pause();
            }
            self.metrics
                .ingress_records
                .with_label_values(&[self.group.base_name(), "retried"])
                .inc();
            attempt += 1;
            let delay = retry_delay(attempt);
            tracing::warn!(group = self.group.base_name(), %reason, ?delay, "owner cannot apply the event yet");
            tokio::time::sleep(delay).await;
        }
        self.resume(paused);
        self.db_retry(|| self.record_applied(id)).await;
        Outcome::Applied
    }

    /// Runs a database call until it succeeds, waiting longer after each failure: the
    /// record is not committed meanwhile, so nothing is lost while the database is away.
    async fn db_retry<T, F, Fut>(&self, mut call: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, DbErr>>,
    {
        let mut attempt = 0u32;
        loop {
            match call().await {
                Ok(value) => return value,
                Err(error) => {
                    attempt += 1;
                    tracing::warn!(group = self.group.base_name(), %error, "idempotency store unavailable");
                    tokio::time::sleep(retry_delay(attempt)).await;
                }
            }
        }
    }

    fn pause(&self) -> bool {
        match self.consumer.assignment() {
            Ok(assignment) => self.consumer.pause(&assignment).is_ok(),
            Err(_) => false,
        }
    }

    fn resume(&self, paused: bool) {
        if paused {
            if let Ok(assignment) = self.consumer.assignment() {
                let _ = self.consumer.resume(&assignment);
            }
        }
    }

    async fn already_applied(&self, event_id: Uuid) -> Result<bool, DbErr> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                "SELECT 1 AS one FROM processed_events WHERE consumer_group = $1 AND event_id = $2",
                [self.group.base_name().into(), event_id.into()],
            ))
            .await?;
        Ok(row.is_some())
    }

    async fn record_applied(&self, event_id: Uuid) -> Result<(), DbErr> {
        self.db
            .execute_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                "INSERT INTO processed_events (consumer_group, event_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
                [self.group.base_name().into(), event_id.into()],
            ))
            .await?;
        Ok(())
    }

    /// Keeps an unreadable record for people to look at; retries until the database took it.
    async fn park(&self, message: &OwnedMessage, error: &str) {
        let group = self.group.base_name();
        let topic = message.topic();
        tracing::warn!(group, topic, partition = message.partition(), offset = message.offset(), %error, "poison record parked");
        let key = message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned());
        let payload = message
            .payload()
            .map(|p| String::from_utf8_lossy(p).replace('\0', "\u{FFFD}"));
        let topic_name = topic.strip_prefix(&self.topic_prefix).unwrap_or(topic);
        let mut attempt = 0u32;
        loop {
            let result = self
                .db
                .execute_raw(Statement::from_sql_and_values(
                    self.db.get_database_backend(),
                    "INSERT INTO parked_events \
                     (consumer_group, topic, kafka_partition, kafka_offset, key, payload, error) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    [
                        group.into(),
                        topic_name.into(),
                        message.partition().into(),
                        message.offset().into(),
                        key.clone().into(),
                        payload.clone().into(),
                        error.into(),
                    ],
                ))
                .await;
            match result {
                Ok(_) => return,
                Err(db_error) => {
                    attempt += 1;
                    tracing::warn!(group, %db_error, "cannot park a record yet");
                    tokio::time::sleep(retry_delay(attempt)).await;
                }
            }
        }
    }
}

fn retry_delay(attempt: u32) -> Duration {
    Backoff::new(RETRY_BASE, RETRY_MAX).delay(attempt)
}
