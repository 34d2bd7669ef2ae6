//! `RecommendationCache`: the owner of the `recommendation` consumer group. A member's
//! behaviour makes their cached lists stale, so it invalidates them (a fresh generation:
//! idempotent by nature, and a list being computed meanwhile cannot be stored). Events that
//! reach Kafka without `POST /api/events` (which invalidates at once) are covered here too.
//! The member's history itself needs nothing: the recommender reads it from `interactions`.

use crate::events::apply::{ApplyError, ApplyEvent};
use crate::recommend::list_cache::invalidate_member_lists;
use crate::redis::{RedisKeys, RedisPool};
use actix::prelude::*;

pub struct RecommendationCache {
    redis: RedisPool,
    keys: RedisKeys,
}

impl RecommendationCache {
    pub fn new(redis: RedisPool, keys: RedisKeys) -> Self {
        Self { redis, keys }
    }
}

impl Actor for RecommendationCache {
    type Context = Context<Self>;
}

crate::actors::supervision::supervised!(RecommendationCache, "recommendation_cache");

impl Handler<ApplyEvent> for RecommendationCache {
    type Result = ResponseFuture<Result<(), ApplyError>>;

    fn handle(&mut self, msg: ApplyEvent, _: &mut Self::Context) -> Self::Result {
        let redis = self.redis.clone();
        let keys = self.keys.clone();
        Box::pin(async move {
            invalidate_member_lists(&redis, &keys, &msg.event.member_id)
                .await
                .map_err(|e| ApplyError::Retry(format!("redis: {e}")))
        })
    }
}
