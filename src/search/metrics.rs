//! Search metrics, registered in the application's registry. Indexing lag of the `es-sync`
//! group is `kafka_consumer_lag{group="es-sync"}` (the event backbone's).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct SearchMetrics {
    /// Documents sent for indexing by index and outcome (indexed, retryable, rejected).
    pub indexed: IntCounterVec,
    /// Search latency by index.
    pub latency: HistogramVec,
}

impl SearchMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            indexed: IntCounterVec::new(
                Opts::new(
                    "search_index_documents_total",
                    "Documents sent to the search server, by index and outcome",
                ),
                &["index", "outcome"],
            )?,
            latency: HistogramVec::new(
                HistogramOpts::new("search_request_seconds", "Search latency by index")
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
                &["index"],
            )?,
        };
        registry.register(Box::new(metrics.indexed.clone()))?;
        registry.register(Box::new(metrics.latency.clone()))?;
        Ok(metrics)
    }
}
