use sea_orm_migration::prelude::*;

/// Deleted products, remembered until the search index has dropped them too. A trigger
/// writes the tombstone in the deleting transaction, so every delete path (REST, SQL by hand)
/// reaches the index, and a search server that is down only delays it.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE product_tombstones (
    product_id UUID PRIMARY KEY,
    deleted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION record_product_tombstone() RETURNS trigger AS $$
BEGIN
    INSERT INTO product_tombstones (product_id) VALUES (OLD.id)
    ON CONFLICT (product_id) DO UPDATE SET deleted_at = now();
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER products_tombstone AFTER DELETE ON products
    FOR EACH ROW EXECUTE FUNCTION record_product_tombstone();
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP TRIGGER products_tombstone ON products; \
             DROP FUNCTION record_product_tombstone(); \
             DROP TABLE product_tombstones;",
        )
        .await
    }
}
