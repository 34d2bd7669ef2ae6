//! `OutboxDispatcher`: publishes the outbox table through `KafkaEgress`.
//!
//! Each round locks up to a batch of due `pending` rows with `FOR UPDATE SKIP LOCKED` inside a
//! transaction that stays open until the broker answered, so two dispatchers (two service
//! instances) never send the same row. Acknowledged rows become `sent`; a refused row is
//! retried with capped exponential backoff and becomes `dead` after `outbox_max_attempts`.
//! When the broker is unreachable the rows are not charged an attempt: the dispatcher itself
//! backs off, so an outage of any length loses nothing and dead-letters nothing. A crash
//! after the broker acknowledged but before the commit re-sends those rows later; consumers
//! are idempotent by `event_id`.

use crate::actors::kafka_egress::{Delivery, KafkaEgress, OutboundRecord, PublishBatch};
use crate::config::{EventsSettings, KafkaSettings};
use crate::events::metrics::EventMetrics;
use crate::events::outbox::{DEAD, PENDING, SENT};
use crate::events::topics;
use crate::retry::Backoff;
use actix::prelude::*;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement, TransactionTrait};
use std::time::Duration;

/// The most rows in one batch, whatever the settings say.
pub const MAX_BATCH: u64 = 100;
/// How often the pending / dead gauges are refreshed.
const STATS_INTERVAL: Duration = Duration::from_secs(5);
/// How often sent rows past their retention are deleted.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(600);

pub struct OutboxDispatcher {
    db: DatabaseConnection,
    egress: Addr<KafkaEgress>,
    kafka: KafkaSettings,
    settings: EventsSettings,
    metrics: EventMetrics,
    topics_ready: bool,
    /// Consecutive rounds that found the broker unreachable.
    outages: u32,
}

impl OutboxDispatcher {
    pub fn new(
        db: DatabaseConnection,
        egress: Addr<KafkaEgress>,
        kafka: KafkaSettings,
        settings: EventsSettings,
        metrics: EventMetrics,
        topics_ready: bool,
    ) -> Self {
        Self {
            db,
            egress,
            kafka,
            settings,
            metrics,
            topics_ready,
            outages: 0,
        }
    }

    fn batch_size(&self) -> u64 {
        self.settings.outbox_batch_size.clamp(1, MAX_BATCH)
    }

    /// Runs one round and schedules the next: at once after a full batch, after the poll
    /// interval when idle, after a growing pause while the broker is unreachable.
    fn round(&mut self, ctx: &mut Context<Self>) {
        let round = Round {
            db: self.db.clone(),
            egress: self.egress.clone(),
            kafka: self.kafka.clone(),
            settings: self.settings.clone(),
            metrics: self.metrics.clone(),
            batch_size: self.batch_size(),
            ensure_topics: !self.topics_ready,
        };
        // Database work runs as a runtime task, not in the actor's local set: if the system
        // stops mid-round the open transaction is dropped where sqlx can still clean it up.
        let round = async move {
            tokio::spawn(round.run())
                .await
                .unwrap_or_else(|e| Err(DbErr::Custom(format!("outbox round aborted: {e}"))))
        };
        ctx.spawn(round.into_actor(self).map(|outcome, act, ctx| {
            let poll = Duration::from_millis(act.settings.outbox_poll_interval_ms.max(1));
            let next = match outcome {
                Ok(RoundOutcome::Sent { full, .. }) => {
                    act.topics_ready = true;
                    act.outages = 0;
                    if full {
                        Duration::ZERO
                    } else {
                        poll
                    }
                }
                Ok(RoundOutcome::Idle) => {
                    act.topics_ready = true;
                    act.outages = 0;
                    poll
                }
                Ok(RoundOutcome::Unavailable(reason)) => {
                    act.outages = act.outages.saturating_add(1);
                    let pause = backoff(
                        act.outages,
                        act.settings.outbox_backoff_base_ms,
                        act.settings.outbox_backoff_max_ms,
                    );
                    tracing::warn!(%reason, ?pause, "Kafka unreachable; outbox dispatch paused");
                    pause
                }
                Err(error) => {
                    act.outages = act.outages.saturating_add(1);
                    tracing::error!(%error, "outbox round failed");
                    backoff(
                        act.outages,
                        act.settings.outbox_backoff_base_ms,
                        act.settings.outbox_backoff_max_ms,
                    )
                }
            };
            ctx.run_later(next, |act, ctx| act.round(ctx));
        }));
    }

