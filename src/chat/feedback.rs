//! What a chat turn reads and writes for dialogue as feedback (the rules are
//! `analysis::feedback`, docs/intent.md#dialogue-as-feedback): the products the previous
//! reply showed, the products the conversation has turned down so far, and recording a
//! rejection — `reject` rows in `interactions` (the source of truth the member's later lists
//! read) with a `product.rejected` outbox event in one transaction, then the member's cached
//! lists invalidated.

use crate::analysis::feedback::{RejectionReason, ShownProduct};
use crate::catalog::attributes::ProductAttributes;
use crate::catalog::InteractionKind;
use crate::chat::store::{Conversation, StoredMessage};
use crate::db::entities::product;
use crate::events::envelope::{Envelope, EventType, RejectionPayload};
use crate::events::outbox;
use crate::recommend::list_cache::invalidate_member_lists;
use crate::redis::{RedisKeys, RedisPool};
use futures::future::BoxFuture;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Statement,
    TransactionTrait,
};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// The feedback side of a chat turn: PostgreSQL and Redis in the service ([`PgFeedback`]),
/// memory in the pipeline's unit tests.
pub trait FeedbackStore: Send + Sync {
    /// The products of the conversation's latest reply before `message`, in the order shown
    /// (empty when there is none).
    fn shown_before<'a>(
        &'a self,
        conversation_id: Uuid,
        message: &'a StoredMessage,
    ) -> BoxFuture<'a, Result<Vec<ShownProduct>, DbErr>>;

    /// Records that `message_id` turned `rejected` down (once, however often it is retried).
    fn record<'a>(
        &'a self,
        conversation: &'a Conversation,
        message_id: Uuid,
        rejected: &'a [Uuid],
        reason: RejectionReason,
    ) -> BoxFuture<'a, Result<(), DbErr>>;

    /// Every product the conversation turned down so far.
    fn rejected_in(&self, conversation_id: Uuid) -> BoxFuture<'_, Result<Vec<Uuid>, DbErr>>;
}

/// The service's [`FeedbackStore`].
#[derive(Clone)]
pub struct PgFeedback {
    pub db: DatabaseConnection,
    pub redis: RedisPool,
    pub keys: RedisKeys,
    /// How long invalidating the member's cached lists may take (`recommender.cache_timeout_ms`);
    /// the `recommendation` group invalidates again when it applies the event.
    pub cache_timeout: Duration,
}

/// The products a stored reply showed (`conversation_messages.products`), in order, with the
/// catalog's brand and colours (a product deleted since keeps what the reply said of it).
pub async fn shown_before(
    db: &DatabaseConnection,
    conversation_id: Uuid,
    message: &StoredMessage,
) -> Result<Vec<ShownProduct>, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT products FROM conversation_messages \
             WHERE conversation_id = $1 AND role = 'assistant' AND products IS NOT NULL \
             AND (created_at, id) < ($2, $3) \
             ORDER BY created_at DESC, id DESC LIMIT 1",
            [
                conversation_id.into(),
                message.created_at.into(),
                message.id.into(),
            ],
        ))
        .await?;
    let Some(products) = row
        .map(|r| r.try_get::<Option<Value>>("", "products"))
        .transpose()?
        .flatten()
    else {
        return Ok(Vec::new());
    };
    let mut shown: Vec<ShownProduct> = products
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|card| {
            Some(ShownProduct {
                id: card.get("id")?.as_str()?.parse().ok()?,
                title: card.get("title")?.as_str()?.to_string(),
                brand: card
                    .get("brand")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                price_minor: card.get("price_minor").and_then(Value::as_i64),
                colors: Vec::new(),
            })
        })
        .collect();
    let ids: Vec<Uuid> = shown.iter().map(|p| p.id).collect();
    if ids.is_empty() {
        return Ok(shown);
    }
    let catalog = product::Entity::find()
        .filter(product::Column::Id.is_in(ids))
        .all(db)
        .await?;
    for item in &mut shown {
        if let Some(current) = catalog.iter().find(|p| p.id == item.id) {
            item.colors = ProductAttributes::of(&current.attributes).colors;
            item.brand = current.brand.clone();
            item.price_minor = current.price_minor.or(item.price_minor);
        }
    }
    Ok(shown)
}

