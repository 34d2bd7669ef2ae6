//! Prometheus metrics. Each application instance owns its registry, so tests can run many
//! instances in one process without their counters mixing.

use prometheus::{HistogramOpts, HistogramVec, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Request latency by route template (not the raw path, which would explode cardinality).
    pub http_requests: HistogramVec,
    /// 1 when the last probe of a dependency succeeded.
    pub dependency_up: IntGaugeVec,
}

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
        registry
            .register(Box::new(http_requests.clone()))
            .expect("registered once");
        registry
            .register(Box::new(dependency_up.clone()))
            .expect("registered once");
        Self {
            registry,
            http_requests,
            dependency_up,
        }
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
