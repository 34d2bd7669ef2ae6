//! Waiting for the event backbone to drain, instead of polling a result until a deadline.
//!
//! The backbone is outbox → `OutboxDispatcher` → Kafka → one `KafkaIngress` per consumer group
//! → the group's owner. [`drain_events`] returns once everything published so far went all the
//! way through:
//!
//! 1. the outbox has no `pending` row: every event written so far was acknowledged by the
//!    broker, so it lies below its partition's high watermark;
//! 2. every consumer group of this test (its `kafka.topic_prefix`) has committed, on every
//!    partition of every topic it reads, an offset at the high watermarks read after step 1
//!    (read again whenever the outbox's row count changed).
//!    `KafkaIngress` stores a record's offset only after the owner answered and the event id
//!    went into `processed_events` (auto-commit then sends it within 500 ms), and every owner
//!    finishes its work (Redis, the database, the search server's bulk write) before it
//!    answers: so a committed offset means the record's work is done, not merely started;
//! 3. the outbox still has no pending row and no row was added meanwhile. Owners write events
//!    themselves (an order makes the preference group publish `purchase_pattern.analyzed`)
//!    before their record is committed; if any did, it is published and read again from 1.
//!
//! Dead outbox rows are never published; they do not hold the drain up (the failure message
//! counts them). What lies beyond the backbone is not covered: the search server makes
//! indexed documents visible on its refresh (`TestApp::refresh_search`), and periodic jobs
//! (the product sync to the search server, CF rebuilds) run on their own timers.

use convrec::config::Settings;
use convrec::events::outbox::{DEAD, PENDING};
use convrec::events::topics::{ConsumerGroup, Topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a drain may take before it fails the test: a backlog of a thousand events, or a
/// group retrying against a dependency that just came back, on a loaded 2-core machine.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause between two looks at the outbox and the groups (the groups commit every 500 ms).
const PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// Bound on one broker request (metadata, watermarks, committed offsets).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits until the event backbone of the app(s) on `settings` (its database's outbox, its
/// topic prefix's groups) has applied everything published so far; panics after `timeout`
/// with what had not drained. Returns at once when the backbone is off.
pub(crate) async fn drain_events(settings: &Settings, db: &DatabaseConnection, timeout: Duration) {
    if !settings.events.enabled {
        return;
    }
    let deadline = Instant::now() + timeout;
    let brokers = settings.kafka.brokers.clone();
    let prefix = settings.kafka.topic_prefix.clone();
    let probe = blocking(move || Probe::new(&brokers, &prefix))
        .await
        .unwrap_or_else(|e| panic!("cannot create the clients that watch the groups: {e}"));
    let probe = Arc::new(probe);
    // What kept the last round from finishing, for the failure message.
    let waiting_for = loop {
        let Some(waiting_for) = round(&probe, db).await else {
            break None;
        };
        if Instant::now() >= deadline {
            break Some(waiting_for);
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    };
    // Closing a consumer talks to the broker: off the runtime's thread too.
    let _ = blocking(move || drop(probe)).await;
    if let Some(waiting_for) = waiting_for {
        panic!(
            "the event backbone did not drain within {timeout:?}; still waiting for \
             {waiting_for}\n(outbox now: {})",
            outbox(db).await
        );
    }
}

/// One look at the backbone: `None` when it has drained, else what it is waiting for.
async fn round(probe: &Arc<Probe>, db: &DatabaseConnection) -> Option<String> {
    let before = outbox(db).await;
    if before.pending > 0 {
        return Some(format!("the outbox to be dispatched: {before}"));
    }
    let lagging = {
        let probe = probe.clone();
        blocking(move || probe.lagging(before.rows)).await
    };
    match lagging {
        Err(error) => Some(format!("the broker: {error}")),
        Ok(lagging) if !lagging.is_empty() => {
            let mut waiting_for = String::from("consumer groups behind the high watermark:");
            for lag in lagging {
                let _ = write!(waiting_for, "\n  {lag}");
            }
            Some(waiting_for)
        }
        Ok(_) => {
            let after = outbox(db).await;
            if after.pending == 0 && after.rows == before.rows {
                None
            } else {
                Some(format!(
                    "the outbox the consumers wrote to while they drained: {after}"
                ))
            }
        }
    }
}

/// Waits until the outbox has no pending row (the first step of a drain, on its own for a
/// test that measures it); panics after `timeout`.
pub(crate) async fn outbox_dispatched(db: &DatabaseConnection, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let now = outbox(db).await;
        if now.pending == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the outbox was not dispatched within {timeout:?}: {now}"
        );
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// Runs a blocking librdkafka call on tokio's blocking pool, so the app's actors (they share
/// the test's runtime) keep consuming meanwhile.
async fn blocking<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(call)
        .await
        .expect("the blocking call did not panic")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outbox {
    pending: i64,
    dead: i64,
    rows: i64,
}

impl std::fmt::Display for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows, {} pending, {} dead",
            self.rows, self.pending, self.dead
        )
    }
}

async fn outbox(db: &DatabaseConnection) -> Outbox {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT count(*) FILTER (WHERE status = '{PENDING}'), \
                        count(*) FILTER (WHERE status = '{DEAD}'), count(*) FROM outbox"
            ),
        ))
        .await
        .expect("the outbox is readable")
        .expect("one row");
    Outbox {
        pending: row.try_get_by_index(0).unwrap(),
        dead: row.try_get_by_index(1).unwrap(),
        rows: row.try_get_by_index(2).unwrap(),
    }
}

