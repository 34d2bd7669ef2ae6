use sea_orm_migration::prelude::*;

/// A full-text index for the recommender's lexical signal (English stemming over title,
/// brand and description). Superseded by the Korean-aware `products.lexical` column of
/// m20261203_000007, which drops this index.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "CREATE INDEX IF NOT EXISTS products_fulltext_idx ON products USING gin \
             (to_tsvector('english', title || ' ' || coalesce(brand, '') || ' ' || description));",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "DROP INDEX IF EXISTS products_fulltext_idx;").await
    }
}
