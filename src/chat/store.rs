//! The conversation tables: conversations and their messages, written together with their
//! outbox rows so an event exists exactly when the message does.

use crate::db::members::ensure_member;
use crate::events::envelope::{Envelope, EventType};
use crate::events::outbox;
use crate::identity::MemberId;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, QueryResult, Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

/// Longest stored conversation title, in characters (titles default to the first message).
pub const MAX_TITLE_CHARS: usize = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Conversation {
    pub id: Uuid,
    pub member_id: String,
    pub title: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Conversation {
    fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        Ok(Self {
            id: row.try_get("", "id")?,
            member_id: row.try_get("", "member_id")?,
            title: row.try_get("", "title")?,
            created_at: row.try_get("", "created_at")?,
            updated_at: row.try_get("", "updated_at")?,
        })
    }
}

/// A stored message as clients see it (the embedding stays in the database).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredMessage {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub role: Role,
    pub text: String,
    /// The analysed intent (assistant messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub intent: Option<Value>,
    /// The recommended products (assistant messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub products: Option<Value>,
    /// The client's id for the message (user messages sent with one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The user message this one answers (assistant messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl StoredMessage {
    fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        let role: String = row.try_get("", "role")?;
        Ok(Self {
            id: row.try_get("", "id")?,
            conversation_id: row.try_get("", "conversation_id")?,
            role: if role == "assistant" {
                Role::Assistant
            } else {
                Role::User
            },
            text: row.try_get("", "content")?,
            intent: row.try_get("", "intent")?,
            products: row.try_get("", "products")?,
            client_id: row.try_get("", "client_message_id")?,
            in_reply_to: row.try_get("", "reply_to")?,
            created_at: row.try_get("", "created_at")?,
        })
    }
}

const CONVERSATION_COLUMNS: &str = "id, member_id, title, created_at, updated_at";
const MESSAGE_COLUMNS: &str =
    "id, conversation_id, role, content, intent, products, client_message_id, reply_to, created_at";

/// A title from free text: trimmed, one line, at most [`MAX_TITLE_CHARS`].
pub fn title_from(text: &str) -> Option<String> {
    // Control characters (NUL included, which PostgreSQL refuses) become spaces.
    let printable: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one_line: String = printable.split_whitespace().collect::<Vec<_>>().join(" ");
    let title: String = one_line.chars().take(MAX_TITLE_CHARS).collect();
    (!title.is_empty()).then_some(title)
}

/// Creates a conversation for `member_id` (and the member on first use).
pub async fn create_conversation(
    db: &DatabaseConnection,
    member_id: &MemberId,
    title: Option<String>,
) -> Result<Conversation, DbErr> {
    let txn = db.begin().await?;
    ensure_member(&txn, member_id).await?;
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            format!(
                "INSERT INTO conversations (id, member_id, title) VALUES ($1, $2, $3) \
                 RETURNING {CONVERSATION_COLUMNS}"
            ),
            [
                Uuid::now_v7().into(),
                member_id.as_str().into(),
                title.into(),
            ],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotInserted)?;
    let conversation = Conversation::from_row(&row)?;
    txn.commit().await?;
    Ok(conversation)
}

pub async fn find_conversation(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<Conversation>, DbErr> {
    db.query_one_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1"),
        [id.into()],
    ))
    .await?
    .map(|row| Conversation::from_row(&row))
    .transpose()
}

/// Where a page of conversations starts: strictly older than this (updated_at, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationCursor {
    pub updated_at: DateTime<Utc>,
    pub id: Uuid,
}

impl ConversationCursor {
    /// `{microseconds since the epoch}.{uuid}`: opaque to clients, readable in logs.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.updated_at.timestamp_micros(), self.id)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('.')?;
        Some(Self {
            updated_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: id.parse().ok()?,
        })
    }
}

/// The member's conversations, most recently active first; `limit + 1` are read so the
/// caller knows whether there is another page.
pub async fn list_conversations(
    db: &DatabaseConnection,
    member_id: &str,
    after: Option<ConversationCursor>,
    limit: u64,
) -> Result<Vec<Conversation>, DbErr> {
    let backend = db.get_database_backend();
    let statement = match after {
        None => Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE member_id = $1 \
                 ORDER BY updated_at DESC, id DESC LIMIT $2"
            ),
            [member_id.into(), (limit as i64).into()],
        ),
        Some(cursor) => Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE member_id = $1 \
                 AND (updated_at, id) < ($2, $3) \
                 ORDER BY updated_at DESC, id DESC LIMIT $4"
            ),
            [
                member_id.into(),
                cursor.updated_at.into(),
                cursor.id.into(),
                (limit as i64).into(),
            ],
        ),
    };
    db.query_all_raw(statement)
        .await?
        .iter()
        .map(Conversation::from_row)
        .collect()
}

