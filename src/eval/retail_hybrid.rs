//! The service's hybrid recommender on the Online Retail split: the catalog and the orders
//! of the training period are imported into a database of their own with the importer's
//! `before` cutoff (`convrec import online-retail --with-orders --before …`), the products
//! are embedded, and the [`HybridEngine`] the recommender actors run recommends for each
//! test customer with no words at all (member = the customer: content from the centroid of
//! their items, CF from their history, popularity), as on a home page.
//!
//! The same database serves a validation split carved from the training period (train
//! before `validation_cutoff`, validate on the month up to the cutoff): there the engine's
//! CF model and popularity are built from the interactions before the validation cutoff
//! only, and products first sold after it are excluded, so weights can be tuned on
//! validation without looking at the test period.
//!
//! [`HybridEngine`]: crate::recommend::engine::HybridEngine

use super::online_retail::RetailSplit;
use super::HybridVariant;
use crate::catalog::InteractionKind;
use crate::config::Settings;
use crate::db::entities::product;
use crate::intent::ShoppingIntent;
use crate::recommend::cf::{CfConfig, Interaction, ServedNeighbours};
use crate::recommend::engine::HybridEngine;
use crate::recommend::profile::PreferenceProfile;
use crate::recommend::RecommendRequest;
use crate::redis::RedisKeys;
use anyhow::Context;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// The training-period database: products, their embeddings, members and orders.
pub struct RetailDb {
    pub db: DatabaseConnection,
    sku_to_id: HashMap<String, Uuid>,
    id_to_sku: HashMap<Uuid, String>,
}

