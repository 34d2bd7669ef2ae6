//! One chat turn, shared by the WebSocket sessions and `POST /api/conversations/{id}/messages`:
//! store the shopper's message with its outbox row ([`ChatPipeline::accept`], after which the
//! socket acks), then embed it, analyse the intent over the conversation's previous one,
//! recommend, write the reply and store it ([`ChatPipeline::answer`]). Each stage is timed
//! (`chat_stage_seconds{stage}`) and has its own tracing span.
//!
//! A turn is answered exactly once (docs/chat-protocol.md, "Retries and recovery"): a message
//! sent again with its client id is not stored again, and gets the stored reply or, if it has
//! none yet, is answered now; a reply is stored at most once per message, whoever computes it;
//! a message whose instance died mid-turn is answered by [`ChatPipeline::answer_unanswered`].

use crate::analysis::{feedback, ReplyLanguage};
use crate::chat::feedback::FeedbackStore;
use crate::chat::store::{Conversation, Inserted, MessageExtras, Role, StoredMessage, TurnStore};
use crate::chat::{ChatError, ChatMetrics};
use crate::config::ChatSettings;
use crate::embeddings::EmbeddingService;
use crate::errors::PublicError;
use crate::intent::{AnalyzedIntent, IntentAnalyzer, ShoppingIntent};
use crate::ml::TextKind;
use crate::recommend::{ProductRanker, RecommendRequest, RecommendedProduct};
use crate::reply::{ReplyContext, ReplyWriter};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

/// The assistant's answer to one message.
#[derive(Debug, Clone)]
pub struct Reply {
    pub message: StoredMessage,
    pub products: Vec<RecommendedProduct>,
    pub intent: AnalyzedIntent,
}

impl Reply {
    /// A reply read back from the database: its products as stored, `intent` as given.
    fn from_stored(message: StoredMessage, intent: AnalyzedIntent) -> Self {
        let products = message
            .products
            .clone()
            .map(serde_json::from_value::<Vec<RecommendedProduct>>)
            .transpose()
            .unwrap_or_else(|e| {
                tracing::warn!(reply = %message.id, error = %e, "unreadable stored products");
                None
            })
            .unwrap_or_default();
        Self {
            message,
            products,
            intent,
        }
    }
}

/// What [`ChatPipeline::accept`] did with a message.
#[derive(Debug, Clone)]
pub enum Accepted {
    /// Stored now (with its event).
    New(StoredMessage),
    /// Sent before with the same client id: nothing was stored. The stored message, and its
    /// stored reply if it has one.
    Retry {
        message: StoredMessage,
        reply: Option<Box<Reply>>,
    },
}

impl Accepted {
    /// The stored user message.
    pub fn message(&self) -> &StoredMessage {
        match self {
            Accepted::New(message) | Accepted::Retry { message, .. } => message,
        }
    }
}

/// What one look of the recovery sweeper did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    pub answered: usize,
    pub failed: usize,
}

pub struct ChatPipeline {
    store: Arc<dyn TurnStore>,
    embeddings: EmbeddingService,
    analyzer: Arc<dyn IntentAnalyzer>,
    ranker: Arc<dyn ProductRanker>,
    writer: Arc<dyn ReplyWriter>,
    settings: ChatSettings,
    metrics: ChatMetrics,
    /// Dialogue as feedback (`analysis::feedback`); without it a turn ignores rejections.
    feedback: Option<Arc<dyn FeedbackStore>>,
}

impl ChatPipeline {
    pub fn new(
        store: Arc<dyn TurnStore>,
        embeddings: EmbeddingService,
        analyzer: Arc<dyn IntentAnalyzer>,
        ranker: Arc<dyn ProductRanker>,
        writer: Arc<dyn ReplyWriter>,
        settings: ChatSettings,
        metrics: ChatMetrics,
    ) -> Self {
        Self {
            store,
            embeddings,
            analyzer,
            ranker,
            writer,
            settings,
            metrics,
            feedback: None,
        }
    }

