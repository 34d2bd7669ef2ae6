//! Probes every dependency on an interval and keeps the latest result, so the readiness
//! endpoint answers from memory and cannot be used to hammer the databases.

use crate::metrics::Metrics;
use crate::ml::ModelFiles;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A single probe never takes longer than this.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

use crate::redis::RedisPool;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DependencyStatus {
    Unknown,
    Up,
    Down,
}

/// Whether the service can answer without a dependency. A load balancer takes an instance
/// out only for a required one: the service survives Redis, the broker and the search
/// server being down (caches are skipped, the outbox keeps events, search answers 503), so
/// taking every instance out at once for them would turn a partial outage into a full one.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    Required,
    Degradable,
}

impl Criticality {
    /// The one place that says which dependency the service cannot serve without.
    pub fn of(dependency: &str) -> Self {
        match dependency {
            "database" | "model" => Self::Required,
            _ => Self::Degradable,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DependencyState {
    pub name: &'static str,
    pub criticality: Criticality,
    pub status: DependencyStatus,
    pub latency_ms: Option<f64>,
    /// Why the last probe failed; never contains credentials.
    pub error: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
}

impl DependencyState {
    fn unknown(name: &'static str) -> Self {
        Self {
            name,
            criticality: Criticality::of(name),
            status: DependencyStatus::Unknown,
            latency_ms: None,
            error: None,
            checked_at: None,
        }
    }
}

/// What the monitor probes.
#[derive(Clone)]
pub struct Dependencies {
    pub db: DatabaseConnection,
    pub redis: RedisPool,
    pub kafka: Arc<BaseConsumer>,
    pub elasticsearch: elasticsearch::Elasticsearch,
    /// Every model folder the service loaded (MiniLM, and the multilingual one when set).
    pub model_dirs: Vec<PathBuf>,
}

impl Dependencies {
    /// A Kafka client used only for metadata requests.
    pub fn kafka_probe_client(brokers: &str) -> Result<BaseConsumer, rdkafka::error::KafkaError> {
        ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", "convrec-readiness")
            .set("socket.timeout.ms", "2000")
            .set("reconnect.backoff.max.ms", "2000")
            .create()
    }
}

pub struct DependencyMonitor {
    deps: Dependencies,
    metrics: Metrics,
    interval: Duration,
    states: Vec<DependencyState>,
    probing: bool,
}

impl DependencyMonitor {
    pub fn new(deps: Dependencies, metrics: Metrics, interval: Duration) -> Self {
        let states = ["database", "redis", "kafka", "elasticsearch", "model"]
            .into_iter()
            .map(DependencyState::unknown)
            .collect();
        Self {
            deps,
            metrics,
            interval,
            states,
            probing: false,
        }
    }

    fn probe_all(&mut self, ctx: &mut Context<Self>) {
        if self.probing {
            return;
        }
        self.probing = true;
        let deps = self.deps.clone();
        let probes = async move {
            futures::join!(
                timed("database", probe_database(&deps.db)),
                timed("redis", probe_redis(&deps.redis)),
                timed("kafka", probe_kafka(deps.kafka.clone())),
                timed("elasticsearch", probe_elasticsearch(&deps.elasticsearch)),
                timed("model", probe_models(deps.model_dirs.clone())),
            )
        };
        ctx.spawn(probes.into_actor(self).map(|(a, b, c, d, e), act, _| {
            act.states = vec![a, b, c, d, e];
            for state in &act.states {
                act.metrics
                    .dependency_up
                    .with_label_values(&[state.name])
                    .set(i64::from(state.status == DependencyStatus::Up));
            }
            act.probing = false;
        }));
    }
}

async fn timed(
    name: &'static str,
    probe: impl std::future::Future<Output = Result<(), String>>,
) -> DependencyState {
    let started = Instant::now();
    let result = match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
    };
    if let Err(error) = &result {
        tracing::debug!(dependency = name, %error, "dependency probe failed");
    }
    DependencyState {
        name,
        criticality: Criticality::of(name),
        status: if result.is_ok() {
            DependencyStatus::Up
        } else {
            DependencyStatus::Down
        },
        latency_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
        error: result.err(),
        checked_at: Some(Utc::now()),
    }
}

async fn probe_database(db: &DatabaseConnection) -> Result<(), String> {
    db.execute_unprepared("SELECT 1")
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn probe_redis(pool: &RedisPool) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    (pong == "PONG")
        .then_some(())
        .ok_or_else(|| format!("unexpected answer {pong:?}"))
}

async fn probe_kafka(client: Arc<BaseConsumer>) -> Result<(), String> {
    // librdkafka's metadata call blocks; keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        client
            .fetch_metadata(None, PROBE_TIMEOUT)
            .map_err(|e| e.to_string())
            .and_then(|meta| {
                if meta.brokers().is_empty() {
                    Err("no brokers in metadata".to_string())
                } else {
                    Ok(())
                }
            })
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn probe_elasticsearch(client: &elasticsearch::Elasticsearch) -> Result<(), String> {
    let response = client.ping().send().await.map_err(|e| e.to_string())?;
    if response.status_code().is_success() {
        Ok(())
    } else {
        Err(format!("status {}", response.status_code()))
    }
}

async fn probe_models(dirs: Vec<PathBuf>) -> Result<(), String> {
    for dir in dirs {
        ModelFiles::open(&dir).map_err(|e| e.to_string())?;
    }
    Ok(())
}

impl Actor for DependencyMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.probe_all(ctx);
        ctx.run_interval(self.interval, |act, ctx| act.probe_all(ctx));
    }
}

crate::actors::supervision::supervised!(DependencyMonitor, "dependency_monitor", |monitor| {
    monitor.probing = false;
});

/// The latest probe results, one per dependency.
#[derive(Message)]
#[rtype(result = "Vec<DependencyState>")]
pub struct GetReadiness;

impl Handler<GetReadiness> for DependencyMonitor {
    type Result = MessageResult<GetReadiness>;

    fn handle(&mut self, _: GetReadiness, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.states.clone())
    }
}

/// Probe now instead of waiting for the next interval (used after start-up and by tests).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ProbeNow;

impl Handler<ProbeNow> for DependencyMonitor {
    type Result = ();

    fn handle(&mut self, _: ProbeNow, ctx: &mut Self::Context) {
        self.probe_all(ctx);
    }
}
