//! `convrec reindex messages|products`: builds a fresh index from the database behind a new
//! name, then moves the alias to it in one atomic step and drops the old one, so searches keep
//! answering from the old index until the new one is complete.

use super::bulk::index_documents;
use super::documents::{MessageDoc, ProductDoc};
use super::{IndexKind, SearchClient, SearchError};
use crate::db::entities::{conversation_message, product};
use elasticsearch::http::Method;
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::json;

const PAGE: u64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("{0} documents were refused by the search server (first: {1})")]
    Refused(usize, String),
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReindexReport {
    pub index: String,
    pub documents: u64,
}

pub async fn reindex(
    db: &DatabaseConnection,
    client: &SearchClient,
    kind: IndexKind,
    progress: bool,
) -> Result<ReindexReport, ReindexError> {
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S%3f");
    let index = format!("{}-r{stamp}", client.versioned(kind, kind.version()));
    client.create_named_index(kind, &index, false).await?;
    let total = match kind {
        IndexKind::Messages => conversation_message::Entity::find().count(db).await?,
        IndexKind::Products => product::Entity::find().count(db).await?,
    };
    let bar = if progress {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
                .expect("valid template"),
        );
        bar.set_message(format!("reindexing {}", kind.base_name()));
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut after: Option<uuid::Uuid> = None;
    let mut documents = 0u64;
    loop {
        let batch: Vec<(String, serde_json::Value)> = match kind {
            IndexKind::Messages => {
                let mut select = conversation_message::Entity::find()
                    .order_by_asc(conversation_message::Column::Id)
                    .limit(PAGE);
                if let Some(after) = after {
                    select = select.filter(conversation_message::Column::Id.gt(after));
                }
                let rows = select.all(db).await?;
                after = rows.last().map(|r| r.id);
                rows.iter()
                    .map(|r| (r.id.to_string(), json!(MessageDoc::from_row(r))))
                    .collect()
            }
            IndexKind::Products => {
                let mut select = product::Entity::find()
                    .order_by_asc(product::Column::Id)
                    .limit(PAGE);
                if let Some(after) = after {
                    select = select.filter(product::Column::Id.gt(after));
                }
                let rows = select.all(db).await?;
                after = rows.last().map(|r| r.id);
                rows.iter()
                    .map(|r| (r.id.to_string(), json!(ProductDoc::from_row(r))))
                    .collect()
            }
        };
        if batch.is_empty() {
            break;
        }
        let report = index_documents(client, &index, &batch).await?;
        if report.indexed() != batch.len() {
            let first = report
                .outcomes
                .iter()
                .find_map(|o| match o {
                    super::bulk::ItemOutcome::Indexed => None,
                    super::bulk::ItemOutcome::Retryable(r)
                    | super::bulk::ItemOutcome::Rejected(r) => Some(r.clone()),
                })
                .unwrap_or_default();
            // The half-built index is dropped; the alias never moved.
            let _ = client
                .request(Method::Delete, &format!("/{index}"), None)
                .await;
            return Err(ReindexError::Refused(batch.len() - report.indexed(), first));
        }
        documents += batch.len() as u64;
        bar.inc(batch.len() as u64);
    }
    bar.finish();
    client
        .request(Method::Post, &format!("/{index}/_refresh"), None)
        .await?;
    // Swap the alias atomically; then drop whatever it pointed at before.
    let alias = client.alias(kind);
    let old = client.current_index(kind).await?;
    let mut actions = vec![json!({ "add": { "index": index, "alias": alias } })];
    if let Some(old) = &old {
        actions.push(json!({ "remove": { "index": old, "alias": alias } }));
    }
    client
        .request(
            Method::Post,
            "/_aliases",
            Some(&json!({ "actions": actions })),
        )
        .await?;
    if let Some(old) = old.filter(|o| *o != index) {
        if let Err(error) = client
            .request(Method::Delete, &format!("/{old}"), None)
            .await
        {
            tracing::warn!(%old, %error, "the previous index was not deleted");
        }
    }
    Ok(ReindexReport { index, documents })
}
