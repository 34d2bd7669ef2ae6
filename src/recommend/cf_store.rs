//! Trained CF models as shared state (docs/scaling.md). PostgreSQL is the truth: the
//! `interactions` table is what every model is trained from, and `model_versions` keeps what
//! was trained. One instance trains at a time — the one that takes a transaction-scoped
//! advisory lock, which PostgreSQL releases when that instance's connection dies, so a crashed
//! trainer never blocks the next — and every instance loads a version once it is newer than
//! the one it serves. A member's own history is read per request ([`member_interactions`]),
//! so it is current on every instance at once; only the item neighbours wait for a training.

use crate::catalog::InteractionKind;
use crate::config::CfModelKind;
use crate::recommend::cf::{CfConfig, Interaction, ItemNeighbours, ServedNeighbours};
use crate::recommend::linear::{self, Trained};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, Statement, TransactionTrait, Value as DbValue,
};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// `model_versions.kind` of the item-item neighbours (each model's kind is
/// [`CfModelKind::as_str`]).
pub const ITEM_ITEM: &str = "item_item";
/// The advisory-lock key of the trainer, whichever model it trains (any instance of any deployment on the
/// same database contends for it; a database is one shop).
const TRAINER_LOCK: i64 = 0x636f_6e76_7265_6301;
/// Versions kept per kind; older ones are deleted after a training.
const VERSIONS_KEPT: i64 = 3;
/// The most recent interactions of a member read for their history.
pub const HISTORY_ROWS: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("{0}")]
    Decode(#[from] crate::recommend::cf::DecodeError),
    #[error("training task failed: {0}")]
    Task(String),
    #[error("{0}")]
    Model(#[from] linear::NotPositiveDefinite),
}

/// A stored version's facts (not its payload).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelVersion {
    pub id: i64,
    pub trained_at: chrono::DateTime<chrono::Utc>,
    pub interactions: i64,
    pub last_interaction_id: i64,
    pub items: i32,
    pub members: i32,
    pub train_ms: i64,
}

/// What one call of [`train_if_due`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainOutcome {
    Trained(ModelVersion),
    /// The newest version is recent enough, or nothing was recorded since it.
    NotDue,
    /// Another instance holds the trainer's lock.
    Busy,
}

/// The newest stored version of `kind`.
pub async fn latest_version(
    db: &impl ConnectionTrait,
    kind: &str,
) -> Result<Option<ModelVersion>, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT id, trained_at, interactions, last_interaction_id, items, members, train_ms \
             FROM model_versions WHERE kind = $1 ORDER BY id DESC LIMIT 1",
            [DbValue::from(kind)],
        ))
        .await?;
    row.map(|r| {
        Ok(ModelVersion {
            id: r.try_get("", "id")?,
            trained_at: r.try_get("", "trained_at")?,
            interactions: r.try_get("", "interactions")?,
            last_interaction_id: r.try_get("", "last_interaction_id")?,
            items: r.try_get("", "items")?,
            members: r.try_get("", "members")?,
            train_ms: r.try_get("", "train_ms")?,
        })
    })
    .transpose()
}

/// Every positive interaction (before `before`, unix seconds, when given) with the facts
/// training needs: a rejection is never a vote for an item.
pub async fn read_interactions(
    db: &impl ConnectionTrait,
    before: Option<i64>,
) -> Result<Vec<(String, Interaction)>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT member_id, product_id, kind, quantity, \
             extract(epoch FROM occurred_at)::bigint AS at FROM interactions \
             WHERE kind <> 'reject' \
             AND ($1::double precision IS NULL OR occurred_at < to_timestamp($1))",
            [DbValue::from(before.map(|b| b as f64))],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let kind: String = row.try_get("", "kind")?;
        let Some(kind) = InteractionKind::parse(&kind) else {
            continue;
        };
        out.push((
            row.try_get("", "member_id")?,
            Interaction {
                item: row.try_get("", "product_id")?,
                kind,
                quantity: row.try_get("", "quantity")?,
                at_secs: row.try_get("", "at")?,
            },
        ));
    }
    Ok(out)
}

