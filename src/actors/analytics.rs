//! `Analytics`: the owner of the `analytics` consumer group. It keeps two Redis views of
//! shop behaviour: `rec:trending`, a ZSet of products whose scores decay with a half-life,
//! and `rec:popular:category:{cat}`, ZSets of products counted per category (and per parent
//! category, so `fashion` includes `fashion/outerwear`). Each event is applied exactly once:
//! a Lua script sets the event's marker and increments the scores atomically.
//!
//! All of it lives in the state store (`redis.state_url`, no eviction). Should it be lost
//! anyway (a flushed store, or one that evicts after all), the actor notices the missing
//! built marker at start and on every decay tick and rebuilds trending and popular from
//! `interactions` (`recommend::analytics_rebuild`, which also describes the race with events
//! applied meanwhile), off its mailbox.

use crate::events::apply::{ApplyError, ApplyEvent};
use crate::events::envelope::InteractionPayload;
use crate::recommend::analytics_rebuild::{self, Rebuild};
use crate::recommend::popularity::{category_levels, decay_factor, MIN_TRENDING_SCORE};
use crate::redis::{RedisKeys, RedisPool};
use actix::prelude::*;
use sea_orm::DatabaseConnection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often trending scores are decayed (and the built marker checked).
pub const DECAY_INTERVAL: Duration = Duration::from_secs(60);

/// Atomically: if the event's marker is new, set it (with a TTL) and add the weight to the
/// trending set and to every category set. KEYS: marker, trending, categories…;
/// ARGV: marker TTL (s), product id, weight. Answers 1 when applied, 0 for a duplicate.
const APPLY_SCRIPT: &str = r#"
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('ZINCRBY', KEYS[2], ARGV[3], ARGV[2])
  for i = 3, #KEYS do
    redis.call('ZINCRBY', KEYS[i], ARGV[3], ARGV[2])
  end
  return 1
end
return 0
"#;

/// Multiplies every trending score by ARGV[1] and drops the ones below ARGV[2], once per
/// interval across all instances (KEYS[2] is the lock, ARGV[3] its lifetime in ms).
const DECAY_SCRIPT: &str = r#"
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[3]) then
  if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('ZUNIONSTORE', KEYS[1], 1, KEYS[1], 'WEIGHTS', ARGV[1])
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
  end
  return 1
end
return 0
"#;

/// Clears the "rebuilding" flag when the rebuild task ends, however it ends.
struct Reset(Arc<AtomicBool>);

impl Drop for Reset {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

pub struct Analytics {
    db: DatabaseConnection,
    /// The state store.
    redis: RedisPool,
    keys: RedisKeys,
    half_life: Duration,
    /// How long an event's "applied" marker is kept (the longest redelivery window).
    marker_ttl: Duration,
    /// Set while this instance checks or rebuilds, so ticks do not pile rebuilds up.
    rebuilding: Arc<AtomicBool>,
}

impl Analytics {
    /// `redis` is the state store (`redis::connect_state`).
    pub fn new(
        db: DatabaseConnection,
        redis: RedisPool,
        keys: RedisKeys,
        half_life: Duration,
        marker_ttl: Duration,
    ) -> Self {
        Self {
            db,
            redis,
            keys,
            half_life,
            marker_ttl,
            rebuilding: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Rebuilds trending and popular when the built marker is missing, on a task of its own
    /// (the mailbox goes on; the rebuild's I/O is asynchronous and its grouping runs on a
    /// blocking thread), at most one at a time here and, by its lock, across instances.
    fn rebuild_if_lost(&self) {
        if self.rebuilding.swap(true, Ordering::AcqRel) {
            return;
        }
        let guard = Reset(self.rebuilding.clone());
        let (db, redis, keys, half_life) = (
            self.db.clone(),
            self.redis.clone(),
            self.keys.clone(),
            self.half_life,
        );
        actix::spawn(async move {
            match analytics_rebuild::rebuild_if_lost(&db, &redis, &keys, half_life).await {
                Ok(None) => {}
                Ok(Some(Rebuild::Built(report))) => tracing::warn!(
                    products = report.products,
                    categories = report.categories,
                    trending = report.trending,
                    elapsed_ms = report.elapsed.as_millis() as u64,
                    "trending and popular rebuilt from interactions (the built marker was missing: the state was lost, or this is the first start)"
                ),
                Ok(Some(Rebuild::Busy)) => {
                    tracing::debug!("trending and popular are being rebuilt by another instance")
                }
                Err(error) => {
                    tracing::warn!(%error, "trending and popular not rebuilt; retried next tick")
                }
            }
            drop(guard);
        });
    }

    fn decay(&self, ctx: &mut Context<Self>) {
        let redis = self.redis.clone();
        let keys = self.keys.clone();
        let factor = decay_factor(DECAY_INTERVAL, self.half_life);
        ctx.spawn(
            async move {
                let result: Result<i64, String> = async {
                    let mut conn = redis.get().await.map_err(|e| e.to_string())?;
                    redis::cmd("EVAL")
                        .arg(DECAY_SCRIPT)
                        .arg(2)
                        .arg(keys.trending())
                        .arg(keys.trending_decay_lock())
                        .arg(factor)
                        .arg(MIN_TRENDING_SCORE)
                        .arg((DECAY_INTERVAL.as_millis() as u64).saturating_sub(1000))
                        .query_async(&mut *conn)
                        .await
                        .map_err(|e| e.to_string())
                }
                .await;
                if let Err(error) = result {
                    tracing::debug!(%error, "trending decay skipped");
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for Analytics {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.rebuild_if_lost();
        ctx.run_interval(DECAY_INTERVAL, |act, ctx| {
            act.decay(ctx);
            act.rebuild_if_lost();
        });
    }
}

crate::actors::supervision::supervised!(Analytics, "analytics", |analytics| {
    analytics.rebuilding.store(false, Ordering::Release);
});

impl Handler<ApplyEvent> for Analytics {
    type Result = ResponseFuture<Result<(), ApplyError>>;

    fn handle(&mut self, msg: ApplyEvent, _: &mut Self::Context) -> Self::Result {
        let redis = self.redis.clone();
        let keys = self.keys.clone();
        let ttl = self.marker_ttl.as_secs().max(1);
        Box::pin(async move {
            let Some(payload) = msg.event.interaction() else {
                // Other analytics events carry nothing these counters use.
                return Ok(());
            };
            let payload: InteractionPayload =
                payload.map_err(|e| ApplyError::Invalid(format!("interaction payload: {e}")))?;
            let mut cmd = redis::cmd("EVAL");
            let levels = category_levels(&payload.category);
            cmd.arg(APPLY_SCRIPT)
                .arg(2 + levels.len())
                .arg(keys.analytics_applied(msg.event.event_id))
                .arg(keys.trending());
            for level in levels {
                cmd.arg(keys.popular(level));
            }
            cmd.arg(ttl).arg(payload.product_id.to_string()).arg(
                msg.event
                    .event_type
                    .interaction_kind()
                    .map_or(0.0, |kind| kind.counted_weight(payload.quantity)),
            );
            let mut conn = redis
                .get()
                .await
                .map_err(|e| ApplyError::Retry(format!("redis: {e}")))?;
            let _applied: i64 = cmd
                .query_async(&mut *conn)
                .await
                .map_err(|e| ApplyError::Retry(format!("redis: {e}")))?;
            Ok(())
        })
    }
}
