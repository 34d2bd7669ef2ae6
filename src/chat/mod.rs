//! The chat: conversations and their messages (store), the message pipeline shared by the
//! WebSocket sessions and the REST API, the socket's JSON frames (protocol) and its metrics.
//! The frame protocol is documented in docs/chat-protocol.md.

pub mod feedback;
pub mod frame_guard;
pub mod metrics;
pub mod pipeline;
pub mod protocol;
pub mod store;

pub use metrics::ChatMetrics;
pub use pipeline::{ChatPipeline, Reply};

use crate::analysis::ReplyLanguage;
use crate::embeddings::EmbeddingError;
use crate::errors::{ErrorKind, PublicError};
use crate::identity::Caller;
use crate::recommend::RecommendError;
use sea_orm::{DatabaseConnection, DbErr};
use std::sync::Arc;
use store::Conversation;
use uuid::Uuid;

/// What the chat keeps in the application state.
#[derive(Clone)]
pub struct ChatState {
    pub pipeline: Arc<ChatPipeline>,
    pub metrics: ChatMetrics,
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("the message is empty")]
    EmptyMessage,
    #[error("the message contains control characters (only tab and line breaks are allowed)")]
    ControlCharacters,
    #[error("the message has {chars} characters (at most {max})")]
    MessageTooLong { chars: usize, max: usize },
    #[error("no such conversation")]
    ConversationNotFound,
    #[error("this conversation belongs to another member")]
    Forbidden,
    #[error(
        "this client_id was already used for another message; send a new id with a new message"
    )]
    ClientIdReused,
    #[error("the chat is busy; try again shortly ({0})")]
    Overloaded(String),
    #[error("the chat is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

