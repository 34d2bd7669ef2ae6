//! The I/O half of the hybrid recommender: gathers candidates (pgvector HNSW neighbours of
//! the query embedding, CF neighbours of the member's items, popular/trending products from
//! the analytics ZSets or, with Redis away, from `interactions`), loads them, filters, scores
//! (see `scoring`), diversifies and explains.

use crate::analysis::ReplyLanguage;
use crate::catalog::InteractionKind;
use crate::config::RecommenderSettings;
use crate::db::entities::{product, user_preference};
use crate::embeddings::EmbeddingService;
use crate::intent::{HardConstraint, PriceRange, ShoppingIntent};
use crate::ml::TextKind;
use crate::recommend::cf::{serving_history, CfConfig, ServedNeighbours};
use crate::recommend::cf_store;
use crate::recommend::explanation::Reason;
use crate::recommend::lexical::lexical_matches;
use crate::recommend::popularity::top_products;
use crate::recommend::profile::{PreferenceProfile, ProfileBoost};
use crate::recommend::rejection;
use crate::recommend::scoring::{self, Candidate, Fusion, Weights};
use crate::recommend::{RecommendError, RecommendRequest, RecommendedProduct};
use crate::redis::{RedisKeys, RedisPool};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Statement, TransactionTrait, Value as DbValue,
};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone)]
pub struct HybridEngine {
    pub db: DatabaseConnection,
    pub redis: RedisPool,
    /// The state store (never evicted): trending and popular.
    pub state: RedisPool,
    pub embeddings: EmbeddingService,
    pub keys: RedisKeys,
    pub settings: RecommenderSettings,
    /// The item neighbours this instance serves (`cf_store` loads new versions into it).
    pub cf: ServedNeighbours,
    /// The time the engine treats as now (unix seconds): later interactions are invisible.
    /// `None` is the wall clock; the offline evaluation replays a cutoff.
    pub as_of: Option<i64>,
}

fn unavailable(e: impl std::fmt::Display) -> RecommendError {
    RecommendError::Unavailable(e.to_string())
}

impl HybridEngine {
    /// The weights for a request with words (a query, analysed keywords or a query
    /// embedding) or, with `has_words` false, the browse weights of a list asked for with none.
    fn weights(&self, has_words: bool) -> Weights {
        let s = &self.settings;
        let (content, collaborative, intent) = if has_words {
            (s.weight_content, s.weight_cf, s.weight_intent)
        } else {
            (
                s.browse_weight_content,
                s.browse_weight_cf,
                s.browse_weight_intent,
            )
        };
        Weights {
            content,
            collaborative,
            intent,
            profile: s.profile_weight,
            rejection: s.rejection_weight,
        }
    }

    fn fusion(&self) -> Fusion {
        Fusion {
            normalisation: self.settings.normalisation,
            rank_constant: self.settings.rank_constant,
            lexical_share: self.settings.lexical_share,
            cf_popularity_share: self.settings.cf_popularity_share,
        }
    }

    fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.cache_timeout_ms.max(1))
    }

    #[tracing::instrument(skip_all, fields(member = ?request.member_id))]
    pub async fn recommend(
        &self,
        request: RecommendRequest,
    ) -> Result<Vec<RecommendedProduct>, RecommendError> {
        let limit = request.limit.clamp(1, 100);
        let model = self.cf.current();
        let (history, rejected): (Vec<(Uuid, f32)>, HashMap<Uuid, f32>) = match &request.member_id {
            Some(member) => self.member_history(member).await?,
            None => (Vec::new(), HashMap::new()),
        };
        let history_ids: Vec<Uuid> = history.iter().map(|(id, _)| *id).collect();

        // The content query: the caller's embedding, their words, or the member's taste.
        let query_text = request
            .query_text
            .clone()
            .filter(|t| !t.trim().is_empty())
            .or_else(|| {
                (!request.intent.keywords.is_empty()).then(|| request.intent.keywords.join(" "))
            });
        let query_embedding = async {
            match (&request.query_embedding, &query_text) {
                (Some(v), _) => Ok(Some(v.clone())),
                (None, Some(text)) => match self
                    .embeddings
                    .embed_as(TextKind::Query, vec![text.clone()])
                    .await
                {
                    Ok(mut embedded) => Ok(embedded.vectors.pop()),
                    Err(error) => {
                        tracing::warn!(%error, "query not embedded; the content signal is left out");
                        Ok(None)
                    }
                },
                (None, None) => self.centroid(&history_ids).await,
            }
        };
        let learned = async {
            match &request.member_id {
                Some(member) => self.learned_profile(member).await,
                None => Ok(None),
            }
        };
        // Independent round trips (database, Redis, the encoder) run side by side.
        let (profile, titles, query_embedding, learned) = futures::try_join!(
            self.profile_from_history(&history_ids),
            self.titles(&history_ids),
            query_embedding,
            learned,
        )?;
        // The learned profile as soft boosts, with what this request says overriding it.
        let now = self
            .as_of
            .and_then(|at| chrono::DateTime::from_timestamp(at, 0))
            .unwrap_or_else(chrono::Utc::now);
        let boost = learned.as_ref().and_then(|learned| {
            ProfileBoost::for_request(
                learned,
                &request.intent,
                now,
                f64::from(self.settings.profile_half_life_days),
            )
        });

        let mut seen: Vec<Uuid> = request.exclude.clone();
        seen.extend(&history_ids);
        let nearest = async {
            match &query_embedding {
                Some(vector) => self.nearest(vector, self.settings.content_candidates).await,
                None => Ok(Vec::new()),
            }
        };
        // The lexical signal: full-text matches of the shopper's words and of the analyser's
        // keywords (an LLM's English keywords for a Korean message match an English catalog).
        let lexical_words: Vec<&str> = request
            .query_text
            .iter()
            .map(String::as_str)
            .chain(request.intent.keywords.iter().map(String::as_str))
            .filter(|w| !w.trim().is_empty())
            .collect();
        let lexical_matches = async {
            if self.settings.lexical_candidates > 0 && !lexical_words.is_empty() {
                self.lexical(&lexical_words.join(" "), self.settings.lexical_candidates)
                    .await
            } else {
                Ok(Vec::new())
            }
        };
        let cf_scores: HashMap<Uuid, f32> = model
            .neighbours
            .recommend_for_history(&history, self.settings.cf_candidates)
            .into_iter()
            .collect();
        let popular_category = request
            .intent
            .categories
            .first()
            .or(profile.categories.first())
            .cloned();
        let (content, popular, lexical) = futures::try_join!(
            nearest,
            self.popular(
                popular_category.as_deref(),
                self.settings.popular_candidates,
            ),
            lexical_matches,
        )?;
        let content: HashMap<Uuid, f32> = content.into_iter().collect();
        let popular: HashMap<Uuid, f32> = popular.into_iter().collect();
        let lexical: HashMap<Uuid, f32> = lexical.into_iter().collect();

        let ids = scoring::fresh(
            content
                .keys()
                .chain(lexical.keys())
                .chain(cf_scores.keys())
                .chain(popular.keys())
                .copied(),
            &mut seen,
        );
        let mut products = self.load(ids.clone()).await?;
        // A new shop (no embeddings, no interactions yet) still gets a list, and so does a
        // narrow request whose few matches none of the signals found ("선물용 향수 7만원대"):
        // the catalog's best-stocked products within the hard constraints fill up.
        let passing = products
            .iter()
            .filter(|p| scoring::passes_filters(&request.intent, p))
            .count();
        if ids.len() < limit * 2 || passing < limit {
            let fill = self.catalog_fill(&request.intent, limit * 4, None).await?;
            let fill = scoring::fresh(fill, &mut seen);
            products.extend(self.load(fill).await?);
        }
        // Nothing meets every hard constraint: the nearest products, marked as outside.
        let mut wanted = request.intent.clone();
        let mut relaxed: Vec<HardConstraint> = Vec::new();
        if !products
            .iter()
            .any(|p| scoring::passes_filters(&request.intent, p))
        {
            if let Some((intent, dropped)) = self
                .relax(&request.intent, &mut products, &mut seen, limit)
                .await?
            {
                wanted = intent;
                relaxed = dropped;
            }
        }
        let candidates: Vec<Candidate> = {
            products
                .into_iter()
                .filter(|p| scoring::passes_filters(&wanted, p))
                .map(|p| {
                    let (intent, matched) = scoring::intent_match(&request.intent, &profile, &p);
                    let (profile_boost, profile_reasons) = match &boost {
                        Some(boost) if self.settings.profile_weight > 0.0 => boost.score(&p),
                        _ => (0.0, Vec::new()),
                    };
                    let bought_with = history
                        .iter()
                        .map(|(h, w)| (h, w * model.neighbours.similarity(*h, p.id)))
                        .filter(|(_, s)| *s > 0.0)
                        .max_by(|a, b| a.1.total_cmp(&b.1))
                        .and_then(|(h, _)| titles.get(h).cloned());
                    // The exact cosine for every candidate, not only the HNSW neighbours: a
                    // lexical or CF candidate is then ranked by its real similarity too.
                    let similarity = match (&query_embedding, &p.embedding) {
                        (Some(query), Some(embedding)) => {
                            scoring::cosine(query, embedding.as_slice())
                        }
                        _ => content.get(&p.id).copied().unwrap_or(0.0),
                    };
                    Candidate {
                        content: similarity,
                        lexical: lexical.get(&p.id).copied().unwrap_or(0.0),
                        collaborative: cf_scores.get(&p.id).copied().unwrap_or(0.0),
                        popularity: popular.get(&p.id).copied().unwrap_or(0.0),
                        bought_with,
                        matched,
                        intent,
                        profile: profile_boost,
                        profile_reasons,
                        rejected: rejected.get(&p.id).copied().unwrap_or(0.0),
                        product: p,
                    }
                })
                .collect()
        };
        let has_words = query_text.is_some() || request.query_embedding.is_some();
        let scores = scoring::score(
            &candidates,
            self.weights(has_words),
            !history.is_empty(),
            self.fusion(),
            !lexical.is_empty(),
        );
        let picked = if relaxed.contains(&HardConstraint::Price) {
            // Over budget: the nearest prices first ("the cheapest of the kind").
            let distance = |i: usize| {
                let price = candidates[i].product.price_minor;
                request
                    .intent
                    .price_range
                    .map_or(0, |range| price_distance(range, price))
            };
            let mut order: Vec<usize> = (0..candidates.len()).collect();
            order.sort_by(|&a, &b| {
                distance(a)
                    .cmp(&distance(b))
                    .then(scores[b].total.total_cmp(&scores[a].total))
            });
            order.truncate(limit);
            order
        } else {
            scoring::diversify(
                &candidates,
                &scores,
                self.settings.diversity_lambda,
                self.settings.diversity_threshold,
                limit,
            )
        };
        if !relaxed.is_empty() {
            tracing::info!(
                ?relaxed,
                shown = picked.len(),
                "nothing met the request; relaxed"
            );
        }
        Ok(picked
            .into_iter()
            .map(|i| {
                let candidate = &candidates[i];
                let broken = if relaxed.is_empty() {
                    Vec::new()
                } else {
                    scoring::broken_constraints(&request.intent, &candidate.product)
                };
                let explanation = scoring::explain(
                    candidate,
                    &scores[i],
                    &request.intent,
                    query_text.is_some(),
                    popular_category.as_deref(),
                    &broken,
                );
                scoring::to_recommended(
                    candidate,
                    scores[i],
                    &explanation,
                    request.language,
                    broken,
                )
            })
            .collect())
    }

    /// When no product meets every hard constraint of `intent`: lifts one constraint at a
    /// time in [`HardConstraint::RELAXATION_ORDER`], then more of them in that order, until
    /// some product in `pool` (topped up from the catalog for each try) meets the rest.
    /// Returns the relaxed intent and what was lifted; `None` when even that finds nothing.
    async fn relax(
        &self,
        intent: &ShoppingIntent,
        pool: &mut Vec<product::Model>,
        seen: &mut Vec<Uuid>,
        limit: usize,
    ) -> Result<Option<(ShoppingIntent, Vec<HardConstraint>)>, RecommendError> {
        let active: Vec<HardConstraint> = HardConstraint::RELAXATION_ORDER
            .into_iter()
            .filter(|constraint| intent.has(*constraint))
            .collect();
        let mut attempts: Vec<Vec<HardConstraint>> = active.iter().map(|c| vec![*c]).collect();
        attempts.extend((2..=active.len()).map(|n| active[..n].to_vec()));
        for dropped in attempts {
            let relaxed = dropped.iter().fold(intent.clone(), |relaxed, constraint| {
                relaxed.without(*constraint)
            });
            let nearest_price = intent
                .price_range
                .filter(|_| dropped.contains(&HardConstraint::Price));
            let fill = self
                .catalog_fill(&relaxed, limit * 4, nearest_price)
                .await?;
            let fill = scoring::fresh(fill, seen);
            pool.extend(self.load(fill).await?);
            if pool.iter().any(|p| scoring::passes_filters(&relaxed, p)) {
                return Ok(Some((relaxed, dropped)));
            }
        }
        Ok(None)
    }

    async fn load(&self, ids: Vec<Uuid>) -> Result<Vec<product::Model>, RecommendError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        product::Entity::find()
            .filter(product::Column::Id.is_in(ids))
            .all(&self.db)
            .await
            .map_err(unavailable)
    }

    /// Products like `product_id`: its embedding neighbours and CF neighbours, scored with
    /// the same machinery (same category counts as the intent match). `None`: no such product.
    pub async fn similar(
        &self,
        product_id: Uuid,
        limit: usize,
    ) -> Result<Option<Vec<RecommendedProduct>>, RecommendError> {
        let Some(anchor) = product::Entity::find_by_id(product_id)
            .one(&self.db)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let mut content = HashMap::new();
        if let Some(vector) = &anchor.embedding {
            content = self
                .nearest(&vector.to_vec(), self.settings.content_candidates)
                .await?
                .into_iter()
                .collect::<HashMap<_, _>>();
        }
        let cf_scores: HashMap<Uuid, f32> = self
            .cf
            .current()
            .neighbours
            .similar(product_id, self.settings.cf_candidates)
            .into_iter()
            .collect();
        let mut seen = vec![product_id];
        let ids = scoring::fresh(content.keys().chain(cf_scores.keys()).copied(), &mut seen);
        let products = product::Entity::find()
            .filter(product::Column::Id.is_in(ids))
            .all(&self.db)
            .await
            .map_err(unavailable)?;
        let wanted = ShoppingIntent {
            categories: vec![anchor.category.clone()],
            ..ShoppingIntent::empty()
        };
        let any = ShoppingIntent::empty();
        let candidates: Vec<Candidate> = products
            .into_iter()
            .filter(|p| scoring::passes_filters(&any, p))
            .map(|p| {
                let (intent, _) = scoring::intent_match(&wanted, &any, &p);
                let collaborative = cf_scores.get(&p.id).copied().unwrap_or(0.0);
                Candidate {
                    content: content.get(&p.id).copied().unwrap_or(0.0),
                    lexical: 0.0,
                    collaborative,
                    popularity: 0.0,
                    bought_with: (collaborative > 0.0).then(|| anchor.title.clone()),
                    matched: if intent > 0.0 {
                        vec![Reason::AlsoIn(anchor.category.clone())]
                    } else {
                        Vec::new()
                    },
                    intent,
                    profile: 0.0,
                    profile_reasons: Vec::new(),
                    rejected: 0.0,
                    product: p,
                }
            })
            .collect();
        let scores = scoring::score(&candidates, self.weights(true), true, self.fusion(), false);
        let picked = scoring::diversify(
            &candidates,
            &scores,
            self.settings.diversity_lambda,
            self.settings.diversity_threshold,
            limit,
        );
        Ok(Some(
            picked
                .into_iter()
                .map(|i| {
                    let explanation =
                        scoring::explain(&candidates[i], &scores[i], &any, false, None, &[]);
                    // A public list with no words to tell the shopper's language.
                    scoring::to_recommended(
                        &candidates[i],
                        scores[i],
                        &explanation,
                        ReplyLanguage::English,
                        Vec::new(),
                    )
                })
                .collect(),
        ))
    }

    /// The member's strongest items (decayed) and the products they turned down in the chat
    /// with their penalties (`rejection::penalties`), read from `interactions` at request
    /// time so every instance sees every event at once.
    async fn member_history(
        &self,
        member: &str,
    ) -> Result<(Vec<(Uuid, f32)>, HashMap<Uuid, f32>), RecommendError> {
        let interactions = cf_store::member_interactions(&self.db, member, self.as_of)
            .await
            .map_err(unavailable)?;
        let now = self.as_of.unwrap_or_else(|| chrono::Utc::now().timestamp());
        let mut history = serving_history(&self.cf_config(), &interactions, now);
        history.truncate(self.settings.history_items.max(1));
        let rejected =
            rejection::penalties(&interactions, now, self.settings.rejection_half_life_days);
        Ok((history, rejected))
    }

    fn cf_config(&self) -> CfConfig {
        CfConfig::from(&self.settings)
    }

    /// The member's taste as soft preferences: the categories of their strongest items.
    async fn profile_from_history(&self, items: &[Uuid]) -> Result<ShoppingIntent, RecommendError> {
        let mut profile = ShoppingIntent::empty();
        if items.is_empty() {
            return Ok(profile);
        }
        // Only the column it needs: a full row carries a 384-d embedding and the attributes.
        let categories: Vec<String> = product::Entity::find()
            .select_only()
            .column(product::Column::Category)
            .filter(product::Column::Id.is_in(items.to_vec()))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(unavailable)?;
        let mut counts: HashMap<String, usize> = HashMap::new();
        for category in categories {
            let top = category.split('/').next().unwrap_or_default().to_string();
            *counts.entry(top).or_default() += 1;
        }
        let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        profile.categories = ranked.into_iter().take(2).map(|(c, _)| c).collect();
        Ok(profile)
    }

    /// The member's learned profile (`user_preferences.profile`, the preference group's
    /// truth), one primary-key read; `None` before their first event. An unreadable profile
    /// (an older shape) counts as none rather than failing the list.
    async fn learned_profile(
        &self,
        member: &str,
    ) -> Result<Option<PreferenceProfile>, RecommendError> {
        let row = user_preference::Entity::find_by_id(member.to_string())
            .one(&self.db)
            .await
            .map_err(unavailable)?;
        Ok(
            row.and_then(|row| match serde_json::from_value(row.profile) {
                Ok(profile) => Some(profile),
                Err(error) => {
                    tracing::warn!(%error, member, "preference profile unreadable; ignored");
                    None
                }
            }),
        )
    }

    async fn titles(&self, items: &[Uuid]) -> Result<HashMap<Uuid, String>, RecommendError> {
        if items.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(Uuid, String)> = product::Entity::find()
            .select_only()
            .columns([product::Column::Id, product::Column::Title])
            .filter(product::Column::Id.is_in(items.to_vec()))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(unavailable)?;
        Ok(rows.into_iter().collect())
    }

    /// The mean embedding of the member's items (pgvector's `avg`), for a query-less request.
    async fn centroid(&self, items: &[Uuid]) -> Result<Option<Vec<f32>>, RecommendError> {
        if items.is_empty() {
            return Ok(None);
        }
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                "SELECT avg(embedding) AS centroid FROM products WHERE id = ANY($1) AND embedding IS NOT NULL",
                [DbValue::from(items.to_vec())],
            ))
            .await
            .map_err(unavailable)?;
        let centroid: Option<pgvector::Vector> = match row {
            Some(row) => row.try_get("", "centroid").map_err(unavailable)?,
            None => None,
        };
        Ok(centroid.map(|v| {
            let v = v.to_vec();
            let norm = v
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
                .max(f32::EPSILON);
            v.into_iter().map(|x| x / norm).collect()
        }))
    }

    /// HNSW cosine neighbours with their similarity; `ef_search` is raised to the candidate
    /// count so the index returns that many.
    async fn nearest(
        &self,
        vector: &[f32],
        count: usize,
    ) -> Result<Vec<(Uuid, f32)>, RecommendError> {
        let txn = self.db.begin().await.map_err(unavailable)?;
        txn.execute_unprepared(&format!(
            "SET LOCAL hnsw.ef_search = {}",
            count.clamp(40, 1000)
        ))
        .await
        .map_err(unavailable)?;
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                txn.get_database_backend(),
                "SELECT id, (1 - (embedding <=> $1))::real AS similarity FROM products \
                 WHERE embedding IS NOT NULL ORDER BY embedding <=> $1 LIMIT $2",
                [
                    DbValue::from(pgvector::Vector::from(vector.to_vec())),
                    DbValue::from(count as i64),
                ],
            ))
            .await
            .map_err(unavailable)?;
        txn.commit().await.map_err(unavailable)?;
        rows.into_iter()
            .map(|r| Ok((r.try_get("", "id")?, r.try_get("", "similarity")?)))
            .collect::<Result<_, DbErr>>()
            .map_err(unavailable)
    }

    /// Full-text matches of `words` with their rank, best first (`lexical::lexical_matches`).
    async fn lexical(&self, words: &str, count: usize) -> Result<Vec<(Uuid, f32)>, RecommendError> {
        Ok(lexical_matches(&self.db, words, count)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|m| (m.id, m.rank))
            .collect())
    }

    /// Products within the price, category and stock constraints, best stocked first; with
    /// `nearest_to`, the prices nearest that range first (the cheapest over a budget).
    async fn catalog_fill(
        &self,
        intent: &ShoppingIntent,
        count: usize,
        nearest_to: Option<PriceRange>,
    ) -> Result<Vec<Uuid>, RecommendError> {
        let (min, max) = intent
            .price_range
            .map_or((None, None), |r| (r.min_minor, r.max_minor));
        let (near_min, near_max) = nearest_to.map_or((None, None), |r| (r.min_minor, r.max_minor));
        let category = intent.categories.first().cloned();
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                "SELECT id FROM products WHERE ($5 = false OR stock > 0) \
                 AND ($1::text IS NULL OR category = $1 OR category LIKE $1 || '/%') \
                 AND ($2::bigint IS NULL OR price_minor >= $2) \
                 AND ($3::bigint IS NULL OR price_minor <= $3) \
                 ORDER BY CASE WHEN $6::bigint IS NULL AND $7::bigint IS NULL THEN 0 \
                 WHEN price_minor IS NULL THEN 9223372036854775807 \
                 WHEN price_minor < $6 THEN $6 - price_minor \
                 WHEN price_minor > $7 THEN price_minor - $7 ELSE 0 END, \
                 stock DESC, id LIMIT $4",
                [
                    DbValue::from(category),
                    DbValue::from(min),
                    DbValue::from(max),
                    DbValue::from(count as i64),
                    DbValue::from(intent.in_stock_only),
                    DbValue::from(near_min),
                    DbValue::from(near_max),
                ],
            ))
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|r| r.try_get("", "id"))
            .collect::<Result<_, DbErr>>()
            .map_err(unavailable)
    }

    /// Popular in `category` (or trending overall) from the analytics ZSets; from
    /// `interactions` counts when Redis does not answer in time.
    async fn popular(
        &self,
        category: Option<&str>,
        count: usize,
    ) -> Result<Vec<(Uuid, f32)>, RecommendError> {
        let key = match category {
            Some(c) => self.keys.popular(c),
            None => self.keys.trending(),
        };
        match tokio::time::timeout(self.redis_timeout(), top_products(&self.state, &key, count))
            .await
        {
            Ok(Ok(top)) if !top.is_empty() => {
                return Ok(top.into_iter().map(|(id, s)| (id, s as f32)).collect())
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::debug!(%error, "popular from the database"),
            Err(_) => tracing::debug!("Redis too slow; popular from the database"),
        }
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                "SELECT i.product_id, sum(CASE i.kind WHEN 'order' THEN $3 * GREATEST(i.quantity, 1) \
                 WHEN 'cart' THEN $4 ELSE $5 END)::real AS score \
                 FROM interactions i JOIN products p ON p.id = i.product_id \
                 WHERE $1::text IS NULL OR p.category = $1 OR p.category LIKE $1 || '/%' \
                 GROUP BY i.product_id ORDER BY score DESC LIMIT $2",
                [
                    DbValue::from(category.map(str::to_string)),
                    DbValue::from(count as i64),
                    // The weights of `InteractionKind::counted_weight`, passed rather than
                    // written again in SQL.
                    DbValue::from(InteractionKind::Order.weight()),
                    DbValue::from(InteractionKind::Cart.weight()),
                    DbValue::from(InteractionKind::View.weight()),
                ],
            ))
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|r| Ok((r.try_get("", "product_id")?, r.try_get("", "score")?)))
            .collect::<Result<_, DbErr>>()
            .map_err(unavailable)
    }
}

/// How far a price lies outside a range (0 inside; a product without a price last).
fn price_distance(range: PriceRange, price: Option<i64>) -> i64 {
    match price {
        None => i64::MAX,
        Some(price) => match (range.min_minor, range.max_minor) {
            (Some(min), _) if price < min => min - price,
            (_, Some(max)) if price > max => price - max,
            _ => 0,
        },
    }
}