/// A member's most recent interactions (up to [`HISTORY_ROWS`]), before `as_of` when given
/// (the offline evaluation replays a cutoff). Rejections included: the history ignores them
/// ([`crate::recommend::cf::history_strengths`]) and `recommend::rejection` penalises them.
pub async fn member_interactions(
    db: &impl ConnectionTrait,
    member: &str,
    as_of: Option<i64>,
) -> Result<Vec<Interaction>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT product_id, kind, quantity, extract(epoch FROM occurred_at)::bigint AS at \
             FROM interactions WHERE member_id = $1 \
             AND ($2::double precision IS NULL OR occurred_at < to_timestamp($2)) \
             ORDER BY occurred_at DESC LIMIT $3",
            [
                DbValue::from(member),
                DbValue::from(as_of.map(|b| b as f64)),
                DbValue::from(HISTORY_ROWS),
            ],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let kind: String = row.try_get("", "kind")?;
        if let Some(kind) = InteractionKind::parse(&kind) {
            out.push(Interaction {
                item: row.try_get::<Uuid>("", "product_id")?,
                kind,
                quantity: row.try_get("", "quantity")?,
                at_secs: row.try_get("", "at")?,
            });
        }
    }
    Ok(out)
}

/// Trains the configured model (`config.model`) from `interactions`. The whole training —
/// building the rows, the similarity pass or EASE's dense inverse — runs on a blocking
/// thread: it never runs on the caller's executor (an actix or tokio worker).
pub async fn train(
    db: &impl ConnectionTrait,
    config: CfConfig,
) -> Result<(Trained, usize), TrainingError> {
    let interactions = read_interactions(db, None).await?;
    let count = interactions.len();
    let now = chrono::Utc::now().timestamp();
    let trained = tokio::task::spawn_blocking(move || {
        linear::train(
            &config,
            interactions.iter().map(|(member, i)| (member.as_str(), i)),
            now,
        )
    })
    .await
    .map_err(|e| TrainingError::Task(e.to_string()))??;
    Ok((trained, count))
}

