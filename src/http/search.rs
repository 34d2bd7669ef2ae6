//! `GET /api/search/messages` (a member searches their own messages; the shop's service token
//! searches everyone's, optionally one member's) and `GET /api/search/products` (public; BM25 and
//! kNN on the query's embedding, with highlights). The search server away → 503 + Retry-After.

use crate::errors::{ErrorKind, PublicError};
use crate::http::auth::{require_access, AuthError};
use crate::http::error::respond_by_kind;
use crate::http::error::ErrorBody;
use crate::http::AppState;
use crate::identity::Caller;
use crate::ml::TextKind;
use crate::search::query::{
    search_messages, search_products, MessageHit, MessageQuery, ProductHit, ProductQuery,
};
use crate::search::{SearchClient, SearchError};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use utoipa::{IntoParams, ToSchema};

/// Longest query text accepted.
const MAX_QUERY_CHARS: usize = 200;
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 50;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/search/messages", web::get().to(messages))
        .route("/api/search/products", web::get().to(products));
}

/// The search service every handler of this module needs.
#[derive(Clone)]
pub struct SearchState {
    pub client: SearchClient,
    pub metrics: crate::search::metrics::SearchMetrics,
    pub retry_after_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchApiError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("search is temporarily unavailable; try again shortly")]
    Unavailable { retry_after_secs: u64 },
    #[error("the search failed: {0}")]
    Failed(String),
}

