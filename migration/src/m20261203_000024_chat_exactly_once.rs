use sea_orm_migration::prelude::*;

/// A chat turn answered exactly once (docs/chat-protocol.md, "Retries and recovery"):
/// - `client_message_id`: the client's id for a user message, unique per member, so a retry
///   finds the stored message instead of storing a duplicate;
/// - `reply_to`: the user message an assistant message answers, unique, so two instances that
///   answer the same message store one reply;
/// - `answered_at` / `answer_failed` / `answer_claimed_at` / `answer_attempts` on user
///   messages: what the recovery sweeper needs to find a message a crash left unanswered
///   (claimed long ago, neither answered nor failed in front of the shopper) and to give up on
///   one that keeps failing.
///
/// Messages stored before this migration count as settled: the sweeper never answers them.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
ALTER TABLE conversation_messages
    ADD COLUMN client_message_id TEXT,
    ADD COLUMN reply_to          UUID REFERENCES conversation_messages (id) ON DELETE CASCADE,
    ADD COLUMN answered_at       TIMESTAMPTZ,
    ADD COLUMN answer_failed     TEXT,
    ADD COLUMN answer_claimed_at TIMESTAMPTZ,
    ADD COLUMN answer_attempts   INTEGER NOT NULL DEFAULT 0;
UPDATE conversation_messages SET answered_at = created_at WHERE role = 'user';
CREATE UNIQUE INDEX conversation_messages_client_id_idx
    ON conversation_messages (member_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
CREATE UNIQUE INDEX conversation_messages_reply_to_idx
    ON conversation_messages (reply_to)
    WHERE reply_to IS NOT NULL;
CREATE INDEX conversation_messages_unanswered_idx
    ON conversation_messages (answer_claimed_at)
    WHERE role = 'user' AND answered_at IS NULL AND answer_failed IS NULL;
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
DROP INDEX conversation_messages_unanswered_idx;
DROP INDEX conversation_messages_reply_to_idx;
DROP INDEX conversation_messages_client_id_idx;
ALTER TABLE conversation_messages
    DROP COLUMN answer_attempts,
    DROP COLUMN answer_claimed_at,
    DROP COLUMN answer_failed,
    DROP COLUMN answered_at,
    DROP COLUMN reply_to,
    DROP COLUMN client_message_id;
"#,
        )
        .await
    }
}
