//! Offline evaluation of the recommender on public data (`convrec eval`, docs/evaluation.md).

pub mod esci;
pub mod item_cf;
pub mod metrics;
pub mod online_retail;

use crate::catalog::embedding::{embed_products, Scope};
use crate::config::{DatabaseSettings, Settings};
use crate::import::ImportSource;
use crate::ml::blocking::BlockingEmbedder;
use crate::recommend::cf::CfConfig;
use anyhow::Context;
use clap::Subcommand;
use online_retail::{
    markdown_table, popularity_lists, read_ranked_lists, RetailSplit, SplitOptions,
};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;

/// List length every evaluation scores.
pub const K: usize = 10;

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// UCI Online Retail: time split, Recall@10 and NDCG@10 per test customer.
    OnlineRetail {
        /// The ledger CSV; default `$CONVREC_SHARED_DATA/online_retail/online_retail.csv`.
        path: Option<PathBuf>,
        /// Purchases before this date train, the rest test.
        #[arg(long, default_value = "2011-11-01")]
        cutoff: chrono::NaiveDate,
        /// Also count (and allow recommending) items a customer bought before the cutoff.
        #[arg(long)]
        include_train_items: bool,
        /// Evaluate only the first N test customers (by customer id).
        #[arg(long)]
        limit_customers: Option<usize>,
        /// Write the split (train.tsv, test_members.tsv) here for an outside baseline
        /// (scripts/eval_als.py).
        #[arg(long)]
        export_split: Option<PathBuf>,
        /// Item-item CF: half-life of a purchase's weight, in days.
        #[arg(long, default_value_t = CfConfig::default().half_life_days)]
        cf_half_life_days: f32,
        /// Item-item CF: neighbours kept per item.
        #[arg(long, default_value_t = CfConfig::default().neighbours_per_item)]
        cf_neighbours: usize,
        /// Score an outside baseline's lists too: `NAME=FILE`, FILE holding `member<TAB>sku`
        /// lines in rank order. Repeatable.
        #[arg(long = "ranked", value_parser = parse_named_path)]
        ranked: Vec<(String, PathBuf)>,
        /// Also write the results table (markdown) to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Amazon ESCI: the judged queries against the imported products, NDCG@10 with graded
    /// gains, in a dedicated database (created, and dropped unless --keep-db).
    Esci {
        /// Products (JSON Lines); default `$CONVREC_SHARED_DATA/esci/esci_products.jsonl`.
        #[arg(long)]
        products: Option<PathBuf>,
        /// Judgments (`query<TAB>product_id<TAB>rating`); default
        /// `$CONVREC_SHARED_DATA/esci/esci_us_judgments_flat.tsv`.
        #[arg(long)]
        judgments: Option<PathBuf>,
        /// The evaluation database, on the server of `database.url`. A database that
        /// already holds products is reused (no import; only missing embeddings computed).
        #[arg(long, default_value = "convrec_eval_esci")]
        db_name: String,
        /// Keep the database afterwards (a later run then skips the import and embedding).
        #[arg(long)]
        keep_db: bool,
        /// Evaluate only the first N queries.
        #[arg(long)]
        limit_queries: Option<usize>,
        /// Also write the results table (markdown) to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_named_path(text: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=FILE, got {text:?}"))?;
    if name.is_empty() || path.is_empty() {
        return Err(format!("expected NAME=FILE, got {text:?}"));
    }
    Ok((name.to_string(), PathBuf::from(path)))
}

fn shared_data(relative: &str) -> anyhow::Result<PathBuf> {
    let root = std::env::var_os("CONVREC_SHARED_DATA")
        .context("no PATH given and CONVREC_SHARED_DATA is not set")?;
    Ok(PathBuf::from(root).join(relative))
}

pub async fn run(command: EvalCommand, settings: &Settings) -> anyhow::Result<()> {
    match command {
        EvalCommand::OnlineRetail {
            path,
            cutoff,
            include_train_items,
            limit_customers,
            export_split,
            cf_half_life_days,
            cf_neighbours,
            ranked,
            out,
        } => {
            let path = match path {
                Some(path) => path,
                None => shared_data("online_retail/online_retail.csv")?,
            };
            let options = SplitOptions {
                cutoff: cutoff.and_hms_opt(0, 0, 0).expect("midnight exists"),
                include_train_items,
                limit_customers,
            };
            let started = std::time::Instant::now();
            let split = RetailSplit::read(&path, &options)?;
            if let Some(dir) = &export_split {
                split.export(dir)?;
                eprintln!("split written to {}", dir.display());
            }
            let mut scores = vec![split.score("popularity", &popularity_lists(&split, K), K)];
            let cutoff_secs = options.cutoff.and_utc().timestamp();
            let cf_config = CfConfig {
                half_life_days: cf_half_life_days,
                neighbours_per_item: cf_neighbours,
                ..CfConfig::default()
            };
            let cf_label = format!(
                "item-item CF (half-life {cf_half_life_days} d, {cf_neighbours} neighbours)"
            );
            scores.push(split.score(
                &cf_label,
                &item_cf::cf_lists(&split, cf_config, cutoff_secs, K),
                K,
            ));
            for (name, file) in &ranked {
                let lists = read_ranked_lists(&split, file)?;
                scores.push(split.score(name, &lists, K));
            }
            let report = format!(
                "Online Retail, train before {cutoff}, {} train lines, {} test customers, \
                 items bought before the cutoff {}.\n\n{}",
                split.train.len(),
                split.relevant.len(),
                if include_train_items {
                    "included"
                } else {
                    "excluded"
                },
                markdown_table(&scores, K)
            );
            print!("{report}");
            eprintln!("evaluated in {:.1}s", started.elapsed().as_secs_f64());
            if let Some(out) = out {
                std::fs::write(&out, &report)
                    .with_context(|| format!("writing {}", out.display()))?;
            }
        }
        EvalCommand::Esci {
            products,
            judgments,
            db_name,
            keep_db,
            limit_queries,
            out,
        } => {
            let products = match products {
                Some(path) => path,
                None => shared_data("esci/esci_products.jsonl")?,
            };
            let judgments = match judgments {
                Some(path) => path,
                None => shared_data("esci/esci_us_judgments_flat.tsv")?,
            };
            let started = std::time::Instant::now();
            let database = eval_database(&settings.database, &db_name)?;
            crate::db::ensure_database(&database).await?;
            let result = esci_in(&database, settings, &products, &judgments, limit_queries).await;
            if !keep_db {
                drop_database(&settings.database, &db_name).await?;
            }
            let report = result?;
            print!("{report}");
            eprintln!("evaluated in {:.1}s", started.elapsed().as_secs_f64());
            if let Some(out) = out {
                std::fs::write(&out, &report)
                    .with_context(|| format!("writing {}", out.display()))?;
            }
        }
    }
    Ok(())
}

/// The settings of `database` pointed at the database `name` on the same server.
fn eval_database(database: &DatabaseSettings, name: &str) -> anyhow::Result<DatabaseSettings> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        anyhow::bail!("--db-name: {name:?} is not a plain database name (letters, digits, _)");
    }
    let url = database.url.expose_secret();
    let (without_params, params) = match url.split_once('?') {
        Some((base, params)) => (base, Some(params)),
        None => (url, None),
    };
    let (server, current) = without_params
        .rsplit_once('/')
        .filter(|(server, _)| server.contains("://") && !server.ends_with('/'))
        .context("database.url has no database name to replace")?;
    if current == name {
        anyhow::bail!("--db-name {name:?} is the service's own database; pick another");
    }
    let mut eval_url = format!("{server}/{name}");
    if let Some(params) = params {
        eval_url = format!("{eval_url}?{params}");
    }
    let mut settings = database.clone();
    settings.url = SecretString::from(eval_url);
    Ok(settings)
}

