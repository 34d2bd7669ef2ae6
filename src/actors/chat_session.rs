//! `ChatSession`: one shopper's WebSocket. It parses the JSON frames (docs/chat-protocol.md),
//! queues messages (bounded: a flood is answered with `overloaded` error frames, not with
//! memory), runs them through the [`ChatPipeline`] one at a time so replies keep their order,
//! and pushes `ack`, `typing` and `reply` frames as the turn progresses. A turn that fails,
//! panics included, becomes an `error` frame and is counted; the session goes on.

use crate::analysis::ReplyLanguage;
use crate::chat::protocol::{parse_client_frame, ClientFrame, ServerFrame};
use crate::chat::refusals;
use crate::chat::store::{self, Conversation};
use crate::chat::{authorize_conversation, validate_text, ChatError, ChatMetrics, ChatPipeline};
use crate::config::ChatSettings;
use crate::errors::PublicError;
use crate::identity::{Caller, MemberId};
use crate::rate_limit::RateLimiter;
use actix::prelude::*;
use actix_web_actors::ws;
use futures::FutureExt;
use sea_orm::DatabaseConnection;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A message waiting for the pipeline.
struct QueuedMessage {
    text: String,
    conversation_id: Option<Uuid>,
    client_id: Option<String>,
}

pub struct ChatSession {
    id: Uuid,
    member_id: MemberId,
    /// Where messages without a `conversation_id` go; set by resume or by the first message.
    conversation: Option<Conversation>,
    /// The conversation to resume when the socket opens (`/ws?conversation=`), already
    /// checked to be the member's.
    resume_on_start: Option<Conversation>,
    pipeline: Arc<ChatPipeline>,
    db: DatabaseConnection,
    metrics: ChatMetrics,
    settings: ChatSettings,
    queue: VecDeque<QueuedMessage>,
    /// A turn is in the pipeline.
    busy: bool,
    last_heard: Instant,
    limiter: Arc<RateLimiter>,
    /// The language of the shopper's last message, for what the session says unprompted.
    language: ReplyLanguage,
    /// When the member token the socket was opened with expires.
    token_expires_in: Duration,
}

/// The close code of a socket whose member token expired (4000–4999: the application's).
pub const TOKEN_EXPIRED_CLOSE_CODE: u16 = 4001;

/// What a session needs besides its member.
pub struct SessionDeps {
    pub pipeline: Arc<ChatPipeline>,
    /// Every message counts against the member's rate limit, as a REST message does.
    pub limiter: Arc<RateLimiter>,
    pub db: DatabaseConnection,
    pub metrics: ChatMetrics,
    pub settings: ChatSettings,
}

impl ChatSession {
    pub fn new(
        member_id: MemberId,
        resume: Option<Conversation>,
        deps: SessionDeps,
        token_expires_in: Duration,
    ) -> Self {
        Self {
            id: Uuid::new_v4(),
            member_id,
            conversation: None,
            resume_on_start: resume,
            pipeline: deps.pipeline,
            limiter: deps.limiter,
            language: ReplyLanguage::default(),
            db: deps.db,
            metrics: deps.metrics,
            settings: deps.settings,
            queue: VecDeque::new(),
            busy: false,
            last_heard: Instant::now(),
            token_expires_in,
        }
    }

    /// The socket's id (its entry under the member's socket cap).
    pub fn id(&self) -> Uuid {
        self.id
    }

    fn send(ctx: &mut ws::WebsocketContext<Self>, frame: &ServerFrame) {
        ctx.text(frame.to_json());
    }

    fn reject(
        &self,
        ctx: &mut ws::WebsocketContext<Self>,
        code: &'static str,
        message: impl Into<String>,
        client_id: Option<String>,
    ) {
        self.metrics
            .frames_rejected
            .with_label_values(&[code])
            .inc();
        Self::send(ctx, &ServerFrame::error(code, message, client_id));
    }

