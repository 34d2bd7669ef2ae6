//! Conversations over REST: a member starts and lists their conversations, pages through
//! their messages and sends a message (the same pipeline as the chat socket, answered in one
//! response). The shop's service token may read any member's conversations.

use crate::analysis::ReplyLanguage;
use crate::chat::pipeline::Accepted;
use crate::chat::protocol::check_client_id;
use crate::chat::store::{self, ConversationCursor, StoredMessage};
use crate::chat::{authorize_conversation, validate_text, ChatError, Reply};
use crate::errors::{ErrorKind, PublicError};
use crate::http::auth::AuthError;
use crate::http::error::respond_by_kind;
use crate::http::error::ErrorBody;
use crate::http::optional_json::JsonObject;
use crate::http::optional_json::OptionalJson;
use crate::http::AppState;
use crate::identity::{Caller, MemberId};
use crate::intent::AnalyzedIntent;
use crate::recommend::RecommendedProduct;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/conversations", web::post().to(create_conversation))
        .route("/api/conversations", web::get().to(list_conversations))
        .route(
            "/api/conversations/{id}/messages",
            web::get().to(list_messages),
        )
        .route(
            "/api/conversations/{id}/messages",
            web::post().to(post_message),
        );
}

/// Conversations and messages per page when `limit` is not given.
const DEFAULT_PAGE_SIZE: u64 = 20;

respond_by_kind!(ChatError, ConversationsError);

/// Errors of this module: authentication, the chat's own, and bad query parameters.
#[derive(Debug, thiserror::Error)]
pub enum ConversationsError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// A chat error about a shopper's message: its public message in that message's language.
    #[error("{error}")]
    ChatIn {
        error: ChatError,
        language: ReplyLanguage,
    },
    #[error("{0}")]
    InvalidParameter(String),
    #[error("only a member token can do this (the shop reads, members write)")]
    MemberOnly,
}

impl From<sea_orm::DbErr> for ConversationsError {
    fn from(e: sea_orm::DbErr) -> Self {
        ConversationsError::Chat(ChatError::Database(e))
    }
}

impl PublicError for ConversationsError {
    fn kind(&self) -> ErrorKind {
        match self {
            ConversationsError::Auth(e) => e.kind(),
            ConversationsError::Chat(e) | ConversationsError::ChatIn { error: e, .. } => e.kind(),
            ConversationsError::InvalidParameter(_) => ErrorKind::BadRequest,
            ConversationsError::MemberOnly => ErrorKind::Forbidden,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ConversationsError::Auth(e) => e.code(),
            ConversationsError::Chat(e) | ConversationsError::ChatIn { error: e, .. } => e.code(),
            ConversationsError::InvalidParameter(_) => "invalid_parameter",
            ConversationsError::MemberOnly => "forbidden",
        }
    }

    fn public_message(&self) -> String {
        match self {
            ConversationsError::Chat(e) => e.public_message(),
            ConversationsError::ChatIn { error, language } => error.public_message_in(*language),
            other => other.to_string(),
        }
    }
}