async fn drop_database(database: &DatabaseSettings, name: &str) -> anyhow::Result<()> {
    let admin_url = database.admin_url.expose_secret();
    if admin_url.is_empty() {
        anyhow::bail!("database.admin_url is empty: cannot drop {name}; drop it by hand");
    }
    let admin = sea_orm::Database::connect(admin_url.to_string()).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    admin.close().await.ok();
    tracing::info!(database = name, "evaluation database dropped");
    Ok(())
}

/// Lists fetched per signal before fusion; the scores look at the first [`K`].
const FUSION_DEPTH: usize = 50;

async fn esci_in(
    database: &DatabaseSettings,
    settings: &Settings,
    products: &std::path::Path,
    judgments: &std::path::Path,
    limit_queries: Option<usize>,
) -> anyhow::Result<String> {
    let mut queries = esci::read_judgments(judgments)?;
    if let Some(limit) = limit_queries {
        queries.truncate(limit);
    }
    let db = crate::db::connect(database).await?;
    crate::db::migrate(&db).await?;
    let existing = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM products",
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    if existing == 0 {
        let report =
            crate::import::run(&db, ImportSource::Esci(products.to_path_buf()), 100, true).await?;
        eprintln!("{report}");
    } else {
        eprintln!("reusing the {existing} products already in the evaluation database");
    }
    let embedder = BlockingEmbedder::new(crate::ml::bert::load_embedder(&settings.model.dir)?);
    let embedded = embed_products(&db, Scope::Missing, |texts| embedder.embed(texts), true).await?;
    eprintln!("product embeddings computed: {embedded}");

    let (mut content, mut lexical, mut fused) = (Vec::new(), Vec::new(), Vec::new());
    for query in &queries {
        let vector = embedder
            .embed(vec![query.text.clone()])
            .await?
            .pop()
            .context("the encoder returned no vector")?;
        let by_content = esci::content_top(&db, vector, FUSION_DEPTH).await?;
        let by_words = esci::lexical_top(&db, &query.text, FUSION_DEPTH).await?;
        fused.push(esci::reciprocal_rank_fusion(
            &[&by_content, &by_words],
            60.0,
            K,
        ));
        content.push(by_content.into_iter().take(K).collect());
        lexical.push(by_words.into_iter().take(K).collect());
    }
    let hybrid = service_hybrid_lists(&db, settings, &queries).await?;
    db.close().await.ok();
    let scores = [
        esci::score("content only (pgvector cosine)", &queries, &content, K),
        esci::score("lexical only (PostgreSQL ts_rank)", &queries, &lexical, K),
        esci::score("content + lexical (RRF, c = 60)", &queries, &fused, K),
        esci::score(
            "hybrid (service: FallbackAnalyzer + Recommender)",
            &queries,
            &hybrid,
            K,
        ),
    ];
    Ok(format!(
        "ESCI, {} queries, gains E/S/C/I = 3/2/1/0.\n\n{}",
        queries.len(),
        esci::markdown_table(&scores, K)
    ))
}