    /// Reads each message as feedback on the previous reply: rejected products are left out
    /// for the rest of the conversation and recorded, a price complaint lowers the ceiling.
    pub fn with_feedback(mut self, feedback: Arc<dyn FeedbackStore>) -> Self {
        self.feedback = Some(feedback);
        self
    }

    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// Runs one stage in its span and records its duration.
    async fn stage<T>(&self, name: &'static str, work: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let output = work
            .instrument(tracing::info_span!("chat_stage", stage = name))
            .await;
        self.metrics
            .stage_seconds
            .with_label_values(&[name])
            .observe(started.elapsed().as_secs_f64());
        output
    }

    /// Stores the shopper's message (with its event, one transaction), claimed for answering.
    /// `text` must have passed [`crate::chat::validate_text`]. With a `client_id` the member
    /// used before, nothing is stored: the earlier message comes back (refused as
    /// [`ChatError::ClientIdReused`] if it was another text or conversation).
    pub async fn accept(
        &self,
        conversation: &Conversation,
        text: &str,
        client_id: Option<&str>,
    ) -> Result<Accepted, ChatError> {
        let extras = MessageExtras {
            client_id: client_id.map(str::to_string),
            ..MessageExtras::default()
        };
        let inserted = self
            .stage(
                "store_user",
                self.store
                    .insert_message(conversation, Role::User, text, extras),
            )
            .await?;
        let message = match inserted {
            Inserted::New(message) => return Ok(Accepted::New(message)),
            Inserted::Existing(message) => message,
        };
        if message.conversation_id != conversation.id || message.text != text {
            return Err(ChatError::ClientIdReused);
        }
        let reply = self.store.find_reply(message.id).await?.map(|stored| {
            let intent = message
                .intent
                .clone()
                .and_then(|v| serde_json::from_value::<AnalyzedIntent>(v).ok())
                .unwrap_or_else(|| AnalyzedIntent {
                    intent: ShoppingIntent::default(),
                    source: crate::intent::IntentSource::Fallback,
                });
            Box::new(Reply::from_stored(stored, intent))
        });
        let outcome = if reply.is_some() {
            "replayed"
        } else {
            "answered"
        };
        self.metrics.retries.with_label_values(&[outcome]).inc();
        Ok(Accepted::Retry { message, reply })
    }

    /// The answer to an accepted message: the stored one for a retry that has it, otherwise
    /// computed now ([`Self::respond`]). A failure the caller reports to the shopper is
    /// recorded, so the recovery sweeper leaves the message to the shopper's retry.
    pub async fn answer(
        &self,
        conversation: &Conversation,
        accepted: Accepted,
    ) -> Result<Reply, ChatError> {
        let message = match accepted {
            Accepted::Retry {
                reply: Some(reply), ..
            } => return Ok(*reply),
            Accepted::New(message) | Accepted::Retry { message, .. } => message,
        };
        let result = self.respond(conversation, &message).await;
        if let Err(error) = &result {
            if let Err(e) = self
                .store
                .mark_answer_failed(message.id, error.code())
                .await
            {
                tracing::warn!(message = %message.id, error = %e, "failed answer not recorded");
            }
        }
        result
    }

    /// Answers up to `limit` messages whose instance died mid-turn (claimed for answering
    /// `chat.unanswered_after_secs` ago and still unanswered). Run by every instance: each
    /// message is claimed by one sweeper at a time, and stored answers are unique per message.
    pub async fn answer_unanswered(&self, limit: u64) -> Result<Recovered, ChatError> {
        let due = self
            .store
            .claim_unanswered(
                self.settings.unanswered_after_secs,
                self.settings.recover_within_secs,
                self.settings.recovery_max_attempts,
                limit,
            )
            .await?;
        let mut recovered = Recovered::default();
        for (conversation, message) in due {
            match self.respond(&conversation, &message).await {
                Ok(reply) => {
                    tracing::info!(
                        conversation = %conversation.id,
                        message = %message.id,
                        reply = %reply.message.id,
                        "unanswered message answered by the recovery sweeper"
                    );
                    recovered.answered += 1;
                    self.metrics
                        .recovered
                        .with_label_values(&["answered"])
                        .inc();
                }
                Err(error) => {
                    tracing::warn!(message = %message.id, %error, "recovery answer failed; tried again later");
                    recovered.failed += 1;
                    self.metrics.recovered.with_label_values(&["failed"]).inc();
                }
            }
        }
        Ok(recovered)
    }