fn page_size(limit: Option<u64>, state: &AppState) -> Result<u64, ConversationsError> {
    let max = state.settings.chat.max_page_size.max(1);
    match limit.unwrap_or(DEFAULT_PAGE_SIZE.min(max)) {
        0 => Err(ConversationsError::InvalidParameter(
            "limit must be at least 1".into(),
        )),
        n if n > max => Err(ConversationsError::InvalidParameter(format!(
            "limit must be at most {max}"
        ))),
        n => Ok(n),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateConversationBody {
    /// At most 200 characters; trimmed, blank means none.
    #[serde(default)]
    title: Option<String>,
}

/// Starts a conversation (a member token).
#[utoipa::path(
    post,
    path = "/api/conversations",
    tag = "conversations",
    request_body(content = Option<CreateConversationBody>, description = "Optional: a title"),
    security(("member_token" = [])),
    responses(
        (status = 201, description = "The new conversation", body = store::Conversation),
        (status = 400, description = "`invalid_parameter`: the title is too long", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the service token cannot start conversations", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(member = ?caller.member_id()))]
async fn create_conversation(
    state: web::Data<AppState>,
    caller: Caller,
    body: OptionalJson<CreateConversationBody>,
) -> Result<HttpResponse, ConversationsError> {
    let Caller::Member(member) = &caller else {
        return Err(ConversationsError::MemberOnly);
    };
    let title = match body.into_inner().and_then(|b| b.title) {
        None => None,
        Some(raw) if raw.chars().count() > store::MAX_TITLE_CHARS => {
            return Err(ConversationsError::InvalidParameter(format!(
                "title must be at most {} characters",
                store::MAX_TITLE_CHARS
            )))
        }
        Some(raw) => store::title_from(&raw),
    };
    let conversation = store::create_conversation(&state.db, member, title).await?;
    Ok(HttpResponse::Created().json(conversation))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListConversationsQuery {
    /// Page size, 1 to `chat.max_page_size` (default 20).
    #[serde(default)]
    #[param(minimum = 1)]
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    /// Whose conversations: the shop must say; a member may only name themselves.
    #[serde(default)]
    member_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ConversationPage {
    /// Most recently active first.
    conversations: Vec<store::Conversation>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// A member's conversations, most recently active first.
#[utoipa::path(
    get,
    path = "/api/conversations",
    tag = "conversations",
    params(ListConversationsQuery),
    security(("member_token" = []), ("service_token" = [])),
    responses(
        (status = 200, description = "One page", body = ConversationPage),
        (status = 400, description = "`invalid_parameter` (a bad limit or cursor; the service token must name `member_id`) or `invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: another member's conversations", body = ErrorBody),
    )
)]
async fn list_conversations(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListConversationsQuery>,
) -> Result<HttpResponse, ConversationsError> {
    let query = query.into_inner();
    let member = match (&caller, query.member_id) {
        (Caller::Member(own), None) => own.clone(),
        (_, Some(named)) => {
            let named = MemberId::parse(named)
                .map_err(|e| ConversationsError::InvalidParameter(format!("member_id: {e}")))?;
            crate::http::auth::require_access(&caller, &named)?;
            named
        }
        (Caller::Shop, None) => {
            return Err(ConversationsError::InvalidParameter(
                "the shop must name a member_id".into(),
            ))
        }
    };
    let limit = page_size(query.limit, &state)?;
    let cursor = match query.cursor.as_deref() {
        None => None,
        Some(text) => Some(ConversationCursor::decode(text).ok_or_else(|| {
            ConversationsError::InvalidParameter("cursor is not one this API returned".into())
        })?),
    };
    let mut conversations =
        store::list_conversations(&state.db, &member, cursor, limit + 1).await?;
    let next_cursor = if conversations.len() as u64 > limit {
        conversations.truncate(limit as usize);
        conversations.last().map(|c| {
            ConversationCursor {
                updated_at: c.updated_at,
                id: c.id,
            }
            .encode()
        })
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(ConversationPage {
        conversations,
        next_cursor,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListMessagesQuery {
    /// Page size, 1 to `chat.max_page_size` (default 20).
    #[serde(default)]
    #[param(minimum = 1)]
    limit: Option<u64>,
    /// Only messages older than this message (`next_before` of the previous page).
    #[serde(default)]
    before: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
struct MessagePage {
    /// Oldest first.
    messages: Vec<StoredMessage>,
    /// Pass as `before` for the page of older messages; absent on the oldest page.
    next_before: Option<Uuid>,
}

/// A conversation's messages, a page at a time from the newest (each page oldest first).
#[utoipa::path(
    get,
    path = "/api/conversations/{id}/messages",
    tag = "conversations",
    params(("id" = Uuid, Path, description = "The conversation id"), ListMessagesQuery),
    security(("member_token" = []), ("service_token" = [])),
    responses(
        (status = 200, description = "One page", body = MessagePage),
        (status = 400, description = "`invalid_parameter`, `invalid_query` or `invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: another member's conversation", body = ErrorBody),
        (status = 404, description = "`not_found`: no such conversation", body = ErrorBody),
    )
)]
async fn list_messages(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<ListMessagesQuery>,
) -> Result<HttpResponse, ConversationsError> {
    let conversation = authorize_conversation(&state.db, &caller, path.into_inner()).await?;
    let limit = page_size(query.limit, &state)?;
    if let Some(before) = query.before {
        if !store::message_exists(&state.db, conversation.id, before).await? {
            return Err(ConversationsError::InvalidParameter(
                "before is not a message of this conversation".into(),
            ));
        }
    }
    let mut messages =
        store::list_messages(&state.db, conversation.id, query.before, limit + 1).await?;
    let has_more = messages.len() as u64 > limit;
    messages.truncate(limit as usize);
    messages.reverse();
    let next_before = if has_more {
        messages.first().map(|m| m.id)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(MessagePage {
        messages,
        next_before,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PostMessageBody {
    /// The shopper's message (not blank, at most `chat.max_message_chars` characters).
    text: String,
    /// The client's id for this message (at most 64 bytes), unique per member: send the
    /// same id again after a failure or timeout and the stored message and reply come back
    /// instead of a second message (the same id with another text: 409 `client_id_reused`).
    #[serde(default)]
    client_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ReplyBody {
    message: StoredMessage,
    products: Vec<RecommendedProduct>,
    intent: AnalyzedIntent,
}

#[derive(Debug, Serialize, ToSchema)]
struct TurnBody {
    message: StoredMessage,
    reply: ReplyBody,
}

/// Sends a message and answers with the assistant's reply (the chat socket's pipeline, in one
/// response; a member token).
#[utoipa::path(
    post,
    path = "/api/conversations/{id}/messages",
    tag = "conversations",
    params(("id" = Uuid, Path, description = "The conversation id")),
    request_body = PostMessageBody,
    security(("member_token" = [])),
    responses(
        (status = 201, description = "The stored message and the reply", body = TurnBody),
        (status = 200, description = "A retry with a stored `client_id`: the message stored the first time and its reply (answered now if it had none)", body = TurnBody),
        (status = 400, description = "`invalid_message` (blank), `message_too_long` or `invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: another member's conversation, or the service token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such conversation", body = ErrorBody),
        (status = 409, description = "`client_id_reused`: the `client_id` was sent before with another text or conversation", body = ErrorBody),
        (status = 429, description = "`overloaded`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the model, the recommender or the database did not answer", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(member = ?caller.member_id(), conversation = %path))]
async fn post_message(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: JsonObject<PostMessageBody>,
) -> Result<HttpResponse, ConversationsError> {
    if caller.member_id().is_none() {
        return Err(ConversationsError::MemberOnly);
    }
    // Whatever goes wrong with the message is said in the message's language.
    let language = ReplyLanguage::detect(&body.text);
    let localized = |error: ChatError| ConversationsError::ChatIn { error, language };
    let conversation = authorize_conversation(&state.db, &caller, path.into_inner())
        .await
        .map_err(localized)?;
    let pipeline = state.chat.pipeline.clone();
    let text =
        validate_text(&body.text, state.settings.chat.max_message_chars).map_err(localized)?;
    let client_id = body.client_id.as_deref();
    if let Some(id) = client_id {
        check_client_id(id).map_err(ConversationsError::InvalidParameter)?;
    }
    let accepted = pipeline
        .accept(&conversation, text, client_id)
        .await
        .map_err(localized)?;
    let message = accepted.message().clone();
    let retry = matches!(accepted, Accepted::Retry { .. });
    // Answered on its own task: a client that disconnects does not cancel the turn (the
    // reply is stored, and a retry with the client id gets it).
    let answering = actix_web::rt::spawn(async move {
        let answer = pipeline.answer(&conversation, accepted).await;
        (conversation, answer)
    });
    let (_, answer) = answering.await.map_err(|e| {
        tracing::error!(error = %e, "chat turn task failed");
        localized(ChatError::Unavailable("the turn's task failed".into()))
    })?;
    let Reply {
        message: reply,
        products,
        intent,
    } = answer.map_err(localized)?;
    let mut response = if retry {
        HttpResponse::Ok()
    } else {
        HttpResponse::Created()
    };
    Ok(response.json(TurnBody {
        message,
        reply: ReplyBody {
            message: reply,
            products,
            intent,
        },
    }))
}
