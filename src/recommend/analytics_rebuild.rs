//! Trending and popular are derived state: `rec:trending` and `rec:popular:category:{cat}` are
//! rebuilt here from `interactions`, the source of truth, whenever they were lost (the
//! `Analytics` actor checks [`RedisKeys::analytics_built`] at start and on every decay tick)
//! or on demand (`convrec rebuild analytics`).
//!
//! A product's trending score is Σ counted weight × 0.5^(age / half-life) over its
//! interactions ([`decay_factor`], age from `occurred_at` to the rebuild), and its popular
//! count in each level of its category ([`category_levels`]) is Σ counted weight, the
//! weights being `InteractionKind::counted_weight` (passed to the SQL as parameters). The
//! sums are grouped per product in PostgreSQL; the new sets are written under temporary keys
//! and swapped in by one Lua script (RENAME), so a reader sees the old sets or the new ones,
//! never a half-built one. One instance rebuilds at a time (the lock
//! [`RedisKeys::analytics_rebuild_lock`], `SET NX PX`; the swap checks it is still held).
//!
//! # The race with events applied meanwhile
//!
//! The live counters go on while a rebuild runs: the `analytics` group adds each event's
//! weight to the live sets when it consumes it, some time after its `interactions` row was
//! committed (the outbox poll, Kafka, the consumer: usually well under a second, longer while
//! the broker or the group is behind). The rebuild reads `interactions` in one statement (one
//! snapshot, at time S) and swaps at time W (S plus writing the temporary sets: milliseconds
//! for a few thousand products, about a second for a few hundred thousand). So:
//!
//! - an event committed after S and applied before W is **lost**: it went into the sets the
//!   swap replaces, and the snapshot did not have it;
//! - an event committed before S but applied after W is **counted twice**: once in the
//!   snapshot, once more by the consumer (which skips only events it already applied, by
//!   `processed_events`).
//!
//! Both are bounded by the consumer's lag around the rebuild, which is short when the stream
//! is healthy; a rebuild after lost state is about the state being gone, not about those few
//! events. In trending both errors fade with the half-life; in popular they stay until the
//! next rebuild, which `convrec rebuild analytics` can run at a quiet time. Closing the race
//! needs the snapshot and the stream to agree on a cut (which events the snapshot holds), and
//! `interactions` does not carry the event id of an order line; so it is left open.
//!
//! Two more differences from the live counters, both on purpose: interactions that never
//! passed through the event stream (`convrec import … --with-orders`) are counted, and a
//! product counts in the category it has now (the live counters used the category the event
//! carried).

use crate::catalog::InteractionKind;
use crate::recommend::popularity::{category_levels, decay_factor, MIN_TRENDING_SCORE};
use crate::redis::{RedisKeys, RedisPool};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement, Value as DbValue};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long the rebuild lock lives: longer than any rebuild should take, short enough that a
/// crashed instance's lock does not stop the next rebuild for long.
pub const REBUILD_LOCK_TTL: Duration = Duration::from_secs(300);
/// How long temporary sets outlive a rebuild that died before the swap.
const TEMPORARY_TTL: Duration = Duration::from_secs(3600);
/// Members per `ZADD`.
const ZADD_CHUNK: usize = 1000;

/// Swaps a rebuild in, if the lock is still this rebuild's. KEYS: lock, built marker, then
/// `ARGV[1]` pairs (temporary, live), then live keys to delete (categories no product has
/// any more). ARGV: pair count, lock token, the marker's value. Answers 1 when swapped, 0
/// when the lock was lost (nothing changed).
const SWAP_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return 0
end
local pairs = tonumber(ARGV[1])
for i = 1, pairs do
  local temporary, live = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  if redis.call('EXISTS', temporary) == 1 then
    redis.call('RENAME', temporary, live)
    redis.call('PERSIST', live)
  else
    redis.call('DEL', live)
  end
end
for i = 3 + 2 * pairs, #KEYS do
  redis.call('DEL', KEYS[i])
end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('DEL', KEYS[1])
return 1
"#;

/// Deletes the lock if it is still `ARGV[1]`'s.
const UNLOCK_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("redis: {0}")]
    Redis(String),
    #[error("the rebuild lock expired before the swap (the rebuild took longer than {REBUILD_LOCK_TTL:?}); nothing was changed")]
    LockLost,
}

fn redis_error(e: impl std::fmt::Display) -> RebuildError {
    RebuildError::Redis(e.to_string())
}

