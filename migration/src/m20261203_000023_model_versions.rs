use sea_orm_migration::prelude::*;

/// Trained models (docs/scaling.md): one row per version, written by whichever instance held
/// the trainer's advisory lock, read by every instance. `payload` is the model in its own
/// binary format (`recommend::cf::ItemNeighbours::encode` for `item_item`); the interaction
/// count and last id say what it was trained on, so an instance can tell "nothing new".
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE model_versions (
    id                  BIGSERIAL PRIMARY KEY,
    kind                TEXT NOT NULL,
    trained_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    interactions        BIGINT NOT NULL,
    last_interaction_id BIGINT NOT NULL,
    items               INTEGER NOT NULL,
    members             INTEGER NOT NULL,
    train_ms            BIGINT NOT NULL,
    payload             BYTEA NOT NULL
);
CREATE INDEX model_versions_kind_idx ON model_versions (kind, id DESC);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "DROP TABLE model_versions;").await
    }
}
