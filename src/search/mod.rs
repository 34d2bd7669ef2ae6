//! Search over conversation messages and products in Elasticsearch (locally the
//! Elasticsearch-compatible server from `noida-db`; only the `elasticsearch` crate is used, so
//! the same code runs against Elasticsearch 8).
//!
//! Indices are versioned (`{prefix}messages-v1`) behind aliases (`{prefix}messages`) and index
//! templates, so a mapping change is a new version plus `convrec reindex`, never a break.

/// How often a read whose sending failed is sent (see `SearchClient::raw`).
const READ_SEND_ATTEMPTS: u32 = 3;

pub mod bulk;
pub mod documents;
pub mod mappings;
pub mod metrics;
pub mod query;
pub mod reindex;

use crate::config::ElasticsearchSettings;
use elasticsearch::http::headers::{HeaderMap, HeaderValue, CONTENT_TYPE};
use elasticsearch::http::Method;
use elasticsearch::Elasticsearch;
use serde_json::{json, Value};
use std::time::Duration;

/// The two searchable collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Messages,
    Products,
}

impl IndexKind {
    pub const ALL: [IndexKind; 2] = [IndexKind::Messages, IndexKind::Products];

    pub fn base_name(self) -> &'static str {
        match self {
            IndexKind::Messages => "messages",
            IndexKind::Products => "products",
        }
    }

    /// The mapping version this build writes; bump it with a mapping change.
    pub fn version(self) -> u32 {
        match self {
            // 2: Hangul bigram sub-fields (2026-12-03).
            IndexKind::Messages => 2,
            IndexKind::Products => 2,
        }
    }

    pub fn parse(name: &str) -> Option<IndexKind> {
        IndexKind::ALL.into_iter().find(|k| k.base_name() == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The search server cannot be reached or answered 5xx/429: try again later.
    #[error("the search server is unavailable: {0}")]
    Unavailable(String),
    /// The server refused the request (a bug or a mapping conflict, not a transient state).
    #[error("the search server refused the request ({status}): {reason}")]
    Rejected { status: u16, reason: String },
}

/// A search-server client bound to one deployment's index names and settings.
#[derive(Clone)]
pub struct SearchClient {
    client: Elasticsearch,
    prefix: String,
    pub analyzer: String,
    timeout: Duration,
}

impl SearchClient {
    pub fn new(client: Elasticsearch, settings: &ElasticsearchSettings) -> Self {
        Self {
            client,
            prefix: settings.index_prefix.clone(),
            analyzer: settings.text_analyzer.clone(),
            timeout: Duration::from_millis(settings.request_timeout_ms.max(1)),
        }
    }

    /// The alias readers and writers use.
    pub fn alias(&self, kind: IndexKind) -> String {
        format!("{}{}", self.prefix, kind.base_name())
    }

    /// The physical index of a mapping version.
    pub fn versioned(&self, kind: IndexKind, version: u32) -> String {
        format!("{}-v{version}", self.alias(kind))
    }

    /// One JSON request; transport errors, 429 and 5xx are `Unavailable`, other 4xx `Rejected`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, SearchError> {
        let body = body.map(|b| b.to_string());
        self.raw(method, path, "application/json", body, self.timeout)
            .await
    }

    /// A request whose 404 is an answer (`None`), not an error.
    pub async fn request_optional(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, SearchError> {
        match self.request(method, path, body).await {
            Ok(value) => Ok(Some(value)),
            Err(SearchError::Rejected { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: &'static str,
        body: Option<String>,
        timeout: Duration,
    ) -> Result<Value, SearchError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        // A search is a read: when sending it fails at once (pooled keep-alive connections the
        // server had closed, typically, and the pool may hold several), it is sent again, up to
        // READ_SEND_ATTEMPTS times. Timeouts and writes are not repeated.
        let is_read = path.ends_with("/_search") || path.ends_with("/_count");
        let mut attempt = 1;
        let response = loop {
            let sent = self
                .client
                .send::<String, ()>(
                    method,
                    path,
                    headers.clone(),
                    None,
                    body.clone(),
                    Some(timeout),
                )
                .await;
            match sent {
                Err(error) if is_read && !error.is_timeout() && attempt < READ_SEND_ATTEMPTS => {
                    tracing::debug!(%error, path, attempt, "search request not sent; sending it again");
                    attempt += 1;
                }
                sent => break sent.map_err(|e| SearchError::Unavailable(e.to_string()))?,
            }
        };
        let status = response.status_code().as_u16();
        let value: Value = response
            .json()
            .await
            .map_err(|e| SearchError::Unavailable(format!("unreadable answer: {e}")))?;
        if status == 429 || status >= 500 {
            return Err(SearchError::Unavailable(format!(
                "status {status}: {value}"
            )));
        }
        if status >= 400 {
            let reason = value["error"]["reason"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            return Err(SearchError::Rejected { status, reason });
        }
        Ok(value)
    }

    /// A `_bulk` request (NDJSON lines); bulk answers are big, so it gets a longer deadline.
    pub async fn bulk_raw(&self, ndjson: String) -> Result<Value, SearchError> {
        self.raw(
            Method::Post,
            "/_bulk",
            "application/x-ndjson",
            Some(ndjson),
            self.timeout * 10,
        )
        .await
    }

    /// Makes documents written so far visible to search (tests, reindex).
    pub async fn refresh(&self, kind: IndexKind) -> Result<(), SearchError> {
        self.request(
            Method::Post,
            &format!("/{}/_refresh", self.alias(kind)),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Creates the index templates and, where the alias does not exist yet, the current
    /// version's index behind it. An alias on an older version is left alone (with a warning
    /// to reindex): reads keep working meanwhile.
    pub async fn ensure_indices(&self) -> Result<(), SearchError> {
        for kind in IndexKind::ALL {
            let alias = self.alias(kind);
            let template = json!({
                "index_patterns": [format!("{alias}-v*")],
                "template": mappings::index_body(kind, &self.analyzer),
            });
            self.request(
                Method::Put,
                &format!("/_index_template/{alias}"),
                Some(&template),
            )
            .await?;
            match self.current_index(kind).await? {
                Some(index) if index == self.versioned(kind, kind.version()) => {}
                Some(index) => {
                    tracing::warn!(
                        %alias, %index, wanted = kind.version(),
                        "the index has an older mapping; run `convrec reindex {}`", kind.base_name()
                    );
                }
                None => {
                    self.create_index(kind, kind.version(), true).await?;
                }
            }
        }
        Ok(())
    }

    /// The index an alias points at, if the alias exists.
    pub async fn current_index(&self, kind: IndexKind) -> Result<Option<String>, SearchError> {
        let answer = self
            .request_optional(Method::Get, &format!("/_alias/{}", self.alias(kind)), None)
            .await?;
        Ok(answer.and_then(|v| v.as_object().and_then(|m| m.keys().next().cloned())))
    }

    /// Creates `{alias}-v{version}` (tolerating a concurrent creation), optionally with the alias.
    pub async fn create_index(
        &self,
        kind: IndexKind,
        version: u32,
        with_alias: bool,
    ) -> Result<String, SearchError> {
        self.create_named_index(kind, &self.versioned(kind, version), with_alias)
            .await
    }

    pub async fn create_named_index(
        &self,
        kind: IndexKind,
        index: &str,
        with_alias: bool,
    ) -> Result<String, SearchError> {
        let mut body = mappings::index_body(kind, &self.analyzer);
        if with_alias {
            body["aliases"] = json!({ self.alias(kind): {} });
        }
        match self
            .request(Method::Put, &format!("/{index}"), Some(&body))
            .await
        {
            Ok(_) => Ok(index.to_string()),
            Err(SearchError::Rejected { reason, .. }) if reason.contains("already exists") => {
                Ok(index.to_string())
            }
            Err(e) => Err(e),
        }
    }
}
