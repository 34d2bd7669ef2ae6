//! Reading and writing products.

use super::draft::{ProductDraft, ValidProduct};
use super::money::Currency;
use crate::db::entities::product;
use chrono::Utc;
use sea_orm::sea_query::{extension::postgres::PgExpr, Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

/// Filters of a product listing; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    /// Matches the category itself and every category below it.
    pub category: Option<String>,
    pub brand: Option<String>,
    pub min_price_minor: Option<i64>,
    pub max_price_minor: Option<i64>,
    /// Case-insensitive substring of title, description or brand.
    pub text: Option<String>,
    pub in_stock: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<product::Model>,
    /// Pass back as `after` to get the next page; `None` on the last page.
    pub next_after: Option<Uuid>,
}

/// Escapes LIKE wildcards so user text matches literally.
fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

fn filter_condition(filter: &ProductFilter) -> Condition {
    let mut condition = Condition::all();
    if let Some(category) = &filter.category {
        let category = category.trim().to_lowercase();
        let below = format!("{}/%", category.replace('%', "\\%").replace('_', "\\_"));
        condition = condition.add(
            Condition::any()
                .add(product::Column::Category.eq(category))
                .add(product::Column::Category.like(below)),
        );
    }
    if let Some(brand) = &filter.brand {
        condition = condition.add(
            Expr::col(product::Column::Brand).ilike(brand.replace('%', "\\%").replace('_', "\\_")),
        );
    }
    if let Some(min) = filter.min_price_minor {
        condition = condition.add(product::Column::PriceMinor.gte(min));
    }
    if let Some(max) = filter.max_price_minor {
        condition = condition.add(product::Column::PriceMinor.lte(max));
    }
    if let Some(text) = filter
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let pattern = like_pattern(text);
        condition = condition.add(
            Condition::any()
                .add(Expr::col(product::Column::Title).ilike(pattern.clone()))
                .add(Expr::col(product::Column::Description).ilike(pattern.clone()))
                .add(Expr::col(product::Column::Brand).ilike(pattern)),
        );
    }
    match filter.in_stock {
        Some(true) => condition = condition.add(product::Column::Stock.gt(0)),
        Some(false) => condition = condition.add(product::Column::Stock.eq(0)),
        None => {}
    }
    condition
}

/// One page of products in id order (ids are time-ordered UUIDv7, so this is insertion order).
#[tracing::instrument(skip(db))]
pub async fn list(
    db: &DatabaseConnection,
    filter: &ProductFilter,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page, DbErr> {
    let mut query = product::Entity::find().filter(filter_condition(filter));
    if let Some(after) = after {
        query = query.filter(product::Column::Id.gt(after));
    }
    let mut items = query
        .order_by_asc(product::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let next_after = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(|p| p.id)
    } else {
        None
    };
    Ok(Page { items, next_after })
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<product::Model>, DbErr> {
    product::Entity::find_by_id(id).one(db).await
}

fn active_model(id: Uuid, product: ProductDraft) -> product::ActiveModel {
    let now = Utc::now().fixed_offset();
    product::ActiveModel {
        id: Set(id),
        sku: Set(product.sku),
        title: Set(product.title),
        description: Set(product.description),
        category: Set(product.category),
        brand: Set(product.brand),
        price_minor: Set(product.price_minor),
        currency: Set(product.currency.code().to_string()),
        stock: Set(product.stock),
        attributes: Set(serde_json::Value::Object(product.attributes)),
        image_url: Set(product.image_url),
        embedding: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Inserts a new product. A duplicate SKU surfaces as a unique-violation `DbErr`.
#[tracing::instrument(skip_all, fields(sku = %product.as_draft().sku))]
pub async fn create(
    db: &impl ConnectionTrait,
    product: ValidProduct,
) -> Result<product::Model, DbErr> {
    let model = active_model(Uuid::now_v7(), product.into_inner());
    product::Entity::insert(model).exec_with_returning(db).await
}

/// Replaces every editable field of an existing product; `None` when it does not exist.
/// The embedding is cleared because the text it was computed from may have changed.
#[tracing::instrument(skip(db, product))]
pub async fn replace(
    db: &impl ConnectionTrait,
    id: Uuid,
    product: ValidProduct,
) -> Result<Option<product::Model>, DbErr> {
    let existing = match get(db, id).await? {
        Some(existing) => existing,
        None => return Ok(None),
    };
    let mut model = active_model(id, product.into_inner());
    model.created_at = Set(existing.created_at);
    if existing.title == *model.title.as_ref()
        && existing.description == *model.description.as_ref()
    {
        model.embedding = Set(existing.embedding);
    }
    match product::Entity::update(model).exec(db).await {
        Ok(updated) => Ok(Some(updated)),
        // Deleted between the read and the write (a concurrent DELETE): gone, not a failure.
        Err(DbErr::RecordNotUpdated) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Stores a product's embedding (computed from [`super::embedding::model_text`]) and the
/// id of the model that computed it (`products.embedding_model`, not in the entity: only
/// this and [`super::embedding::embed_products`] read or write it).
pub async fn set_embedding(
    db: &impl ConnectionTrait,
    id: Uuid,
    vector: Vec<f32>,
    model_id: &str,
) -> Result<(), DbErr> {
    db.execute_raw(sea_orm::Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE products SET embedding = $2, embedding_model = $3 WHERE id = $1",
        [
            id.into(),
            pgvector::Vector::from(vector).into(),
            model_id.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Deletes a product; `false` when it did not exist.
pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    Ok(product::Entity::delete_by_id(id)
        .exec(db)
        .await?
        .rows_affected
        > 0)
}

/// Inserts or updates (by SKU) a batch of products in one statement; returns how many rows
/// were written. Used by imports, where re-running the same file must not duplicate.
pub async fn upsert_batch(
    db: &impl ConnectionTrait,
    products: Vec<ValidProduct>,
) -> Result<u64, DbErr> {
    if products.is_empty() {
        return Ok(0);
    }
    let count = products.len() as u64;
    let models = products
        .into_iter()
        .map(|p| active_model(Uuid::now_v7(), p.into_inner()));
    product::Entity::insert_many(models)
        .on_conflict(
            OnConflict::column(product::Column::Sku)
                .update_columns([
                    product::Column::Title,
                    product::Column::Description,
                    product::Column::Category,
                    product::Column::Brand,
                    product::Column::PriceMinor,
                    product::Column::Currency,
                    product::Column::Stock,
                    product::Column::Attributes,
                    product::Column::ImageUrl,
                    product::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(count)
}

/// Turns a stored row back into a draft, e.g. to apply a partial update to it.
pub fn to_draft(model: &product::Model) -> ProductDraft {
    ProductDraft {
        sku: model.sku.clone(),
        title: model.title.clone(),
        description: model.description.clone(),
        category: model.category.clone(),
        brand: model.brand.clone(),
        price_minor: model.price_minor,
        currency: model.currency.parse().unwrap_or(Currency::Krw),
        stock: model.stock,
        attributes: model.attributes.as_object().cloned().unwrap_or_default(),
        image_url: model.image_url.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_user_text_match_literally() {
        assert_eq!(like_pattern("50%_off"), "%50\\%\\_off%");
    }
}
