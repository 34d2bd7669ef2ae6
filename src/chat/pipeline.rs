//! One chat turn, shared by the WebSocket sessions and `POST /api/conversations/{id}/messages`:
//! store the shopper's message with its outbox row ([`ChatPipeline::accept`], after which the
//! socket acks), then embed it, analyse the intent over the conversation's previous one,
//! recommend, write the reply and store it ([`ChatPipeline::respond`]). Each stage is timed
//! (`chat_stage_seconds{stage}`) and has its own tracing span.

use crate::analysis::{feedback, ReplyLanguage};
use crate::chat::feedback::FeedbackStore;
use crate::chat::store::{Conversation, MessageExtras, Role, StoredMessage, TurnStore};
use crate::chat::{ChatError, ChatMetrics};
use crate::config::ChatSettings;
use crate::embeddings::EmbeddingService;
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

    /// Stores the shopper's message (with its event, one transaction). `text` must have
    /// passed [`crate::chat::validate_text`].
    pub async fn accept(
        &self,
        conversation: &Conversation,
        text: &str,
    ) -> Result<StoredMessage, ChatError> {
        let message = self
            .stage(
                "store_user",
                self.store
                    .insert_message(conversation, Role::User, text, MessageExtras::default()),
            )
            .await?;
        Ok(message)
    }

    /// Everything after the ack: the answer to `message`, stored.
    pub async fn respond(
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

        let reply = self
            .stage(
                "store_reply",
                self.store.insert_message(
                    conversation,
                    Role::Assistant,
                    &written.text,
                    MessageExtras {
                        intent: None,
                        products: Some(
                            serde_json::to_value(&products).expect("products serialise"),
                        ),
                    },
                ),
            )
            .await?;
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
    }

    impl TurnStore for MemoryStore {
        fn insert_message<'a>(
            &'a self,
            conversation: &'a Conversation,
            role: Role,
            text: &'a str,
            extras: MessageExtras,
        ) -> BoxFuture<'a, Result<StoredMessage, DbErr>> {
            let message = StoredMessage {
                id: Uuid::now_v7(),
                conversation_id: conversation.id,
                role,
                text: text.to_string(),
                intent: extras.intent,
                products: extras.products,
                created_at: Utc::now(),
            };
            self.messages.lock().unwrap().push(message.clone());
            Box::pin(async move { Ok(message) })
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

        let message = chat
            .accept(&conversation, "10만원 이하 패딩 추천해줘")
            .await
            .unwrap();
        let reply = chat.respond(&conversation, &message).await.unwrap();

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
            let message = chat.accept(&conversation, text).await.unwrap();
            chat.respond(&conversation, &message).await.unwrap();
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
}
