use sea_orm_migration::prelude::*;

/// Which model computed each stored vector (the service's `Embedder::model_id`), so that a
/// change of model (MiniLM → multilingual-e5-small) is seen and `convrec reembed` replaces
/// exactly the vectors of the other model. Vectors stored before this column existed have
/// none, and count as another model's.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "ALTER TABLE products ADD COLUMN IF NOT EXISTS embedding_model TEXT; \
             ALTER TABLE conversation_messages ADD COLUMN IF NOT EXISTS embedding_model TEXT;",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "ALTER TABLE products DROP COLUMN IF EXISTS embedding_model; \
             ALTER TABLE conversation_messages DROP COLUMN IF EXISTS embedding_model;",
        )
        .await
    }
}