/// What a rebuild wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildReport {
    /// Products with at least one interaction (each is in its categories' popular sets).
    pub products: usize,
    /// Popular sets written (every level of every category).
    pub categories: usize,
    /// Products in trending (those whose decayed score is at least the minimum).
    pub trending: usize,
    /// Stale popular sets deleted (categories no product with interactions has any more).
    pub removed: usize,
    pub built_at: DateTime<Utc>,
    pub elapsed: Duration,
}

/// A rebuild's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Rebuild {
    Built(RebuildReport),
    /// Another instance holds the lock and is rebuilding.
    Busy,
}

/// One product's sums, as the database groups them.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductTotals {
    pub product_id: Uuid,
    pub category: String,
    /// Σ counted weight (popular).
    pub total: f64,
    /// Σ counted weight × decay (trending).
    pub decayed: f64,
}

/// The sets a rebuild writes.
#[derive(Debug, Default, PartialEq)]
pub struct AnalyticsSets {
    /// Best first; only scores at least [`MIN_TRENDING_SCORE`].
    pub trending: Vec<(Uuid, f64)>,
    /// Per category level, its products and counts.
    pub popular: BTreeMap<String, Vec<(Uuid, f64)>>,
}

/// The trending score of one product's interactions, `(kind, quantity, age)` each: the
/// formula the rebuild's SQL computes (`decay_in_sql`), here for reference and tests.
pub fn trending_score(
    interactions: impl IntoIterator<Item = (InteractionKind, i32, Duration)>,
    half_life: Duration,
) -> f64 {
    interactions
        .into_iter()
        .map(|(kind, quantity, age)| kind.counted_weight(quantity) * decay_factor(age, half_life))
        .sum()
}

/// Products' sums → the trending set and the popular set of every category level.
pub fn assemble(products: Vec<ProductTotals>) -> AnalyticsSets {
    let mut sets = AnalyticsSets::default();
    for product in products {
        if product.decayed >= MIN_TRENDING_SCORE {
            sets.trending.push((product.product_id, product.decayed));
        }
        for level in category_levels(&product.category) {
            sets.popular
                .entry(level.to_string())
                .or_default()
                .push((product.product_id, product.total));
        }
    }
    sets.trending
        .sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    sets
}

/// Whether each kind's counted weight grows with the quantity (an order's does, per unit):
/// the SQL multiplies by `GREATEST(quantity, 1)` exactly for these.
fn counts_per_unit(kind: InteractionKind) -> bool {
    kind.counted_weight(2) != kind.counted_weight(1)
}

/// `CASE i.kind WHEN 'view' THEN $n … END`: one interaction's counted weight, each kind's
/// weight (per unit where it counts per unit) a parameter from
/// `InteractionKind::counted_weight`, numbered from `first`.
fn counted_weight_sql(first: usize) -> (String, Vec<DbValue>) {
    let mut sql = String::from("(CASE i.kind");
    let mut values = Vec::new();
    for (n, kind) in InteractionKind::POSITIVE.into_iter().enumerate() {
        let units = if counts_per_unit(kind) {
            " * GREATEST(i.quantity, 1)"
        } else {
            ""
        };
        write!(sql, " WHEN '{}' THEN ${}{units}", kind.as_str(), first + n)
            .expect("writing to a String");
        values.push(DbValue::from(kind.counted_weight(1)));
    }
    sql.push_str(" ELSE 0 END)");
    (sql, values)
}