    fn heartbeat(&self, ctx: &mut ws::WebsocketContext<Self>) {
        let interval = Duration::from_secs(self.settings.heartbeat_interval_secs.max(1));
        let timeout = Duration::from_secs(self.settings.client_timeout_secs.max(1));
        ctx.run_interval(interval, move |session, ctx| {
            if session.last_heard.elapsed() > timeout {
                tracing::info!(session = %session.id, "chat socket timed out");
                ctx.close(Some(ws::CloseReason {
                    code: ws::CloseCode::Away,
                    description: Some("heartbeat timeout".into()),
                }));
                ctx.stop();
            } else {
                ctx.ping(b"");
                // Keeps this socket counted under the member's cap on every instance.
                let limiter = session.limiter.clone();
                let member = session.member_id.as_str().to_string();
                let socket = session.id.to_string();
                actix::spawn(async move { limiter.socket_alive(&member, &socket).await });
            }
        });
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let frame = match parse_client_frame(text) {
            Ok(frame) => frame,
            Err((code, message)) => return self.reject(ctx, code, message, None),
        };
        match frame {
            ClientFrame::Ping => Self::send(ctx, &ServerFrame::Pong),
            ClientFrame::Resume { conversation_id } => self.resume(conversation_id, ctx),
            ClientFrame::Message {
                text,
                conversation_id,
                client_id,
            } => {
                // Refusals of a message are in the message's language.
                let language = ReplyLanguage::detect(&text);
                self.language = language;
                let text = match validate_text(&text, self.settings.max_message_chars) {
                    Ok(text) => text.to_string(),
                    Err(e) => {
                        return self.reject(ctx, e.code(), e.public_message_in(language), client_id)
                    }
                };
                // The member's rate limit (shared by every instance, and with REST): over it
                // the message is refused with `rate_limited` and the socket stays open.
                // `wait` holds the session's later frames until the check answers, so
                // messages keep their order.
                let limiter = self.limiter.clone();
                let member = self.member_id.as_str().to_string();
                ctx.wait(
                    async move { limiter.check_member(&member).await }
                        .into_actor(self)
                        .map(move |allowed, session, ctx| match allowed {
                            Ok(()) => session.enqueue(text, conversation_id, client_id, ctx),
                            Err(wait) => {
                                let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
                                session.reject(
                                    ctx,
                                    "rate_limited",
                                    refusals::rate_limited(language, seconds),
                                    client_id,
                                );
                            }
                        }),
                );
            }
        }
    }

    fn enqueue(
        &mut self,
        text: String,
        conversation_id: Option<Uuid>,
        client_id: Option<String>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        if self.queue.len() >= self.settings.session_queue_capacity {
            let language = ReplyLanguage::detect(&text);
            return self.reject(
                ctx,
                "overloaded",
                refusals::queue_full(language, self.queue.len()),
                client_id,
            );
        }
        self.queue.push_back(QueuedMessage {
            text,
            conversation_id,
            client_id,
        });
        self.start_next_turn(ctx);
    }

    /// Checks the conversation is the member's, makes it current and sends its history.
    fn resume(&mut self, conversation_id: Uuid, ctx: &mut ws::WebsocketContext<Self>) {
        let db = self.db.clone();
        let caller = Caller::Member(self.member_id.clone());
        let fut = async move { authorize_conversation(&db, &caller, conversation_id).await };
        ctx.spawn(
            fut.into_actor(self)
                .map(|result, session, ctx| match result {
                    Ok(conversation) => session.send_history(conversation, ctx),
                    Err(e) => session.reject(ctx, e.code(), e.public_message(), None),
                }),
        );
    }

