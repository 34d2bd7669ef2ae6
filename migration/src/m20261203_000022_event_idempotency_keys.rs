use sea_orm_migration::prelude::*;

/// The idempotency keys of `POST /api/events` (docs/events.md): one row per key a caller sent
/// with an accepted event, so a retry with the same key is answered with the first event's id
/// instead of being counted again. A key belongs to whoever sent it (`scope`: `shop`, or
/// `member:<member id>` for a member token), so one caller's key never matches another's.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE event_idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL CHECK (octet_length(key) BETWEEN 1 AND 128),
    -- The event id answered the first time (the outbox row's, which may since have been
    -- deleted by the outbox retention).
    event_id     UUID NOT NULL UNIQUE,
    -- SHA-256 of the event the key was first used for: the same key with another event is
    -- refused.
    request_hash TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "DROP TABLE event_idempotency_keys;").await
    }
}
