//! A member's cached recommendation lists in Redis, owned here (keys in `RedisKeys`).
//!
//! Each list is its own key with its own lifetime, named by the member's current
//! *generation* and a digest of the request variant. An invalidation (the member did
//! something) replaces the generation with a fresh random token, so:
//! - a list computed before the invalidation and stored after it is refused: the store is a
//!   compare-and-set on the generation the computation started from;
//! - a generation lost to eviction or a flush is replaced by a fresh token, never by an old
//!   one, so no list stored before can be found again.
//!
//! An index ZSet per member bounds their cached variants (the oldest go first).

use crate::recommend::RecommendedProduct;
use crate::redis::{RedisKeys, RedisPool};

/// How long a generation token lives without an invalidation; only a bound on memory (a
/// lost token costs one recomputation, never a stale list).
const GENERATION_TTL_SECS: u64 = 86_400;

/// KEYS: generation. ARGV: a fresh token, its TTL, the member's list-key prefix, the variant
/// digest. Answers {generation, cached list or nil}.
const LOOKUP_SCRIPT: &str = r#"
local g = redis.call('GET', KEYS[1])
if not g then
  g = ARGV[1]
  redis.call('SET', KEYS[1], g, 'EX', ARGV[2])
end
return {g, redis.call('GET', ARGV[3] .. g .. ':' .. ARGV[4])}
"#;

/// KEYS: generation, index. ARGV: the generation the list was computed under, the list key,
/// the list, its TTL (s), the most lists kept, now (ms). Answers 1 when stored, 0 when the
/// generation moved on (an invalidation came in between).
const STORE_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', ARGV[2], ARGV[3], 'EX', ARGV[4])
local now = tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]) * 1000)
-- Strictly newer than every list kept, so two stores in one millisecond still trim the older.
local newest = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local score = now
if newest[2] and tonumber(newest[2]) >= now then
  score = tonumber(newest[2]) + 1
end
redis.call('ZADD', KEYS[2], score, ARGV[2])
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, extra - 1)
  redis.call('DEL', unpack(old))
  redis.call('ZREM', KEYS[2], unpack(old))
end
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"#;

/// KEYS: generation, index. ARGV: a fresh token, its TTL. Drops the member's cached lists.
const INVALIDATE_SCRIPT: &str = r#"
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local lists = redis.call('ZRANGE', KEYS[2], 0, -1)
if #lists > 0 then
  redis.call('DEL', unpack(lists))
end
redis.call('DEL', KEYS[2])
return #lists
"#;

/// What a lookup found: the generation to store a computed list under, and the list if one
/// was cached.
#[derive(Debug)]
pub struct Lookup {
    pub generation: String,
    pub hit: Option<Vec<RecommendedProduct>>,
}

#[derive(Clone)]
pub struct MemberListCache {
    redis: RedisPool,
    keys: RedisKeys,
    ttl_secs: u64,
    max_lists: usize,
}

fn fresh_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl MemberListCache {
    /// Lists live `ttl_secs`; a member keeps at most `max_lists` of them.
    pub fn new(redis: RedisPool, keys: RedisKeys, ttl_secs: u64, max_lists: usize) -> Self {
        Self {
            redis,
            keys,
            ttl_secs: ttl_secs.max(1),
            max_lists: max_lists.max(1),
        }
    }

    pub async fn lookup(&self, member: &str, variant: &str) -> Result<Lookup, String> {
        let mut conn = self.redis.get().await.map_err(|e| e.to_string())?;
        let (generation, cached): (String, Option<String>) = redis::cmd("EVAL")
            .arg(LOOKUP_SCRIPT)
            .arg(1)
            .arg(self.keys.member_list_generation(member))
            .arg(fresh_token())
            .arg(GENERATION_TTL_SECS)
            .arg(self.keys.member_list_prefix(member))
            .arg(RedisKeys::member_list_variant(variant))
            .query_async(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Lookup {
            generation,
            hit: cached.and_then(|json| serde_json::from_str(&json).ok()),
        })
    }

    /// Stores `items` unless the member's lists were invalidated since `generation` was
    /// looked up; answers whether it was stored.
    pub async fn store(
        &self,
        member: &str,
        generation: &str,
        variant: &str,
        items: &[RecommendedProduct],
    ) -> Result<bool, String> {
        let json = serde_json::to_string(items).map_err(|e| e.to_string())?;
        let mut conn = self.redis.get().await.map_err(|e| e.to_string())?;
        let stored: i64 = redis::cmd("EVAL")
            .arg(STORE_SCRIPT)
            .arg(2)
            .arg(self.keys.member_list_generation(member))
            .arg(self.keys.member_list_index(member))
            .arg(generation)
            .arg(self.keys.member_list(member, generation, variant))
            .arg(json)
            .arg(self.ttl_secs)
            .arg(self.max_lists)
            .arg(chrono::Utc::now().timestamp_millis())
            .query_async(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(stored == 1)
    }

    /// Makes every list of `member` cached so far unreachable (and deletes them).
    pub async fn invalidate(&self, member: &str) -> Result<(), String> {
        invalidate_member_lists(&self.redis, &self.keys, member).await
    }
}

/// [`MemberListCache::invalidate`] for those that hold only the pool and the keys (the event
/// consumers, `POST /api/events`).
pub async fn invalidate_member_lists(
    redis: &RedisPool,
    keys: &RedisKeys,
    member: &str,
) -> Result<(), String> {
    let mut conn = redis.get().await.map_err(|e| e.to_string())?;
    let _dropped: i64 = redis::cmd("EVAL")
        .arg(INVALIDATE_SCRIPT)
        .arg(2)
        .arg(keys.member_list_generation(member))
        .arg(keys.member_list_index(member))
        .arg(fresh_token())
        .arg(GENERATION_TTL_SECS)
        .query_async(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}