    fn send_history(&mut self, conversation: Conversation, ctx: &mut ws::WebsocketContext<Self>) {
        self.conversation = Some(conversation.clone());
        let db = self.db.clone();
        let limit = self.settings.history_limit;
        let fut = async move { store::list_messages(&db, conversation.id, None, limit + 1).await };
        let conversation_id = self.conversation.as_ref().map(|c| c.id);
        ctx.spawn(fut.into_actor(self).map(move |result, session, ctx| {
            let conversation_id = conversation_id.expect("set above");
            match result {
                Ok(mut messages) => {
                    let has_more = messages.len() as u64 > limit;
                    messages.truncate(limit as usize);
                    messages.reverse();
                    Self::send(
                        ctx,
                        &ServerFrame::History {
                            conversation_id,
                            messages,
                            has_more,
                        },
                    );
                }
                Err(e) => {
                    tracing::error!(session = %session.id, error = %e, "loading chat history failed");
                    session
                        .metrics
                        .session_failures
                        .with_label_values(&["error"])
                        .inc();
                    Self::send(
                        ctx,
                        &ServerFrame::error("internal", "could not load the history", None),
                    );
                }
            }
        }));
    }

    /// Starts the oldest queued message unless a turn is running.
    fn start_next_turn(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.busy {
            return;
        }
        let Some(queued) = self.queue.pop_front() else {
            return;
        };
        let pipeline = self.pipeline.clone();
        self.busy = true;
        let turn = Turn {
            session: ctx.address(),
            session_id: self.id,
            member_id: self.member_id.clone(),
            current: self.conversation.clone(),
            db: self.db.clone(),
            pipeline,
            metrics: self.metrics.clone(),
        };
        // Detached on purpose: a socket that closes mid-turn still gets its reply stored, to
        // be seen on resume.
        actix::spawn(turn.run(queued));
    }
}

/// One message's way through the pipeline, reporting to its session by messages (so its
/// frames keep their order in the session's mailbox).
struct Turn {
    session: Addr<ChatSession>,
    session_id: Uuid,
    member_id: MemberId,
    current: Option<Conversation>,
    db: DatabaseConnection,
    pipeline: Arc<ChatPipeline>,
    metrics: ChatMetrics,
}

impl Turn {
    async fn run(self, queued: QueuedMessage) {
        let client_id = queued.client_id.clone();
        let language = ReplyLanguage::detect(&queued.text);
        let session = self.session.clone();
        let session_id = self.session_id;
        let metrics = self.metrics.clone();
        let outcome = AssertUnwindSafe(self.answer(queued)).catch_unwind().await;
        let conversation = match outcome {
            Ok(Ok(conversation)) => Some(conversation),
            Ok(Err(e)) => {
                let client_error = matches!(
                    e,
                    ChatError::ConversationNotFound
                        | ChatError::Forbidden
                        | ChatError::EmptyMessage
                        | ChatError::ControlCharacters
                        | ChatError::MessageTooLong { .. }
                );
                if client_error {
                    metrics.frames_rejected.with_label_values(&[e.code()]).inc();
                } else {
                    tracing::error!(session = %session_id, error = %e, "chat turn failed");
                    metrics.session_failures.with_label_values(&["error"]).inc();
                }
                session.do_send(Push(ServerFrame::error(
                    e.code(),
                    e.public_message_in(language),
                    client_id,
                )));
                None
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(session = %session_id, panic = %what, "chat turn panicked");
                metrics.session_failures.with_label_values(&["panic"]).inc();
                session.do_send(Push(ServerFrame::error(
                    "internal",
                    refusals::not_processed(language),
                    client_id,
                )));
                None
            }
        };
        session.do_send(TurnFinished { conversation });
    }