    fn refresh_gauges(&mut self, ctx: &mut Context<Self>) {
        let db = self.db.clone();
        let metrics = self.metrics.clone();
        let counts = tokio::spawn(async move { outbox_counts(&db).await });
        ctx.spawn(
            async move {
                match counts
                    .await
                    .unwrap_or_else(|e| Err(DbErr::Custom(e.to_string())))
                {
                    Ok((pending, dead)) => {
                        metrics
                            .outbox_rows
                            .with_label_values(&[PENDING])
                            .set(pending);
                        metrics.outbox_rows.with_label_values(&[DEAD]).set(dead);
                    }
                    Err(error) => tracing::debug!(%error, "outbox counts unavailable"),
                }
            }
            .into_actor(self),
        );
    }

    fn cleanup(&self) {
        let db = self.db.clone();
        let hours = self.settings.outbox_retention_hours as i64;
        tokio::spawn(async move {
            if let Err(error) = delete_old_rows(&db, hours).await {
                tracing::warn!(%error, "outbox cleanup failed");
            }
        });
    }
}

impl Actor for OutboxDispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.round(ctx);
        self.refresh_gauges(ctx);
        self.cleanup();
        ctx.run_interval(STATS_INTERVAL, |act, ctx| act.refresh_gauges(ctx));
        ctx.run_interval(CLEANUP_INTERVAL, |act, _| act.cleanup());
    }
}

crate::actors::supervision::supervised!(OutboxDispatcher, "outbox_dispatcher");

/// The delay before retry number `attempt` (1-based), by the outbox's backoff settings.
fn backoff(attempt: u32, base_ms: u64, max_ms: u64) -> Duration {
    Backoff::new(
        Duration::from_millis(base_ms),
        Duration::from_millis(max_ms),
    )
    .delay(attempt)
}

#[derive(Debug)]
enum RoundOutcome {
    Idle,
    Sent { full: bool },
    Unavailable(String),
}

struct Round {
    db: DatabaseConnection,
    egress: Addr<KafkaEgress>,
    kafka: KafkaSettings,
    settings: EventsSettings,
    metrics: EventMetrics,
    batch_size: u64,
    ensure_topics: bool,
}

struct Row {
    id: i64,
    record: OutboundRecord,
    attempts: i32,
    created_epoch: f64,
}

impl Round {
    async fn run(self) -> Result<RoundOutcome, DbErr> {
        if self.ensure_topics {
            if let Err(error) = topics::ensure_topics(
                &self.kafka.brokers,
                &self.kafka.client_id,
                &self.kafka.topic_prefix,
                self.settings.partitions,
                self.settings.replication_factor,
            )
            .await
            {
                return Ok(RoundOutcome::Unavailable(format!(
                    "cannot create topics: {error}"
                )));
            }
        }
        let txn = self.db.begin().await?;
        let rows = lock_due_rows(&txn, self.batch_size).await?;
        if rows.is_empty() {
            txn.commit().await?;
            return Ok(RoundOutcome::Idle);
        }
        let records = rows.iter().map(|r| r.record.clone()).collect();
        let reports = match self.egress.send(PublishBatch(records)).await {
            Ok(reports) => reports,
            Err(error) => {
                txn.rollback().await?;
                return Ok(RoundOutcome::Unavailable(format!("egress: {error}")));
            }
        };
        let now = epoch_now();
        let mut sent = Vec::new();
        let mut refused = Vec::new();
        let mut unavailable = None;
        for (row, report) in rows.iter().zip(reports) {
            match report {
                Delivery::Acked => {
                    sent.push(row.id);
                    self.metrics
                        .outbox_dispatch_latency
                        .observe((now - row.created_epoch).max(0.0));
                }
                Delivery::Failed {
                    error,
                    unavailable: true,
                } => unavailable = Some(error),
                Delivery::Failed { error, .. } => refused.push((row, error)),
            }
        }
        mark_sent(&txn, &sent).await?;
        for (row, error) in &refused {
            self.metrics.outbox_failed.inc();
            let attempts = row.attempts + 1;
            if attempts >= self.settings.outbox_max_attempts {
                self.metrics.outbox_dead.inc();
                tracing::error!(id = row.id, %error, attempts, "outbox row moved to dead-letter");
            }
            let delay = backoff(
                attempts as u32,
                self.settings.outbox_backoff_base_ms,
                self.settings.outbox_backoff_max_ms,
            );
            mark_refused(
                &txn,
                row.id,
                attempts,
                self.settings.outbox_max_attempts,
                error,
                delay,
            )
            .await?;
        }
        txn.commit().await?;
        self.metrics.outbox_sent.inc_by(sent.len() as u64);
        match unavailable {
            // Nothing went out: the broker is away, the rows are untouched.
            Some(error) if sent.is_empty() => {
                self.metrics.outbox_failed.inc();
                Ok(RoundOutcome::Unavailable(error))
            }
            _ => Ok(RoundOutcome::Sent {
                full: rows.len() as u64 == self.batch_size && unavailable.is_none(),
            }),
        }
    }
}