/// Up to `limit` messages of a conversation older than message `before` (all when `None`),
/// newest first.
pub async fn list_messages(
    db: &DatabaseConnection,
    conversation_id: Uuid,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<StoredMessage>, DbErr> {
    let backend = db.get_database_backend();
    let statement = match before {
        None => Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT {MESSAGE_COLUMNS} FROM conversation_messages WHERE conversation_id = $1 \
                 ORDER BY created_at DESC, id DESC LIMIT $2"
            ),
            [conversation_id.into(), (limit as i64).into()],
        ),
        Some(before) => Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT {MESSAGE_COLUMNS} FROM conversation_messages m WHERE conversation_id = $1 \
                 AND (created_at, id) < (SELECT created_at, id FROM conversation_messages \
                                         WHERE id = $2 AND conversation_id = $1) \
                 ORDER BY created_at DESC, id DESC LIMIT $3"
            ),
            [conversation_id.into(), before.into(), (limit as i64).into()],
        ),
    };
    db.query_all_raw(statement)
        .await?
        .iter()
        .map(StoredMessage::from_row)
        .collect()
}

/// Whether `message_id` is a message of `conversation_id` (a `before=` cursor must be).
pub async fn message_exists(
    db: &DatabaseConnection,
    conversation_id: Uuid,
    message_id: Uuid,
) -> Result<bool, DbErr> {
    Ok(db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT 1 AS found FROM conversation_messages WHERE id = $1 AND conversation_id = $2",
            [message_id.into(), conversation_id.into()],
        ))
        .await?
        .is_some())
}

/// What a new message carries besides its text.
#[derive(Debug, Clone, Default)]
pub struct MessageExtras {
    pub intent: Option<Value>,
    pub products: Option<Value>,
    /// The client's id for a user message: unique per member.
    pub client_id: Option<String>,
    /// The user message an assistant message answers: at most one answer each.
    pub reply_to: Option<Uuid>,
}

/// What [`insert_message`] did.
#[derive(Debug, Clone)]
pub enum Inserted {
    /// The message is new (and its event enqueued).
    New(StoredMessage),
    /// A message with the same client id (user) or answering the same message (assistant)
    /// was already stored: nothing was written, this is the stored one.
    Existing(StoredMessage),
}

impl Inserted {
    pub fn into_message(self) -> StoredMessage {
        match self {
            Inserted::New(message) | Inserted::Existing(message) => message,
        }
    }
}

/// Stores one message, bumps the conversation's `updated_at` and enqueues its
/// `conversation.message.created` event, all in one transaction. A user message is claimed
/// for answering now; an assistant message marks the message it answers as answered. A
/// message whose client id (per member) or `reply_to` is taken is not stored twice: the stored
/// one comes back as [`Inserted::Existing`] and nothing is written.
pub async fn insert_message(
    db: &DatabaseConnection,
    conversation: &Conversation,
    role: Role,
    text: &str,
    extras: MessageExtras,
) -> Result<Inserted, DbErr> {
    // The member row exists: the conversation references it.
    let txn = db.begin().await?;
    let id = Uuid::now_v7();
    let (client_id, reply_to) = (extras.client_id.clone(), extras.reply_to);
    // clock_timestamp(), not now(): two messages of one turn must not share a timestamp.
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            format!(
                "INSERT INTO conversation_messages \
                 (id, conversation_id, member_id, role, content, intent, products, \
                  client_message_id, reply_to, answer_claimed_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                         CASE WHEN $4 = 'user' THEN clock_timestamp() END, clock_timestamp()) \
                 ON CONFLICT DO NOTHING RETURNING {MESSAGE_COLUMNS}"
            ),
            [
                id.into(),
                conversation.id.into(),
                conversation.member_id.as_str().into(),
                role.as_str().into(),
                text.into(),
                extras.intent.into(),
                extras.products.into(),
                client_id.clone().into(),
                reply_to.into(),
            ],
        ))
        .await?;
    let Some(row) = row else {
        txn.rollback().await?;
        let existing = match (reply_to, client_id) {
            (Some(answered), _) => find_reply(db, answered).await?,
            (None, Some(client_id)) => {
                find_by_client_id(db, &conversation.member_id, &client_id).await?
            }
            (None, None) => None,
        };
        return existing
            .map(Inserted::Existing)
            .ok_or(DbErr::RecordNotInserted);
    };
    let message = StoredMessage::from_row(&row)?;
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        "UPDATE conversations SET updated_at = $2 WHERE id = $1",
        [conversation.id.into(), message.created_at.into()],
    ))
    .await?;
    if let Some(answered) = reply_to {
        txn.execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "UPDATE conversation_messages SET answered_at = $2, answer_failed = NULL \
             WHERE id = $1",
            [answered.into(), message.created_at.into()],
        ))
        .await?;
    }
    let event = Envelope::new(
        EventType::ConversationMessageCreated,
        &conversation.member_id,
        json!({
            "conversation_id": conversation.id,
            "message_id": message.id,
            "role": role.as_str(),
            "text": text,
        }),
    );
    outbox::enqueue(&txn, &event).await?;
    txn.commit().await?;
    Ok(Inserted::New(message))
}