/// Trains and stores a new version of the configured model (`model_versions.kind` =
/// `config.model`) when this instance takes the trainer's lock and the newest version of that
/// kind is older than `due_after` and something was recorded since it. The lock is held by
/// this call's transaction: it ends with it, or with the connection.
pub async fn train_if_due(
    db: &DatabaseConnection,
    config: CfConfig,
    due_after: Duration,
) -> Result<TrainOutcome, TrainingError> {
    let txn = db.begin().await?;
    let locked = txn
        .query_one_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "SELECT pg_try_advisory_xact_lock($1) AS locked",
            [DbValue::from(TRAINER_LOCK)],
        ))
        .await?
        .map(|r| r.try_get::<bool>("", "locked"))
        .transpose()?
        .unwrap_or(false);
    if !locked {
        return Ok(TrainOutcome::Busy);
    }
    let kind = config.model.as_str();
    let newest = latest_version(&txn, kind).await?;
    // Not due yet: answered before counting `interactions`, which every instance would
    // otherwise do on every tick.
    let young = |v: &ModelVersion| {
        (chrono::Utc::now() - v.trained_at)
            .to_std()
            .unwrap_or_default()
            < due_after
    };
    if newest.as_ref().is_some_and(young) {
        return Ok(TrainOutcome::NotDue);
    }
    let recorded = txn
        .query_one_raw(Statement::from_string(
            txn.get_database_backend(),
            "SELECT count(*)::bigint AS n, coalesce(max(id), 0)::bigint AS last FROM interactions",
        ))
        .await?
        .expect("an aggregate answers one row");
    let (count, last_id): (i64, i64) = (recorded.try_get("", "n")?, recorded.try_get("", "last")?);
    if newest
        .as_ref()
        .is_some_and(|v| v.interactions == count && v.last_interaction_id == last_id)
    {
        return Ok(TrainOutcome::NotDue);
    }
    let started = Instant::now();
    let (trained, _) = train(&txn, config).await?;
    let (items, members) = (trained.items, trained.members);
    let payload = tokio::task::spawn_blocking(move || trained.neighbours.encode())
        .await
        .map_err(|e| TrainingError::Task(e.to_string()))?;
    let train_ms = started.elapsed().as_millis() as i64;
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "INSERT INTO model_versions \
             (kind, interactions, last_interaction_id, items, members, train_ms, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, trained_at",
            [
                DbValue::from(kind),
                DbValue::from(count),
                DbValue::from(last_id),
                DbValue::from(items as i32),
                DbValue::from(members as i32),
                DbValue::from(train_ms),
                DbValue::from(payload),
            ],
        ))
        .await?
        .expect("INSERT … RETURNING answers one row");
    let version = ModelVersion {
        id: row.try_get("", "id")?,
        trained_at: row.try_get("", "trained_at")?,
        interactions: count,
        last_interaction_id: last_id,
        items: items as i32,
        members: members as i32,
        train_ms,
    };
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        "DELETE FROM model_versions WHERE kind = $1 AND id NOT IN \
         (SELECT id FROM model_versions WHERE kind = $1 ORDER BY id DESC LIMIT $2)",
        [DbValue::from(kind), DbValue::from(VERSIONS_KEPT)],
    ))
    .await?;
    txn.commit().await?;
    tracing::info!(
        version = version.id,
        kind,
        interactions = count,
        items,
        members,
        train_ms,
        "collaborative model trained"
    );
    Ok(TrainOutcome::Trained(version))
}

/// Loads the newest stored version of `kind` into `served` when it is newer than the one
/// served; answers the version now served. Versions of other kinds (trained under another
/// `recommender.cf_model`) are never loaded.
pub async fn refresh(
    db: &DatabaseConnection,
    served: &ServedNeighbours,
    kind: CfModelKind,
) -> Result<Option<i64>, TrainingError> {
    let Some(newest) = latest_version(db, kind.as_str()).await? else {
        return Ok(served.version());
    };
    if served.version().is_some_and(|v| v >= newest.id) {
        return Ok(Some(newest.id));
    }
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT payload FROM model_versions WHERE id = $1",
            [DbValue::from(newest.id)],
        ))
        .await?;
    // Deleted since (a newer one replaced it): the next refresh finds that one.
    let Some(row) = row else {
        return Ok(served.version());
    };
    let payload: Vec<u8> = row.try_get("", "payload")?;
    let neighbours = tokio::task::spawn_blocking(move || ItemNeighbours::decode(&payload))
        .await
        .map_err(|e| TrainingError::Task(e.to_string()))??;
    served.replace(newest.id, neighbours);
    tracing::info!(
        version = newest.id,
        kind = kind.as_str(),
        "collaborative model loaded"
    );
    Ok(Some(newest.id))
}

/// At start-up: the newest stored version, or — on a deployment's first start — one trained
/// now (or, while another instance trains it, waited for up to `wait`).
pub async fn load_or_train(
    db: &DatabaseConnection,
    config: CfConfig,
    wait: Duration,
) -> Result<ServedNeighbours, TrainingError> {
    let served = ServedNeighbours::default();
    let kind = config.model;
    if refresh(db, &served, kind).await?.is_some() {
        return Ok(served);
    }
    let deadline = Instant::now() + wait;
    loop {
        match train_if_due(db, config.clone(), Duration::ZERO).await? {
            TrainOutcome::Busy if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => break,
        }
        if refresh(db, &served, kind).await?.is_some() {
            return Ok(served);
        }
    }
    refresh(db, &served, kind).await?;
    Ok(served)
}
