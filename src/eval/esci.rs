//! Offline evaluation on the Amazon ESCI subset: each judged query is run against the
//! imported products, and the top 10 is scored by NDCG@10 against the graded judgments.
//!
//! Gains: Exact 3, Substitute 2, Complement 1, Irrelevant 0 (the judgment file's
//! 100/10/1/0 mapped to 3/2/1/0; linear gains, see [`super::metrics::ndcg_at_k`]).
//! Unjudged products gain 0.

use super::metrics::{ndcg_at_k, Mean};
use crate::recommend::lexical::lexical_matches;
use anyhow::Context;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

/// One query and the graded judgments of the products it was judged against.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgedQuery {
    pub text: String,
    /// Product sku (ASIN) → gain.
    pub gains: HashMap<String, f64>,
}

/// The judgment file's rating → our gain.
fn gain(rating: f64) -> Option<f64> {
    match rating {
        r if (r - 100.0).abs() < 1e-6 => Some(3.0),
        r if (r - 10.0).abs() < 1e-6 => Some(2.0),
        r if (r - 1.0).abs() < 1e-6 => Some(1.0),
        r if r.abs() < 1e-6 => Some(0.0),
        _ => None,
    }
}

/// Reads `esci_us_judgments_flat.tsv` (`query<TAB>product_id<TAB>rating`, with a header),
/// queries in file order.
pub fn read_judgments(path: &Path) -> anyhow::Result<Vec<JudgedQuery>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut order: Vec<String> = Vec::new();
    let mut by_query: BTreeMap<String, HashMap<String, f64>> = BTreeMap::new();
    for (number, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [query, product, rating] = fields[..] else {
            anyhow::bail!("{}:{}: expected 3 columns", path.display(), number + 1);
        };
        let rating: f64 = rating
            .trim()
            .parse()
            .with_context(|| format!("{}:{}: rating {rating:?}", path.display(), number + 1))?;
        let gain = gain(rating).with_context(|| {
            format!(
                "{}:{}: rating {rating} is not one of 100/10/1/0",
                path.display(),
                number + 1
            )
        })?;
        if !by_query.contains_key(query) {
            order.push(query.to_string());
        }
        by_query
            .entry(query.to_string())
            .or_default()
            .insert(product.trim().to_string(), gain);
    }
    Ok(order
        .into_iter()
        .map(|text| {
            let gains = by_query.remove(&text).unwrap_or_default();
            JudgedQuery { text, gains }
        })
        .collect())
}

/// Lexical-only: the service's lexical signal (`recommend::lexical`, English stemming plus
/// Hangul bigrams, any query word), ranked as the engine ranks it.
pub async fn lexical_top(
    db: &DatabaseConnection,
    query: &str,
    k: usize,
) -> anyhow::Result<Vec<String>> {
    Ok(lexical_matches(db, query, k)
        .await?
        .into_iter()
        .map(|m| m.sku)
        .collect())
}

/// Content-only: the products nearest to the query embedding (pgvector cosine distance).
pub async fn content_top(
    db: &DatabaseConnection,
    query_embedding: Vec<f32>,
    k: usize,
) -> anyhow::Result<Vec<String>> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT sku FROM products WHERE embedding IS NOT NULL \
             ORDER BY embedding <=> $1 LIMIT $2",
            [
                pgvector::Vector::from(query_embedding).into(),
                (k as i64).into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|row| row.try_get("", "sku").map_err(Into::into))
        .collect()
}

/// Reciprocal rank fusion of ranked lists: Σ 1 / (c + rank), rank from 1.
pub fn reciprocal_rank_fusion(lists: &[&[String]], c: f64, k: usize) -> Vec<String> {
    let mut scores: HashMap<&str, f64> = HashMap::new();
    for list in lists {
        for (i, sku) in list.iter().enumerate() {
            *scores.entry(sku.as_str()).or_default() += 1.0 / (c + i as f64 + 1.0);
        }
    }
    let mut fused: Vec<(&str, f64)> = scores.into_iter().collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    fused
        .into_iter()
        .take(k)
        .map(|(sku, _)| sku.to_string())
        .collect()
}

/// Which half of the queries a query belongs to: settings are tuned on `Dev` only and
/// `Test` is reported beside it, so a tuned number can be checked on queries it never saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    Dev,
    Test,
}

/// A fixed, platform-independent assignment: the parity of the FNV-1a hash of the query
/// text (the judgment file has no query ids).
pub fn half_of(query: &str) -> Half {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in query.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    if hash.is_multiple_of(2) {
        Half::Dev
    } else {
        Half::Test
    }
}