    /// Everything after the ack: the answer to `message`, stored (once: if another instance
    /// stored one first, that one is the answer).
    async fn respond(
        &self,
        conversation: &Conversation,
        message: &StoredMessage,
    ) -> Result<Reply, ChatError> {
        let text = message.text.as_str();
        let embedding = self
            .stage("embed", async {
                let vector = self
                    .embeddings
                    .embed_as(TextKind::Query, vec![text.to_string()])
                    .await?
                    .vectors
                    .pop()
                    .ok_or_else(|| ChatError::Unavailable("no embedding came back".into()))?;
                self.store
                    .set_embedding(message.id, vector.clone(), &self.embeddings.model.id)
                    .await?;
                Ok::<_, ChatError>(vector)
            })
            .await?;

        let (analyzed, exclude) = self
            .stage("analyze", async {
                let previous = self.previous_intent(conversation.id, message.id).await?;
                let mut analyzed = self.analyzer.analyze(text, previous.as_ref()).await;
                // Before the intent is stored: a lowered price ceiling carries over.
                let exclude = self
                    .apply_feedback(conversation, message, previous.as_ref(), &mut analyzed)
                    .await;
                let stored = serde_json::to_value(&analyzed).expect("intents serialise");
                self.store.set_intent(message.id, stored).await?;
                Ok::<_, ChatError>((analyzed, exclude))
            })
            .await?;

        let products = self
            .stage(
                "recommend",
                self.ranker.recommend(RecommendRequest {
                    member_id: Some(conversation.member_id.clone()),
                    query_text: Some(text.to_string()),
                    query_embedding: Some(embedding),
                    intent: analyzed.intent.clone(),
                    limit: self.settings.recommendation_limit,
                    exclude,
                    language: ReplyLanguage::detect(text),
                }),
            )
            .await?;

        let written = self
            .stage(
                "write",
                self.writer.write(ReplyContext {
                    message: text,
                    intent: &analyzed.intent,
                    products: &products,
                }),
            )
            .await;

        let stored = self
            .stage(
                "store_reply",
                self.store.insert_message(
                    conversation,
                    Role::Assistant,
                    &written.text,
                    MessageExtras {
                        products: Some(
                            serde_json::to_value(&products).expect("products serialise"),
                        ),
                        reply_to: Some(message.id),
                        ..MessageExtras::default()
                    },
                ),
            )
            .await?;
        let reply = match stored {
            Inserted::New(reply) => reply,
            Inserted::Existing(first) => {
                self.metrics.duplicate_answers.inc();
                tracing::info!(message = %message.id, reply = %first.id, "already answered elsewhere; the stored reply stands");
                return Ok(Reply::from_stored(first, analyzed));
            }
        };
        tracing::info!(
            conversation = %conversation.id,
            message = %message.id,
            reply = %reply.id,
            products = products.len(),
            intent_source = ?analyzed.source,
            reply_source = ?written.source,
            "chat turn answered"
        );
        Ok(Reply {
            message: reply,
            products,
            intent: analyzed,
        })
    }

