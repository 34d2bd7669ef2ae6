//! Rate limits shared by every instance (docs/security.md): token buckets per member and per
//! client IP, kept in Redis so N instances behind a load balancer enforce one limit, with an
//! in-process bucket as the fallback when Redis does not answer in time (each instance then
//! limits on its own, never not at all). Also the cap on a member's open chat sockets, and the
//! client address behind trusted proxies.

use crate::config::RateLimitSettings;
use crate::redis::{RedisKeys, RedisPool};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept before idle (refilled) local buckets are swept, so memory stays bounded.
const SWEEP_ABOVE_KEYS: usize = 50_000;

/// KEYS: the bucket. ARGV: tokens per ms, burst, now (ms). Answers the wait in ms (0: taken).
/// The bucket expires once it would be full again, so idle members cost nothing.
const TAKE_SCRIPT: &str = r#"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return wait
"#;

/// KEYS: the member's sockets (a ZSet, score = last sign of life in ms). ARGV: the socket id,
/// now (ms), the age after which an entry is a dead instance's, the cap. Answers 1 when the
/// socket is registered, 0 when the member is at the cap.
const OPEN_SOCKET_SCRIPT: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"#;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// In-process token buckets: each key may spend `burst` at once, refilled at `per_second`.
pub struct TokenBuckets {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl TokenBuckets {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long until one is available.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("rate-limit lock");
        if buckets.len() > SWEEP_ABOVE_KEYS {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }
}

/// One kind of limit (members or IPs): its rate, the shared bucket's key kind, the fallback.
struct Limit {
    per_minute: u32,
    burst: u32,
    kind: &'static str,
    local: TokenBuckets,
}

/// The shared buckets: Redis, and how long a check may wait for it.
#[derive(Clone)]
pub struct SharedStore {
    pub redis: RedisPool,
    pub keys: RedisKeys,
    pub timeout: Duration,
}

pub struct RateLimiter {
    enabled: bool,
    members: Limit,
    ips: Limit,
    shared: Option<SharedStore>,
    max_sockets: usize,
    socket_liveness: Duration,
    /// Open sockets per member on this instance: the cap when Redis is away.
    local_sockets: Mutex<HashMap<String, usize>>,
}

/// Why a socket may not open.
#[derive(Debug, PartialEq, Eq)]
pub struct TooManySockets {
    pub max: usize,
}

impl RateLimiter {
    /// `shared`: the Redis the instances share (`None`: in-process buckets only, e.g. tests of
    /// the fallback). `socket_liveness`: how long a socket counts without a sign of life (its
    /// instance may have died).
    pub fn new(
        settings: &RateLimitSettings,
        shared: Option<SharedStore>,
        socket_liveness: Duration,
    ) -> Self {
        Self {
            enabled: settings.enabled,
            members: Limit {
                per_minute: settings.per_member_per_minute,
                burst: settings.per_member_burst,
                kind: "member",
                local: TokenBuckets::new(settings.per_member_per_minute, settings.per_member_burst),
            },
            ips: Limit {
                per_minute: settings.per_ip_per_minute,
                burst: settings.per_ip_burst,
                kind: "ip",
                local: TokenBuckets::new(settings.per_ip_per_minute, settings.per_ip_burst),
            },
            shared,
            max_sockets: settings.max_sockets_per_member.max(1),
            socket_liveness,
            local_sockets: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    async fn take(&self, limit: &Limit, key: &str) -> Result<(), Duration> {
        if let Some(shared) = &self.shared {
            let take = async {
                let mut conn = shared.redis.get().await.map_err(|e| e.to_string())?;
                redis::cmd("EVAL")
                    .arg(TAKE_SCRIPT)
                    .arg(1)
                    .arg(shared.keys.rate_limit_bucket(limit.kind, key))
                    .arg(f64::from(limit.per_minute.max(1)) / 60_000.0)
                    .arg(limit.burst.max(1))
                    .arg(chrono::Utc::now().timestamp_millis())
                    .query_async::<i64>(&mut *conn)
                    .await
                    .map_err(|e| e.to_string())
            };
            match tokio::time::timeout(shared.timeout, take).await {
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(wait_ms)) => return Err(Duration::from_millis(wait_ms.max(1) as u64)),
                Ok(Err(error)) => tracing::debug!(%error, "rate limit from the local bucket"),
                Err(_) => tracing::debug!("Redis too slow; rate limit from the local bucket"),
            }
        }
        limit.local.take(key, Instant::now())
    }

    /// Checks a client IP (when known) and a member (when known); `Err` is the wait.
    pub async fn check(&self, member: Option<&str>, ip: Option<&str>) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        if let Some(ip) = ip {
            self.take(&self.ips, ip).await?;
        }
        if let Some(member) = member {
            self.take(&self.members, member).await?;
        }
        Ok(())
    }

