//! `GET /api/recommendations/{memberId}?q=&limit=&category=&max_price=` (a member reads only
//! their own list, the shop's service token any) and `GET /api/products/{id}/similar?limit=`
//! (public), served by the hybrid recommender.

use crate::analysis::price::PriceParser;
use crate::analysis::ReplyLanguage;
use crate::errors::{ErrorKind, PublicError};
use crate::http::auth::{require_access, AuthError};
use crate::http::error::respond_by_kind;
use crate::http::error::ErrorBody;
use crate::http::AppState;
use crate::identity::{Caller, MemberId};
use crate::intent::{PriceRange, ShoppingIntent};
use crate::recommend::{ProductRanker, RecommendError, RecommendRequest, RecommendedProduct};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, FixedOffset};
use sea_orm::EntityTrait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 50;
/// Longest `q`, in characters.
pub const MAX_QUERY_CHARS: usize = 500;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/recommendations/{member_id}",
        web::get().to(recommendations),
    )
    .route("/api/products/{id}/similar", web::get().to(similar))
    .route(
        "/api/members/{member_id}/preferences",
        web::get().to(preferences),
    );
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecommendationsQuery {
    /// What the member is looking for (at most 500 characters). A price in it ("만원 이하",
    /// "under $50") is a hard constraint unless `max_price` is given; its language (Korean
    /// or English) is the explanations'.
    pub q: Option<String>,
    /// 1 to 50 (default 10).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<usize>,
    /// A category path or top level (`outdoor`, `outdoor/jackets`).
    pub category: Option<String>,
    /// Highest price, in minor units of the shop's currency (won).
    pub max_price: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SimilarQuery {
    /// 1 to 50 (default 10).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecommendationsError {
    #[error("{0}")]
    BadQuery(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("no product with id {0}")]
    UnknownProduct(Uuid),
    #[error(transparent)]
    Recommend(#[from] RecommendError),
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
}

impl PublicError for RecommendationsError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::BadQuery(_) | Self::Recommend(RecommendError::Invalid(_)) => {
                ErrorKind::BadRequest
            }
            Self::Auth(e) => e.kind(),
            Self::UnknownProduct(_) => ErrorKind::NotFound,
            Self::Recommend(RecommendError::Overloaded) => ErrorKind::Overloaded,
            Self::Recommend(RecommendError::Unavailable(_)) => ErrorKind::Unavailable,
            Self::Database(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadQuery(_) | Self::Recommend(RecommendError::Invalid(_)) => "invalid_query",
            Self::Auth(e) => e.code(),
            Self::UnknownProduct(_) => "not_found",
            Self::Recommend(RecommendError::Overloaded) => "overloaded",
            Self::Recommend(RecommendError::Unavailable(_)) => "unavailable",
            Self::Database(_) => "internal",
        }
    }

    fn public_message(&self) -> String {
        match self {
            // The cause (a database or Redis error) goes to the log only.
            Self::Recommend(RecommendError::Unavailable(_)) => {
                "the recommender is unavailable right now; try again shortly".into()
            }
            Self::Database(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

respond_by_kind!(RecommendationsError);

fn limit(requested: Option<usize>) -> Result<usize, RecommendationsError> {
    match requested.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(RecommendationsError::BadQuery(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        ))),
    }
}

/// A member id that can exist (no token names any other): 400 before any lookup.
fn member_id_from(raw: String) -> Result<MemberId, RecommendationsError> {
    MemberId::parse(raw).map_err(|e| RecommendationsError::BadQuery(e.to_string()))
}

/// The request the query string describes, checked; `prices` reads a price out of `q`.
fn request_for(
    member_id: &str,
    query: RecommendationsQuery,
    prices: PriceParser,
) -> Result<RecommendRequest, RecommendationsError> {
    let limit = limit(query.limit)?;
    // PostgreSQL text cannot hold NUL: the query would fail in the database.
    if [&query.q, &query.category]
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| v.contains('\0')))
    {
        return Err(RecommendationsError::BadQuery(
            "q and category must not contain NUL characters".into(),
        ));
    }
    let q = query
        .q
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty());
    if q.as_ref()
        .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
    {
        return Err(RecommendationsError::BadQuery(format!(
            "q must be at most {MAX_QUERY_CHARS} characters"
        )));
    }
    let mut intent = ShoppingIntent::empty();
    if let Some(category) = query.category {
        let category = category.trim().trim_matches('/').to_lowercase();
        if category.is_empty() {
            return Err(RecommendationsError::BadQuery(
                "category must not be empty".into(),
            ));
        }
        intent.categories.push(category);
    }
    if let Some(max) = query.max_price {
        intent.price_range = Some(PriceRange {
            min_minor: None,
            max_minor: Some(max),
        });
    } else if let Some(q) = &q {
        intent.price_range = prices.parse(&q.to_lowercase());
    }
    let language = q
        .as_deref()
        .map_or(ReplyLanguage::default(), ReplyLanguage::detect);
    intent
        .validate()
        .map_err(|e| RecommendationsError::BadQuery(e.0))?;
    Ok(RecommendRequest {
        member_id: Some(member_id.to_string()),
        query_text: q,
        query_embedding: None,
        intent,
        limit,
        exclude: Vec::new(),
        language,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecommendationList {
    pub member_id: String,
    /// Best first.
    pub items: Vec<RecommendedProduct>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarList {
    pub product_id: Uuid,
    /// Most similar first.
    pub items: Vec<RecommendedProduct>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreferenceProfile {
    pub member_id: String,
    /// Learned weights by signal (categories, brands, colours…); `{}` before the first event.
    #[schema(value_type = Object)]
    pub profile: Value,
    /// Grows with every update; 0 before the first event.
    pub version: i64,
    /// `null` before the first event.
    pub updated_at: Option<DateTime<FixedOffset>>,
}

/// A member's personalised recommendations (the member themselves, or the service token).
#[utoipa::path(
    get,
    path = "/api/recommendations/{member_id}",
    tag = "recommendations",
    params(("member_id" = String, Path, description = "The shop's member id (1 to 128 characters)"),
           RecommendationsQuery),
    security(("member_token" = []), ("service_token" = [])),
    responses(
        (status = 200, description = "Best first", body = RecommendationList),
        (status = 400, description = "`invalid_query`: a bad limit, category, price or member id", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: another member's list", body = ErrorBody),
        (status = 429, description = "`overloaded`: the recommender is busy", body = ErrorBody),
        (status = 503, description = "`unavailable`: the recommender is down", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(member = %path))]
async fn recommendations(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<RecommendationsQuery>,
) -> Result<HttpResponse, RecommendationsError> {
    let member_id = member_id_from(path.into_inner())?;
    require_access(&caller, &member_id)?;
    let prices = PriceParser::new(state.settings.llm.usd_krw_rate);
    let request = request_for(&member_id, query.into_inner(), prices)?;
    let items = state.recommender.recommend(request).await?;
    Ok(HttpResponse::Ok().json(RecommendationList {
        member_id: member_id.into_string(),
        items,
    }))
}

/// The member's learned preference profile (`{}` and version 0 before the first event).
#[utoipa::path(
    get,
    path = "/api/members/{member_id}/preferences",
    tag = "recommendations",
    params(("member_id" = String, Path, description = "The shop's member id")),
    security(("member_token" = []), ("service_token" = [])),
    responses(
        (status = 200, description = "The profile", body = PreferenceProfile),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: another member's profile", body = ErrorBody),
    )
)]
async fn preferences(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, RecommendationsError> {
    let member_id = member_id_from(path.into_inner())?.into_string();
    require_access(&caller, &member_id)?;
    let row = crate::db::entities::user_preference::Entity::find_by_id(member_id.clone())
        .one(&state.db)
        .await?;
    Ok(HttpResponse::Ok().json(match row {
        Some(row) => PreferenceProfile {
            member_id,
            profile: row.profile,
            version: row.version,
            updated_at: Some(row.updated_at),
        },
        None => PreferenceProfile {
            member_id,
            profile: Value::Object(Default::default()),
            version: 0,
            updated_at: None,
        },
    }))
}

/// Products like this one (content similarity), public.
#[utoipa::path(
    get,
    path = "/api/products/{id}/similar",
    tag = "recommendations",
    params(("id" = Uuid, Path, description = "The product id"), SimilarQuery),
    responses(
        (status = 200, description = "Most similar first", body = SimilarList),
        (status = 400, description = "`invalid_path` or `invalid_query`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
        (status = 429, description = "`overloaded`: the recommender is busy", body = ErrorBody),
        (status = 503, description = "`unavailable`: the recommender is down", body = ErrorBody),
    )
)]
async fn similar(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    query: web::Query<SimilarQuery>,
) -> Result<HttpResponse, RecommendationsError> {
    let product_id = path.into_inner();
    let limit = limit(query.limit)?;
    match state.recommender.similar(product_id, limit).await? {
        Some(items) => Ok(HttpResponse::Ok().json(SimilarList { product_id, items })),
        None => Err(RecommendationsError::UnknownProduct(product_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices() -> PriceParser {
        PriceParser::new(1_400.0)
    }

    fn query() -> RecommendationsQuery {
        RecommendationsQuery {
            q: None,
            limit: None,
            category: None,
            max_price: None,
        }
    }

    #[test]
    fn the_query_string_becomes_hard_constraints() {
        let request = request_for(
            "m-1",
            RecommendationsQuery {
                q: Some(" waterproof jacket ".into()),
                limit: Some(5),
                category: Some("/Outdoor/".into()),
                max_price: Some(100_000),
            },
            prices(),
        )
        .unwrap();
        assert_eq!(request.limit, 5);
        assert_eq!(request.query_text.as_deref(), Some("waterproof jacket"));
        assert_eq!(request.intent.categories, vec!["outdoor"]);
        assert_eq!(request.intent.price_range.unwrap().max_minor, Some(100_000));
    }

    #[test]
    fn bad_limits_and_prices_are_refused() {
        for bad in [0, MAX_LIMIT + 1] {
            let err = request_for(
                "m",
                RecommendationsQuery {
                    limit: Some(bad),
                    ..query()
                },
                prices(),
            );
            assert!(matches!(err, Err(RecommendationsError::BadQuery(_))));
        }
        let negative = request_for(
            "m",
            RecommendationsQuery {
                max_price: Some(-1),
                ..query()
            },
            prices(),
        );
        assert!(matches!(negative, Err(RecommendationsError::BadQuery(_))));
        assert_eq!(
            request_for("m", query(), prices()).unwrap().limit,
            DEFAULT_LIMIT
        );
    }

    #[test]
    fn a_price_and_the_language_come_from_q() {
        let korean = request_for(
            "m",
            RecommendationsQuery {
                q: Some("만원 이하 간식".into()),
                ..query()
            },
            prices(),
        )
        .unwrap();
        assert_eq!(korean.intent.price_range.unwrap().max_minor, Some(10_000));
        assert_eq!(korean.language, ReplyLanguage::Korean);
        // An explicit max_price wins over the words.
        let explicit = request_for(
            "m",
            RecommendationsQuery {
                q: Some("rain jacket, budget 100k won max".into()),
                max_price: Some(80_000),
                ..query()
            },
            prices(),
        )
        .unwrap();
        assert_eq!(explicit.intent.price_range.unwrap().max_minor, Some(80_000));
        assert_eq!(explicit.language, ReplyLanguage::English);
        assert_eq!(
            request_for("m", query(), prices()).unwrap().language,
            ReplyLanguage::English
        );
    }
}
