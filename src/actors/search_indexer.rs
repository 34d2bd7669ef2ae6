//! `SearchIndexer`: the owner of the `es-sync` consumer group. It indexes each
//! `conversation.message.created` event's message (by message id, so a redelivery overwrites)
//! and answers only once the search server confirmed the item, so the ingress commits the
//! offset only then; while the server is away it asks the ingress to retry, and the backlog is
//! indexed when it is back. Products are synced from the database on a timer by their
//! `updated_at` watermark, in bulk.

use crate::db::entities::product;
use crate::embeddings::EmbeddingService;
use crate::events::apply::{ApplyError, ApplyEvent};
use crate::events::envelope::EventType;
use crate::ml::TextKind;
use crate::search::bulk::{delete_documents, index_documents, ItemOutcome};
use crate::search::documents::{MessageDoc, ProductDoc};
use crate::search::metrics::SearchMetrics;
use crate::search::{IndexKind, SearchClient, SearchError};
use actix::prelude::*;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// Products per bulk request of the product sync.
const PRODUCT_BATCH: u64 = 500;
/// Rows whose transaction committed a little after a later row's are caught by re-reading
/// this far behind the watermark (indexing is idempotent by id).
const WATERMARK_OVERLAP: chrono::Duration = chrono::Duration::seconds(5);

#[derive(Debug, Deserialize)]
struct MessagePayload {
    conversation_id: Uuid,
    message_id: Uuid,
    role: String,
    text: String,
}

pub struct SearchIndexer {
    client: SearchClient,
    db: DatabaseConnection,
    embeddings: EmbeddingService,
    metrics: SearchMetrics,
    product_interval: Duration,
    /// Products updated after this are (re)indexed on the next tick.
    product_watermark: Option<DateTime<Utc>>,
    indices_ready: bool,
    syncing: bool,
}

impl SearchIndexer {
    pub fn new(
        client: SearchClient,
        db: DatabaseConnection,
        embeddings: EmbeddingService,
        metrics: SearchMetrics,
        product_interval: Duration,
        indices_ready: bool,
    ) -> Self {
        Self {
            client,
            db,
            embeddings,
            metrics,
            product_interval,
            product_watermark: None,
            indices_ready,
            syncing: false,
        }
    }

    fn count(&self, kind: IndexKind, outcome: &str, n: usize) {
        if n > 0 {
            self.metrics
                .indexed
                .with_label_values(&[kind.base_name(), outcome])
                .inc_by(n as u64);
        }
    }
}

impl Actor for SearchIndexer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.product_interval, |_, ctx| ctx.notify(SyncProducts));
        ctx.notify(SyncProducts);
    }
}

crate::actors::supervision::supervised!(SearchIndexer, "search_indexer", |indexer| {
    indexer.syncing = false;
});

/// Index the products changed since the last sync.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SyncProducts;

impl Handler<SyncProducts> for SearchIndexer {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: SyncProducts, _: &mut Self::Context) -> Self::Result {
        if self.syncing {
            return Box::pin(fut::ready(()));
        }
        self.syncing = true;
        let client = self.client.clone();
        let db = self.db.clone();
        let ensure = !self.indices_ready;
        let since = self.product_watermark.map(|w| w - WATERMARK_OVERLAP);
        Box::pin(
            async move {
                if ensure {
                    client.ensure_indices().await.map_err(SyncError::Search)?;
                }
                let sync = sync_products(&client, &db, since).await?;
                let deleted = purge_deleted_products(&client, &db).await?;
                Ok::<_, SyncError>((sync, deleted))
            }
            .into_actor(self)
            .map(move |result, actor, _| {
                actor.syncing = false;
                match result {
                    Ok((sync, deleted)) => {
                        actor.indices_ready = true;
                        actor.count(IndexKind::Products, "deleted", deleted);
                        actor.count(IndexKind::Products, "indexed", sync.indexed);
                        actor.count(IndexKind::Products, "rejected", sync.rejected);
                        if let Some(latest) = sync.latest {
                            actor.product_watermark = Some(latest);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "product sync to search failed; retrying next tick")
                    }
                }
            }),
        )
    }
}

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Search(SearchError),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

struct ProductSync {
    indexed: usize,
    rejected: usize,
    latest: Option<DateTime<Utc>>,
}

/// Pages through the products updated after `since` (all when `None`), oldest first. Stops at
/// the first page with retryable failures so the watermark never passes an unindexed row.
async fn sync_products(
    client: &SearchClient,
    db: &DatabaseConnection,
    since: Option<DateTime<Utc>>,
) -> Result<ProductSync, SyncError> {
    let alias = client.alias(IndexKind::Products);
    let mut sync = ProductSync {
        indexed: 0,
        rejected: 0,
        latest: since.map(|s| s + WATERMARK_OVERLAP),
    };
    let mut cursor: Option<(DateTime<Utc>, Uuid)> = None;
    loop {
        let mut select = product::Entity::find()
            .order_by_asc(product::Column::UpdatedAt)
            .order_by_asc(product::Column::Id)
            .limit(PRODUCT_BATCH);
        if let Some(since) = since {
            select = select.filter(product::Column::UpdatedAt.gt(since));
        }
        if let Some((at, id)) = cursor {
            select = select.filter(
                sea_orm::Condition::any()
                    .add(product::Column::UpdatedAt.gt(at))
                    .add(
                        sea_orm::Condition::all()
                            .add(product::Column::UpdatedAt.eq(at))
                            .add(product::Column::Id.gt(id)),
                    ),
            );
        }
        let rows = select.all(db).await?;
        let Some(last) = rows.last() else { break };
        cursor = Some((last.updated_at.with_timezone(&Utc), last.id));
        let docs: Vec<(String, serde_json::Value)> = rows
            .iter()
            .map(|r| (r.id.to_string(), json!(ProductDoc::from_row(r))))
            .collect();
        let report = index_documents(client, &alias, &docs)
            .await
            .map_err(SyncError::Search)?;
        sync.indexed += report.indexed();
        sync.rejected += report.rejected();
        for (row, outcome) in rows.iter().zip(&report.outcomes) {
            if let ItemOutcome::Rejected(reason) = outcome {
                tracing::warn!(product = %row.id, %reason, "product refused by the search server");
            }
        }
        if report.retryable() > 0 {
            return Err(SyncError::Search(SearchError::Unavailable(format!(
                "{} products not indexed yet",
                report.retryable()
            ))));
        }
        sync.latest = Some(cursor.expect("set above").0);
        if (rows.len() as u64) < PRODUCT_BATCH {
            break;
        }
    }
    Ok(sync)
}