/// The member's user message sent with `client_id`, if any.
pub async fn find_by_client_id(
    db: &impl ConnectionTrait,
    member_id: &str,
    client_id: &str,
) -> Result<Option<StoredMessage>, DbErr> {
    db.query_one_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        format!(
            "SELECT {MESSAGE_COLUMNS} FROM conversation_messages \
             WHERE member_id = $1 AND client_message_id = $2"
        ),
        [member_id.into(), client_id.into()],
    ))
    .await?
    .as_ref()
    .map(StoredMessage::from_row)
    .transpose()
}

/// The stored answer to user message `message_id`, if any.
pub async fn find_reply(
    db: &impl ConnectionTrait,
    message_id: Uuid,
) -> Result<Option<StoredMessage>, DbErr> {
    db.query_one_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        format!("SELECT {MESSAGE_COLUMNS} FROM conversation_messages WHERE reply_to = $1"),
        [message_id.into()],
    ))
    .await?
    .as_ref()
    .map(StoredMessage::from_row)
    .transpose()
}

/// Records that answering `message_id` failed in front of the shopper (who was told, with
/// `code`): the sweeper leaves it; a retry with its client id answers it.
pub async fn mark_answer_failed(
    db: &DatabaseConnection,
    message_id: Uuid,
    code: &str,
) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE conversation_messages SET answer_failed = $2 \
         WHERE id = $1 AND answered_at IS NULL",
        [message_id.into(), code.into()],
    ))
    .await?;
    Ok(())
}

/// Up to `limit` user messages a crash left unanswered: claimed for answering more than
/// `claimed_before_secs` ago, neither answered nor failed in front of the shopper, younger
/// than `within_secs` and tried fewer than `max_attempts` times by the sweeper. Each is
/// claimed again (so another instance's sweeper skips it for as long) and returned with its
/// conversation.
pub async fn claim_unanswered(
    db: &DatabaseConnection,
    claimed_before_secs: u64,
    within_secs: u64,
    max_attempts: u32,
    limit: u64,
) -> Result<Vec<(Conversation, StoredMessage)>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            format!(
                "WITH due AS ( \
                     SELECT id FROM conversation_messages \
                     WHERE role = 'user' AND answered_at IS NULL AND answer_failed IS NULL \
                       AND answer_claimed_at < now() - make_interval(secs => $1) \
                       AND created_at > now() - make_interval(secs => $2) \
                       AND answer_attempts < $3 \
                     ORDER BY answer_claimed_at LIMIT $4 FOR UPDATE SKIP LOCKED), \
                 claimed AS ( \
                     UPDATE conversation_messages m \
                     SET answer_claimed_at = clock_timestamp(), \
                         answer_attempts = m.answer_attempts + 1 \
                     FROM due WHERE m.id = due.id \
                     RETURNING m.* ) \
                 SELECT {message}, c.id AS c_id, c.member_id AS c_member_id, \
                        c.title AS c_title, c.created_at AS c_created_at, \
                        c.updated_at AS c_updated_at \
                 FROM claimed JOIN conversations c ON c.id = claimed.conversation_id \
                 ORDER BY claimed.created_at",
                message = MESSAGE_COLUMNS
                    .split(", ")
                    .map(|column| format!("claimed.{column}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            [
                (claimed_before_secs as f64).into(),
                (within_secs as f64).into(),
                (max_attempts as i32).into(),
                (limit as i64).into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            let conversation = Conversation {
                id: row.try_get("", "c_id")?,
                member_id: row.try_get("", "c_member_id")?,
                title: row.try_get("", "c_title")?,
                created_at: row.try_get("", "c_created_at")?,
                updated_at: row.try_get("", "c_updated_at")?,
            };
            Ok((conversation, StoredMessage::from_row(row)?))
        })
        .collect()
}

pub async fn set_embedding(
    db: &DatabaseConnection,
    message_id: Uuid,
    embedding: Vec<f32>,
    model_id: &str,
) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE conversation_messages SET embedding = $2, embedding_model = $3 WHERE id = $1",
        [
            message_id.into(),
            pgvector::Vector::from(embedding).into(),
            model_id.into(),
        ],
    ))
    .await?;
    Ok(())
}