/// The service's own ranking: each query goes through the fallback intent analyser as a
/// chat message and then through the [`Recommender`] built as `app.rs` builds it (anonymous
/// member, limit [`K`]). Its Redis keys live under a prefix of their own, so no cached list
/// (or analytics ZSet) of the service or of an earlier run is read.
///
/// [`Recommender`]: crate::actors::recommender::Recommender
async fn service_hybrid_lists(
    db: &sea_orm::DatabaseConnection,
    settings: &Settings,
    queries: &[esci::JudgedQuery],
) -> anyhow::Result<Vec<Vec<String>>> {
    use crate::intent::IntentAnalyzer;
    use crate::recommend::{ProductRanker, RecommendRequest};

    let key_prefix = format!("eval:{}:", uuid::Uuid::new_v4());
    let redis = crate::app::redis_pool(&settings.redis)?;
    let metrics = crate::metrics::Metrics::new();
    let embeddings = crate::embeddings::EmbeddingService::start(
        crate::app::load_model(&settings.model).await?,
        &settings.embedding,
        redis.clone(),
        &key_prefix,
        metrics.clone(),
    );
    let reco = &settings.recommender;
    let cf = crate::recommend::engine::load_cf(
        db,
        CfConfig {
            half_life_days: reco.cf_half_life_days,
            neighbours_per_item: reco.cf_neighbours_per_item,
            ..Default::default()
        },
    )
    .await?;
    let recommender = crate::actors::recommender::Recommender::start(
        crate::recommend::engine::HybridEngine {
            db: db.clone(),
            redis: redis.clone(),
            embeddings,
            keys: crate::actors::analytics::AnalyticsKeys::new(&key_prefix),
            settings: reco.clone(),
            cf: std::sync::Arc::new(std::sync::RwLock::new(cf)),
        },
        &key_prefix,
        crate::actors::recommender::RecommenderMetrics::register(&metrics.registry)?,
    );
    let analyzer = crate::analysis::FallbackAnalyzer::load(db, settings.llm.usd_krw_rate).await?;

    let mut lists = Vec::with_capacity(queries.len());
    for query in queries {
        let mut intent = analyzer.analyze(&query.text, None).await.intent;
        // Every ESCI product has the same synthetic stock (100); the filter would change nothing.
        intent.in_stock_only = false;
        let recommended = recommender
            .recommend(RecommendRequest {
                member_id: None,
                query_text: Some(query.text.clone()),
                query_embedding: None,
                intent,
                limit: K,
                exclude: Vec::new(),
            })
            .await
            .map_err(|e| anyhow::anyhow!("recommending for {:?}: {e}", query.text))?;
        lists.push(recommended.into_iter().map(|p| p.sku).collect());
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(url: &str) -> DatabaseSettings {
        let mut settings = Settings::load(None).unwrap().database;
        settings.url = SecretString::from(url.to_string());
        settings
    }

    #[test]
    fn the_eval_database_replaces_only_the_name() {
        let moved = eval_database(
            &database("postgres://u:p@h:5432/shop?sslmode=disable"),
            "ev_1",
        )
        .unwrap();
        assert_eq!(
            moved.url.expose_secret(),
            "postgres://u:p@h:5432/ev_1?sslmode=disable"
        );
        assert!(eval_database(&database("postgres://u@h/shop"), "shop").is_err());
        assert!(eval_database(&database("postgres://u@h/shop"), "x; DROP").is_err());
        assert!(eval_database(&database("postgres://u@h:5432"), "ev").is_err());
    }

    #[test]
    fn ranked_lists_are_named() {
        assert_eq!(
            parse_named_path("als=/tmp/a.tsv").unwrap(),
            ("als".to_string(), PathBuf::from("/tmp/a.tsv"))
        );
        assert!(parse_named_path("/tmp/a.tsv").is_err());
    }
}