/// Writes one `reject` interaction per product (its `source_ref` the message, so a retried
/// turn adds nothing) and the `product.rejected` event, in one transaction.
pub async fn record(
    db: &DatabaseConnection,
    conversation: &Conversation,
    message_id: Uuid,
    rejected: &[Uuid],
    reason: RejectionReason,
) -> Result<(), DbErr> {
    if rejected.is_empty() {
        return Ok(());
    }
    let txn = db.begin().await?;
    let mut recorded = Vec::new();
    for product_id in rejected {
        // A product deleted since the reply has nothing left to rank lower.
        let result = txn
            .execute_raw(Statement::from_sql_and_values(
                txn.get_database_backend(),
                "INSERT INTO interactions (member_id, product_id, kind, quantity, source_ref, occurred_at) \
                 SELECT $1, id, $3, 1, $4, now() FROM products WHERE id = $2 \
                 ON CONFLICT (source_ref, product_id, kind) WHERE source_ref IS NOT NULL DO NOTHING",
                [
                    conversation.member_id.as_str().into(),
                    (*product_id).into(),
                    InteractionKind::Reject.as_str().into(),
                    message_id.to_string().into(),
                ],
            ))
            .await?;
        if result.rows_affected() == 1 {
            recorded.push(*product_id);
        }
    }
    if !recorded.is_empty() {
        let payload = RejectionPayload {
            conversation_id: conversation.id,
            message_id,
            product_ids: recorded,
            reason: reason.as_str().to_string(),
        };
        let event = Envelope::new(
            EventType::ProductRejected,
            &conversation.member_id,
            serde_json::to_value(&payload).expect("payload serialises"),
        );
        outbox::enqueue(&txn, &event).await?;
    }
    txn.commit().await
}

/// Every product a message of the conversation turned down.
pub async fn rejected_in(
    db: &DatabaseConnection,
    conversation_id: Uuid,
) -> Result<Vec<Uuid>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT DISTINCT i.product_id FROM interactions i \
             JOIN conversation_messages m ON i.source_ref = m.id::text \
             WHERE m.conversation_id = $1 AND m.role = 'user' AND i.kind = $2",
            [
                conversation_id.into(),
                InteractionKind::Reject.as_str().into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|row| row.try_get::<Uuid>("", "product_id"))
        .collect()
}

impl FeedbackStore for PgFeedback {
    fn shown_before<'a>(
        &'a self,
        conversation_id: Uuid,
        message: &'a StoredMessage,
    ) -> BoxFuture<'a, Result<Vec<ShownProduct>, DbErr>> {
        Box::pin(shown_before(&self.db, conversation_id, message))
    }

    fn record<'a>(
        &'a self,
        conversation: &'a Conversation,
        message_id: Uuid,
        rejected: &'a [Uuid],
        reason: RejectionReason,
    ) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            record(&self.db, conversation, message_id, rejected, reason).await?;
            // The member's next list, on any instance, must rank these lower now (best
            // effort; the `recommendation` group invalidates again when it applies the event).
            let member = conversation.member_id.as_str();
            let invalidate = invalidate_member_lists(&self.redis, &self.keys, member);
            match tokio::time::timeout(self.cache_timeout, invalidate).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::debug!(%error, "cached lists left to the consumer group")
                }
                Err(_) => {
                    tracing::debug!("Redis too slow; cached lists left to the consumer group")
                }
            }
            Ok(())
        })
    }

    fn rejected_in(&self, conversation_id: Uuid) -> BoxFuture<'_, Result<Vec<Uuid>, DbErr>> {
        Box::pin(rejected_in(&self.db, conversation_id))
    }
}