impl RetailDb {
    /// Imports the sales before `cutoff` (products and orders) into `db` when it holds no
    /// products yet, else checks that what it holds ends before the cutoff; then embeds the
    /// products that have no embedding.
    pub async fn prepare(
        db: DatabaseConnection,
        ledger: &std::path::Path,
        cutoff: chrono::NaiveDateTime,
        settings: &Settings,
    ) -> anyhow::Result<Self> {
        crate::db::migrate(&db).await?;
        let count = |sql: &'static str| {
            let db = db.clone();
            async move {
                db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
                    .await?
                    .map(|row| row.try_get::<i64>("", "n"))
                    .transpose()
                    .map(Option::unwrap_or_default)
            }
        };
        if count("SELECT count(*) AS n FROM products").await? == 0 {
            let report = crate::import::run(
                &db,
                crate::import::ImportSource::OnlineRetail {
                    path: ledger.to_path_buf(),
                    with_orders: true,
                    before: Some(cutoff),
                },
                100,
                true,
            )
            .await?;
            eprintln!("{report}");
        } else {
            let late = db
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT count(*) AS n FROM interactions WHERE occurred_at >= $1",
                    [cutoff.and_utc().into()],
                ))
                .await?
                .map(|row| row.try_get::<i64>("", "n"))
                .transpose()?
                .unwrap_or(0);
            if late > 0 {
                anyhow::bail!(
                    "the evaluation database holds {late} interactions from {cutoff} on; \
                     drop it (or pick another --db-name) so the training period is re-imported"
                );
            }
            eprintln!(
                "reusing the {} products and {} interactions already in the evaluation database",
                count("SELECT count(*) AS n FROM products").await?,
                count("SELECT count(*) AS n FROM interactions").await?
            );
        }
        let embedder = crate::ml::blocking::BlockingEmbedder::new(crate::ml::load_embedder(
            &settings.content_model(),
        )?);
        let embedded = crate::catalog::embedding::embed_products(
            &db,
            crate::catalog::embedding::Scope::Missing,
            embedder.model_id(),
            |texts| embedder.embed_as(crate::ml::TextKind::Passage, texts),
            true,
        )
        .await?;
        eprintln!("product embeddings computed: {embedded}");
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT id, sku FROM products",
            ))
            .await?;
        let mut sku_to_id = HashMap::new();
        let mut id_to_sku = HashMap::new();
        for row in rows {
            let id: Uuid = row.try_get("", "id")?;
            let sku: String = row.try_get("", "sku")?;
            sku_to_id.insert(sku.clone(), id);
            id_to_sku.insert(id, sku);
        }
        Ok(Self {
            db,
            sku_to_id,
            id_to_sku,
        })
    }

    /// The interactions before `before`, as `load_cf` reads them for the service.
    async fn interactions_before(
        &self,
        before: i64,
    ) -> anyhow::Result<Vec<(String, Uuid, InteractionKind, i32, i64)>> {
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT member_id, product_id, kind, quantity, \
                 extract(epoch FROM occurred_at)::bigint AS at FROM interactions \
                 WHERE occurred_at < to_timestamp($1)",
                [(before as f64).into()],
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
                row.try_get("", "product_id")?,
                kind,
                row.try_get("", "quantity")?,
                row.try_get("", "at")?,
            ));
        }
        Ok(out)
    }

    /// Replaces `user_preferences` with the learned profile of every customer of `split`,
    /// built from their interactions before the split's cutoff as the `preference-analysis`
    /// group builds it from `order.completed` events: one [`PreferenceProfile::merge_behaviour`]
    /// per order line, oldest first, each a new event id. With `build` false the table is
    /// only emptied (the service before its first event). Returns the profiles written.
    async fn store_profiles(
        &self,
        split: &RetailSplit,
        interactions: &[(String, Uuid, InteractionKind, i32, i64)],
        build: bool,
    ) -> anyhow::Result<usize> {
        self.db
            .execute_unprepared("DELETE FROM user_preferences")
            .await?;
        if !build {
            return Ok(0);
        }
        let products: HashMap<Uuid, product::Model> = product::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let mut events: HashMap<&str, Vec<(i64, Uuid, InteractionKind)>> = HashMap::new();
        for (member, item, kind, _, at) in interactions {
            if split.relevant.contains_key(member) {
                events
                    .entry(member.as_str())
                    .or_default()
                    .push((*at, *item, *kind));
            }
        }
        let mut written = 0;
        for (member, mut events) in events {
            events.sort_by_key(|(at, item, _)| (*at, *item));
            let mut profile = PreferenceProfile::default();
            for (at, item, kind) in events {
                let (Some(product), Some(at)) =
                    (products.get(&item), chrono::DateTime::from_timestamp(at, 0))
                else {
                    continue;
                };
                if profile.first_time(Uuid::new_v4()) {
                    profile.merge_behaviour(kind, product, at);
                }
            }
            self.db
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "INSERT INTO user_preferences (member_id, profile) VALUES ($1, $2) \
                     ON CONFLICT (member_id) DO UPDATE SET profile = EXCLUDED.profile, \
                     version = user_preferences.version + 1, updated_at = now()",
                    [
                        member.into(),
                        sea_orm::Value::from(serde_json::to_value(&profile)?),
                    ],
                ))
                .await?;
            written += 1;
        }
        Ok(written)
    }

    /// Top-k lists of the service's hybrid for every customer of `split` (whose training
    /// period ends at `cutoff_secs`), one map per variant; with `profiles`, each customer's
    /// learned profile is built from the same period first ([`Self::store_profiles`]).
    pub async fn hybrid_lists(
        &self,
        settings: &Settings,
        split: &RetailSplit,
        cutoff_secs: i64,
        variants: &[&HybridVariant],
        profiles: bool,
        k: usize,
    ) -> anyhow::Result<Vec<HashMap<String, Vec<String>>>> {
        let reco = &settings.recommender;
        let interactions = self.interactions_before(cutoff_secs).await?;
        let stored = self.store_profiles(split, &interactions, profiles).await?;
        eprintln!("preference profiles stored: {stored}");
        // The CF model the service would hold at the cutoff (the configured model, trained
        // as `cf_store::train` trains it, over these rows).
        let rows: Vec<(String, Interaction)> = interactions
            .iter()
            .map(|(member, item, kind, quantity, at)| {
                let interaction = Interaction {
                    item: *item,
                    kind: *kind,
                    quantity: *quantity,
                    at_secs: *at,
                };
                (member.clone(), interaction)
            })
            .collect();
        let trained = crate::recommend::linear::train(
            &CfConfig::from(reco),
            rows.iter().map(|(m, i)| (m.as_str(), i)),
            cutoff_secs,
        )?;
        drop(rows);
        // Popularity as the recommender's database fallback weighs it (`InteractionKind::counted_weight`),
        // written to the analytics ZSets the engine reads first, so that in the validation
        // split no later order counts.
        let mut popularity: HashMap<Uuid, f64> = HashMap::new();
        let mut sold: HashSet<Uuid> = HashSet::new();
        for (_, item, kind, quantity, _) in &interactions {
            sold.insert(*item);
            *popularity.entry(*item).or_default() += kind.counted_weight(*quantity);
        }
        let cf = ServedNeighbours::new(None, trained.neighbours);
        // Products first sold after the cutoff did not exist yet.
        let unsold: Vec<Uuid> = self
            .id_to_sku
            .keys()
            .filter(|id| !sold.contains(id))
            .copied()
            .collect();

        let key_prefix = format!("eval:{}:", Uuid::new_v4());
        let keys = RedisKeys::new(&key_prefix);
        let redis = crate::redis::connect(&settings.redis)?;
        seed_popularity(
            &redis,
            &[
                keys.trending(),
                keys.popular(crate::import::online_retail::CATEGORY),
            ],
            &popularity,
        )
        .await?;
        let (embeddings, _) = crate::actors::embedding::start_embeddings(
            crate::app::load_model(&settings.content_model()).await?,
            &settings.embedding,
            redis.clone(),
            keys.clone(),
            crate::metrics::Metrics::new(),
        );

        let mut all = Vec::with_capacity(variants.len());
        for variant in variants {
            let mut tuned = reco.clone();
            variant.apply(&mut tuned)?;
            // The seeded ZSets must answer: a timeout would fall back to counting every
            // interaction in the database, the validation month included.
            tuned.cache_timeout_ms = tuned.cache_timeout_ms.max(5_000);
            let engine = HybridEngine {
                db: self.db.clone(),
                redis: redis.clone(),
                // The popularity ZSets are seeded above through the same pool.
                state: redis.clone(),
                embeddings: embeddings.clone(),
                keys: keys.clone(),
                settings: tuned,
                cf: cf.clone(),
                // The members' histories end at the cutoff too.
                as_of: Some(cutoff_secs),
            };
            let started = std::time::Instant::now();
            let mut lists = HashMap::new();
            for (member, bought) in &split.history {
                if !split.relevant.contains_key(member) {
                    continue;
                }
                // The protocol of every method here: nothing bought before the cutoff.
                let mut exclude: Vec<Uuid> = unsold.clone();
                if !split.include_train_items {
                    exclude.extend(bought.iter().filter_map(|sku| self.sku_to_id.get(sku)));
                }
                let recommended = engine
                    .recommend(RecommendRequest {
                        member_id: Some(member.clone()),
                        query_text: None,
                        query_embedding: None,
                        intent: ShoppingIntent::empty(),
                        limit: k,
                        exclude,
                        ..RecommendRequest::default()
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("recommending for customer {member}: {e}"))?;
                lists.insert(
                    member.clone(),
                    recommended.into_iter().map(|p| p.sku).collect(),
                );
            }
            eprintln!(
                "hybrid {}: {} customers in {:.1}s",
                variant.name,
                lists.len(),
                started.elapsed().as_secs_f64()
            );
            all.push(lists);
        }
        clear_prefix(&redis, &key_prefix).await;
        Ok(all)
    }
}

async fn seed_popularity(
    redis: &crate::redis::RedisPool,
    keys: &[String],
    scores: &HashMap<Uuid, f64>,
) -> anyhow::Result<()> {
    let mut conn = redis
        .get()
        .await
        .context("Redis for the popularity ZSets")?;
    for key in keys {
        let mut command = redis::cmd("ZADD");
        command.arg(key);
        for (id, score) in scores {
            command.arg(*score).arg(id.to_string());
        }
        let _: i64 = command.query_async(&mut *conn).await?;
    }
    Ok(())
}

/// Deletes this run's keys (ZSets and cached query embeddings); best effort.
async fn clear_prefix(redis: &crate::redis::RedisPool, prefix: &str) {
    let Ok(mut conn) = redis.get().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut *conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query_async(&mut *conn).await;
    }
}
