//! Prometheus metrics. Each application instance owns its registry, so tests can run many
//! instances in one process without their counters mixing.

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Request latency by route template (not the raw path, which would explode cardinality).
    pub http_requests: HistogramVec,
    /// 1 when the last probe of a dependency succeeded.
    pub dependency_up: IntGaugeVec,
    /// Embedding endpoint calls by endpoint and outcome (`ok`, `invalid`, `overloaded`, ...).
    pub embedding_requests: IntCounterVec,
    /// Embedding endpoint latency in seconds, by endpoint.
    pub embedding_response_time: HistogramVec,
    /// Texts the batcher put into each batch it dispatched.
    pub embedding_batch_size: Histogram,
    /// Texts waiting in the batcher for a worker.
    pub embedding_queue_depth: IntGauge,
    /// Embedding cache lookups by result (`hit`, `miss`), for this instance.
    pub embedding_cache_lookups: IntCounterVec,
    /// Hits over lookups of this instance's embedding cache, since start.
    pub cache_hit_rate: Gauge,
    /// Redis cache calls that failed or timed out, by operation; the request went on uncached.
    pub cache_errors: IntCounterVec,
}

/// Restarts of the long-lived actors by actor (`actors::supervision`). One counter for the
/// process, shared by every registry made in it (an instance has one).
pub static ACTOR_RESTARTS: std::sync::LazyLock<IntCounterVec> = std::sync::LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new(
            "actor_restarts_total",
            "Long-lived actors restarted by their supervisor after they stopped or failed, by actor",
        ),
        &["actor"],
    )
    .expect("valid metric")
});

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = HistogramVec::new(
            HistogramOpts::new(
                "http_server_requests_seconds",
                "HTTP request latency by route template, method and status",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let dependency_up = IntGaugeVec::new(
            Opts::new(
                "dependency_up",
                "1 when the dependency answered its last probe",
            ),
            &["dependency"],
        )
        .expect("valid metric");
        let embedding_requests = IntCounterVec::new(
            Opts::new(
                "embedding_requests_total",
                "Embedding endpoint calls by endpoint and outcome",
            ),
            &["endpoint", "outcome"],
        )
        .expect("valid metric");
        let embedding_response_time = HistogramVec::new(
            HistogramOpts::new(
                "embedding_response_time",
                "Embedding endpoint latency in seconds, by endpoint",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["endpoint"],
        )
        .expect("valid metric");
        let embedding_batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "embedding_batch_size",
                "Texts in each batch sent to the embedding workers",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
        )
        .expect("valid metric");
        let embedding_queue_depth = IntGauge::new(
            "embedding_queue_depth",
            "Texts waiting in the batcher for an embedding worker",
        )
        .expect("valid metric");
        let embedding_cache_lookups = IntCounterVec::new(
            Opts::new(
                "embedding_cache_lookups_total",
                "Embedding cache lookups by result (hit, miss)",
            ),
            &["result"],
        )
        .expect("valid metric");
        let cache_hit_rate = Gauge::new(
            "cache_hit_rate",
            "Hits over lookups of the embedding cache since start",
        )
        .expect("valid metric");
        let cache_errors = IntCounterVec::new(
            Opts::new(
                "cache_errors_total",
                "Redis cache calls that failed or timed out, by operation",
            ),
            &["operation"],
        )
        .expect("valid metric");
        let collectors: [Box<dyn prometheus::core::Collector>; 10] = [
            Box::new(ACTOR_RESTARTS.clone()),
            Box::new(http_requests.clone()),
            Box::new(dependency_up.clone()),
            Box::new(embedding_requests.clone()),
            Box::new(embedding_response_time.clone()),
            Box::new(embedding_batch_size.clone()),
            Box::new(embedding_queue_depth.clone()),
            Box::new(embedding_cache_lookups.clone()),
            Box::new(cache_hit_rate.clone()),
            Box::new(cache_errors.clone()),
        ];
        for collector in collectors {
            registry.register(collector).expect("registered once");
        }
        Self {
            registry,
            http_requests,
            dependency_up,
            embedding_requests,
            embedding_response_time,
            embedding_batch_size,
            embedding_queue_depth,
            embedding_cache_lookups,
            cache_hit_rate,
            cache_errors,
        }
    }

    /// Counts cache lookups and refreshes `cache_hit_rate`.
    pub fn record_cache_lookups(&self, hits: u64, misses: u64) {
        let lookups = &self.embedding_cache_lookups;
        lookups.with_label_values(&["hit"]).inc_by(hits);
        lookups.with_label_values(&["miss"]).inc_by(misses);
        let (hits, misses) = self.cache_lookups();
        if hits + misses > 0 {
            self.cache_hit_rate
                .set(hits as f64 / (hits + misses) as f64);
        }
    }

    /// This instance's embedding cache hits and misses since start.
    pub fn cache_lookups(&self) -> (u64, u64) {
        let lookups = &self.embedding_cache_lookups;
        (
            lookups.with_label_values(&["hit"]).get(),
            lookups.with_label_values(&["miss"]).get(),
        )
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