fn epoch_now() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

async fn lock_due_rows<C: ConnectionTrait>(conn: &C, limit: u64) -> Result<Vec<Row>, DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "SELECT id, event_id::text AS event_id, topic, key, payload::text AS payload, attempts, \
                    extract(epoch FROM created_at)::float8 AS created_epoch \
             FROM outbox WHERE status = 'pending' AND available_at <= now() \
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            [(limit as i64).into()],
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            let payload: String = row.try_get("", "payload")?;
            Ok(Row {
                id: row.try_get("", "id")?,
                attempts: row.try_get("", "attempts")?,
                created_epoch: row.try_get("", "created_epoch")?,
                record: OutboundRecord {
                    topic: row.try_get("", "topic")?,
                    key: row.try_get("", "key")?,
                    payload: payload.into_bytes(),
                    event_id: row.try_get("", "event_id")?,
                },
            })
        })
        .collect()
}

async fn mark_sent<C: ConnectionTrait>(conn: &C, ids: &[i64]) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE outbox SET status = $1, sent_at = now(), attempts = attempts + 1, \
         last_error = NULL WHERE id = ANY($2)",
        [SENT.into(), ids.to_vec().into()],
    ))
    .await?;
    Ok(())
}

async fn mark_refused<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    attempts: i32,
    max_attempts: i32,
    error: &str,
    delay: Duration,
) -> Result<(), DbErr> {
    let status = if attempts >= max_attempts {
        DEAD
    } else {
        PENDING
    };
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE outbox SET status = $1, attempts = $2, last_error = $3, \
         available_at = now() + make_interval(secs => $4) WHERE id = $5",
        [
            status.into(),
            attempts.into(),
            error.into(),
            delay.as_secs_f64().into(),
            id.into(),
        ],
    ))
    .await?;
    Ok(())
}

async fn outbox_counts(db: &DatabaseConnection) -> Result<(i64, i64), DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) FILTER (WHERE status = 'pending') AS pending, \
                    count(*) FILTER (WHERE status = 'dead') AS dead FROM outbox",
        ))
        .await?;
    match row {
        Some(row) => Ok((row.try_get("", "pending")?, row.try_get("", "dead")?)),
        None => Ok((0, 0)),
    }
}

/// Deletes sent rows, consumer idempotency records and event idempotency keys older than the
/// retention.
async fn delete_old_rows(db: &DatabaseConnection, hours: i64) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "DELETE FROM outbox WHERE status = 'sent' AND sent_at < now() - make_interval(hours => $1)",
        [(hours as i32).into()],
    ))
    .await?;
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "DELETE FROM processed_events WHERE processed_at < now() - make_interval(hours => $1)",
        [(hours as i32).into()],
    ))
    .await?;
    crate::events::idempotency::prune(db, hours).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1, 500, 30_000), Duration::from_millis(500));
        assert_eq!(backoff(2, 500, 30_000), Duration::from_millis(1000));
        assert_eq!(backoff(4, 500, 30_000), Duration::from_millis(4000));
        assert_eq!(backoff(7, 500, 30_000), Duration::from_millis(30_000));
        assert_eq!(backoff(200, 500, 30_000), Duration::from_millis(30_000));
    }
}
