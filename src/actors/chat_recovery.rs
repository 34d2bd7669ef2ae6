//! The recovery sweeper's loop: every `chat.recovery_interval_secs`, each instance answers
//! the messages a crashed instance left unanswered (`ChatPipeline::answer_unanswered`; the
//! claim and the unique reply keep two sweepers from answering one message twice). A tick
//! that fails or panics is logged and the loop goes on.

use crate::chat::ChatPipeline;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

/// Messages taken up per tick (the rest wait for the next one).
const BATCH: u64 = 20;

/// Starts the loop on the current arbiter; it runs until the system stops.
pub fn start(pipeline: Arc<ChatPipeline>) {
    let every = Duration::from_secs(pipeline.settings().recovery_interval_secs.max(1));
    actix::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // A full batch means more may be waiting: go on at once.
            loop {
                match AssertUnwindSafe(pipeline.answer_unanswered(BATCH))
                    .catch_unwind()
                    .await
                {
                    Ok(Ok(done)) if (done.answered + done.failed) as u64 == BATCH => continue,
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => tracing::warn!(%error, "recovery sweep failed"),
                    Err(_) => tracing::error!("recovery sweep panicked; the next tick tries again"),
                }
                break;
            }
        }
    });
}