    /// A chat message of `member` over an open socket counts like one request.
    pub async fn check_member(&self, member: &str) -> Result<(), Duration> {
        self.check(Some(member), None).await
    }

    /// Registers an opening socket, or refuses it when the member has `max_sockets_per_member`
    /// open on all instances together (on this one alone while Redis is away).
    pub async fn open_socket(&self, member: &str, socket: &str) -> Result<(), TooManySockets> {
        if !self.enabled {
            return Ok(());
        }
        let refused = TooManySockets {
            max: self.max_sockets,
        };
        if let Some(shared) = &self.shared {
            match tokio::time::timeout(shared.timeout, self.touch(shared, member, socket, true))
                .await
            {
                Ok(Ok(true)) => {
                    self.count_local(member, 1);
                    return Ok(());
                }
                Ok(Ok(false)) => return Err(refused),
                Ok(Err(error)) => tracing::debug!(%error, "socket cap from the local count"),
                Err(_) => tracing::debug!("Redis too slow; socket cap from the local count"),
            }
        }
        let mut local = self.local_sockets.lock().expect("socket count lock");
        let open = local.entry(member.to_string()).or_default();
        if *open >= self.max_sockets {
            return Err(refused);
        }
        *open += 1;
        Ok(())
    }

    /// A sign of life of an open socket (its heartbeat), so it keeps counting.
    pub async fn socket_alive(&self, member: &str, socket: &str) {
        if let (true, Some(shared)) = (self.enabled, &self.shared) {
            let _ = tokio::time::timeout(shared.timeout, self.touch(shared, member, socket, false))
                .await;
        }
    }

    /// The socket closed.
    pub async fn close_socket(&self, member: &str, socket: &str) {
        if !self.enabled {
            return;
        }
        self.count_local(member, -1);
        if let Some(shared) = &self.shared {
            let remove = async {
                let mut conn = shared.redis.get().await.map_err(|e| e.to_string())?;
                redis::cmd("ZREM")
                    .arg(shared.keys.member_sockets(member))
                    .arg(socket)
                    .query_async::<i64>(&mut *conn)
                    .await
                    .map_err(|e| e.to_string())
            };
            let _ = tokio::time::timeout(shared.timeout, remove).await;
        }
    }

    fn count_local(&self, member: &str, change: isize) {
        let mut local = self.local_sockets.lock().expect("socket count lock");
        let open = local.entry(member.to_string()).or_default();
        *open = open.saturating_add_signed(change);
        if *open == 0 {
            local.remove(member);
        }
    }

    /// Registers (`opening`: under the cap only) or refreshes a socket in the shared set.
    async fn touch(
        &self,
        shared: &SharedStore,
        member: &str,
        socket: &str,
        opening: bool,
    ) -> Result<bool, String> {
        let mut conn = shared.redis.get().await.map_err(|e| e.to_string())?;
        let cap = if opening {
            self.max_sockets
        } else {
            usize::MAX
        };
        let registered: i64 = redis::cmd("EVAL")
            .arg(OPEN_SOCKET_SCRIPT)
            .arg(1)
            .arg(shared.keys.member_sockets(member))
            .arg(socket)
            .arg(chrono::Utc::now().timestamp_millis())
            .arg(self.socket_liveness.as_millis() as u64)
            .arg(cap.min(i64::MAX as usize))
            .query_async(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(registered == 1)
    }
}

/// Trusted proxies: addresses and CIDR blocks (`10.0.0.0/8`, `::1`) whose forwarding headers
/// are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// A comma-separated list; `Err` names the entry that is neither an address nor a block.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut blocks = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (address, bits) = match entry.split_once('/') {
                Some((address, bits)) => (address, Some(bits)),
                None => (entry, None),
            };
            let address: IpAddr = address
                .parse()
                .map_err(|_| format!("not an IP address or CIDR block: {entry:?}"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("bad prefix length in {entry:?}"))?,
                None => max,
            };
            blocks.push((address, bits));
        }
        Ok(Self(blocks))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(block, bits)| match (block, ip) {
            (IpAddr::V4(block), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
                u32::from(*block) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(block), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
                u128::from(*block) & mask == u128::from(ip) & mask
            }
            _ => false,
        })
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the
    /// right-most address of `X-Forwarded-For` (or `Forwarded: for=`) that is not itself a
    /// trusted proxy — the left part of those headers is whatever the client wrote.
    pub fn client_ip(
        &self,
        peer: IpAddr,
        forwarded_for: Option<&str>,
        forwarded: Option<&str>,
    ) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = match (forwarded_for, forwarded) {
            (Some(list), _) => list.split(',').filter_map(parse_hop).collect(),
            (None, Some(header)) => header
                .split(',')
                .flat_map(|element| element.split(';'))
                .filter_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_hop(value))
                        .flatten()
                })
                .collect(),
            (None, None) => Vec::new(),
        };
        hops.into_iter()
            .rev()
            .find(|hop| !self.contains(*hop))
            .unwrap_or(peer)
    }
}