/// Removes deleted products (the `product_tombstones` the delete trigger wrote) from the index,
/// then forgets the tombstones it removed. A tombstone written again meanwhile (a newer
/// `deleted_at`) stays for the next tick. Returns how many were removed.
async fn purge_deleted_products(
    client: &SearchClient,
    db: &DatabaseConnection,
) -> Result<usize, SyncError> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT product_id, deleted_at FROM product_tombstones ORDER BY deleted_at LIMIT $1",
            [(PRODUCT_BATCH as i64).into()],
        ))
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut tombstones = Vec::with_capacity(rows.len());
    for row in rows {
        let id: Uuid = row.try_get("", "product_id")?;
        let at: DateTime<Utc> = row.try_get("", "deleted_at")?;
        tombstones.push((id.to_string(), at));
    }
    let ids: Vec<String> = tombstones.iter().map(|(id, _)| id.clone()).collect();
    let report = delete_documents(client, &client.alias(IndexKind::Products), &ids)
        .await
        .map_err(SyncError::Search)?;
    let done: Vec<&(String, DateTime<Utc>)> = tombstones
        .iter()
        .zip(&report.outcomes)
        .filter(|(_, outcome)| !matches!(outcome, ItemOutcome::Retryable(_)))
        .map(|(tombstone, _)| tombstone)
        .collect();
    for (id, at) in &done {
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            "DELETE FROM product_tombstones WHERE product_id = $1::uuid AND deleted_at = $2",
            [id.clone().into(), (*at).into()],
        ))
        .await?;
    }
    if report.retryable() > 0 {
        return Err(SyncError::Search(SearchError::Unavailable(format!(
            "{} deleted products not removed from the index yet",
            report.retryable()
        ))));
    }
    Ok(done.len())
}

impl Handler<ApplyEvent> for SearchIndexer {
    type Result = ResponseActFuture<Self, Result<(), ApplyError>>;

    fn handle(&mut self, msg: ApplyEvent, _: &mut Self::Context) -> Self::Result {
        if msg.event.event_type != EventType::ConversationMessageCreated {
            return Box::pin(fut::ready(Ok(())));
        }
        let payload: MessagePayload = match serde_json::from_value(msg.event.payload.clone()) {
            Ok(payload) => payload,
            Err(e) => {
                return Box::pin(fut::ready(Err(ApplyError::Invalid(format!(
                    "conversation.message.created payload: {e}"
                )))))
            }
        };
        let client = self.client.clone();
        let embeddings = self.embeddings.clone();
        let ensure = !self.indices_ready;
        let member = msg.event.member_id.clone();
        let at = msg.event.occurred_at;
        Box::pin(
            async move {
                if ensure {
                    client.ensure_indices().await?;
                }
                // The chat embedded the same text moments ago: normally a cache hit.
                let embedding = embeddings
                    .embed_as(TextKind::Query, vec![payload.text.clone()])
                    .await
                    .ok()
                    .and_then(|e| e.vectors.into_iter().next());
                let doc = MessageDoc {
                    message_id: payload.message_id,
                    conversation_id: payload.conversation_id,
                    user_id: member,
                    content: payload.text,
                    role: payload.role,
                    timestamp: at,
                    embedding,
                };
                let docs = [(doc.message_id.to_string(), doc)];
                index_documents(&client, &client.alias(IndexKind::Messages), &docs).await
            }
            .into_actor(self)
            .map(|result, actor, _| match result {
                Ok(report) => match report.outcomes.into_iter().next() {
                    Some(ItemOutcome::Indexed) => {
                        actor.indices_ready = true;
                        actor.count(IndexKind::Messages, "indexed", 1);
                        Ok(())
                    }
                    Some(ItemOutcome::Rejected(reason)) => {
                        actor.count(IndexKind::Messages, "rejected", 1);
                        Err(ApplyError::Invalid(format!(
                            "search server refused it: {reason}"
                        )))
                    }
                    other => {
                        let reason = match other {
                            Some(ItemOutcome::Retryable(reason)) => reason,
                            _ => "no answer for the item".to_string(),
                        };
                        actor.count(IndexKind::Messages, "retryable", 1);
                        Err(ApplyError::Retry(format!("search server: {reason}")))
                    }
                },
                Err(error) => {
                    actor.count(IndexKind::Messages, "retryable", 1);
                    Err(ApplyError::Retry(error.to_string()))
                }
            }),
        )
    }
}