    /// Dialogue as feedback: what `message` turned down of the previous reply is recorded and
    /// a price complaint moves `analyzed`'s ceiling (`analysis::feedback`); answers every
    /// product the conversation has turned down, for the ranker to leave out. A failure here
    /// costs the turn its feedback, never its answer.
    async fn apply_feedback(
        &self,
        conversation: &Conversation,
        message: &StoredMessage,
        previous: Option<&ShoppingIntent>,
        analyzed: &mut AnalyzedIntent,
    ) -> Vec<Uuid> {
        let Some(store) = &self.feedback else {
            return Vec::new();
        };
        let work = async {
            let shown = store.shown_before(conversation.id, message).await?;
            let said = feedback::apply(&message.text, &shown, previous, &mut analyzed.intent);
            if let Some(reason) = said.reason {
                tracing::info!(
                    conversation = %conversation.id,
                    rejected = said.rejected.len(),
                    reason = reason.as_str(),
                    ceiling = ?said.price_ceiling,
                    "the shopper turned products down"
                );
                store
                    .record(conversation, message.id, &said.rejected, reason)
                    .await?;
            }
            let mut exclude = store.rejected_in(conversation.id).await?;
            for id in said.rejected {
                if !exclude.contains(&id) {
                    exclude.push(id);
                }
            }
            Ok::<_, sea_orm::DbErr>(exclude)
        };
        match work.await {
            Ok(exclude) => exclude,
            Err(error) => {
                tracing::warn!(conversation = %conversation.id, %error, "feedback not applied");
                Vec::new()
            }
        }
    }

    /// The conversation's intent so far (from its latest analysed user message).
    async fn previous_intent(
        &self,
        conversation_id: Uuid,
        current: Uuid,
    ) -> Result<Option<ShoppingIntent>, ChatError> {
        let Some(stored) = self.store.latest_intent(conversation_id, current).await? else {
            return Ok(None);
        };
        match serde_json::from_value::<AnalyzedIntent>(stored) {
            Ok(analyzed) => Ok(Some(analyzed.intent)),
            Err(e) => {
                // An intent stored by an older schema: start afresh rather than fail the turn.
                tracing::warn!(conversation = %conversation_id, error = %e, "unreadable stored intent");
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The pipeline on its seams: an in-memory turn store and vector source, the local
    //! analyser and the template writer, and a ranker that records what it was asked.
    use super::*;
    use crate::analysis::FallbackAnalyzer;
    use crate::catalog::Currency;
    use crate::embeddings::{EmbeddingError, ModelInfo, VectorSource};
    use crate::metrics::Metrics;
    use crate::ml::TextPrompts;
    use crate::recommend::{RecommendError, ScoreBreakdown};
    use crate::reply::TemplateReplyWriter;
    use chrono::Utc;
    use futures::future::BoxFuture;
    use sea_orm::DbErr;
    use serde_json::Value;
    use std::sync::Mutex;

    #[derive(Default)]
    struct MemoryStore {
        messages: Mutex<Vec<StoredMessage>>,
        embedded: Mutex<Vec<(Uuid, String)>>,
        conversations: Mutex<Vec<Conversation>>,
        failed: Mutex<Vec<(Uuid, String)>>,
    }

    impl MemoryStore {
        fn replies_to(&self, message_id: Uuid) -> usize {
            let messages = self.messages.lock().unwrap();
            messages
                .iter()
                .filter(|m| m.in_reply_to == Some(message_id))
                .count()
        }
    }

    /// The database's rules: a client id once per member, one answer per message.
    impl TurnStore for MemoryStore {
        fn insert_message<'a>(
            &'a self,
            conversation: &'a Conversation,
            role: Role,
            text: &'a str,
            extras: MessageExtras,
        ) -> BoxFuture<'a, Result<Inserted, DbErr>> {
            let mut conversations = self.conversations.lock().unwrap();
            if !conversations.iter().any(|c| c.id == conversation.id) {
                conversations.push(conversation.clone());
            }
            let mut messages = self.messages.lock().unwrap();
            let existing = messages.iter().find(|m| {
                (extras.reply_to.is_some() && m.in_reply_to == extras.reply_to)
                    || (extras.client_id.is_some() && m.client_id == extras.client_id)
            });
            let inserted = match existing {
                Some(existing) => Inserted::Existing(existing.clone()),
                None => {
                    let message = StoredMessage {
                        id: Uuid::now_v7(),
                        conversation_id: conversation.id,
                        role,
                        text: text.to_string(),
                        intent: extras.intent,
                        products: extras.products,
                        client_id: extras.client_id,
                        in_reply_to: extras.reply_to,
                        created_at: Utc::now(),
                    };
                    messages.push(message.clone());
                    Inserted::New(message)
                }
            };
            Box::pin(async move { Ok(inserted) })
        }

        fn set_embedding<'a>(
            &'a self,
            message_id: Uuid,
            _embedding: Vec<f32>,
            model_id: &'a str,
        ) -> BoxFuture<'a, Result<(), DbErr>> {
            let model = model_id.to_string();
            self.embedded.lock().unwrap().push((message_id, model));
            Box::pin(async { Ok(()) })
        }

