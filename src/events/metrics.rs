//! The event backbone's metrics, registered in the application's registry.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

#[derive(Clone)]
pub struct EventMetrics {
    /// Outbox rows by state (`pending`, `dead`), refreshed by the dispatcher.
    pub outbox_rows: IntGaugeVec,
    /// Rows the broker acknowledged.
    pub outbox_sent: IntCounter,
    /// Failed send attempts (each retry counts).
    pub outbox_failed: IntCounter,
    /// Rows moved to the dead-letter state.
    pub outbox_dead: IntCounter,
    /// From the row's commit to the broker's acknowledgement.
    pub outbox_dispatch_latency: Histogram,
    /// High watermark minus committed offset, per group, topic and partition.
    pub consumer_lag: IntGaugeVec,
    /// Records each group handled, by outcome (`applied`, `duplicate`, `parked`, `retried`).
    pub ingress_records: IntCounterVec,
}

impl EventMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            outbox_rows: IntGaugeVec::new(
                Opts::new("outbox_events", "Outbox rows by state"),
                &["state"],
            )?,
            outbox_sent: IntCounter::new(
                "outbox_sent_total",
                "Outbox rows acknowledged by the broker",
            )?,
            outbox_failed: IntCounter::new(
                "outbox_failed_total",
                "Failed outbox send attempts, retries included",
            )?,
            outbox_dead: IntCounter::new(
                "outbox_dead_total",
                "Outbox rows moved to the dead-letter state",
            )?,
            outbox_dispatch_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "outbox_dispatch_latency_seconds",
                    "Time from writing an outbox row to the broker's acknowledgement",
                )
                .buckets(vec![
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                ]),
            )?,
            consumer_lag: IntGaugeVec::new(
                Opts::new(
                    "kafka_consumer_lag",
                    "Records not yet committed by a consumer group, per partition",
                ),
                &["group", "topic", "partition"],
            )?,
            ingress_records: IntCounterVec::new(
                Opts::new(
                    "kafka_ingress_records_total",
                    "Records handled by a consumer group, by outcome",
                ),
                &["group", "outcome"],
            )?,
        };
        registry.register(Box::new(metrics.outbox_rows.clone()))?;
        registry.register(Box::new(metrics.outbox_sent.clone()))?;
        registry.register(Box::new(metrics.outbox_failed.clone()))?;
        registry.register(Box::new(metrics.outbox_dead.clone()))?;
        registry.register(Box::new(metrics.outbox_dispatch_latency.clone()))?;
        registry.register(Box::new(metrics.consumer_lag.clone()))?;
        registry.register(Box::new(metrics.ingress_records.clone()))?;
        Ok(metrics)
    }
}
