//! `RecommendationCache`: the owner of the `recommendation` consumer group. A member's
//! behaviour makes their cached recommendations stale, so it deletes `rec:user:{id}`
//! (idempotent by nature; precomputing lands with the recommender).

use crate::actors::dependency_monitor::RedisPool;
use crate::events::apply::{ApplyError, ApplyEvent};
use actix::prelude::*;

pub struct RecommendationCache {
    redis: RedisPool,
    key_prefix: String,
}

impl RecommendationCache {
    pub fn new(redis: RedisPool, key_prefix: &str) -> Self {
        Self {
            redis,
            key_prefix: key_prefix.to_string(),
        }
    }
}

impl Actor for RecommendationCache {
    type Context = Context<Self>;
}

impl Handler<ApplyEvent> for RecommendationCache {
    type Result = ResponseFuture<Result<(), ApplyError>>;

    fn handle(&mut self, msg: ApplyEvent, _: &mut Self::Context) -> Self::Result {
        let redis = self.redis.clone();
        let key = format!("{}rec:user:{}", self.key_prefix, msg.event.member_id);
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
