//! `RecommendationCache`: the owner of the `recommendation` consumer group. A member's
//! behaviour makes their cached recommendations stale, so it deletes `rec:user:{id}`
//! (idempotent by nature) and feeds views, cart adds and orders into the in-memory CF model,
//! so a member's history is current at once (similarities follow at the next rebuild).

use crate::catalog::InteractionKind;
use crate::events::apply::{ApplyError, ApplyEvent};
use crate::recommend::engine::SharedCf;
use crate::redis::{RedisKeys, RedisPool};
use actix::prelude::*;

pub struct RecommendationCache {
    redis: RedisPool,
    keys: RedisKeys,
    cf: Option<SharedCf>,
}

impl RecommendationCache {
    pub fn new(redis: RedisPool, keys: RedisKeys) -> Self {
        Self {
            redis,
            keys,
            cf: None,
        }
    }

    /// Also feeds the recommender's CF model.
    pub fn with_cf(mut self, cf: SharedCf) -> Self {
        self.cf = Some(cf);
        self
    }
}

impl Actor for RecommendationCache {
    type Context = Context<Self>;
}

impl Handler<ApplyEvent> for RecommendationCache {
    type Result = ResponseFuture<Result<(), ApplyError>>;

    fn handle(&mut self, msg: ApplyEvent, _: &mut Self::Context) -> Self::Result {
        let redis = self.redis.clone();
        let key = self.keys.member_recommendations(&msg.event.member_id);
        if let (Some(cf), Some(Ok(payload))) = (&self.cf, msg.event.interaction()) {
            let kind = msg
                .event
                .event_type
                .interaction_kind()
                .unwrap_or(InteractionKind::View);
            cf.write().expect("CF lock not poisoned").observe(
                &msg.event.member_id,
                payload.product_id,
                kind,
                payload.quantity,
                msg.event.occurred_at.timestamp(),
            );
        }
        Box::pin(async move {
            let mut conn = redis
                .get()
                .await
                .map_err(|e| ApplyError::Retry(format!("redis: {e}")))?;
            let _: i64 = redis::cmd("DEL")
                .arg(&key)
                .query_async(&mut *conn)
                .await
                .map_err(|e| ApplyError::Retry(format!("redis: {e}")))?;
            Ok(())
        })
    }
}