/// One hop of a forwarding header: `203.0.113.7`, `"[2001:db8::1]:4711"`, `198.51.100.1:80`.
fn parse_hop(raw: &str) -> Option<IpAddr> {
    let hop = raw.trim().trim_matches('"');
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    hop.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(enabled: bool) -> RateLimitSettings {
        RateLimitSettings {
            enabled,
            per_member_per_minute: 1,
            per_member_burst: 1,
            per_ip_per_minute: 1,
            per_ip_burst: 1,
            trusted_proxies: String::new(),
            max_sockets_per_member: 2,
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let buckets = TokenBuckets::new(60, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(buckets.take("a", start).is_ok());
        }
        let wait = buckets.take("a", start).unwrap_err();
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-6, "{wait:?}");
        assert!(buckets.take("b", start).is_ok());
        let later = start + Duration::from_secs(1);
        assert!(buckets.take("a", later).is_ok());
        assert!(buckets.take("a", later).is_err());
        let much_later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(buckets.take("a", much_later).is_ok());
        }
        assert!(buckets.take("a", much_later).is_err());
    }

    #[tokio::test]
    async fn a_disabled_limiter_never_limits() {
        let limiter = RateLimiter::new(&settings(false), None, Duration::from_secs(60));
        for _ in 0..10 {
            assert!(limiter.check(Some("m"), Some("127.0.0.1")).await.is_ok());
            assert!(limiter.open_socket("m", "s").await.is_ok());
        }
    }

    #[tokio::test]
    async fn without_redis_the_local_buckets_and_socket_count_limit() {
        let limiter = RateLimiter::new(&settings(true), None, Duration::from_secs(60));
        assert!(limiter.check_member("m").await.is_ok());
        assert!(limiter.check_member("m").await.is_err());
        assert!(limiter.open_socket("m", "a").await.is_ok());
        assert!(limiter.open_socket("m", "b").await.is_ok());
        assert_eq!(
            limiter.open_socket("m", "c").await,
            Err(TooManySockets { max: 2 })
        );
        limiter.close_socket("m", "a").await;
        assert!(limiter.open_socket("m", "c").await.is_ok());
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop_and_only_behind_a_trusted_proxy() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.5, ::1").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Straight from the internet: headers are the client's own words, ignored.
        assert_eq!(
            proxies.client_ip(ip("203.0.113.9"), Some("1.2.3.4"), None),
            ip("203.0.113.9")
        );
        // Behind the proxy: the hop the proxy added, not what the client prepended.
        assert_eq!(
            proxies.client_ip(ip("10.1.2.3"), Some("6.6.6.6, 203.0.113.9"), None),
            ip("203.0.113.9")
        );
        // Two trusted hops.
        assert_eq!(
            proxies.client_ip(ip("10.1.2.3"), Some("203.0.113.9, 192.168.1.5"), None),
            ip("203.0.113.9")
        );
        assert_eq!(
            proxies.client_ip(
                ip("::1"),
                None,
                Some(r#"for=198.51.100.7;proto=https, for="[2001:db8::1]:4711""#)
            ),
            ip("2001:db8::1")
        );
        // A trusted proxy that sent no header: itself.
        assert_eq!(
            proxies.client_ip(ip("10.1.2.3"), None, None),
            ip("10.1.2.3")
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
        assert_eq!(
            TrustedProxies::parse("").unwrap(),
            TrustedProxies::default()
        );
    }
}
