use sea_orm_migration::prelude::*;

/// A fourth interaction kind, `reject`: the shopper turned a product down in the chat
/// ("그거 말고", "not that one"; docs/intent.md#dialogue-as-feedback). `source_ref` is the
/// user message that said it, so a retried turn records a rejection once and a conversation's
/// rejections are found through its messages.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
ALTER TABLE interactions DROP CONSTRAINT IF EXISTS interactions_kind_check;
ALTER TABLE interactions ADD CONSTRAINT interactions_kind_check
    CHECK (kind IN ('view', 'cart', 'order', 'reject'));
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
DELETE FROM interactions WHERE kind = 'reject';
ALTER TABLE interactions DROP CONSTRAINT IF EXISTS interactions_kind_check;
ALTER TABLE interactions ADD CONSTRAINT interactions_kind_check
    CHECK (kind IN ('view', 'cart', 'order'));
"#,
        )
        .await
    }
}
