//! The model trainer's loop, on its own arbiter (thread) so a training's database reads and
//! the swap of a loaded model never wait on, or hold up, the actors that share the system
//! arbiter (the Kafka consumers, the outbox dispatcher, readiness). Every instance runs it:
//! each tick, whichever instance takes the trainer's lock trains when a new version is due
//! (`cf_store::train_if_due`), and every instance loads the newest version it does not serve.

use crate::recommend::cf::{CfConfig, ServedNeighbours};
use crate::recommend::cf_store::{self, TrainOutcome};
use actix::prelude::*;
use futures::FutureExt;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use sea_orm::DatabaseConnection;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// Trainings and the version served, for operators.
#[derive(Clone)]
pub struct TrainerMetrics {
    pub trainings: IntCounterVec,
    pub served_version: IntGauge,
}

impl TrainerMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let trainings = IntCounterVec::new(
            Opts::new(
                "cf_trainings_total",
                "Collaborative-model training attempts on this instance by outcome (trained, not_due, busy, error)",
            ),
            &["outcome"],
        )?;
        let served_version = IntGauge::new(
            "cf_model_version",
            "The collaborative model version this instance serves (0: none yet)",
        )?;
        registry.register(Box::new(trainings.clone()))?;
        registry.register(Box::new(served_version.clone()))?;
        Ok(Self {
            trainings,
            served_version,
        })
    }
}

/// What the loop needs; `train_every` is how old the newest version may get, `poll_every`
/// how often an instance looks for a newer one.
pub struct Trainer {
    pub db: DatabaseConnection,
    pub served: ServedNeighbours,
    pub config: CfConfig,
    pub train_every: Duration,
    pub poll_every: Duration,
    pub metrics: Option<TrainerMetrics>,
}

impl Trainer {
    /// Runs the loop on `arbiter` until the arbiter stops.
    pub fn start_on(self, arbiter: &ArbiterHandle) {
        arbiter.spawn(async move {
            let tick = self
                .poll_every
                .min(self.train_every)
                .max(Duration::from_millis(100));
            let mut ticks = tokio::time::interval(tick);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                // A tick that panics is counted as an error; the loop goes on.
                if AssertUnwindSafe(self.once()).catch_unwind().await.is_err() {
                    tracing::error!("collaborative training tick panicked");
                    if let Some(metrics) = &self.metrics {
                        metrics.trainings.with_label_values(&["error"]).inc();
                    }
                }
            }
        });
    }

    async fn once(&self) {
        let outcome =
            match cf_store::train_if_due(&self.db, self.config.clone(), self.train_every).await {
                Ok(TrainOutcome::Trained(_)) => "trained",
                Ok(TrainOutcome::NotDue) => "not_due",
                Ok(TrainOutcome::Busy) => "busy",
                Err(error) => {
                    tracing::warn!(%error, "collaborative training failed; the served model stays");
                    "error"
                }
            };
        match cf_store::refresh(&self.db, &self.served, self.config.model).await {
            Ok(version) => {
                if let Some(metrics) = &self.metrics {
                    metrics.served_version.set(version.unwrap_or(0));
                }
            }
            Err(error) => tracing::warn!(%error, "newer collaborative model not loaded"),
        }
        if let Some(metrics) = &self.metrics {
            metrics.trainings.with_label_values(&[outcome]).inc();
        }
    }
}
