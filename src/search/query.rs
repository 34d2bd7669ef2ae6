//! The two searches: a member's (or, for the shop, anyone's) messages by text, and products by
//! text and meaning (BM25 + kNN on the query embedding, summed by the server), with highlights.

use super::mappings::BIGRAMS;
use super::{IndexKind, SearchClient, SearchError};
use chrono::{DateTime, Utc};
use elasticsearch::http::Method;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    pub text: String,
    /// Only this member's messages (always set for a member caller).
    pub member_id: Option<String>,
    pub conversation_id: Option<uuid::Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageHit {
    pub message_id: String,
    pub conversation_id: String,
    pub member_id: String,
    pub role: String,
    pub timestamp: String,
    pub content: String,
    /// Fragments of `content` with the matched terms in `<em>…</em>`.
    pub highlights: Vec<String>,
    pub score: f64,
}

#[derive(Debug, Clone, Default)]
pub struct ProductQuery {
    pub text: String,
    pub embedding: Option<Vec<f32>>,
    /// A category path; matches it and everything below it.
    pub category: Option<String>,
    pub limit: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductHit {
    pub product_id: String,
    pub sku: String,
    pub title: String,
    pub brand: Option<String>,
    pub category: String,
    pub price_minor: Option<i64>,
    pub currency: String,
    pub stock: i64,
    pub highlights: Vec<String>,
    pub score: f64,
}

pub async fn search_messages(
    client: &SearchClient,
    query: &MessageQuery,
) -> Result<(u64, Vec<MessageHit>), SearchError> {
    let mut filters = Vec::new();
    if let Some(member) = &query.member_id {
        filters.push(json!({ "term": { "userId": member } }));
    }
    if let Some(conversation) = &query.conversation_id {
        filters.push(json!({ "term": { "conversationId": conversation.to_string() } }));
    }
    if query.from.is_some() || query.to.is_some() {
        let mut range = serde_json::Map::new();
        if let Some(from) = query.from {
            range.insert("gte".into(), json!(from.to_rfc3339()));
        }
        if let Some(to) = query.to {
            range.insert("lte".into(), json!(to.to_rfc3339()));
        }
        filters.push(json!({ "range": { "timestamp": range } }));
    }
    let body = json!({
        "size": query.limit,
        "_source": { "excludes": ["embedding"] },
        "query": { "bool": {
            "must": [{ "multi_match": {
                "query": query.text,
                "fields": ["content", format!("content.{BIGRAMS}")]
            }}],
            "filter": filters
        }},
        "highlight": highlight_request(&["content"])
    });
    run_search(client, IndexKind::Messages, &body, |hit| {
        let source = &hit["_source"];
        MessageHit {
            message_id: text(&source["messageId"]),
            conversation_id: text(&source["conversationId"]),
            member_id: text(&source["userId"]),
            role: text(&source["type"]),
            timestamp: text(&source["timestamp"]),
            content: text(&source["content"]),
            highlights: highlights(hit, "content"),
            score: hit["_score"].as_f64().unwrap_or(0.0),
        }
    })
    .await
}

pub async fn search_products(
    client: &SearchClient,
    query: &ProductQuery,
) -> Result<(u64, Vec<ProductHit>), SearchError> {
    let filter: Vec<Value> = query
        .category
        .iter()
        .map(|category| {
            json!({ "bool": { "should": [
                { "term": { "category": category } },
                { "prefix": { "category": format!("{category}/") } }
            ], "minimum_should_match": 1 } })
        })
        .collect();
    let mut body = json!({
        "size": query.limit,
        "_source": { "excludes": ["embedding", "description"] },
        "query": { "bool": {
            "must": [{ "multi_match": {
                "query": query.text,
                "fields": [
                    "title^2", format!("title.{BIGRAMS}^2"),
                    "description", format!("description.{BIGRAMS}"),
                    "brand", "category"
                ]
            }}],
            "filter": filter
        }},
        "highlight": highlight_request(&["title", "description"])
    });
    if let Some(vector) = &query.embedding {
        body["knn"] = json!({
            "field": "embedding",
            "query_vector": vector,
            "k": query.limit,
            "num_candidates": (query.limit * 10).max(100),
            "filter": filter
        });
    }
    run_search(client, IndexKind::Products, &body, |hit| {
        let source = &hit["_source"];
        let mut fragments = highlights(hit, "title");
        fragments.extend(highlights(hit, "description"));
        ProductHit {
            product_id: text(&source["productId"]),
            sku: text(&source["sku"]),
            title: text(&source["title"]),
            brand: source["brand"].as_str().map(str::to_string),
            category: text(&source["category"]),
            price_minor: source["price"].as_i64(),
            currency: text(&source["currency"]),
            stock: source["stock"].as_i64().unwrap_or(0),
            highlights: fragments,
            score: hit["_score"].as_f64().unwrap_or(0.0),
        }
    })
    .await
}

/// Runs `body` against the alias of `index`; the total and each hit read by `read_hit`.
async fn run_search<T>(
    client: &SearchClient,
    index: IndexKind,
    body: &Value,
    read_hit: impl Fn(&Value) -> T,
) -> Result<(u64, Vec<T>), SearchError> {
    let answer = client
        .request(
            Method::Post,
            &format!("/{}/_search", client.alias(index)),
            Some(body),
        )
        .await?;
    let hits = answer["hits"]["hits"]
        .as_array()
        .map(|hits| hits.iter().map(&read_hit).collect())
        .unwrap_or_default();
    Ok((total(&answer), hits))
}

fn total(answer: &Value) -> u64 {
    answer["hits"]["total"]["value"].as_u64().unwrap_or(0)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// Highlights come back as HTML: the server escapes the stored text (the `html` encoder)
/// and wraps each match in `<em>`, so shopper text never becomes live markup in the shop's
/// back office. Each field is asked for with its Hangul bigrams, where a Korean word matched
/// inside a longer form is highlighted.
fn highlight_request(fields: &[&str]) -> Value {
    let fields: serde_json::Map<String, Value> = fields
        .iter()
        .flat_map(|field| [field.to_string(), format!("{field}.{BIGRAMS}")])
        .map(|name| (name, json!({})))
        .collect();
    json!({ "encoder": "html", "fields": fields })
}

/// The highlighted fragments of `field`: those of the field itself, or else of its Hangul
/// bigrams; markup outside the match tags escaped either way.
fn highlights(hit: &Value, field: &str) -> Vec<String> {
    let fragments = |name: &str| -> Vec<String> {
        hit["highlight"][name]
            .as_array()
            .map(|fragments| {
                fragments
                    .iter()
                    .map(|fragment| only_match_tags(fragment.as_str().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let whole_words = fragments(field);
    if whole_words.is_empty() {
        fragments(&format!("{field}.{BIGRAMS}"))
    } else {
        whole_words
    }
}

/// A fragment with every `<`, `>` and quote escaped except the `<em>`/`</em>` match tags:
/// the server's encoder already did this; checking again keeps a server that ignores the
/// encoder (or a future one) from reopening the hole.
fn only_match_tags(fragment: &str) -> String {
    let mut html = String::with_capacity(fragment.len());
    let mut rest = fragment;
    while let Some(c) = rest.chars().next() {
        if let Some(tag) = ["<em>", "</em>"].into_iter().find(|t| rest.starts_with(t)) {
            html.push_str(tag);
            rest = &rest[tag.len()..];
            continue;
        }
        match c {
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#x27;"),
            c => html.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_outside_the_match_tags_is_escaped() {
        let fragment = "<script>alert('x')</script> <em>패딩</em> &amp; \"coat\"";
        assert_eq!(
            only_match_tags(fragment),
            "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; <em>패딩</em> &amp; &quot;coat&quot;"
        );
    }

    #[test]
    fn an_encoded_fragment_passes_unchanged() {
        let fragment = "&lt;img src=x onerror=alert(1)&gt; <em>raincoat</em> please";
        assert_eq!(only_match_tags(fragment), fragment);
    }
}
