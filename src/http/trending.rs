//! `GET /api/trending` and `GET /api/popular?category=`: the analytics group's Redis views
//! (`rec:trending`, `rec:popular:category:{cat}`), with the products they name.

use crate::db::entities::product;
use crate::errors::{ErrorKind, PublicError};
use crate::http::error::respond_by_kind;
use crate::http::error::ErrorBody;
use crate::http::products::ProductView;
use crate::http::AppState;
use crate::recommend::popularity::top_products;
use actix_web::{web, HttpResponse};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/trending", web::get().to(trending))
        .route("/api/popular", web::get().to(popular));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TrendingQuery {
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PopularQuery {
    /// A category path (`outdoor/jackets`).
    pub category: String,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RankedProduct {
    pub score: f64,
    pub product: ProductView,
}

#[derive(Debug, thiserror::Error)]
pub enum RankingError {
    #[error("{0}")]
    BadQuery(String),
    #[error("the analytics store is unavailable")]
    Unavailable(String),
    #[error("database error")]
    Database(#[from] DbErr),
}

impl PublicError for RankingError {
    fn kind(&self) -> ErrorKind {
        match self {
            RankingError::BadQuery(_) => ErrorKind::BadRequest,
            RankingError::Unavailable(_) => ErrorKind::Unavailable,
            RankingError::Database(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            RankingError::BadQuery(_) => "invalid_query",
            RankingError::Unavailable(_) => "unavailable",
            RankingError::Database(_) => "internal",
        }
    }

    fn public_message(&self) -> String {
        match self {
            // The cause (a Redis error) goes to the log only.
            RankingError::Unavailable(_) => {
                "the analytics store is unavailable right now; try again shortly".into()
            }
            RankingError::Database(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

respond_by_kind!(RankingError);

fn limit(requested: Option<usize>) -> Result<usize, RankingError> {
    match requested.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(RankingError::BadQuery(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        ))),
    }
}

/// Ranked products, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RankedPage {
    pub items: Vec<RankedProduct>,
}

/// The products trending now (the analytics group's decayed counts).
#[utoipa::path(
    get,
    path = "/api/trending",
    tag = "analytics",
    params(TrendingQuery),
    responses(
        (status = 200, description = "Best first", body = RankedPage),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 503, description = "`unavailable`: Redis did not answer", body = ErrorBody),
    )
)]
async fn trending(
    state: web::Data<AppState>,
    query: web::Query<TrendingQuery>,
) -> Result<HttpResponse, RankingError> {
    let limit = limit(query.limit)?;
    let key = state.keys.trending();
    ranked(&state, &key, limit).await
}

/// The most popular products of a category.
#[utoipa::path(
    get,
    path = "/api/popular",
    tag = "analytics",
    params(PopularQuery),
    responses(
        (status = 200, description = "Best first", body = RankedPage),
        (status = 400, description = "`invalid_query`: no or an empty category, or a bad limit", body = ErrorBody),
        (status = 503, description = "`unavailable`: Redis did not answer", body = ErrorBody),
    )
)]
async fn popular(
    state: web::Data<AppState>,
    query: web::Query<PopularQuery>,
) -> Result<HttpResponse, RankingError> {
    let limit = limit(query.limit)?;
    let category = query.category.trim().trim_matches('/');
    if category.is_empty() {
        return Err(RankingError::BadQuery("category must not be empty".into()));
    }
    let key = state.keys.popular(category);
    ranked(&state, &key, limit).await
}

/// Reads the ZSet and answers `{"items": [{"score", "product"}]}`, best first; products
/// deleted since they were counted are left out.
async fn ranked(state: &AppState, key: &str, limit: usize) -> Result<HttpResponse, RankingError> {
    let top = top_products(&state.state_redis, key, limit)
        .await
        .map_err(RankingError::Unavailable)?;
    let ids: Vec<Uuid> = top.iter().map(|(id, _)| *id).collect();
    let mut products: HashMap<Uuid, product::Model> = product::Entity::find()
        .filter(product::Column::Id.is_in(ids))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let items: Vec<RankedProduct> = top
        .into_iter()
        .filter_map(|(id, score)| {
            products.remove(&id).map(|p| RankedProduct {
                score,
                product: p.into(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(RankedPage { items }))
}
