//! The lexical signal: PostgreSQL full text of the shopper's words against a product's title,
//! brand and description. What a document and a query are (English stemming plus Hangul
//! bigrams, so "패딩을" finds "롱 패딩") is defined once, in SQL, by migration
//! m20261203_000007: `products.lexical` is the stored, GIN-indexed document and
//! `convrec_lexical_query` builds the query. This is the one query over them, used by the
//! hybrid engine and by the evaluation alike.

use sea_orm::{ConnectionTrait, DbErr, Statement, Value as DbValue};
use uuid::Uuid;

/// One product matched by words, with its rank (higher is better).
#[derive(Debug, Clone, PartialEq)]
pub struct LexicalMatch {
    pub id: Uuid,
    pub sku: String,
    pub rank: f32,
}

/// Products matching any of `words`, best first, at most `count`. The rank is `ts_rank`
/// divided by 1 + ln(document length) (normalisation 1), so long descriptions do not win by
/// repetition. Words without a single term (stop words only, punctuation) match nothing.
pub async fn lexical_matches(
    db: &impl ConnectionTrait,
    words: &str,
    count: usize,
) -> Result<Vec<LexicalMatch>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT p.id, p.sku, ts_rank(p.lexical, q.q, 1)::real AS rank \
             FROM products p, convrec_lexical_query($1) AS q(q) \
             WHERE numnode(q.q) > 0 AND p.lexical @@ q.q \
             ORDER BY rank DESC, p.id LIMIT $2",
            [
                DbValue::from(words.to_string()),
                DbValue::from(count as i64),
            ],
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            Ok(LexicalMatch {
                id: row.try_get("", "id")?,
                sku: row.try_get("", "sku")?,
                rank: row.try_get("", "rank")?,
            })
        })
        .collect()
}