impl PublicError for ChatError {
    fn kind(&self) -> ErrorKind {
        match self {
            ChatError::EmptyMessage
            | ChatError::ControlCharacters
            | ChatError::MessageTooLong { .. } => ErrorKind::BadRequest,
            ChatError::ConversationNotFound => ErrorKind::NotFound,
            ChatError::Forbidden => ErrorKind::Forbidden,
            ChatError::ClientIdReused => ErrorKind::Conflict,
            ChatError::Overloaded(_) => ErrorKind::Overloaded,
            ChatError::Unavailable(_) => ErrorKind::Unavailable,
            ChatError::Database(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ChatError::EmptyMessage | ChatError::ControlCharacters => "invalid_message",
            ChatError::MessageTooLong { .. } => "message_too_long",
            ChatError::ConversationNotFound => "not_found",
            ChatError::Forbidden => "forbidden",
            ChatError::ClientIdReused => "client_id_reused",
            ChatError::Overloaded(_) => "overloaded",
            ChatError::Unavailable(_) => "unavailable",
            ChatError::Database(_) => "internal",
        }
    }

    /// The cause of an unavailable chat (a database or model error) goes to the log only.
    fn public_message(&self) -> String {
        match self {
            ChatError::Unavailable(_) => {
                "the chat cannot answer right now (a service it needs did not answer); try again shortly".into()
            }
            ChatError::Database(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

impl ChatError {
    /// What the shopper reads, in the language of their message (the code stays English).
    pub fn public_message_in(&self, language: ReplyLanguage) -> String {
        if language == ReplyLanguage::English {
            return self.public_message();
        }
        match self {
            ChatError::EmptyMessage => "메시지가 비어 있어요.".into(),
            ChatError::ControlCharacters => {
                "메시지에 쓸 수 없는 제어 문자가 있어요 (탭과 줄바꿈만 쓸 수 있어요).".into()
            }
            ChatError::MessageTooLong { chars, max } => {
                format!("메시지가 {chars}자예요. {max}자까지 보낼 수 있어요.")
            }
            ChatError::ConversationNotFound => "그런 대화가 없어요.".into(),
            ChatError::Forbidden => "다른 회원의 대화예요.".into(),
            ChatError::ClientIdReused => {
                "이 client_id는 다른 메시지에 이미 쓰였어요. 새 메시지에는 새 id를 보내 주세요.".into()
            }
            ChatError::Overloaded(_) => "지금 채팅이 붐벼요. 잠시 후 다시 보내 주세요.".into(),
            ChatError::Unavailable(_) => {
                "지금은 답변할 수 없어요 (필요한 서비스가 응답하지 않았어요). 잠시 후 다시 보내 주세요."
                    .into()
            }
            ChatError::Database(_) => "내부 오류가 생겼어요.".into(),
        }
    }
}

/// Messages the chat session itself refuses, in the shopper's language.
pub mod refusals {
    use crate::analysis::ReplyLanguage;

    pub fn rate_limited(language: ReplyLanguage, seconds: u64) -> String {
        match language {
            ReplyLanguage::Korean => {
                format!("메시지를 너무 많이 보냈어요. {seconds}초 뒤에 다시 보내 주세요.")
            }
            ReplyLanguage::English => format!("too many messages; try again in {seconds} s"),
        }
    }

    pub fn queue_full(language: ReplyLanguage, waiting: usize) -> String {
        match language {
            ReplyLanguage::Korean => {
                format!(
                    "답변을 기다리는 메시지가 {waiting}개 있어요. 답변을 받은 뒤에 보내 주세요."
                )
            }
            ReplyLanguage::English => {
                format!("{waiting} messages are already waiting; wait for their replies")
            }
        }
    }

    pub fn token_expired(language: ReplyLanguage) -> String {
        match language {
            ReplyLanguage::Korean => "로그인이 만료됐어요. 다시 연결해 주세요.".into(),
            ReplyLanguage::English => {
                "the member token has expired; reconnect with a new one".into()
            }
        }
    }

    pub fn not_processed(language: ReplyLanguage) -> String {
        match language {
            ReplyLanguage::Korean => "메시지를 처리하지 못했어요.".into(),
            ReplyLanguage::English => "the message could not be processed".into(),
        }
    }
}

impl From<EmbeddingError> for ChatError {
    fn from(e: EmbeddingError) -> Self {
        match e {
            EmbeddingError::Overloaded { .. } => ChatError::Overloaded(e.to_string()),
            EmbeddingError::Unavailable | EmbeddingError::Failed(_) => {
                ChatError::Unavailable(e.to_string())
            }
        }
    }
}

impl From<RecommendError> for ChatError {
    fn from(e: RecommendError) -> Self {
        match e {
            RecommendError::Overloaded => ChatError::Overloaded(e.to_string()),
            RecommendError::Unavailable(_) | RecommendError::Invalid(_) => {
                ChatError::Unavailable(e.to_string())
            }
        }
    }
}

/// The conversation `id` if `caller` may see it: unknown → not found, another member's →
/// forbidden (the shop may see every conversation).
pub async fn authorize_conversation(
    db: &DatabaseConnection,
    caller: &Caller,
    id: Uuid,
) -> Result<Conversation, ChatError> {
    let conversation = store::find_conversation(db, id)
        .await?
        .ok_or(ChatError::ConversationNotFound)?;
    if caller.may_access(&conversation.member_id) {
        Ok(conversation)
    } else {
        Err(ChatError::Forbidden)
    }
}

/// The trimmed text of a message, or why it is refused.
pub fn validate_text(text: &str, max_chars: usize) -> Result<&str, ChatError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ChatError::EmptyMessage);
    }
    // PostgreSQL text cannot hold NUL: refused here as bad input rather than failing the insert.
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ChatError::ControlCharacters);
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(ChatError::MessageTooLong {
            chars,
            max: max_chars,
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_trimmed_and_bounded_in_characters_not_bytes() {
        assert_eq!(validate_text("  패딩 추천  ", 5).unwrap(), "패딩 추천");
        assert!(matches!(
            validate_text(" \n ", 5),
            Err(ChatError::EmptyMessage)
        ));
        assert!(matches!(
            validate_text("a\0b", 5),
            Err(ChatError::ControlCharacters)
        ));
        assert_eq!(validate_text("a\nb\tc", 5).unwrap(), "a\nb\tc");
        assert!(matches!(
            validate_text("가나다라마바", 5),
            Err(ChatError::MessageTooLong { chars: 6, max: 5 })
        ));
    }
}
