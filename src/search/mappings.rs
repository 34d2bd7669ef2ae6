//! Index settings and mappings. Message fields follow the seed (messageId, conversationId,
//! userId, content, type, timestamp, embedding); ids are keywords because ours are UUIDs and
//! the shop's member ids are strings.

use super::IndexKind;
use serde_json::{json, Value};

/// The embedding size of the model (all-MiniLM-L6-v2 and the multilingual drop-ins).
pub const EMBEDDING_DIMS: usize = 384;

/// The sub-field of every text field that holds its Hangul bigrams (`content.bigrams`).
pub const BIGRAMS: &str = "bigrams";

/// `settings` + `mappings` for an index of `kind`. `analyzer` is the type of the text
/// analyzer (`elasticsearch.text_analyzer`): `nori` (Elasticsearch with the Korean plugin,
/// production), `cjk` or `standard`.
///
/// Every text field also gets a [`BIGRAMS`] sub-field: the character bigrams of its Hangul
/// runs, nothing else ("롱패딩을" → 롱패 패딩 딩을), so a Korean word is found inside longer
/// forms and before particles whatever the main analyzer does. The local server (noida-db
/// 0.2.3) accepts `cjk` but keeps "롱패딩을" one token and has no `nori`; with `nori` the
/// sub-field only adds recall. Built from core parts (`pattern_replace`, `ngram`), so it means
/// the same on Elasticsearch 8.
pub fn index_body(kind: IndexKind, analyzer: &str) -> Value {
    let settings = json!({
        "number_of_shards": 1,
        "analysis": {
            "char_filter": {
                "hangul_only": { "type": "pattern_replace", "pattern": "[^가-힣]+", "replacement": " " }
            },
            "tokenizer": {
                "bigrams": { "type": "ngram", "min_gram": 2, "max_gram": 2, "token_chars": ["letter"] }
            },
            "analyzer": {
                "text": { "type": analyzer },
                "hangul_bigrams": {
                    "type": "custom", "char_filter": ["hangul_only"], "tokenizer": "bigrams"
                }
            }
        }
    });
    let text = json!({
        "type": "text", "analyzer": "text",
        "fields": { BIGRAMS: { "type": "text", "analyzer": "hangul_bigrams" } }
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
                "content": text,
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
                "title": text,
                "description": text,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_use_the_configured_analyzer_and_carry_hangul_bigrams() {
        let body = index_body(IndexKind::Products, "nori");
        assert_eq!(
            body["settings"]["analysis"]["analyzer"]["text"]["type"],
            "nori"
        );
        for field in ["title", "description"] {
            let mapping = &body["mappings"]["properties"][field];
            assert_eq!(mapping["analyzer"], "text");
            assert_eq!(mapping["fields"][BIGRAMS]["analyzer"], "hangul_bigrams");
        }
        let messages = index_body(IndexKind::Messages, "cjk");
        assert_eq!(
            messages["mappings"]["properties"]["content"]["fields"][BIGRAMS]["analyzer"],
            "hangul_bigrams"
        );
    }
}
