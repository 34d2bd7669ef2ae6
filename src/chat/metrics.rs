//! The chat's Prometheus metrics, registered in the application's registry.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct ChatMetrics {
    /// Seconds each pipeline stage took (`store_user`, `embed`, `analyze`, `recommend`,
    /// `write`, `store_reply`).
    pub stage_seconds: HistogramVec,
    /// Open WebSocket chat sessions.
    pub sessions_active: IntGauge,
    /// Messages whose processing failed inside a session, by kind (`error`, `panic`); the
    /// session answered with an error frame and went on.
    pub session_failures: IntCounterVec,
    /// Frames refused before the pipeline, by error code (`invalid_frame`, `overloaded`, …).
    pub frames_rejected: IntCounterVec,
}

impl ChatMetrics {
    pub fn register(registry: &Registry) -> Self {
        let stage_seconds = HistogramVec::new(
            HistogramOpts::new("chat_stage_seconds", "Seconds per chat pipeline stage").buckets(
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ],
            ),
            &["stage"],
        )
        .expect("valid metric");
        let sessions_active =
            IntGauge::new("ws_sessions_active", "Open WebSocket chat sessions").expect("valid");
        let session_failures = IntCounterVec::new(
            Opts::new(
                "chat_session_failures_total",
                "Chat messages whose processing failed in a session, by kind (error, panic)",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let frames_rejected = IntCounterVec::new(
            Opts::new(
                "chat_frames_rejected_total",
                "Client frames refused before the pipeline, by error code",
            ),
            &["code"],
        )
        .expect("valid metric");
        let collectors: [Box<dyn prometheus::core::Collector>; 4] = [
            Box::new(stage_seconds.clone()),
            Box::new(sessions_active.clone()),
            Box::new(session_failures.clone()),
            Box::new(frames_rejected.clone()),
        ];
        for collector in collectors {
            registry.register(collector).expect("registered once");
        }
        Self {
            stage_seconds,
            sessions_active,
            session_failures,
            frames_rejected,
        }
    }
}
