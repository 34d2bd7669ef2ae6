//! Database migrations, applied in order. Each has `up` and `down`.
//!
//! The schema is written as SQL: pgvector columns, HNSW indexes and CHECK constraints are
//! clearer in SQL than in a builder.

// `MigrationTrait` declares `&SchemaManager` without its lifetime; impls must match.
#![allow(elided_lifetimes_in_paths)]

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_catalog;
mod m20261124_000002_conversations;
mod m20261124_000003_events;
mod m20261124_000004_event_consumers;
mod m20261124_000005_product_tombstones;
mod m20261124_000006_product_fulltext;
mod m20261203_000007_korean_lexical;
mod m20261203_000021_embedding_model;
mod m20261203_000022_event_idempotency_keys;
mod m20261203_000023_model_versions;
mod m20261203_000024_chat_exactly_once;
mod m20261203_000025_interaction_rejections;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_catalog::Migration),
            Box::new(m20261124_000002_conversations::Migration),
            Box::new(m20261124_000003_events::Migration),
            Box::new(m20261124_000004_event_consumers::Migration),
            Box::new(m20261124_000005_product_tombstones::Migration),
            Box::new(m20261124_000006_product_fulltext::Migration),
            Box::new(m20261203_000007_korean_lexical::Migration),
            Box::new(m20261203_000021_embedding_model::Migration),
            Box::new(m20261203_000022_event_idempotency_keys::Migration),
            Box::new(m20261203_000023_model_versions::Migration),
            Box::new(m20261203_000024_chat_exactly_once::Migration),
            Box::new(m20261203_000025_interaction_rejections::Migration),
        ]
    }
}

/// Runs a block of SQL statements (simple query protocol, so several may be sent at once).
pub(crate) async fn run_sql(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager.get_connection().execute_unprepared(sql).await?;
    Ok(())
}