/// A partition where a group has not committed up to the high watermark.
struct Lag {
    group: &'static str,
    topic: String,
    partition: i32,
    committed: Option<i64>,
    high: i64,
}

impl std::fmt::Display for Lag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let committed = self
            .committed
            .map_or_else(|| "nothing".to_string(), |c| c.to_string());
        write!(
            f,
            "group {} on {}[{}]: committed {committed}, high watermark {}",
            self.group, self.topic, self.partition, self.high
        )
    }
}

/// One client per consumer group of the service, with the group's `group.id`: it neither
/// subscribes nor commits, it only reads what the group committed (and the watermarks).
struct Probe {
    prefix: String,
    groups: Vec<(ConsumerGroup, BaseConsumer)>,
    /// The partitions of each topic the broker knows, asked once per topic.
    partitions: Mutex<HashMap<Topic, Vec<i32>>>,
    /// The high watermarks last read, and the outbox's row count then (see [`Self::highs`]).
    highs: Mutex<Option<(i64, Highs)>>,
}

/// The high watermark of every partition of every topic a group reads.
type Highs = HashMap<Topic, Vec<(i32, i64)>>;

impl Probe {
    fn new(brokers: &str, prefix: &str) -> Result<Self, rdkafka::error::KafkaError> {
        let groups = ConsumerGroup::ALL
            .into_iter()
            .map(|group| {
                let consumer: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", brokers)
                    .set("group.id", group.group_id(prefix))
                    .set("client.id", format!("{prefix}drain-{}", group.base_name()))
                    .set("enable.auto.commit", "false")
                    .set("enable.auto.offset.store", "false")
                    .set("allow.auto.create.topics", "false")
                    .create()?;
                Ok((group, consumer))
            })
            .collect::<Result<_, rdkafka::error::KafkaError>>()?;
        Ok(Self {
            prefix: prefix.to_string(),
            groups,
            partitions: Mutex::default(),
            highs: Mutex::default(),
        })
    }

    /// The partitions of `topic`; none while the broker does not know it (then nothing has
    /// been published to it yet).
    fn partitions(&self, topic: Topic) -> Result<Vec<i32>, String> {
        if let Some(known) = self.partitions.lock().unwrap().get(&topic) {
            return Ok(known.clone());
        }
        let name = topic.name(&self.prefix);
        let metadata = self.groups[0]
            .1
            .fetch_metadata(Some(&name), REQUEST_TIMEOUT)
            .map_err(|e| format!("metadata of {name}: {e}"))?;
        let found: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if !found.is_empty() {
            self.partitions.lock().unwrap().insert(topic, found.clone());
        }
        Ok(found)
    }

    /// The high watermarks, with the outbox fully dispatched at `outbox_rows` rows. Read
    /// again only when that count changed: records reach these topics through the outbox (a
    /// test's own producer writes before it drains), so the watermarks cannot have moved
    /// meanwhile, and the broker is asked for four committed offsets a round, not dozens of
    /// watermarks.
    fn highs(&self, outbox_rows: i64) -> Result<Highs, String> {
        if let Some((rows, highs)) = &*self.highs.lock().unwrap() {
            if *rows == outbox_rows {
                return Ok(highs.clone());
            }
        }
        let any = &self.groups[0].1;
        // A topic the broker does not know yet has had nothing published to it.
        let mut highs = Highs::new();
        for (group, _) in &self.groups {
            for &topic in group.topics() {
                if highs.contains_key(&topic) {
                    continue;
                }
                let name = topic.name(&self.prefix);
                let mut partitions = Vec::new();
                for partition in self.partitions(topic)? {
                    let (_, high) = any
                        .fetch_watermarks(&name, partition, REQUEST_TIMEOUT)
                        .map_err(|e| format!("watermarks of {name}[{partition}]: {e}"))?;
                    partitions.push((partition, high));
                }
                highs.insert(topic, partitions);
            }
        }
        *self.highs.lock().unwrap() = Some((outbox_rows, highs.clone()));
        Ok(highs)
    }

    /// Every (group, partition) whose committed offset is below the partition's high
    /// watermark, with the outbox fully dispatched at `outbox_rows` rows.
    fn lagging(&self, outbox_rows: i64) -> Result<Vec<Lag>, String> {
        let highs = self.highs(outbox_rows)?;
        let mut lagging = Vec::new();
        for (group, consumer) in &self.groups {
            let mut wanted = TopicPartitionList::new();
            let mut high_of = HashMap::new();
            for topic in group.topics() {
                let name = topic.name(&self.prefix);
                for &(partition, high) in &highs[topic] {
                    wanted.add_partition(&name, partition);
                    high_of.insert((name.clone(), partition), high);
                }
            }
            if wanted.count() == 0 {
                continue;
            }
            let committed = consumer
                .committed_offsets(wanted, REQUEST_TIMEOUT)
                .map_err(|e| format!("offsets committed by {}: {e}", group.base_name()))?;
            for element in committed.elements() {
                if let Err(e) = element.error() {
                    return Err(format!(
                        "offset committed by {} on {}[{}]: {e}",
                        group.base_name(),
                        element.topic(),
                        element.partition()
                    ));
                }
                let high = high_of[&(element.topic().to_string(), element.partition())];
                let committed = match element.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                };
                if committed.unwrap_or(0) < high {
                    lagging.push(Lag {
                        group: group.base_name(),
                        topic: element.topic().to_string(),
                        partition: element.partition(),
                        committed,
                        high,
                    });
                }
            }
        }
        Ok(lagging)
    }
}
