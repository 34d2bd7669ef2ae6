//! Redis: the connection pools and the one owner of every key name the service uses.
//!
//! Every key starts with the deployment's `redis.key_prefix` (tests and the evaluation use
//! their own), so two deployments, or two tests, can share one Redis.
//!
//! Two stores: the cache (`redis.url`, may evict) and the state store (`redis.state_url`,
//! must not evict) for what is rebuilt only on demand: trending, popular and the analytics
//! group's markers and locks (docs/events.md, "Trending and popular are derived state").

use crate::config::RedisSettings;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;

pub type RedisPool = bb8::Pool<bb8_redis::RedisConnectionManager>;

/// A pool for `settings.url`. Unchecked: the service starts (degraded) while Redis is down and
/// recovers by itself; only a malformed URL fails.
pub fn connect(settings: &RedisSettings) -> Result<RedisPool, ::redis::RedisError> {
    let manager = bb8_redis::RedisConnectionManager::new(settings.url.expose_secret())?;
    Ok(bb8::Pool::builder()
        .max_size(settings.pool_size)
        .connection_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .build_unchecked(manager))
}

/// A pool for the state store (`redis.state_url`, or `redis.url` when that is empty), built
/// like [`connect`].
pub fn connect_state(settings: &RedisSettings) -> Result<RedisPool, ::redis::RedisError> {
    connect(&settings.state())
}

/// The key names, with the deployment's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisKeys {
    prefix: String,
}

impl RedisKeys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The token naming a member's current generation of cached lists; an invalidation
    /// replaces it, so a list computed before the invalidation can no longer be stored or read
    /// (`recommend::list_cache`).
    pub fn member_list_generation(&self, member_id: &str) -> String {
        format!("{}rec:user:{member_id}:generation", self.prefix)
    }

    /// The ZSet of a member's cached list keys (score: when stored), which bounds them.
    pub fn member_list_index(&self, member_id: &str) -> String {
        format!("{}rec:user:{member_id}:lists", self.prefix)
    }

    /// One cached list of a member: [`Self::member_list_prefix`], the generation, `:` and
    /// [`Self::member_list_variant`] (`recommend::list_cache`'s lookup script builds the same
    /// shape from those parts, as it learns the generation only inside Redis).
    pub fn member_list(&self, member_id: &str, generation: &str, variant: &str) -> String {
        format!(
            "{}{generation}:{}",
            self.member_list_prefix(member_id),
            Self::member_list_variant(variant)
        )
    }

    /// A request variant's fixed-length name in [`Self::member_list`].
    pub fn member_list_variant(variant: &str) -> String {
        hex::encode(&Sha256::digest(variant.as_bytes())[..16])
    }

    /// What every [`Self::member_list`] key of a member starts with.
    pub fn member_list_prefix(&self, member_id: &str) -> String {
        format!("{}rec:user:{member_id}:", self.prefix)
    }

    /// A shared rate-limit token bucket (`kind`: `member` or `ip`).
    pub fn rate_limit_bucket(&self, kind: &str, key: &str) -> String {
        format!("{}ratelimit:{kind}:{key}", self.prefix)
    }

    /// A member's open chat sockets on every instance (a ZSet, score = last sign of life).
    pub fn member_sockets(&self, member_id: &str) -> String {
        format!("{}ws:sockets:{member_id}", self.prefix)
    }

    /// The cached "similar products" list of one product at one length.
    pub fn similar_products(&self, product_id: Uuid, limit: usize) -> String {
        format!("{}rec:similar:{product_id}:{limit}", self.prefix)
    }

    /// The mirror of a member's preference profile (PostgreSQL owns it).
    pub fn member_preference(&self, member_id: &str) -> String {
        format!("{}user:preference:{member_id}", self.prefix)
    }

    /// Trending products: a ZSet whose scores decay with a half-life.
    pub fn trending(&self) -> String {
        format!("{}rec:trending", self.prefix)
    }

    /// The lock that lets one instance per interval decay [`Self::trending`].
    pub fn trending_decay_lock(&self) -> String {
        format!("{}rec:trending:decay-lock", self.prefix)
    }

    /// Products counted per category (and per parent category).
    pub fn popular(&self, category: &str) -> String {
        format!("{}rec:popular:category:{category}", self.prefix)
    }

    /// A `SCAN MATCH` pattern for every [`Self::popular`] key (the prefix's glob characters
    /// escaped).
    pub fn popular_pattern(&self) -> String {
        format!("{}*", glob_escape(&self.popular("")))
    }

    /// Set when trending and popular were last rebuilt from `interactions` (the time, RFC
    /// 3339), in the state store, without a TTL: its absence means the state was lost (a
    /// flushed or evicted store), not that the shop is empty.
    pub fn analytics_built(&self) -> String {
        format!("{}rec:analytics:built", self.prefix)
    }

    /// The lock that lets one instance at a time rebuild trending and popular.
    pub fn analytics_rebuild_lock(&self) -> String {
        format!("{}rec:analytics:rebuild-lock", self.prefix)
    }

    /// Where rebuild `run` writes trending before it is swapped in.
    pub fn analytics_rebuild_trending(&self, run: &str) -> String {
        format!("{}rec:analytics:rebuild:{run}:trending", self.prefix)
    }

    /// Where rebuild `run` writes one category's popular set before it is swapped in.
    pub fn analytics_rebuild_popular(&self, run: &str, category: &str) -> String {
        format!(
            "{}rec:analytics:rebuild:{run}:popular:{category}",
            self.prefix
        )
    }

    /// The marker that the analytics group applied an event (exactly once).
    pub fn analytics_applied(&self, event_id: Uuid) -> String {
        format!("{}events:applied:analytics:{event_id}", self.prefix)
    }

    /// An embedding vector: the model id is part of the hash, so a new model never serves
    /// old vectors.
    pub fn embedding(&self, model_id: &str, text: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(model_id.as_bytes());
        hasher.update([0u8]);
        hasher.update(text.as_bytes());
        format!("{}embed:{}", self.prefix, hex::encode(hasher.finalize()))
    }

    /// The embedding cache's shared hit and miss counters (`hits`, `misses`).
    pub fn embedding_cache_counter(&self, name: &str) -> String {
        format!("{}stats:{name}", self.prefix)
    }

    /// The LLM circuit breaker's last state change, for operators.
    pub fn llm_breaker_state_change(&self) -> String {
        format!("{}cb:state_change:last", self.prefix)
    }
}