pub async fn set_intent(
    db: &DatabaseConnection,
    message_id: Uuid,
    intent: Value,
) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE conversation_messages SET intent = $2 WHERE id = $1",
        [message_id.into(), intent.into()],
    ))
    .await?;
    Ok(())
}

/// The intent of the conversation's latest analysed user message other than `except`.
pub async fn latest_intent(
    db: &DatabaseConnection,
    conversation_id: Uuid,
    except: Uuid,
) -> Result<Option<Value>, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT intent FROM conversation_messages \
             WHERE conversation_id = $1 AND role = 'user' AND intent IS NOT NULL AND id <> $2 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
            [conversation_id.into(), except.into()],
        ))
        .await?;
    row.map(|r| r.try_get("", "intent")).transpose()
}

/// What a chat turn reads and writes: PostgreSQL in the service (the functions above, through
/// `DatabaseConnection`), an in-memory store in the pipeline's unit tests.
pub trait TurnStore: Send + Sync {
    fn insert_message<'a>(
        &'a self,
        conversation: &'a Conversation,
        role: Role,
        text: &'a str,
        extras: MessageExtras,
    ) -> BoxFuture<'a, Result<Inserted, DbErr>>;

    fn set_embedding<'a>(
        &'a self,
        message_id: Uuid,
        embedding: Vec<f32>,
        model_id: &'a str,
    ) -> BoxFuture<'a, Result<(), DbErr>>;

    fn set_intent(&self, message_id: Uuid, intent: Value) -> BoxFuture<'_, Result<(), DbErr>>;

    /// The intent of the conversation's latest analysed message other than `except`.
    fn latest_intent(
        &self,
        conversation_id: Uuid,
        except: Uuid,
    ) -> BoxFuture<'_, Result<Option<Value>, DbErr>>;

    /// The stored answer to a user message.
    fn find_reply(&self, message_id: Uuid) -> BoxFuture<'_, Result<Option<StoredMessage>, DbErr>>;

    /// See [`mark_answer_failed`].
    fn mark_answer_failed<'a>(
        &'a self,
        message_id: Uuid,
        code: &'a str,
    ) -> BoxFuture<'a, Result<(), DbErr>>;

    /// See [`claim_unanswered`].
    fn claim_unanswered(
        &self,
        claimed_before_secs: u64,
        within_secs: u64,
        max_attempts: u32,
        limit: u64,
    ) -> BoxFuture<'_, Result<Vec<(Conversation, StoredMessage)>, DbErr>>;
}

impl TurnStore for DatabaseConnection {
    fn insert_message<'a>(
        &'a self,
        conversation: &'a Conversation,
        role: Role,
        text: &'a str,
        extras: MessageExtras,
    ) -> BoxFuture<'a, Result<Inserted, DbErr>> {
        Box::pin(insert_message(self, conversation, role, text, extras))
    }

    fn set_embedding<'a>(
        &'a self,
        message_id: Uuid,
        embedding: Vec<f32>,
        model_id: &'a str,
    ) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(set_embedding(self, message_id, embedding, model_id))
    }

    fn set_intent(&self, message_id: Uuid, intent: Value) -> BoxFuture<'_, Result<(), DbErr>> {
        Box::pin(set_intent(self, message_id, intent))
    }

    fn latest_intent(
        &self,
        conversation_id: Uuid,
        except: Uuid,
    ) -> BoxFuture<'_, Result<Option<Value>, DbErr>> {
        Box::pin(latest_intent(self, conversation_id, except))
    }

    fn find_reply(&self, message_id: Uuid) -> BoxFuture<'_, Result<Option<StoredMessage>, DbErr>> {
        Box::pin(find_reply(self, message_id))
    }

    fn mark_answer_failed<'a>(
        &'a self,
        message_id: Uuid,
        code: &'a str,
    ) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(mark_answer_failed(self, message_id, code))
    }

    fn claim_unanswered(
        &self,
        claimed_before_secs: u64,
        within_secs: u64,
        max_attempts: u32,
        limit: u64,
    ) -> BoxFuture<'_, Result<Vec<(Conversation, StoredMessage)>, DbErr>> {
        Box::pin(claim_unanswered(
            self,
            claimed_before_secs,
            within_secs,
            max_attempts,
            limit,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = ConversationCursor {
            updated_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(ConversationCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(ConversationCursor::decode("nonsense"), None);
        assert_eq!(ConversationCursor::decode("12.not-a-uuid"), None);
    }

    #[test]
    fn titles_are_one_trimmed_line_of_bounded_length() {
        assert_eq!(title_from("  겨울 \n 패딩  "), Some("겨울 패딩".into()));
        assert_eq!(title_from("   "), None);
        assert_eq!(
            title_from(&"가".repeat(200)).unwrap().chars().count(),
            MAX_TITLE_CHARS
        );
    }
}
