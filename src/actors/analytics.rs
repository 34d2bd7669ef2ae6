//! `Analytics`: the owner of the `analytics` consumer group. It keeps two Redis views of
//! shop behaviour: `rec:trending`, a ZSet of products whose scores decay with a half-life,
//! and `rec:popular:category:{cat}`, ZSets of products counted per category (and per parent
//! category, so `fashion` includes `fashion/outerwear`). Each event is applied exactly once:
//! a Lua script sets the event's marker and increments the scores atomically.

use crate::events::apply::{ApplyError, ApplyEvent};
use crate::events::envelope::InteractionPayload;
use crate::redis::{RedisKeys, RedisPool};
use actix::prelude::*;
use std::time::Duration;

/// How often trending scores are decayed.
pub const DECAY_INTERVAL: Duration = Duration::from_secs(60);
/// Scores below this are dropped from `rec:trending`.
const MIN_TRENDING_SCORE: f64 = 0.01;

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

/// `a/b/c` → `a`, `a/b`, `a/b/c`.
pub fn category_levels(category: &str) -> Vec<&str> {
    category
        .match_indices('/')
        .map(|(i, _)| &category[..i])
        .chain(std::iter::once(category))
        .filter(|c| !c.is_empty())
        .collect()
}

pub struct Analytics {
    redis: RedisPool,
    keys: RedisKeys,
    half_life: Duration,
    /// How long an event's "applied" marker is kept (the longest redelivery window).
    marker_ttl: Duration,
}

impl Analytics {
    pub fn new(
        redis: RedisPool,
        keys: RedisKeys,
        half_life: Duration,
        marker_ttl: Duration,
    ) -> Self {
        Self {
            redis,
            keys,
            half_life,
            marker_ttl,
        }
    }

    fn decay(&self, ctx: &mut Context<Self>) {
        let redis = self.redis.clone();
        let keys = self.keys.clone();
        let factor =
            0.5f64.powf(DECAY_INTERVAL.as_secs_f64() / self.half_life.as_secs_f64().max(1.0));
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
        ctx.run_interval(DECAY_INTERVAL, |act, ctx| act.decay(ctx));
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_category_counts_for_each_of_its_parents() {
        assert_eq!(
            category_levels("fashion/outerwear/padding"),
            vec!["fashion", "fashion/outerwear", "fashion/outerwear/padding"]
        );
        assert_eq!(category_levels("books"), vec!["books"]);
    }
}
