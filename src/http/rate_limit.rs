//! Per-member and per-client-IP rate limits on the routes that cost the most (chat,
//! recommendations, search, embeddings, events): token buckets in memory, one per key. Over the limit a request
//! gets 429 `rate_limited` with `Retry-After`, before any work is done. The shop's service
//! token is exempt (it is the shop's own backend). Limits are per instance: behind a load
//! balancer with N instances a client can get up to N times the rate.

use crate::config::RateLimitSettings;
use crate::http::auth::{bearer_token, caller_from_token};
use crate::http::error::error_response;
use crate::http::AppState;
use crate::identity::Caller;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept before idle (refilled) buckets are swept, so memory stays bounded.
const SWEEP_ABOVE_KEYS: usize = 50_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets: each key may spend `burst` requests at once, refilled at `per_second`.
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

/// The limits of one service instance.
pub struct RateLimiter {
    enabled: bool,
    members: TokenBuckets,
    ips: TokenBuckets,
}

impl RateLimiter {
    pub fn new(settings: &RateLimitSettings) -> Self {
        Self {
            enabled: settings.enabled,
            members: TokenBuckets::new(settings.per_member_per_minute, settings.per_member_burst),
            ips: TokenBuckets::new(settings.per_ip_per_minute, settings.per_ip_burst),
        }
    }

    /// Checks a member (when known) and a client IP (when known); `Err` is the wait.
    pub fn check(&self, member: Option<&str>, ip: Option<&str>) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        let now = Instant::now();
        if let Some(ip) = ip {
            self.ips.take(ip, now)?;
        }
        if let Some(member) = member {
            self.members.take(member, now)?;
        }
        Ok(())
    }

    /// For a WebSocket session: one chat message of `member` counts like one request.
    pub fn check_member(&self, member: &str) -> Result<(), Duration> {
        self.check(Some(member), None)
    }
}

/// Whether a path is one of the limited routes.
pub fn is_limited(path: &str) -> bool {
    path == "/ws"
        || path.starts_with("/api/conversations")
        || path.starts_with("/api/recommendations")
        || path.starts_with("/api/search")
        || (path.starts_with("/api/products/") && path.ends_with("/similar"))
        // Model inference open to anyone, and members' own events.
        || matches!(path, "/embed" | "/batch-embed" | "/similarity" | "/api/events")
}

/// The member a request speaks for: its bearer token, or `?token=` on the WebSocket upgrade
/// (browsers cannot set headers there). `Err(())` for the shop's service token (exempt).
fn member_of(req: &ServiceRequest, state: &AppState) -> Result<Option<String>, ()> {
    let token = bearer_token(req.request()).map(str::to_string).or_else(|| {
        (req.path() == "/ws")
            .then(|| {
                web::Query::<HashMap<String, String>>::from_query(req.query_string())
                    .ok()
                    .and_then(|q| q.get("token").cloned())
            })
            .flatten()
    });
    let Some(token) = token else { return Ok(None) };
    match caller_from_token(&token, &state.settings.security, &state.tokens) {
        Ok(Caller::Shop) => Err(()),
        Ok(Caller::Member(member)) => Ok(Some(member.into_string())),
        // The handler answers 401; the request still counts against its IP.
        Err(_) => Ok(None),
    }
}

pub async fn limit_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limiter = req.app_data::<web::Data<RateLimiter>>().cloned();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    if let (Some(limiter), Some(state), true) = (limiter, state, is_limited(req.path())) {
        if let Ok(member) = member_of(&req, &state) {
            let ip = req.peer_addr().map(|a| a.ip().to_string());
            if let Err(wait) = limiter.check(member.as_deref(), ip.as_deref()) {
                let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
                tracing::debug!(path = req.path(), ?member, ?ip, seconds, "rate limited");
                let mut response = error_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many requests; try again in {seconds} s"),
                    vec![],
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(seconds));
                return Ok(req.into_response(response).map_into_right_body());
            }
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let buckets = TokenBuckets::new(60, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(buckets.take("a", start).is_ok());
        }
        let wait = buckets.take("a", start).unwrap_err();
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-6, "{wait:?}");
        // Another key has its own bucket.
        assert!(buckets.take("b", start).is_ok());
        // One second later one more request fits, not two.
        let later = start + Duration::from_secs(1);
        assert!(buckets.take("a", later).is_ok());
        assert!(buckets.take("a", later).is_err());
        // Long idle refills up to the burst, not beyond.
        let much_later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(buckets.take("a", much_later).is_ok());
        }
        assert!(buckets.take("a", much_later).is_err());
    }

    #[test]
    fn the_limited_routes_are_the_expensive_ones() {
        for path in [
            "/ws",
            "/api/conversations",
            "/api/conversations/1/messages",
            "/api/recommendations/m-1",
            "/api/search/messages",
            "/api/products/5b0e/similar",
            "/embed",
            "/batch-embed",
            "/similarity",
            "/api/events",
        ] {
            assert!(is_limited(path), "{path}");
        }
        for path in [
            "/",
            "/healthz",
            "/metrics",
            "/api/products",
            "/api/products/5b0e",
            "/stats",
        ] {
            assert!(!is_limited(path), "{path}");
        }
    }

    #[test]
    fn a_disabled_limiter_never_limits() {
        let limiter = RateLimiter::new(&RateLimitSettings {
            enabled: false,
            per_member_per_minute: 1,
            per_member_burst: 1,
            per_ip_per_minute: 1,
            per_ip_burst: 1,
        });
        for _ in 0..10 {
            assert!(limiter.check(Some("m"), Some("127.0.0.1")).is_ok());
        }
    }
}
