//! The HTTP surface: one module per resource, each with a `configure()` that mounts it.

pub mod auth;
pub mod conversations;
pub mod demo;
pub mod embeddings;
pub mod error;
pub mod events;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod optional_json;
pub mod page;
pub mod products;
pub mod rate_limit;
pub mod recommendations;
pub mod search;
pub mod trending;
pub mod ws;

use crate::actors::dependency_monitor::DependencyMonitor;
use crate::actors::embedding_batcher::EmbeddingBatcher;
use crate::config::Settings;
use crate::embeddings::EmbeddingService;
use crate::identity::MemberTokens;
use crate::metrics::Metrics;
use crate::redis::{RedisKeys, RedisPool};
use actix::Addr;
use actix_web::{middleware, web};
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// Shared by every handler.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub metrics: Metrics,
    pub monitor: Addr<DependencyMonitor>,
    /// The cache.
    pub redis: RedisPool,
    /// The state store: trending and popular (`redis.state_url`).
    pub state_redis: RedisPool,
    pub keys: RedisKeys,
    /// The embedding API's model (`POST /embed`, `/batch-embed`, `/similarity`).
    pub embeddings: EmbeddingService,
    /// The batcher in front of the embedding API's model workers (for `GET /stats`).
    pub embedding_batcher: Addr<EmbeddingBatcher>,
    /// The model products, messages and shoppers' queries are embedded with: the
    /// multilingual one when configured, else the same service as `embeddings`.
    pub content_embeddings: EmbeddingService,
    pub tokens: MemberTokens,
    /// The hybrid recommender (cache + bounded actor pool); `ProductRanker` for the chat.
    pub recommender: crate::actors::recommender::Recommender,
    pub chat: crate::chat::ChatState,
    /// Rate limits and the socket cap, shared by the instances through Redis.
    pub limiter: Arc<crate::rate_limit::RateLimiter>,
    /// The proxies whose forwarding headers name the client.
    pub trusted_proxies: crate::rate_limit::TrustedProxies,
}

/// Mounts every route and the extractor configuration on an `App`.
pub fn configure(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(max_body_bytes)
            .error_handler(error::json_error_handler),
    )
    .app_data(web::QueryConfig::default().error_handler(error::query_error_handler))
    .app_data(web::PathConfig::default().error_handler(error::path_error_handler))
    .app_data(web::PayloadConfig::default().limit(max_body_bytes))
    .configure(health::configure)
    .configure(metrics::configure)
    .configure(products::configure)
    .configure(embeddings::configure)
    .configure(events::configure)
    .configure(trending::configure)
    .configure(demo::configure)
    .configure(search::configure)
    .configure(recommendations::configure)
    .configure(conversations::configure)
    .configure(ws::configure)
    .configure(openapi::configure)
    .configure(page::configure)
    .default_service(web::to(error::not_found));
}

/// CORS for the configured origins (`server.cors_allowed_origins`); none configured: no CORS
/// headers, so browsers allow same-origin calls only.
pub fn cors(allowed_origins: &str) -> actix_cors::Cors {
    let origins: Vec<&str> = allowed_origins
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .collect();
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
        ])
        .expose_headers([actix_web::http::header::RETRY_AFTER])
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Middleware every app gets, outermost last.
pub fn default_headers() -> middleware::DefaultHeaders {
    middleware::DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Cache-Control", "no-store"))
        // JSON is never meant to be framed, leak referrers or run as a document; the chat
        // page sets its own, looser policy (DefaultHeaders does not override it).
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add((
            "Content-Security-Policy",
            "default-src 'none'; frame-ancestors 'none'",
        ))
}
