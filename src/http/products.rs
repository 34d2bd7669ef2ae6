//! `/api/products`: listing with filters and cursor pagination, lookup by id, and
//! catalog writes behind the admin token.

use crate::catalog::store::{self, ProductFilter};
use crate::catalog::{Currency, ProductDraft};
use crate::db::entities::product;
use crate::errors::FieldError;
use crate::errors::{ErrorKind, PublicError};
use crate::http::auth::{require_admin, AuthError};
use crate::http::error::respond_by_kind;
use crate::http::error::ErrorBody;
use crate::http::optional_json::JsonObject;
use crate::http::AppState;
use crate::ml::TextKind;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/products")
            .route(web::get().to(list_products))
            .route(web::post().to(create_product)),
    )
    .service(
        web::resource("/api/products/{id}")
            .route(web::get().to(get_product))
            .route(web::put().to(replace_product))
            .route(web::patch().to(patch_product))
            .route(web::delete().to(delete_product)),
    );
}

#[derive(Debug, thiserror::Error)]
pub enum ProductsError {
    #[error("the product is invalid")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    BadQuery(String),
    #[error("no product with id {0}")]
    NotFound(Uuid),
    #[error("a product with sku {0:?} already exists")]
    DuplicateSku(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
}

impl PublicError for ProductsError {
    fn kind(&self) -> ErrorKind {
        match self {
            ProductsError::Validation(_) => ErrorKind::Invalid,
            ProductsError::BadQuery(_) => ErrorKind::BadRequest,
            ProductsError::NotFound(_) => ErrorKind::NotFound,
            ProductsError::DuplicateSku(_) => ErrorKind::Conflict,
            ProductsError::Auth(e) => e.kind(),
            ProductsError::Database(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ProductsError::Validation(_) => "validation_failed",
            ProductsError::BadQuery(_) => "invalid_query",
            ProductsError::NotFound(_) => "not_found",
            ProductsError::DuplicateSku(_) => "conflict",
            ProductsError::Auth(e) => e.code(),
            ProductsError::Database(_) => "internal",
        }
    }

    fn details(&self) -> Vec<FieldError> {
        match self {
            ProductsError::Validation(details) => details.clone(),
            _ => Vec::new(),
        }
    }
}

respond_by_kind!(ProductsError);

/// Maps a unique violation on `sku` to 409; every other database error stays a 500.
fn storage_error(err: sea_orm::DbErr, sku: &str) -> ProductsError {
    if matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    ) {
        ProductsError::DuplicateSku(sku.to_string())
    } else {
        ProductsError::Database(err)
    }
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Integer minor units: won for KRW, cents for USD.
    pub amount_minor: i64,
    #[serde(default)]
    pub currency: Currency,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PriceView {
    pub amount_minor: i64,
    pub currency: Currency,
    /// e.g. "₩129,000", for display only.
    pub formatted: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub id: Uuid,
    pub sku: String,
    pub title: String,
    pub description: String,
    pub category: String,
    pub brand: Option<String>,
    /// `null` when the price is unknown (some imported catalogs have none).
    pub price: Option<PriceView>,
    pub stock: i32,
    pub in_stock: bool,
    #[schema(value_type = Object)]
    pub attributes: Value,
    pub image_url: Option<String>,
    /// Whether the product's embedding is computed (it is, unless the encoder failed).
    pub embedded: bool,
    pub created_at: DateTime<FixedOffset>,
    pub updated_at: DateTime<FixedOffset>,
}

impl From<product::Model> for ProductView {
    fn from(model: product::Model) -> Self {
        let currency: Currency = model.currency.parse().unwrap_or_default();
        Self {
            id: model.id,
            price: model.price_minor.map(|amount_minor| PriceView {
                amount_minor,
                currency,
                formatted: currency.format(amount_minor),
            }),
            in_stock: model.stock > 0,
            embedded: model.embedding.is_some(),
            sku: model.sku,
            title: model.title,
            description: model.description,
            category: model.category,
            brand: model.brand,
            stock: model.stock,
            attributes: model.attributes,
            image_url: model.image_url,
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage {
    pub items: Vec<ProductView>,
    /// Pass as `after` to fetch the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub category: Option<String>,
    pub brand: Option<String>,
    /// Minor units, inclusive.
    pub min_price: Option<i64>,
    /// Minor units, inclusive.
    pub max_price: Option<i64>,
    pub q: Option<String>,
    pub in_stock: Option<bool>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    /// `next_after` of the previous page.
    pub after: Option<Uuid>,
}

impl ListQuery {
    fn parse(self) -> Result<(ProductFilter, Option<Uuid>, u64), ProductsError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ProductsError::BadQuery(format!(
                "limit must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        if self.min_price.is_some_and(|p| p < 0) || self.max_price.is_some_and(|p| p < 0) {
            return Err(ProductsError::BadQuery(
                "prices must not be negative".into(),
            ));
        }
        if let (Some(min), Some(max)) = (self.min_price, self.max_price) {
            if min > max {
                return Err(ProductsError::BadQuery(
                    "min_price must not exceed max_price".into(),
                ));
            }
        }
        if self.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
            return Err(ProductsError::BadQuery(
                "q must be at most 200 characters".into(),
            ));
        }
        // PostgreSQL text cannot hold NUL: the filter would fail in the database.
        for (name, value) in [
            ("q", &self.q),
            ("category", &self.category),
            ("brand", &self.brand),
        ] {
            if value.as_ref().is_some_and(|v| v.contains('\0')) {
                return Err(ProductsError::BadQuery(format!(
                    "{name} must not contain NUL characters"
                )));
            }
        }
        let filter = ProductFilter {
            category: self.category.filter(|c| !c.trim().is_empty()),
            brand: self.brand.filter(|b| !b.trim().is_empty()),
            min_price_minor: self.min_price,
            max_price_minor: self.max_price,
            text: self.q,
            in_stock: self.in_stock,
        };
        Ok((filter, self.after, limit))
    }
}

/// Lists products, filtered, in pages.
#[utoipa::path(
    get,
    path = "/api/products",
    tag = "products",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of products", body = ProductPage),
        (status = 400, description = "`invalid_query`: a bad filter or limit", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
async fn list_products(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ProductsError> {
    let (filter, after, limit) = query.into_inner().parse()?;
    let page = store::list(&state.db, &filter, after, limit).await?;
    Ok(HttpResponse::Ok().json(ProductPage {
        items: page.items.into_iter().map(ProductView::from).collect(),
        next_after: page.next_after,
    }))
}

/// One product by id.
#[utoipa::path(
    get,
    path = "/api/products/{id}",
    tag = "products",
    params(("id" = Uuid, Path, description = "The product id")),
    responses(
        (status = 200, description = "The product", body = ProductView),
        (status = 400, description = "`invalid_path`: the id is not a UUID", body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
async fn get_product(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ProductsError> {
    let id = id.into_inner();
    let product = store::get(&state.db, id)
        .await?
        .ok_or(ProductsError::NotFound(id))?;
    Ok(HttpResponse::Ok().json(ProductView::from(product)))
}

/// Body of `POST` and `PUT`: every field of a product.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductBody {
    pub sku: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub category: String,
    #[serde(default)]
    pub brand: Option<String>,
    pub price: Price,
    pub stock: i32,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    #[serde(default)]
    pub image_url: Option<String>,
}

impl From<ProductBody> for ProductDraft {
    fn from(body: ProductBody) -> Self {
        ProductDraft {
            sku: body.sku,
            title: body.title,
            description: body.description,
            category: body.category,
            brand: body.brand,
            price_minor: Some(body.price.amount_minor),
            currency: body.price.currency,
            stock: body.stock,
            attributes: body.attributes,
            image_url: body.image_url,
        }
    }
}

/// Body of `PATCH`: only the fields to change. `brand` and `image_url` may be set to `null`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    pub sku: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    /// `null` clears the brand.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub brand: Option<Option<String>>,
    pub price: Option<Price>,
    pub stock: Option<i32>,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
    /// `null` clears the image.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub image_url: Option<Option<String>>,
}

/// Tells "absent" (keep) from `null` (clear) in a PATCH body.
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

impl ProductPatch {
    fn apply(self, mut draft: ProductDraft) -> ProductDraft {
        if let Some(v) = self.sku {
            draft.sku = v;
        }
        if let Some(v) = self.title {
            draft.title = v;
        }
        if let Some(v) = self.description {
            draft.description = v;
        }
        if let Some(v) = self.category {
            draft.category = v;
        }
        if let Some(v) = self.brand {
            draft.brand = v;
        }
        if let Some(price) = self.price {
            draft.price_minor = Some(price.amount_minor);
            draft.currency = price.currency;
        }
        if let Some(v) = self.stock {
            draft.stock = v;
        }
        if let Some(v) = self.attributes {
            draft.attributes = v;
        }
        if let Some(v) = self.image_url {
            draft.image_url = v;
        }
        draft
    }
}

/// Creates a product (the shop's service token) and computes its embedding.
#[utoipa::path(
    post,
    path = "/api/products",
    tag = "products",
    request_body = ProductBody,
    security(("service_token" = [])),
    responses(
        (status = 201, description = "Created; `Location` names it", body = ProductView,
         headers(("Location" = String, description = "`/api/products/{id}`"))),
        (status = 401, description = "`unauthorized`: no bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not the service token (or none is configured)", body = ErrorBody),
        (status = 409, description = "`conflict`: the sku is taken", body = ErrorBody),
        (status = 422, description = "`validation_failed` (with `details` per field) or `invalid_body`", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
async fn create_product(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonObject<ProductBody>,
) -> Result<HttpResponse, ProductsError> {
    require_admin(&req, &state.settings.security)?;
    let product = ProductDraft::from(body.into_inner())
        .validate()
        .map_err(ProductsError::Validation)?;
    let sku = product.as_draft().sku.clone();
    let created = store::create(&state.db, product)
        .await
        .map_err(|e| storage_error(e, &sku))?;
    tracing::info!(id = %created.id, sku = %created.sku, "product created");
    let created = embed_product(&state, created).await;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/products/{}", created.id)))
        .json(ProductView::from(created)))
}

async fn save_replacement(
    state: &AppState,
    id: Uuid,
    draft: ProductDraft,
) -> Result<HttpResponse, ProductsError> {
    let product = draft.validate().map_err(ProductsError::Validation)?;
    let sku = product.as_draft().sku.clone();
    let updated = store::replace(&state.db, id, product)
        .await
        .map_err(|e| storage_error(e, &sku))?
        .ok_or(ProductsError::NotFound(id))?;
    let updated = if updated.embedding.is_none() {
        embed_product(state, updated).await
    } else {
        updated
    };
    Ok(HttpResponse::Ok().json(ProductView::from(updated)))
}

/// Computes and stores a written product's embedding. A failure (the encoder overloaded,
/// say) leaves the embedding empty for `convrec reembed` and never fails the write itself.
async fn embed_product(state: &AppState, mut product: product::Model) -> product::Model {
    let text = crate::catalog::embedding::model_text(&product);
    match state
        .content_embeddings
        .embed_as(TextKind::Passage, vec![text])
        .await
    {
        Ok(mut embedded) => {
            let vector = embedded.vectors.remove(0);
            match store::set_embedding(
                &state.db,
                product.id,
                vector.clone(),
                &state.content_embeddings.model.id,
            )
            .await
            {
                Ok(()) => product.embedding = Some(vector.into()),
                Err(error) => {
                    tracing::warn!(%error, id = %product.id, "storing the embedding failed")
                }
            }
        }
        Err(error) => {
            tracing::warn!(%error, id = %product.id, "product left without an embedding")
        }
    }
    product
}

/// Replaces every field of a product (the shop's service token).
#[utoipa::path(
    put,
    path = "/api/products/{id}",
    tag = "products",
    params(("id" = Uuid, Path, description = "The product id")),
    request_body = ProductBody,
    security(("service_token" = [])),
    responses(
        (status = 200, description = "The product as stored", body = ProductView),
        (status = 400, description = "`invalid_path`: the id is not a UUID", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not the service token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
        (status = 409, description = "`conflict`: the sku is taken", body = ErrorBody),
        (status = 422, description = "`validation_failed` or `invalid_body`", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state, req, body))]
async fn replace_product(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: JsonObject<ProductBody>,
) -> Result<HttpResponse, ProductsError> {
    require_admin(&req, &state.settings.security)?;
    save_replacement(&state, id.into_inner(), body.into_inner().into()).await
}

/// Changes the given fields of a product (the shop's service token).
#[utoipa::path(
    patch,
    path = "/api/products/{id}",
    tag = "products",
    params(("id" = Uuid, Path, description = "The product id")),
    request_body = ProductPatch,
    security(("service_token" = [])),
    responses(
        (status = 200, description = "The product as stored", body = ProductView),
        (status = 400, description = "`invalid_path`: the id is not a UUID", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not the service token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
        (status = 409, description = "`conflict`: the sku is taken", body = ErrorBody),
        (status = 422, description = "`validation_failed` or `invalid_body`", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state, req, body))]
async fn patch_product(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: JsonObject<ProductPatch>,
) -> Result<HttpResponse, ProductsError> {
    require_admin(&req, &state.settings.security)?;
    let id = id.into_inner();
    let existing = store::get(&state.db, id)
        .await?
        .ok_or(ProductsError::NotFound(id))?;
    let draft = body.into_inner().apply(store::to_draft(&existing));
    save_replacement(&state, id, draft).await
}

/// Deletes a product (the shop's service token).
#[utoipa::path(
    delete,
    path = "/api/products/{id}",
    tag = "products",
    params(("id" = Uuid, Path, description = "The product id")),
    security(("service_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_path`: the id is not a UUID", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not the service token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state, req))]
async fn delete_product(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ProductsError> {
    require_admin(&req, &state.settings.security)?;
    let id = id.into_inner();
    if store::delete(&state.db, id).await? {
        tracing::info!(%id, "product deleted");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ProductsError::NotFound(id))
    }
}