impl PublicError for SearchApiError {
    fn kind(&self) -> ErrorKind {
        match self {
            SearchApiError::Invalid(_) => ErrorKind::BadRequest,
            SearchApiError::Auth(e) => e.kind(),
            SearchApiError::Unavailable { .. } => ErrorKind::Unavailable,
            SearchApiError::Failed(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            SearchApiError::Invalid(_) => "invalid_query",
            SearchApiError::Auth(e) => e.code(),
            SearchApiError::Unavailable { .. } => "search_unavailable",
            SearchApiError::Failed(_) => "search_failed",
        }
    }

    fn retry_after_secs(&self) -> Option<u32> {
        match self {
            SearchApiError::Unavailable { retry_after_secs } => {
                Some(u32::try_from(*retry_after_secs).unwrap_or(u32::MAX))
            }
            _ => None,
        }
    }
}

respond_by_kind!(SearchApiError);

impl SearchApiError {
    fn from_search(error: SearchError, state: &SearchState) -> Self {
        match error {
            SearchError::Unavailable(reason) => {
                tracing::warn!(%reason, "search server unavailable");
                SearchApiError::Unavailable {
                    retry_after_secs: state.retry_after_secs,
                }
            }
            SearchError::Rejected { status, reason } => {
                // The server's reason can quote the query, i.e. a member's own words: kept out
                // of the default log level.
                tracing::error!(status, "search server refused a query");
                tracing::debug!(status, %reason, "search server's reason");
                SearchApiError::Failed(format!("status {status}"))
            }
        }
    }
}

fn query_text(q: Option<String>) -> Result<String, SearchApiError> {
    let text = q.unwrap_or_default().trim().to_string();
    if text.is_empty() {
        return Err(SearchApiError::Invalid(
            "`q` is required and must not be blank".into(),
        ));
    }
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(SearchApiError::Invalid(format!(
            "`q` is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    Ok(text)
}

fn limit(limit: Option<usize>) -> Result<usize, SearchApiError> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        n => Err(SearchApiError::Invalid(format!(
            "`limit` must be 1 to {MAX_LIMIT}, not {n}"
        ))),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MessageParams {
    /// The words to find (required, at most 200 characters).
    pub q: Option<String>,
    /// Only this conversation's messages.
    pub conversation: Option<uuid::Uuid>,
    /// Only for the shop's token: one member's messages.
    pub member: Option<String>,
    /// Messages at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Messages at or before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// 1 to 50 (default 20).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchPage<T> {
    pub total: u64,
    pub items: Vec<T>,
    pub took_ms: u64,
}

/// The page for a search's result, its latency recorded under `index`.
fn answer<T: Serialize>(
    state: &SearchState,
    index: &str,
    started: Instant,
    found: Result<(u64, Vec<T>), SearchError>,
) -> Result<HttpResponse, SearchApiError> {
    let (total, items) = found.map_err(|e| SearchApiError::from_search(e, state))?;
    let took = started.elapsed();
    state
        .metrics
        .latency
        .with_label_values(&[index])
        .observe(took.as_secs_f64());
    Ok(HttpResponse::Ok().json(SearchPage {
        total,
        items,
        took_ms: took.as_millis() as u64,
    }))
}

/// Full-text search of chat messages: a member's own, or (service token) anyone's.
#[utoipa::path(
    get,
    path = "/api/search/messages",
    tag = "search",
    params(MessageParams),
    security(("member_token" = []), ("service_token" = [])),
    responses(
        (status = 200, description = "Best matches first, with highlights", body = SearchPage<MessageHit>),
        (status = 400, description = "`invalid_query`: no `q`, a bad limit or `from` after `to`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a member named another `member`", body = ErrorBody),
        (status = 503, description = "`search_unavailable`; see `Retry-After`", body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
async fn messages(
    caller: Caller,
    state: web::Data<SearchState>,
    params: web::Query<MessageParams>,
) -> Result<HttpResponse, SearchApiError> {
    let params = params.into_inner();
    let text = query_text(params.q)?;
    let limit = limit(params.limit)?;
    if let (Some(from), Some(to)) = (params.from, params.to) {
        if from > to {
            return Err(SearchApiError::Invalid("`from` is after `to`".into()));
        }
    }
    let member_id = match (&caller, params.member) {
        (Caller::Member(own), Some(other)) => {
            require_access(&caller, &other)?;
            Some(own.to_string())
        }
        (Caller::Member(own), None) => Some(own.to_string()),
        (Caller::Shop, member) => member,
    };
    let started = Instant::now();
    let found = search_messages(
        &state.client,
        &MessageQuery {
            text,
            member_id,
            conversation_id: params.conversation,
            from: params.from,
            to: params.to,
            limit,
        },
    )
    .await;
    answer(&state, "messages", started, found)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProductParams {
    /// The words to find (required, at most 200 characters).
    pub q: Option<String>,
    /// A category path; matches it and everything below it.
    pub category: Option<String>,
    /// 1 to 50 (default 20).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<usize>,
}

/// Hybrid product search: BM25 on the text and kNN on its embedding, with highlights.
#[utoipa::path(
    get,
    path = "/api/search/products",
    tag = "search",
    params(ProductParams),
    responses(
        (status = 200, description = "Best matches first", body = SearchPage<ProductHit>),
        (status = 400, description = "`invalid_query`: no `q` or a bad limit", body = ErrorBody),
        (status = 503, description = "`search_unavailable`; see `Retry-After`", body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
async fn products(
    app: web::Data<AppState>,
    state: web::Data<SearchState>,
    params: web::Query<ProductParams>,
) -> Result<HttpResponse, SearchApiError> {
    let params = params.into_inner();
    let text = query_text(params.q)?;
    let limit = limit(params.limit)?;
    let started = Instant::now();
    // Without an embedding (the model overloaded) the search is lexical only, not an error.
    let embedding = match app
        .content_embeddings
        .embed_as(TextKind::Query, vec![text.clone()])
        .await
    {
        Ok(embedded) => embedded.vectors.into_iter().next(),
        Err(error) => {
            tracing::warn!(%error, "product search without the semantic half");
            None
        }
    };
    let found = search_products(
        &state.client,
        &ProductQuery {
            text,
            embedding,
            category: params.category.filter(|c| !c.trim().is_empty()),
            limit,
        },
    )
    .await;
    answer(&state, "products", started, found)
}
