//! The HTTP side of the rate limits (`crate::rate_limit`): the routes that cost the most
//! (chat, recommendations, search, embeddings, events) are limited per member and per client
//! IP before any work is done; over the limit a request gets 429 `rate_limited` with
//! `Retry-After`. The shop's service token is exempt (it is the shop's own backend). The
//! client IP is the peer's, or behind `rate_limit.trusted_proxies` the forwarded one.

use crate::http::auth::{bearer_token, caller_from_token};
use crate::http::error::error_response;
use crate::http::AppState;
use crate::identity::Caller;
use crate::rate_limit::{RateLimiter, TrustedProxies};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web;
use std::collections::HashMap;
use std::time::Duration;

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

/// The client's address: the peer's, or behind a trusted proxy the forwarded one.
fn client_ip(req: &ServiceRequest, state: &AppState) -> Option<String> {
    let peer = req.peer_addr()?.ip();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let proxies: &TrustedProxies = &state.trusted_proxies;
    Some(
        proxies
            .client_ip(peer, header("x-forwarded-for"), header("forwarded"))
            .to_string(),
    )
}

/// 429 `rate_limited` with `Retry-After` (whole seconds, at least 1).
pub fn rate_limited(wait: Duration) -> actix_web::HttpResponse {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; try again in {seconds} s"),
        vec![],
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

pub async fn limit_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    if let (Some(state), true) = (state, is_limited(req.path())) {
        let limiter: &RateLimiter = &state.limiter;
        if let Ok(member) = member_of(&req, &state) {
            let ip = client_ip(&req, &state);
            if let Err(wait) = limiter.check(member.as_deref(), ip.as_deref()).await {
                tracing::debug!(path = req.path(), ?member, ?ip, ?wait, "rate limited");
                return Ok(req.into_response(rate_limited(wait)).map_into_right_body());
            }
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