/// `'view', 'cart', 'order'`: the kinds trending and popularity count.
fn positive_kinds_sql() -> String {
    InteractionKind::POSITIVE
        .iter()
        .map(|kind| format!("'{}'", kind.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every product's sums at `now`, in one statement (one snapshot).
pub async fn product_totals(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    half_life: Duration,
) -> Result<Vec<ProductTotals>, DbErr> {
    let (weight, mut values) = counted_weight_sql(3);
    // A rejection is no vote for a product: it never reaches trending or popular.
    let positive = positive_kinds_sql();
    // `decay_factor` in SQL: 0.5^(age / half-life), the exponent capped so the power cannot
    // underflow (0.5^1000 is far below MIN_TRENDING_SCORE anyway).
    let decay_in_sql = "power(0.5::float8, LEAST(GREATEST(extract(epoch FROM ($1::timestamptz \
                        - i.occurred_at))::float8, 0) / $2::float8, 1000))";
    let sql = format!(
        "SELECT i.product_id, p.category, sum({weight})::float8 AS total, \
         sum({weight} * {decay_in_sql})::float8 AS decayed \
         FROM interactions i JOIN products p ON p.id = i.product_id \
         WHERE i.kind IN ({positive}) \
         GROUP BY i.product_id, p.category"
    );
    let mut params = vec![
        DbValue::from(now),
        DbValue::from(half_life.as_secs_f64().max(1.0)),
    ];
    params.append(&mut values);
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            params,
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            Ok(ProductTotals {
                product_id: row.try_get("", "product_id")?,
                category: row.try_get("", "category")?,
                total: row.try_get("", "total")?,
                decayed: row.try_get("", "decayed")?,
            })
        })
        .collect()
}

/// Whether the built marker is there (false: the state was lost, or never built).
pub async fn is_built(redis: &RedisPool, keys: &RedisKeys) -> Result<bool, String> {
    let mut conn = redis.get().await.map_err(|e| e.to_string())?;
    // GET rather than EXISTS: it counts as a use, should the store evict after all.
    let built: Option<String> = redis::cmd("GET")
        .arg(keys.analytics_built())
        .query_async(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(built.is_some())
}

/// Rebuilds when the built marker is missing: `Ok(None)` when it is there.
pub async fn rebuild_if_lost(
    db: &DatabaseConnection,
    redis: &RedisPool,
    keys: &RedisKeys,
    half_life: Duration,
) -> Result<Option<Rebuild>, RebuildError> {
    if is_built(redis, keys).await.map_err(RebuildError::Redis)? {
        return Ok(None);
    }
    rebuild(db, redis, keys, half_life).await.map(Some)
}

/// Rebuilds trending and popular from `interactions` into the state store `redis` and swaps
/// them in; [`Rebuild::Busy`] when another instance is at it. The grouping runs on a
/// blocking thread; everything else is asynchronous I/O.
pub async fn rebuild(
    db: &DatabaseConnection,
    redis: &RedisPool,
    keys: &RedisKeys,
    half_life: Duration,
) -> Result<Rebuild, RebuildError> {
    let started = Instant::now();
    let token = Uuid::new_v4().simple().to_string();
    let lock = keys.analytics_rebuild_lock();
    {
        let mut conn = redis.get().await.map_err(redis_error)?;
        let locked: Option<String> = redis::cmd("SET")
            .arg(&lock)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(REBUILD_LOCK_TTL.as_millis() as u64)
            .query_async(&mut *conn)
            .await
            .map_err(redis_error)?;
        if locked.is_none() {
            return Ok(Rebuild::Busy);
        }
    }
    let result = rebuild_locked(db, redis, keys, half_life, &token, started).await;
    if result.is_err() {
        // Best effort: the lock and the temporary sets expire by themselves anyway.
        if let Ok(mut conn) = redis.get().await {
            let _: Result<i64, _> = redis::cmd("EVAL")
                .arg(UNLOCK_SCRIPT)
                .arg(1)
                .arg(&lock)
                .arg(&token)
                .query_async(&mut *conn)
                .await;
        }
    }
    result.map(Rebuild::Built)
}

async fn rebuild_locked(
    db: &DatabaseConnection,
    redis: &RedisPool,
    keys: &RedisKeys,
    half_life: Duration,
    token: &str,
    started: Instant,
) -> Result<RebuildReport, RebuildError> {
    let built_at = Utc::now();
    let totals = product_totals(db, built_at, half_life).await?;
    let products = totals.len();
    let sets = tokio::task::spawn_blocking(move || assemble(totals))
        .await
        .map_err(|e| RebuildError::Redis(format!("grouping the sets failed: {e}")))?;

    let mut conn = redis.get().await.map_err(redis_error)?;
    // (temporary, live) pairs; trending first.
    let mut pairs = vec![(keys.analytics_rebuild_trending(token), keys.trending())];
    write_set(&mut conn, &pairs[0].0, &sets.trending).await?;
    for (category, members) in &sets.popular {
        let temporary = keys.analytics_rebuild_popular(token, category);
        write_set(&mut conn, &temporary, members).await?;
        pairs.push((temporary, keys.popular(category)));
    }
    let live: HashSet<&str> = pairs.iter().map(|(_, live)| live.as_str()).collect();
    let stale: Vec<String> = scan(&mut conn, &keys.popular_pattern())
        .await?
        .into_iter()
        .filter(|key| !live.contains(key.as_str()))
        .collect();

    let mut swap = redis::cmd("EVAL");
    swap.arg(SWAP_SCRIPT)
        .arg(2 + 2 * pairs.len() + stale.len())
        .arg(keys.analytics_rebuild_lock())
        .arg(keys.analytics_built());
    for (temporary, live) in &pairs {
        swap.arg(temporary).arg(live);
    }
    swap.arg(&stale)
        .arg(pairs.len())
        .arg(token)
        .arg(built_at.to_rfc3339());
    let swapped: i64 = swap.query_async(&mut *conn).await.map_err(redis_error)?;
    if swapped != 1 {
        return Err(RebuildError::LockLost);
    }
    Ok(RebuildReport {
        products,
        categories: sets.popular.len(),
        trending: sets.trending.len(),
        removed: stale.len(),
        built_at,
        elapsed: started.elapsed(),
    })
}

type Connection<'a> = bb8::PooledConnection<'a, bb8_redis::RedisConnectionManager>;

/// Writes `members` into the (new) ZSet `key`, in chunks, with a TTL the swap removes.
async fn write_set(
    conn: &mut Connection<'_>,
    key: &str,
    members: &[(Uuid, f64)],
) -> Result<(), RebuildError> {
    if members.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for chunk in members.chunks(ZADD_CHUNK) {
        let zadd = pipe.cmd("ZADD").arg(key);
        for (id, score) in chunk {
            zadd.arg(*score).arg(id.to_string());
        }
        zadd.ignore();
    }
    pipe.cmd("PEXPIRE")
        .arg(key)
        .arg(TEMPORARY_TTL.as_millis() as u64)
        .ignore();
    let () = pipe.query_async(&mut **conn).await.map_err(redis_error)?;
    Ok(())
}

/// Every key matching `pattern` (SCAN, so the server is never blocked).
async fn scan(conn: &mut Connection<'_>, pattern: &str) -> Result<Vec<String>, RebuildError> {
    let mut cursor: u64 = 0;
    let mut found = Vec::new();
    loop {
        let (next, mut keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut **conn)
            .await
            .map_err(redis_error)?;
        found.append(&mut keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    found.sort();
    found.dedup();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_trending_score_sums_counted_weights_halved_every_half_life() {
        use InteractionKind::*;
        let fresh = trending_score([(Order, 2, Duration::ZERO)], HOUR);
        assert_eq!(fresh, Order.counted_weight(2));
        let score = trending_score(
            [
                (View, 1, Duration::ZERO),
                (Cart, 1, HOUR),
                (Order, 3, 2 * HOUR),
            ],
            HOUR,
        );
        let expected =
            View.counted_weight(1) + Cart.counted_weight(1) / 2.0 + Order.counted_weight(3) / 4.0;
        assert!((score - expected).abs() < 1e-9, "{score} != {expected}");
        // Older interactions count less, however heavy they were.
        assert!(
            trending_score([(Order, 10, 10 * HOUR)], HOUR)
                < trending_score([(View, 1, Duration::ZERO)], HOUR)
        );
    }

    #[test]
    fn the_sql_weights_are_the_counted_weights() {
        // The SQL computes weight(1) × GREATEST(quantity, 1) for kinds counted per unit and
        // weight(1) otherwise; that must be `counted_weight` for every kind and quantity.
        for kind in InteractionKind::ALL {
            for quantity in 0..20 {
                let units = if counts_per_unit(kind) {
                    quantity.max(1)
                } else {
                    1
                };
                assert_eq!(
                    kind.counted_weight(quantity),
                    kind.counted_weight(1) * f64::from(units),
                    "{kind:?} × {quantity}"
                );
            }
        }
        let (sql, values) = counted_weight_sql(3);
        assert_eq!(values.len(), InteractionKind::POSITIVE.len());
        assert!(!sql.contains("reject"), "{sql}");
        assert_eq!(positive_kinds_sql(), "'view', 'cart', 'order'");
        assert!(
            sql.contains("WHEN 'order' THEN $5 * GREATEST(i.quantity, 1)"),
            "{sql}"
        );
        assert!(sql.contains("WHEN 'view' THEN $3 "), "{sql}");
    }

    #[test]
    fn assembling_ranks_trending_and_counts_every_category_level() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let sets = assemble(vec![
            ProductTotals {
                product_id: a,
                category: "fashion/outerwear".into(),
                total: 5.0,
                decayed: 4.0,
            },
            ProductTotals {
                product_id: b,
                category: "fashion/tops".into(),
                total: 3.0,
                decayed: 3.5,
            },
            ProductTotals {
                product_id: c,
                category: "books".into(),
                total: 1.0,
                decayed: MIN_TRENDING_SCORE / 2.0,
            },
        ]);
        assert_eq!(sets.trending, vec![(a, 4.0), (b, 3.5)]);
        assert_eq!(sets.popular["fashion"], vec![(a, 5.0), (b, 3.0)]);
        assert_eq!(sets.popular["fashion/outerwear"], vec![(a, 5.0)]);
        assert_eq!(sets.popular["books"], vec![(c, 1.0)]);
        assert_eq!(sets.popular.len(), 4);
    }
}
