//! The narrow interface between whoever needs recommendations (the chat pipeline, the REST
//! API) and the hybrid recommender that computes them.

pub mod analytics_rebuild;
pub mod cf;
pub mod cf_store;
pub mod engine;
pub mod explanation;
pub mod lexical;
pub mod linear;
pub mod list_cache;
pub mod popularity;
pub mod profile;
pub mod query_cache;
pub mod rejection;
pub mod scoring;

use crate::analysis::ReplyLanguage;
use crate::intent::{HardConstraint, ShoppingIntent};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What to recommend for.
#[derive(Debug, Clone, Default)]
pub struct RecommendRequest {
    /// The member the list is for: their preference profile and history shape it, and their
    /// recent purchases are not recommended again. `None`: anonymous (cold start).
    pub member_id: Option<String>,
    /// The shopper's words (a chat message or `?q=`), for the content signal.
    pub query_text: Option<String>,
    /// The embedding of `query_text` when the caller already has it (the chat embeds every
    /// message anyway); computed from `query_text` otherwise.
    pub query_embedding: Option<Vec<f32>>,
    /// Hard constraints and soft preferences of this request.
    pub intent: ShoppingIntent,
    pub limit: usize,
    /// Products not to recommend (e.g. the product a "similar" list is for).
    pub exclude: Vec<Uuid>,
    /// The language the explanations are written in (the shopper's).
    pub language: ReplyLanguage,
}

/// Each signal, normalised to [0, 1] over the candidates, and the weighted total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoreBreakdown {
    pub content: f32,
    pub collaborative: f32,
    pub intent: f32,
    /// The member's learned profile, not normalised: its confidence × age decay × the share
    /// of its preferences the product matches (0 without a profile, or where the request
    /// overrode it). Enters the total with `recommender.profile_weight`.
    #[serde(default)]
    pub profile: f32,
    /// The member turned this product down in the chat: 1 fresh, halving every
    /// `recommender.rejection_half_life_days` (0 otherwise). Enters the total with
    /// `-recommender.rejection_weight`.
    #[serde(default)]
    pub rejected: f32,
    pub total: f32,
}

/// One recommended product with the real catalog facts a reply may quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecommendedProduct {
    pub id: Uuid,
    pub sku: String,
    pub title: String,
    pub category: String,
    pub brand: Option<String>,
    pub price_minor: Option<i64>,
    pub currency: String,
    /// `₩89,000`.
    pub price_display: Option<String>,
    pub stock: i32,
    pub image_url: Option<String>,
    pub score: ScoreBreakdown,
    /// Why, in one sentence built from the score breakdown, in the request's language
    /// ("Matches 'waterproof', under ₩100,000" / "'방수'와 일치해요 · ₩100,000 이하예요").
    pub explanation: String,
    /// The individual reasons the explanation is made of.
    pub reasons: Vec<String>,
    /// Empty when the product meets the request. When nothing met every hard constraint, the
    /// list relaxes them (the colour and brand exclusions, price, stock, category, in that
    /// order) and each product names the ones it breaks; its explanation starts with how
    /// ("above your ₩50,000 limit (₩59,000)").
    #[serde(default)]
    pub outside_request: Vec<HardConstraint>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    #[error("the recommender is overloaded; try again shortly")]
    Overloaded,
    #[error("the recommender is unavailable: {0}")]
    Unavailable(String),
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// Computes a ranked list. Implemented by the hybrid recommender.
pub trait ProductRanker: Send + Sync {
    fn recommend(
        &self,
        request: RecommendRequest,
    ) -> BoxFuture<'_, Result<Vec<RecommendedProduct>, RecommendError>>;
}