/// `text` with the Redis glob characters (`*`, `?`, `[`, `]`, `\`) escaped, for `SCAN MATCH`.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_carries_the_prefix() {
        let keys = RedisKeys::new("shop1:");
        assert_eq!(
            keys.member_list_generation("m-1"),
            "shop1:rec:user:m-1:generation"
        );
        let list = keys.member_list("m-1", "g1", "q=tent");
        assert!(list.starts_with("shop1:rec:user:m-1:g1:"));
        assert_ne!(list, keys.member_list("m-1", "g1", "q=tents"));
        assert_ne!(list, keys.member_list("m-1", "g2", "q=tent"));
        assert_eq!(keys.trending(), "shop1:rec:trending");
        assert_eq!(keys.popular("a/b"), "shop1:rec:popular:category:a/b");
        assert_eq!(keys.member_preference("m-1"), "shop1:user:preference:m-1");
        assert!(keys.embedding("model", "text").starts_with("shop1:embed:"));
        assert_ne!(
            keys.embedding("model-a", "text"),
            keys.embedding("model-b", "text")
        );
        assert_eq!(
            keys.llm_breaker_state_change(),
            "shop1:cb:state_change:last"
        );
        assert_eq!(keys.analytics_built(), "shop1:rec:analytics:built");
        assert!(keys
            .analytics_rebuild_popular("r1", "a/b")
            .starts_with("shop1:rec:analytics:rebuild:r1:"));
    }

    #[test]
    fn the_popular_pattern_matches_only_popular_keys_of_the_prefix() {
        assert_eq!(
            RedisKeys::new("t:1:").popular_pattern(),
            "t:1:rec:popular:category:*"
        );
        assert_eq!(
            RedisKeys::new("a*[b]?:").popular_pattern(),
            "a\\*\\[b\\]\\?:rec:popular:category:*"
        );
    }
}
