//! The LLM circuit breaker: closed → open after `failure_threshold` consecutive failed calls →
//! half-open after `open_secs` (one probe call) → closed on its success, open again on its
//! failure. The state is a Prometheus gauge, and every change is written to Redis
//! (`{prefix}cb:state_change:last`, JSON `{from, to, at}`) for operators.

use crate::redis::{RedisKeys, RedisPool};
use prometheus::IntGauge;
use serde::Serialize;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Longest a state-change write may take; it is informational and never blocks a call.
const REDIS_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// The gauge value: 0 closed, 1 open, 2 half-open.
    pub fn gauge_value(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed { consecutive_failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

impl Inner {
    fn state(&self) -> BreakerState {
        match self {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[derive(Debug, Serialize)]
struct StateChange {
    from: BreakerState,
    to: BreakerState,
    at: chrono::DateTime<chrono::Utc>,
}

pub struct CircuitBreaker {
    inner: Mutex<Inner>,
    failure_threshold: u32,
    open_for: Duration,
    gauge: IntGauge,
    /// To the task that writes state changes to Redis, in order.
    changes: mpsc::UnboundedSender<String>,
}

impl CircuitBreaker {
    /// Must be called inside the Tokio runtime: it starts the task that records changes.
    pub fn new(
        failure_threshold: u32,
        open_for: Duration,
        gauge: IntGauge,
        redis: RedisPool,
        keys: &RedisKeys,
    ) -> Self {
        gauge.set(BreakerState::Closed.gauge_value());
        let (changes, pending) = mpsc::unbounded_channel();
        tokio::spawn(record_changes(
            redis,
            keys.llm_breaker_state_change(),
            pending,
        ));
        Self {
            inner: Mutex::new(Inner::Closed {
                consecutive_failures: 0,
            }),
            failure_threshold: failure_threshold.max(1),
            open_for,
            gauge,
            changes,
        }
    }

    /// The current state (an open breaker whose time is up reports half-open).
    pub fn state(&self) -> BreakerState {
        let inner = self.lock();
        match *inner {
            Inner::Open { until } if Instant::now() >= until => BreakerState::HalfOpen,
            ref other => other.state(),
        }
    }

    /// Whether a call may go out now. In half-open only one probe goes out at a time.
    pub fn try_acquire(&self) -> bool {
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => true,
            Inner::Open { until } if Instant::now() >= until => {
                self.transition(&mut inner, Inner::HalfOpen { probing: true });
                true
            }
            Inner::Open { .. } => false,
            Inner::HalfOpen { probing: true } => false,
            Inner::HalfOpen { probing: false } => {
                *inner = Inner::HalfOpen { probing: true };
                true
            }
        }
    }

    pub fn on_success(&self) {
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => {
                *inner = Inner::Closed {
                    consecutive_failures: 0,
                }
            }
            Inner::HalfOpen { .. } => self.transition(
                &mut inner,
                Inner::Closed {
                    consecutive_failures: 0,
                },
            ),
            // A call that started before the breaker opened: the open period stands.
            Inner::Open { .. } => {}
        }
    }

    pub fn on_failure(&self) {
        let mut inner = self.lock();
        match *inner {
            Inner::Closed {
                consecutive_failures,
            } => {
                let failures = consecutive_failures + 1;
                if failures >= self.failure_threshold {
                    let until = Instant::now() + self.open_for;
                    self.transition(&mut inner, Inner::Open { until });
                } else {
                    *inner = Inner::Closed {
                        consecutive_failures: failures,
                    };
                }
            }
            Inner::HalfOpen { .. } => {
                let until = Instant::now() + self.open_for;
                self.transition(&mut inner, Inner::Open { until });
            }
            Inner::Open { .. } => {}
        }
    }

    /// A call that was let through ended without telling anything about the endpoint (it was
    /// cancelled): a half-open breaker lets the next probe through.
    pub fn on_abandoned(&self) {
        let mut inner = self.lock();
        if let Inner::HalfOpen { probing: true } = *inner {
            *inner = Inner::HalfOpen { probing: false };
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state is a plain enum; a panic elsewhere cannot leave it half-written.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn transition(&self, inner: &mut Inner, next: Inner) {
        let from = inner.state();
        let to = next.state();
        *inner = next;
        if from == to {
            return;
        }
        self.gauge.set(to.gauge_value());
        tracing::warn!(?from, ?to, "LLM circuit breaker changed state");
        let change = StateChange {
            from,
            to,
            at: chrono::Utc::now(),
        };
        if let Ok(payload) = serde_json::to_string(&change) {
            // The writer only stops when the breaker is dropped.
            let _ = self.changes.send(payload);
        }
    }
}

/// Writes each state change to Redis, in order, off the callers' path: a slow or absent
/// Redis never delays a chat reply.
async fn record_changes(
    redis: RedisPool,
    key: String,
    mut pending: mpsc::UnboundedReceiver<String>,
) {
    while let Some(payload) = pending.recv().await {
        let write = async {
            let mut connection = redis.get().await.map_err(|e| e.to_string())?;
            redis::cmd("SET")
                .arg(&key)
                .arg(&payload)
                .query_async::<()>(&mut *connection)
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(REDIS_WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot record the breaker state change"),
            Err(_) => tracing::warn!("recording the breaker state change timed out"),
        }
    }
}
