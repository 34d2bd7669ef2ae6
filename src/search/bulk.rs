//! `_bulk` indexing with per-item results: a 200 answer can hide failed items, so every item's
//! status is read; 429/5xx items are retryable, the rest (a document the mapping refuses) are
//! not and are reported, never retried in a loop.

use super::{SearchClient, SearchError};
use serde::Serialize;
use serde_json::{json, Value};

/// What happened to one document of a bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    Indexed,
    /// Worth trying again (the server was busy or failing).
    Retryable(String),
    /// Will never index as it is.
    Rejected(String),
}

#[derive(Debug, Default)]
pub struct BulkReport {
    pub outcomes: Vec<ItemOutcome>,
}

impl BulkReport {
    pub fn indexed(&self) -> usize {
        self.count(|o| matches!(o, ItemOutcome::Indexed))
    }
    pub fn retryable(&self) -> usize {
        self.count(|o| matches!(o, ItemOutcome::Retryable(_)))
    }
    pub fn rejected(&self) -> usize {
        self.count(|o| matches!(o, ItemOutcome::Rejected(_)))
    }
    fn count(&self, f: impl Fn(&ItemOutcome) -> bool) -> usize {
        self.outcomes.iter().filter(|o| f(o)).count()
    }
}

/// Indexes `docs` (id, document) into `index`, by id, so a repeat overwrites (idempotent).
/// A whole-request failure (server away) is an `Err`; item failures are in the report, in the
/// order of `docs`.
pub async fn index_documents<D: Serialize>(
    client: &SearchClient,
    index: &str,
    docs: &[(String, D)],
) -> Result<BulkReport, SearchError> {
    if docs.is_empty() {
        return Ok(BulkReport::default());
    }
    let mut body = String::new();
    for (id, doc) in docs {
        body.push_str(&json!({ "index": { "_index": index, "_id": id } }).to_string());
        body.push('\n');
        body.push_str(&serde_json::to_string(doc).expect("documents serialise"));
        body.push('\n');
    }
    let answer = client.bulk_raw(body).await?;
    Ok(read_items(&answer, docs.len()))
}

/// Deletes documents by id from `index`. A document that is not there counts as deleted
/// (the goal is its absence), so a repeat is harmless.
pub async fn delete_documents(
    client: &SearchClient,
    index: &str,
    ids: &[String],
) -> Result<BulkReport, SearchError> {
    if ids.is_empty() {
        return Ok(BulkReport::default());
    }
    let mut body = String::new();
    for id in ids {
        body.push_str(&json!({ "delete": { "_index": index, "_id": id } }).to_string());
        body.push('\n');
    }
    let answer = client.bulk_raw(body).await?;
    Ok(read_deletes(&answer, ids.len()))
}

fn read_deletes(answer: &Value, expected: usize) -> BulkReport {
    let mut report = read_items(answer, expected);
    let items = answer["items"].as_array().cloned().unwrap_or_default();
    for (outcome, item) in report.outcomes.iter_mut().zip(&items) {
        if item["delete"]["status"].as_u64() == Some(404) {
            *outcome = ItemOutcome::Indexed;
        }
    }
    report
}

/// Per-item outcomes of a bulk answer. Missing items (a truncated answer) count as retryable.
pub fn read_items(answer: &Value, expected: usize) -> BulkReport {
    let items = answer["items"].as_array().cloned().unwrap_or_default();
    let mut outcomes: Vec<ItemOutcome> = items
        .iter()
        .map(|item| {
            let result = item
                .as_object()
                .and_then(|m| m.values().next())
                .cloned()
                .unwrap_or(Value::Null);
            let status = result["status"].as_u64().unwrap_or(0);
            let reason = || {
                result["error"]["reason"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("status {status}"))
            };
            match status {
                200..=299 => ItemOutcome::Indexed,
                429 | 500..=599 | 0 => ItemOutcome::Retryable(reason()),
                _ => ItemOutcome::Rejected(reason()),
            }
        })
        .collect();
    while outcomes.len() < expected {
        outcomes.push(ItemOutcome::Retryable(
            "missing from the bulk answer".into(),
        ));
    }
    BulkReport { outcomes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleting_a_missing_document_counts_as_done() {
        let answer = json!({"errors": true, "items": [
            {"delete": {"_id": "1", "status": 200, "result": "deleted"}},
            {"delete": {"_id": "2", "status": 404, "result": "not_found"}},
            {"delete": {"_id": "3", "status": 503, "error": {"reason": "unavailable_shards"}}}
        ]});
        let report = read_deletes(&answer, 3);
        assert_eq!(report.indexed(), 2);
        assert_eq!(report.retryable(), 1);
    }

    #[test]
    fn a_200_answer_with_failed_items_is_read_item_by_item() {
        let answer = json!({"errors": true, "items": [
            {"index": {"_id": "1", "status": 201}},
            {"index": {"_id": "2", "status": 429, "error": {"reason": "es_rejected_execution"}}},
            {"index": {"_id": "3", "status": 400, "error": {"reason": "mapper_parsing_exception"}}},
            {"index": {"_id": "4", "status": 503, "error": {"reason": "unavailable_shards"}}}
        ]});
        let report = read_items(&answer, 5);
        assert_eq!(report.indexed(), 1);
        assert_eq!(report.retryable(), 3, "429, 503 and the missing fifth item");
        assert_eq!(report.rejected(), 1);
        assert_eq!(
            report.outcomes[2],
            ItemOutcome::Rejected("mapper_parsing_exception".into())
        );
    }
}
