use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE interactions (
    id          BIGSERIAL PRIMARY KEY,
    member_id   TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    product_id  UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('view', 'cart', 'order')),
    quantity    INTEGER NOT NULL DEFAULT 1 CHECK (quantity > 0),
    -- The shop's order number, or the event that produced the row; makes imports and
    -- event consumers idempotent.
    source_ref  TEXT,
    occurred_at TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX interactions_member_idx ON interactions (member_id, occurred_at DESC);
CREATE INDEX interactions_product_idx ON interactions (product_id, occurred_at DESC);
CREATE UNIQUE INDEX interactions_source_idx ON interactions (source_ref, product_id, kind)
    WHERE source_ref IS NOT NULL;

CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    key          TEXT NOT NULL,
    payload      JSONB NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'sent', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    available_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at      TIMESTAMPTZ
);
-- The dispatcher only ever scans pending rows that are due.
CREATE INDEX outbox_pending_idx ON outbox (available_at, id) WHERE status = 'pending';
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "DROP TABLE outbox; DROP TABLE interactions;").await
    }
}
