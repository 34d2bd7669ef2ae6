use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE members (
    id           TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    display_name TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id          UUID PRIMARY KEY,
    sku         TEXT NOT NULL UNIQUE CHECK (length(sku) BETWEEN 1 AND 64),
    title       TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    description TEXT NOT NULL DEFAULT '',
    category    TEXT NOT NULL,
    brand       TEXT,
    price_minor BIGINT CHECK (price_minor >= 0),
    currency    CHAR(3) NOT NULL DEFAULT 'KRW',
    stock       INTEGER NOT NULL DEFAULT 0 CHECK (stock >= 0),
    attributes  JSONB NOT NULL DEFAULT '{}'::jsonb,
    image_url   TEXT,
    embedding   vector(384),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Category filters match a whole path or any path below it ("outdoor" matches "outdoor/jackets").
CREATE INDEX products_category_idx ON products (category text_pattern_ops);
CREATE INDEX products_price_idx ON products (price_minor);
CREATE INDEX products_embedding_hnsw_idx ON products USING hnsw (embedding vector_cosine_ops);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "DROP TABLE products; DROP TABLE members;").await
    }
}
