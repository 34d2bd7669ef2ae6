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
    /// Messages sent again with a stored client id, by outcome (`replayed`: the stored reply
    /// went back; `answered`: it had none yet and was answered now).
    pub retries: IntCounterVec,
    /// Messages a crash left unanswered that the recovery sweeper took up, by outcome
    /// (`answered`, `failed`).
    pub recovered: IntCounterVec,
    /// Replies computed twice for one message (two instances answered it at once); the
    /// first stored one is the answer.
    pub duplicate_answers: prometheus::IntCounter,
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
        let retries = IntCounterVec::new(
            Opts::new(
                "chat_retries_total",
                "Chat messages sent again with a stored client id, by outcome (replayed, answered)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let recovered = IntCounterVec::new(
            Opts::new(
                "chat_recovered_total",
                "Chat messages left unanswered by a crash that the sweeper took up, by outcome (answered, failed)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let duplicate_answers = prometheus::IntCounter::new(
            "chat_duplicate_answers_total",
            "Chat replies computed for a message another instance had already answered (not stored)",
        )
        .expect("valid metric");
        let collectors: [Box<dyn prometheus::core::Collector>; 7] = [
            Box::new(stage_seconds.clone()),
            Box::new(sessions_active.clone()),
            Box::new(session_failures.clone()),
            Box::new(frames_rejected.clone()),
            Box::new(retries.clone()),
            Box::new(recovered.clone()),
            Box::new(duplicate_answers.clone()),
        ];
        for collector in collectors {
            registry.register(collector).expect("registered once");
        }
        Self {
            stage_seconds,
            sessions_active,
            session_failures,
            frames_rejected,
            retries,
            recovered,
            duplicate_answers,
        }
    }
}