/// Mean NDCG@k of one method over the queries, on each half and on all of them.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryScore {
    pub method: String,
    pub dev: (u64, f64),
    pub test: (u64, f64),
    pub all: (u64, f64),
}

/// NDCG@k of one list per query (lists in query order).
pub fn per_query(queries: &[JudgedQuery], lists: &[Vec<String>], k: usize) -> Vec<f64> {
    queries
        .iter()
        .zip(lists)
        .map(|(query, list)| ndcg_at_k(list, &query.gains, k))
        .collect()
}

/// Scores each method's list per query (lists in query order).
pub fn score(method: &str, queries: &[JudgedQuery], lists: &[Vec<String>], k: usize) -> QueryScore {
    let (mut dev, mut test, mut all) = (Mean::default(), Mean::default(), Mean::default());
    for (query, ndcg) in queries.iter().zip(per_query(queries, lists, k)) {
        all.add(ndcg);
        match half_of(&query.text) {
            Half::Dev => dev.add(ndcg),
            Half::Test => test.add(ndcg),
        }
    }
    let pair = |m: Mean| (m.count(), m.value());
    QueryScore {
        method: method.to_string(),
        dev: pair(dev),
        test: pair(test),
        all: pair(all),
    }
}

pub fn markdown_table(scores: &[QueryScore], k: usize) -> String {
    let (dev, test, all) = scores
        .first()
        .map_or((0, 0, 0), |s| (s.dev.0, s.test.0, s.all.0));
    let mut out = format!(
        "| Method | NDCG@{k} dev ({dev}) | NDCG@{k} test ({test}) | NDCG@{k} all ({all}) |\n\
         |---|---:|---:|---:|\n"
    );
    for s in scores {
        let _ = writeln!(
            out,
            "| {} | {:.4} | {:.4} | {:.4} |",
            s.method, s.dev.1, s.test.1, s.all.1
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::skips::test_support::temp_file;

    #[test]
    fn judgments_map_ratings_to_gains_and_keep_query_order() {
        let file = temp_file(
            "judgments.tsv",
            "query\tproduct_id\trating\nzebra mug\tB1\t100.000\nzebra mug\tB2\t0.000\n\
             apple\tB3\t10.000\napple\tB4\t1.000\n",
        );
        let queries = read_judgments(file.path()).unwrap();
        assert_eq!(queries.len(), 2);
        assert_eq!(queries[0].text, "zebra mug");
        assert_eq!(queries[0].gains["B1"], 3.0);
        assert_eq!(queries[0].gains["B2"], 0.0);
        assert_eq!(queries[1].gains["B3"], 2.0);
        assert_eq!(queries[1].gains["B4"], 1.0);

        let bad = temp_file("bad.tsv", "query\tproduct_id\trating\nq\tB1\t50\n");
        let error = format!("{:#}", read_judgments(bad.path()).unwrap_err());
        assert!(error.contains("not one of 100/10/1/0"), "{error}");
    }

    #[test]
    fn the_halves_are_fixed_and_both_used() {
        assert_eq!(half_of("kitchen knife set"), half_of("kitchen knife set"));
        let halves: Vec<Half> = (0..40).map(|i| half_of(&format!("query {i}"))).collect();
        assert!(halves.contains(&Half::Dev) && halves.contains(&Half::Test));
        let queries = vec![
            JudgedQuery {
                text: "a".into(),
                gains: HashMap::from([("X".to_string(), 3.0)]),
            },
            JudgedQuery {
                text: "b".into(),
                gains: HashMap::from([("Y".to_string(), 3.0)]),
            },
        ];
        let lists = vec![vec!["X".to_string()], vec!["Z".to_string()]];
        let score = score("m", &queries, &lists, 10);
        assert_eq!(score.all, (2, 0.5));
        // FNV-1a parity: "a" is a dev query, "b" a test query.
        assert_eq!((score.dev, score.test), ((1, 1.0), (1, 0.0)));
    }

    #[test]
    fn fusion_rewards_agreement_between_lists() {
        let s = |items: &[&str]| items.iter().map(|i| i.to_string()).collect::<Vec<_>>();
        let content = s(&["a", "b", "c"]);
        let lexical = s(&["c", "d", "a"]);
        // a: 1/61 + 1/63, c: 1/63 + 1/61 (tie, by sku), b: 1/62, d: 1/62.
        assert_eq!(
            reciprocal_rank_fusion(&[&content, &lexical], 60.0, 3),
            ["a", "c", "b"]
        );
    }
}
