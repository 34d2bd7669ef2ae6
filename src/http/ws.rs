//! `GET /ws?token=…[&conversation=…]`: opens a member's chat socket. The token travels in the
//! query because browsers cannot set headers on a WebSocket; `conversation` resumes one (its
//! history is the first frame). Refusals happen before the upgrade, as JSON errors.

use crate::actors::chat_session::{ChatSession, SessionDeps};
use crate::chat::authorize_conversation;
use crate::http::auth::{caller_from_token, AuthError};
use crate::http::conversations::ConversationsError;
use crate::http::error::{error_response, ErrorBody};
use crate::http::AppState;
use crate::identity::{Caller, MemberTokens};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(open_socket));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SocketQuery {
    /// A member token (browsers cannot set headers on a WebSocket).
    #[serde(default)]
    token: Option<String>,
    /// Resume this conversation: its history is the first frame.
    #[serde(default)]
    conversation: Option<Uuid>,
}

/// Opens the chat WebSocket (a member token, in `?token=` or the `Authorization` header).
/// The frames are in docs/chat-protocol.md and their JSON Schema at `/ws-protocol.schema.json`.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "chat",
    params(SocketQuery),
    security(("member_token" = []), ("member_token_query" = [])),
    responses(
        (status = 101, description = "Switching Protocols: the socket is open"),
        (status = 400, description = "`invalid_query`, or not a WebSocket upgrade request", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the service token, or another member's conversation", body = ErrorBody),
        (status = 404, description = "`not_found`: no such conversation", body = ErrorBody),
        (status = 429, description = "`rate_limited`, or `too_many_sockets`: the member has `rate_limit.max_sockets_per_member` sockets open", body = ErrorBody),
    )
)]
async fn open_socket(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
    query: web::Query<SocketQuery>,
) -> Result<HttpResponse, actix_web::Error> {
    let query = query.into_inner();
    let token = query
        .token
        .as_deref()
        .or_else(|| crate::http::auth::bearer_token(&req))
        .ok_or(AuthError::MissingToken)?;
    let caller = caller_from_token(token, &state.settings.security, &state.tokens)?;
    let Caller::Member(member_id) = caller.clone() else {
        return Err(ConversationsError::MemberOnly.into());
    };
    // The socket ends when its token does (close code 4001, docs/chat-protocol.md).
    let expires_in = state
        .tokens
        .verify_until(token)
        .map(|(_, exp)| MemberTokens::time_left(exp))
        .map_err(AuthError::from)?;
    let resume = match query.conversation {
        None => None,
        Some(id) => Some(
            authorize_conversation(&state.db, &caller, id)
                .await
                .map_err(ConversationsError::from)?,
        ),
    };
    let member = member_id.clone();
    let session = ChatSession::new(
        member_id,
        resume,
        SessionDeps {
            pipeline: state.chat.pipeline.clone(),
            limiter: state.limiter.clone(),
            db: state.db.clone(),
            metrics: state.chat.metrics.clone(),
            settings: state.settings.chat.clone(),
        },
        expires_in,
    );
    // At most `rate_limit.max_sockets_per_member` open sockets per member, all instances
    // together: one token must not hold every session slot.
    let socket_id = session.id().to_string();
    if let Err(refused) = state.limiter.open_socket(member.as_str(), &socket_id).await {
        return Ok(error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_sockets",
            format!(
                "this member already has {} chat sockets open; close one first",
                refused.max
            ),
            vec![],
        ));
    }
    let max_frame_bytes = state.settings.chat.max_frame_bytes;
    let stream = crate::chat::frame_guard::FrameSizeGuard::new(stream, max_frame_bytes);
    let started = ws::WsResponseBuilder::new(session, &req, stream)
        .frame_size(max_frame_bytes)
        .start();
    if started.is_err() {
        state
            .limiter
            .close_socket(member.as_str(), &socket_id)
            .await;
    }
    started
}
