use sea_orm_migration::prelude::*;

/// What the consumer groups need: a record of the events each group applied (idempotency by
/// `event_id`) and a parking place for records no group can read (poison records).
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE processed_events (
    consumer_group TEXT NOT NULL,
    event_id       UUID NOT NULL,
    processed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, event_id)
);
CREATE INDEX processed_events_age_idx ON processed_events (processed_at);

CREATE TABLE parked_events (
    id             BIGSERIAL PRIMARY KEY,
    consumer_group TEXT NOT NULL,
    topic          TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset   BIGINT NOT NULL,
    key            TEXT,
    -- The record as received, lossily decoded to text when it is not UTF-8.
    payload        TEXT,
    error          TEXT NOT NULL,
    parked_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (consumer_group, topic, kafka_partition, kafka_offset)
);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP TABLE parked_events; DROP TABLE processed_events;",
        )
        .await
    }
}
