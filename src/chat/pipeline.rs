//! One chat turn, shared by the WebSocket sessions and `POST /api/conversations/{id}/messages`:
//! store the shopper's message with its outbox row ([`ChatPipeline::accept`], after which the
//! socket acks), then embed it, analyse the intent over the conversation's previous one,
//! recommend, write the reply and store it ([`ChatPipeline::respond`]). Each stage is timed
//! (`chat_stage_seconds{stage}`) and has its own tracing span.

use crate::analysis::ReplyLanguage;
use crate::chat::store::{self, Conversation, MessageExtras, Role, StoredMessage};
use crate::chat::{ChatError, ChatMetrics};
use crate::config::ChatSettings;
use crate::embeddings::EmbeddingService;
use crate::intent::{AnalyzedIntent, IntentAnalyzer, ShoppingIntent};
use crate::ml::TextKind;
use crate::recommend::{ProductRanker, RecommendRequest, RecommendedProduct};
use crate::reply::{ReplyContext, ReplyWriter};
use sea_orm::DatabaseConnection;
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
    db: DatabaseConnection,
    embeddings: EmbeddingService,
    analyzer: Arc<dyn IntentAnalyzer>,
    ranker: Arc<dyn ProductRanker>,
    writer: Arc<dyn ReplyWriter>,
    settings: ChatSettings,
    metrics: ChatMetrics,
}

impl ChatPipeline {
    pub fn new(
        db: DatabaseConnection,
        embeddings: EmbeddingService,
        analyzer: Arc<dyn IntentAnalyzer>,
        ranker: Arc<dyn ProductRanker>,
        writer: Arc<dyn ReplyWriter>,
        settings: ChatSettings,
        metrics: ChatMetrics,
    ) -> Self {
        Self {
            db,
            embeddings,
            analyzer,
            ranker,
            writer,
            settings,
            metrics,
        }
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
                store::insert_message(
                    &self.db,
                    conversation,
                    Role::User,
                    text,
                    MessageExtras::default(),
                ),
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
                store::set_embedding(
                    &self.db,
                    message.id,
                    vector.clone(),
                    &self.embeddings.model.id,
                )
                .await?;
                Ok::<_, ChatError>(vector)
            })
            .await?;

        let analyzed = self
            .stage("analyze", async {
                let previous = self.previous_intent(conversation.id, message.id).await?;
                let analyzed = self.analyzer.analyze(text, previous.as_ref()).await;
                let stored = serde_json::to_value(&analyzed).expect("intents serialise");
                store::set_intent(&self.db, message.id, stored).await?;
                Ok::<_, ChatError>(analyzed)
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
                    exclude: Vec::new(),
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
                store::insert_message(
                    &self.db,
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

    /// The conversation's intent so far (from its latest analysed user message).
    async fn previous_intent(
        &self,
        conversation_id: Uuid,
        current: Uuid,
    ) -> Result<Option<ShoppingIntent>, ChatError> {
        let Some(stored) = store::latest_intent(&self.db, conversation_id, current).await? else {
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
