//! Index settings and mappings. Message fields follow the seed (messageId, conversationId,
//! userId, content, type, timestamp, embedding); ids are keywords because ours are UUIDs and
//! the shop's member ids are strings.

use super::IndexKind;
use serde_json::{json, Value};

/// The embedding size of the model (all-MiniLM-L6-v2 and the multilingual drop-ins).
pub const EMBEDDING_DIMS: usize = 384;

/// `settings` + `mappings` for an index of `kind`. `analyzer` is the type of the text
/// analyzer: `nori` (Elasticsearch with the Korean plugin, production), `cjk` (bigrams, good
/// enough for Korean where nori is missing) or `standard`.
pub fn index_body(kind: IndexKind, analyzer: &str) -> Value {
    let settings = json!({
        "number_of_shards": 1,
        "analysis": { "analyzer": { "text": { "type": analyzer } } }
    });
    let vector = json!({
        "type": "dense_vector", "dims": EMBEDDING_DIMS, "index": true, "similarity": "cosine"
    });
    let mappings = match kind {
        IndexKind::Messages => json!({
            "dynamic": "strict",
            "properties": {
                "messageId": { "type": "keyword" },
                "conversationId": { "type": "keyword" },
                "userId": { "type": "keyword" },
                "content": { "type": "text", "analyzer": "text" },
                "type": { "type": "keyword" },
                "timestamp": { "type": "date" },
                "embedding": vector
            }
        }),
        IndexKind::Products => json!({
            "dynamic": "strict",
            "properties": {
                "productId": { "type": "keyword" },
                "sku": { "type": "keyword" },
                "title": { "type": "text", "analyzer": "text" },
                "description": { "type": "text", "analyzer": "text" },
                "brand": { "type": "keyword" },
                "category": { "type": "keyword" },
                "price": { "type": "long" },
                "currency": { "type": "keyword" },
                "stock": { "type": "integer" },
                "updatedAt": { "type": "date" },
                "embedding": vector
            }
        }),
    };
    json!({ "settings": settings, "mappings": mappings })
}