        fn set_intent(&self, message_id: Uuid, intent: Value) -> BoxFuture<'_, Result<(), DbErr>> {
            for message in self.messages.lock().unwrap().iter_mut() {
                if message.id == message_id {
                    message.intent = Some(intent.clone());
                }
            }
            Box::pin(async { Ok(()) })
        }

        fn latest_intent(
            &self,
            conversation_id: Uuid,
            except: Uuid,
        ) -> BoxFuture<'_, Result<Option<Value>, DbErr>> {
            let latest = self
                .messages
                .lock()
                .unwrap()
                .iter()
                .rev()
                .filter(|m| m.conversation_id == conversation_id && m.id != except)
                .find_map(|m| m.intent.clone());
            Box::pin(async move { Ok(latest) })
        }

        fn find_reply(
            &self,
            message_id: Uuid,
        ) -> BoxFuture<'_, Result<Option<StoredMessage>, DbErr>> {
            let reply = self
                .messages
                .lock()
                .unwrap()
                .iter()
                .find(|m| m.in_reply_to == Some(message_id))
                .cloned();
            Box::pin(async move { Ok(reply) })
        }

        fn mark_answer_failed<'a>(
            &'a self,
            message_id: Uuid,
            code: &'a str,
        ) -> BoxFuture<'a, Result<(), DbErr>> {
            self.failed
                .lock()
                .unwrap()
                .push((message_id, code.to_string()));
            Box::pin(async { Ok(()) })
        }

        /// Every unanswered, unfailed user message is due (no clock here).
        fn claim_unanswered(
            &self,
            _claimed_before_secs: u64,
            _within_secs: u64,
            _max_attempts: u32,
            limit: u64,
        ) -> BoxFuture<'_, Result<Vec<(Conversation, StoredMessage)>, DbErr>> {
            let messages = self.messages.lock().unwrap().clone();
            let failed = self.failed.lock().unwrap().clone();
            let conversations = self.conversations.lock().unwrap().clone();
            let due = messages
                .iter()
                .filter(|m| m.role == Role::User)
                .filter(|m| !messages.iter().any(|r| r.in_reply_to == Some(m.id)))
                .filter(|m| !failed.iter().any(|(id, _)| *id == m.id))
                .take(limit as usize)
                .map(|m| {
                    let conversation = conversations
                        .iter()
                        .find(|c| c.id == m.conversation_id)
                        .expect("stored with its conversation")
                        .clone();
                    (conversation, m.clone())
                })
                .collect();
            Box::pin(async move { Ok(due) })
        }
    }

    /// One number per text: its length in characters.
    struct LengthVectors;

    impl VectorSource for LengthVectors {
        fn compute(
            &self,
            texts: Vec<String>,
        ) -> BoxFuture<'static, Result<Vec<Vec<f32>>, EmbeddingError>> {
            let vectors = texts
                .iter()
                .map(|t| vec![t.chars().count() as f32])
                .collect();
            Box::pin(async move { Ok(vectors) })
        }
    }

    #[derive(Default)]
    struct RecordingRanker {
        requests: Mutex<Vec<RecommendRequest>>,
    }

    impl ProductRanker for RecordingRanker {
        fn recommend(
            &self,
            request: RecommendRequest,
        ) -> BoxFuture<'_, Result<Vec<RecommendedProduct>, RecommendError>> {
            self.requests.lock().unwrap().push(request);
            Box::pin(async {
                Ok(vec![RecommendedProduct {
                    id: Uuid::new_v4(),
                    sku: "PAD-1".into(),
                    title: "노스 롱패딩".into(),
                    category: "fashion/outerwear".into(),
                    brand: None,
                    price_minor: Some(89_000),
                    currency: "KRW".into(),
                    price_display: Some(Currency::Krw.format(89_000)),
                    stock: 12,
                    image_url: None,
                    score: ScoreBreakdown::default(),
                    explanation: String::new(),
                    reasons: Vec::new(),
                    outside_request: Vec::new(),
                }])
            })
        }
    }

    fn pipeline(store: Arc<MemoryStore>, ranker: Arc<RecordingRanker>) -> ChatPipeline {
        let model = ModelInfo {
            id: "length-model".into(),
            dimension: 1,
            max_tokens: 64,
            prompts: TextPrompts::default(),
        };
        let embeddings =
            EmbeddingService::new(model, Arc::new(LengthVectors), None, Metrics::new());
        let settings = crate::config::Settings::load_with_env(None, Vec::new())
            .expect("defaults load")
            .chat;
        ChatPipeline::new(
            store,
            embeddings,
            Arc::new(FallbackAnalyzer::new(Vec::new(), 1_400.0)),
            ranker,
            Arc::new(TemplateReplyWriter::default()),
            settings,
            ChatMetrics::register(&prometheus::Registry::new()),
        )
    }

    fn conversation() -> Conversation {
        Conversation {
            id: Uuid::new_v4(),
            member_id: "m-1".into(),
            title: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_turn_is_stored_embedded_analysed_ranked_and_answered() {
        let store = Arc::new(MemoryStore::default());
        let ranker = Arc::new(RecordingRanker::default());
        let chat = pipeline(store.clone(), ranker.clone());
        let conversation = conversation();

        let accepted = chat
            .accept(&conversation, "10만원 이하 패딩 추천해줘", None)
            .await
            .unwrap();
        let message = accepted.message().clone();
        let reply = chat.answer(&conversation, accepted).await.unwrap();

        // The ranker got the member, the words, their vector and the price limit.
        let request = ranker.requests.lock().unwrap().pop().unwrap();
        assert_eq!(request.member_id.as_deref(), Some("m-1"));
        assert_eq!(request.query_embedding, Some(vec![15.0]));
        let price = request.intent.price_range.expect("a price limit was read");
        assert_eq!(price.max_minor, Some(100_000));
        // The message's vector is recorded with the model that made it, and its intent kept.
        assert_eq!(
            store.embedded.lock().unwrap().as_slice(),
            [(message.id, "length-model".to_string())]
        );
        let messages = store.messages.lock().unwrap().clone();
        assert_eq!(messages.len(), 2);
        assert!(messages[0].intent.is_some());
        // The reply is stored as the assistant's, in Korean, naming the product it was given.
        assert_eq!(reply.message.role, Role::Assistant);
        assert_eq!(messages[1].id, reply.message.id);
        assert!(
            reply.message.text.contains("노스 롱패딩"),
            "{}",
            reply.message.text
        );
        assert_eq!(reply.products.len(), 1);
    }

    #[tokio::test]
    async fn a_follow_up_keeps_the_conversations_earlier_constraints() {
        let store = Arc::new(MemoryStore::default());
        let ranker = Arc::new(RecordingRanker::default());
        let chat = pipeline(store, ranker.clone());
        let conversation = conversation();
        for text in ["10만원 이하 패딩 추천해줘", "검은색으로 보여줘"] {
            let accepted = chat.accept(&conversation, text, None).await.unwrap();
            chat.answer(&conversation, accepted).await.unwrap();
        }
        let follow_up = ranker.requests.lock().unwrap().pop().unwrap();
        assert_eq!(
            follow_up.intent.price_range.and_then(|p| p.max_minor),
            Some(100_000),
            "the first message's price limit carries over"
        );
        assert!(
            follow_up.intent.colors.iter().any(|c| c == "black"),
            "{:?}",
            follow_up.intent.colors
        );
    }

    #[tokio::test]
    async fn a_retry_with_the_client_id_gets_the_stored_reply_and_stores_nothing() {
        let store = Arc::new(MemoryStore::default());
        let ranker = Arc::new(RecordingRanker::default());
        let chat = pipeline(store.clone(), ranker.clone());
        let conversation = conversation();
        let first = chat
            .accept(&conversation, "패딩 추천해줘", Some("c-1"))
            .await
            .unwrap();
        let reply = chat.answer(&conversation, first).await.unwrap();

        let again = chat
            .accept(&conversation, "패딩 추천해줘", Some("c-1"))
            .await
            .unwrap();
        let Accepted::Retry {
            message,
            reply: Some(stored),
        } = &again
        else {
            panic!("a retry, answered: {again:?}");
        };
        assert_eq!(stored.message.id, reply.message.id);
        assert_eq!(stored.products, reply.products);
        let replayed = chat.answer(&conversation, again.clone()).await.unwrap();
        assert_eq!(replayed.message.id, reply.message.id);
        assert_eq!(
            store.messages.lock().unwrap().len(),
            2,
            "nothing stored twice"
        );
        assert_eq!(
            ranker.requests.lock().unwrap().len(),
            1,
            "not computed again"
        );
        assert_eq!(store.replies_to(message.id), 1);

        // The same id with another text (or conversation) is refused.
        let reused = chat
            .accept(&conversation, "다른 메시지", Some("c-1"))
            .await
            .unwrap_err();
        assert!(matches!(reused, ChatError::ClientIdReused), "{reused:?}");
    }

    #[tokio::test]
    async fn a_retry_of_an_unanswered_message_answers_it_once() {
        let store = Arc::new(MemoryStore::default());
        let ranker = Arc::new(RecordingRanker::default());
        let chat = pipeline(store.clone(), ranker.clone());
        let conversation = conversation();
        // Stored and acked, then the instance died: no reply.
        let first = chat
            .accept(&conversation, "운동화 보여줘", Some("c-2"))
            .await
            .unwrap();
        let message = first.message().clone();
        let again = chat
            .accept(&conversation, "운동화 보여줘", Some("c-2"))
            .await
            .unwrap();
        assert!(matches!(again, Accepted::Retry { reply: None, .. }));
        // Two instances answer it at once (the retry and the original turn): one reply stored.
        let (a, b) = tokio::join!(
            chat.answer(&conversation, again),
            chat.answer(&conversation, first)
        );
        assert_eq!(a.unwrap().message.id, b.unwrap().message.id);
        assert_eq!(store.replies_to(message.id), 1);
    }

    #[tokio::test]
    async fn the_sweeper_answers_what_a_crash_left_and_leaves_what_failed_in_front_of_the_shopper()
    {
        let store = Arc::new(MemoryStore::default());
        let ranker = Arc::new(RecordingRanker::default());
        let chat = pipeline(store.clone(), ranker);
        let conversation = conversation();
        let crashed = chat
            .accept(&conversation, "가방 추천", None)
            .await
            .unwrap()
            .message()
            .clone();
        let told = chat
            .accept(&conversation, "모자 추천", None)
            .await
            .unwrap()
            .message()
            .clone();
        store
            .mark_answer_failed(told.id, "unavailable")
            .await
            .unwrap();

        let recovered = chat.answer_unanswered(10).await.unwrap();
        assert_eq!(
            recovered,
            Recovered {
                answered: 1,
                failed: 0
            }
        );
        assert_eq!(store.replies_to(crashed.id), 1);
        assert_eq!(
            store.replies_to(told.id),
            0,
            "the shopper was told to retry"
        );
        assert_eq!(
            chat.answer_unanswered(10).await.unwrap(),
            Recovered::default()
        );
    }
}