    /// The conversation the message went to. A message sent again with its client id is
    /// not stored twice: it is acked with the stored message and answered with the stored
    /// reply (or answered now if a crash left it unanswered).
    async fn answer(self, queued: QueuedMessage) -> Result<Conversation, ChatError> {
        let client_id = queued.client_id.as_deref();
        // A retry that names no conversation goes where the first one went.
        let earlier = match (client_id, queued.conversation_id) {
            (Some(client_id), None) => {
                store::find_by_client_id(&self.db, self.member_id.as_str(), client_id)
                    .await?
                    .map(|message| message.conversation_id)
            }
            _ => None,
        };
        let conversation = match (queued.conversation_id.or(earlier), self.current) {
            (Some(id), _) => {
                authorize_conversation(&self.db, &Caller::Member(self.member_id.clone()), id)
                    .await?
            }
            (None, Some(current)) => current,
            (None, None) => {
                store::create_conversation(
                    &self.db,
                    &self.member_id,
                    store::title_from(&queued.text),
                )
                .await?
            }
        };
        let accepted = self
            .pipeline
            .accept(&conversation, &queued.text, client_id)
            .await?;
        let message_id = accepted.message().id;
        self.session.do_send(Push(ServerFrame::Ack {
            client_id: queued.client_id.clone(),
            message_id,
            conversation_id: conversation.id,
        }));
        self.session.do_send(Push(ServerFrame::Typing {
            conversation_id: conversation.id,
        }));
        let reply = self.pipeline.answer(&conversation, accepted).await?;
        self.session.do_send(Push(ServerFrame::Reply {
            conversation_id: conversation.id,
            message_id: reply.message.id,
            in_reply_to: message_id,
            client_id: queued.client_id,
            text: reply.message.text,
            products: reply.products,
            intent: Box::new(reply.intent),
        }));
        Ok(conversation)
    }
}

/// Sends a frame to the client.
#[derive(Message)]
#[rtype(result = "()")]
struct Push(ServerFrame);

/// The running turn is over; `conversation` is where it went (now current).
#[derive(Message)]
#[rtype(result = "()")]
struct TurnFinished {
    conversation: Option<Conversation>,
}

impl Actor for ChatSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(session = %self.id, member = %self.member_id, "chat socket opened");
        self.metrics.sessions_active.inc();
        self.heartbeat(ctx);
        // A socket outlives no token: when it expires the client gets a `token_expired` frame
        // and the close code, and reconnects with a fresh token (the conversation resumes).
        ctx.run_later(self.token_expires_in, |session, ctx| {
            tracing::info!(session = %session.id, "chat socket's token expired");
            let message = refusals::token_expired(session.language);
            session.reject(ctx, "token_expired", message, None);
            ctx.close(Some(ws::CloseReason {
                code: ws::CloseCode::Other(TOKEN_EXPIRED_CLOSE_CODE),
                description: Some("token expired".into()),
            }));
            ctx.stop();
        });
        if let Some(conversation) = self.resume_on_start.take() {
            self.send_history(conversation, ctx);
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        tracing::info!(session = %self.id, "chat socket closed");
        self.metrics.sessions_active.dec();
        let limiter = self.limiter.clone();
        let member = self.member_id.as_str().to_string();
        let socket = self.id.to_string();
        actix::spawn(async move { limiter.close_socket(&member, &socket).await });
    }
}

impl Handler<Push> for ChatSession {
    type Result = ();

    fn handle(&mut self, msg: Push, ctx: &mut Self::Context) {
        Self::send(ctx, &msg.0);
    }
}

impl Handler<TurnFinished> for ChatSession {
    type Result = ();

    fn handle(&mut self, msg: TurnFinished, ctx: &mut Self::Context) {
        self.busy = false;
        if let Some(conversation) = msg.conversation {
            self.conversation = Some(conversation);
        }
        self.start_next_turn(ctx);
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for ChatSession {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match item {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Binary(_)) | Ok(ws::Message::Continuation(_)) => self.reject(
                ctx,
                "invalid_frame",
                "only single, unfragmented text frames carrying JSON are accepted",
                None,
            ),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Err(ws::ProtocolError::Overflow) => {
                // The rest of the oversized frame is still on the wire: the socket cannot be
                // read further, so it is closed with "message too big".
                self.reject(
                    ctx,
                    "frame_too_large",
                    format!(
                        "frames may be at most {} bytes",
                        self.settings.max_frame_bytes
                    ),
                    None,
                );
                ctx.close(Some(ws::CloseReason {
                    code: ws::CloseCode::Size,
                    description: Some("frame too large".into()),
                }));
                ctx.stop();
            }
            Err(e) => {
                tracing::info!(session = %self.id, error = %e, "chat socket protocol error");
                ctx.close(Some(ws::CloseReason {
                    code: ws::CloseCode::Protocol,
                    description: Some(e.to_string()),
                }));
                ctx.stop();
            }
        }
    }
}
