//! Offline evaluation of the recommender on public data (`convrec eval`, docs/evaluation.md).

pub mod esci;
pub mod item_cf;
pub mod linear_cf;
pub mod metrics;
pub mod online_retail;
pub mod retail_hybrid;

use crate::catalog::embedding::{embed_products, Scope};
use crate::config::{DatabaseSettings, RecommenderSettings, ScoreNormalisation, Settings};
use crate::import::ImportSource;
use crate::ml::blocking::BlockingEmbedder;
use crate::ml::TextKind;
use crate::recommend::cf::CfConfig;
use anyhow::Context;
use clap::Subcommand;
use online_retail::{
    popularity_lists, read_ranked_lists, two_split_table, RetailSplit, SplitOptions, SplitScores,
};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
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
        /// Leave out the EASE and RP3beta rows (their grids take about a minute).
        #[arg(long)]
        skip_linear: bool,
        /// Score an outside baseline's lists too: `NAME=FILE`, FILE holding `member<TAB>sku`
        /// lines in rank order (test split only). Repeatable.
        #[arg(long = "ranked", value_parser = parse_named_path)]
        ranked: Vec<(String, PathBuf)>,
        /// The validation split carved from the training period: train before this date,
        /// validate on the purchases from it up to the cutoff.
        #[arg(long, default_value = "2011-10-01")]
        validation_cutoff: chrono::NaiveDate,
        /// Also score the service's hybrid (HybridEngine, no query, member = the customer)
        /// over a database holding only the training period.
        #[arg(long)]
        service: bool,
        /// The service hybrid's database, on the server of `database.url`; imported with the
        /// training period when empty, reused otherwise.
        #[arg(long, default_value = "convrec_eval_retail")]
        db_name: String,
        /// Keep that database afterwards.
        #[arg(long)]
        keep_db: bool,
        /// Build each customer's learned preference profile (`user_preferences`) from their
        /// purchases before the split's cutoff, as the preference group does from
        /// `order.completed` events; without it the table is empty (no profile boost).
        #[arg(long)]
        profiles: bool,
        /// Also score the service's hybrid with some `[recommender]` settings changed
        /// (`NAME:key=value,...`; implies --service). Repeatable.
        #[arg(long = "hybrid", value_parser = parse_variant)]
        variants: Vec<HybridVariant>,
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
        /// Also score the service's hybrid with some `[recommender]` settings changed:
        /// `NAME:key=value,key=value` (e.g. `no-mmr:diversity_lambda=1`). Repeatable; for
        /// tuning on the dev half.
        #[arg(long = "hybrid", value_parser = parse_variant)]
        variants: Vec<HybridVariant>,
        /// Write each query's half, analysed intent and NDCG@10 per method here (TSV).
        #[arg(long)]
        dump: Option<PathBuf>,
        /// Also write the results table (markdown) to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The service's hybrid with some `[recommender]` settings overridden.
#[derive(Debug, Clone, PartialEq)]
pub struct HybridVariant {
    pub name: String,
    pub overrides: Vec<(String, String)>,
}

fn parse_variant(text: &str) -> Result<HybridVariant, String> {
    let (name, rest) = text
        .split_once(':')
        .ok_or_else(|| format!("expected NAME:key=value,..., got {text:?}"))?;
    let mut overrides = Vec::new();
    for pair in rest.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, got {pair:?}"))?;
        overrides.push((key.trim().to_string(), value.trim().to_string()));
    }
    let variant = HybridVariant {
        name: name.to_string(),
        overrides,
    };
    let mut check = Settings::load(None).map_err(|e| e.to_string())?.recommender;
    variant.apply(&mut check).map_err(|e| format!("{e:#}"))?;
    Ok(variant)
}

impl HybridVariant {
    /// Applies the overrides to `settings` (the scoring and candidate settings only).
    pub fn apply(&self, settings: &mut RecommenderSettings) -> anyhow::Result<()> {
        fn parse<T: std::str::FromStr>(key: &str, value: &str) -> anyhow::Result<T>
        where
            T::Err: std::fmt::Display,
        {
            value
                .parse()
                .map_err(|e| anyhow::anyhow!("{key}={value}: {e}"))
        }
        for (key, value) in &self.overrides {
            let s = &mut *settings;
            match key.as_str() {
                "weight_content" => s.weight_content = parse(key, value)?,
                "weight_cf" => s.weight_cf = parse(key, value)?,
                "weight_intent" => s.weight_intent = parse(key, value)?,
                "browse_weight_content" => s.browse_weight_content = parse(key, value)?,
                "browse_weight_cf" => s.browse_weight_cf = parse(key, value)?,
                "browse_weight_intent" => s.browse_weight_intent = parse(key, value)?,
                "content_candidates" => s.content_candidates = parse(key, value)?,
                "cf_candidates" => s.cf_candidates = parse(key, value)?,
                "popular_candidates" => s.popular_candidates = parse(key, value)?,
                "diversity_lambda" => s.diversity_lambda = parse(key, value)?,
                "diversity_threshold" => s.diversity_threshold = parse(key, value)?,
                "lexical_candidates" => s.lexical_candidates = parse(key, value)?,
                "lexical_share" => s.lexical_share = parse(key, value)?,
                "rank_constant" => s.rank_constant = parse(key, value)?,
                "history_items" => s.history_items = parse(key, value)?,
                "cf_popularity_share" => s.cf_popularity_share = parse(key, value)?,
                "profile_weight" => s.profile_weight = parse(key, value)?,
                "normalisation" => {
                    s.normalisation = match value.as_str() {
                        "rank" => ScoreNormalisation::Rank,
                        "minmax" => ScoreNormalisation::MinMax,
                        "zscore" => ScoreNormalisation::ZScore,
                        other => anyhow::bail!("normalisation={other}: rank, minmax or zscore"),
                    }
                }
                other => anyhow::bail!("{other}: not a [recommender] setting a variant may change"),
            }
        }
        Ok(())
    }
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
            skip_linear,
            ranked,
            validation_cutoff,
            service,
            db_name,
            keep_db,
            profiles,
            variants,
            out,
        } => {
            let path = match path {
                Some(path) => path,
                None => shared_data("online_retail/online_retail.csv")?,
            };
            let midnight = |day: chrono::NaiveDate| day.and_hms_opt(0, 0, 0).expect("midnight");
            if validation_cutoff >= cutoff {
                anyhow::bail!(
                    "--validation-cutoff {validation_cutoff} is not before --cutoff {cutoff}"
                );
            }
            let options = SplitOptions {
                cutoff: midnight(cutoff),
                include_train_items,
                limit_customers,
            };
            let started = std::time::Instant::now();
            let lines = online_retail::read_lines(&path)?;
            let validation = RetailSplit::from_lines(
                lines
                    .iter()
                    .filter(|l| l.occurred_at < options.cutoff)
                    .cloned(),
                &SplitOptions {
                    cutoff: midnight(validation_cutoff),
                    ..options.clone()
                },
            );
            let split = RetailSplit::from_lines(lines, &options);
            if let Some(dir) = &export_split {
                split.export(dir)?;
                eprintln!("split written to {}", dir.display());
            }
            let cutoff_secs = options.cutoff.and_utc().timestamp();
            let validation_secs = midnight(validation_cutoff).and_utc().timestamp();
            let both = |method: &str, on: &ListsFor<'_>| SplitScores {
                method: method.to_string(),
                validation: Some(validation.score(method, &on(&validation, validation_secs), K)),
                test: split.score(method, &on(&split, cutoff_secs), K),
            };
            let mut scores = vec![both("popularity", &|s, _| popularity_lists(s, K))];
            let cf_config = CfConfig {
                half_life_days: cf_half_life_days,
                neighbours_per_item: cf_neighbours,
                ..CfConfig::from(&settings.recommender)
            };
            let cf_label = format!(
                "item-item CF (half-life {cf_half_life_days} d, {cf_neighbours} neighbours)"
            );
            scores.push(both(&cf_label, &|s, at| {
                item_cf::cf_lists(s, cf_config.clone(), at, K)
            }));
            let mut chosen = String::new();
            if !skip_linear {
                let contexts = [
                    linear_cf::SplitContext::new(&validation, validation_secs),
                    linear_cf::SplitContext::new(&split, cutoff_secs),
                ];
                let (rows, line) = linear_cf::compare(
                    [&contexts[0], &contexts[1]],
                    &cf_config,
                    &linear_cf::Grid::default(),
                    K,
                );
                scores.extend(rows);
                chosen = format!("\n{line}\n");
            }
            for (name, file) in &ranked {
                let lists = read_ranked_lists(&split, file)?;
                scores.push(SplitScores {
                    method: name.clone(),
                    validation: None,
                    test: split.score(name, &lists, K),
                });
            }
            if service || !variants.is_empty() {
                let database = eval_database(&settings.database, &db_name)?;
                crate::db::ensure_database(&database).await?;
                let result = retail_service_scores(
                    &database,
                    settings,
                    &path,
                    [(&validation, validation_secs), (&split, cutoff_secs)],
                    &variants,
                    profiles,
                )
                .await;
                if !keep_db {
                    drop_database(&settings.database, &db_name).await?;
                }
                scores.extend(result?);
            }
            let report = format!(
                "Online Retail, train before {cutoff} ({} lines), {} test customers; validation: \
                 train before {validation_cutoff} ({} lines), {} customers; items bought before \
                 the cutoff {}.\n\n{}",
                split.train.len(),
                split.relevant.len(),
                validation.train.len(),
                validation.relevant.len(),
                if include_train_items {
                    "included"
                } else {
                    "excluded"
                },
                two_split_table(&scores, K)
            ) + &chosen;
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
            variants,
            dump,
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
            let result = esci_in(
                &database,
                settings,
                &EsciRun {
                    products: &products,
                    judgments: &judgments,
                    limit_queries,
                    variants: &variants,
                    dump: dump.as_deref(),
                },
            )
            .await;
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

/// A method's top-k lists on a split whose training period ends at the given second.
type ListsFor<'a> = dyn Fn(&RetailSplit, i64) -> HashMap<String, Vec<String>> + 'a;

/// The service's hybrid (defaults, then each variant) on the validation and the test split.
async fn retail_service_scores(
    database: &DatabaseSettings,
    settings: &Settings,
    ledger: &std::path::Path,
    [(validation, validation_secs), (test, test_secs)]: [(&RetailSplit, i64); 2],
    variants: &[HybridVariant],
    profiles: bool,
) -> anyhow::Result<Vec<SplitScores>> {
    let db = crate::db::connect(database).await?;
    let cutoff = chrono::DateTime::from_timestamp(test_secs, 0)
        .context("cutoff out of range")?
        .naive_utc();
    let retail = retail_hybrid::RetailDb::prepare(db, ledger, cutoff, settings).await?;
    let default_variant = HybridVariant {
        name: "defaults".into(),
        overrides: Vec::new(),
    };
    let all: Vec<&HybridVariant> = std::iter::once(&default_variant).chain(variants).collect();
    let on_validation = retail
        .hybrid_lists(settings, validation, validation_secs, &all, profiles, K)
        .await?;
    let on_test = retail
        .hybrid_lists(settings, test, test_secs, &all, profiles, K)
        .await?;
    retail.db.close().await.ok();
    Ok(all
        .iter()
        .zip(on_validation.iter().zip(&on_test))
        .map(|(variant, (v, t))| {
            let label = variant_label(variant);
            SplitScores {
                validation: Some(validation.score(&label, v, K)),
                test: test.score(&label, t, K),
                method: label,
            }
        })
        .collect())
}

fn variant_label(variant: &HybridVariant) -> String {
    if variant.overrides.is_empty() {
        "hybrid (service defaults)".to_string()
    } else {
        let changes: Vec<String> = variant
            .overrides
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!("hybrid `{}` ({})", variant.name, changes.join(", "))
    }
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

/// What one `convrec eval esci` run reads and scores.
struct EsciRun<'a> {
    products: &'a std::path::Path,
    judgments: &'a std::path::Path,
    limit_queries: Option<usize>,
    variants: &'a [HybridVariant],
    dump: Option<&'a std::path::Path>,
}

async fn esci_in(
    database: &DatabaseSettings,
    settings: &Settings,
    run: &EsciRun<'_>,
) -> anyhow::Result<String> {
    let mut queries = esci::read_judgments(run.judgments)?;
    if let Some(limit) = run.limit_queries {
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
        let report = crate::import::run(
            &db,
            ImportSource::Esci(run.products.to_path_buf()),
            100,
            true,
        )
        .await?;
        eprintln!("{report}");
    } else {
        eprintln!("reusing the {existing} products already in the evaluation database");
    }
    // The content model (multilingual when configured), as the service's recommender uses.
    let embedder = BlockingEmbedder::new(crate::ml::load_embedder(&settings.content_model())?);
    let embedded = embed_products(
        &db,
        Scope::Missing,
        embedder.model_id(),
        |texts| embedder.embed_as(TextKind::Passage, texts),
        true,
    )
    .await?;
    eprintln!("product embeddings computed: {embedded}");

    let (mut content, mut lexical, mut fused) = (Vec::new(), Vec::new(), Vec::new());
    for query in &queries {
        let vector = embedder
            .embed_as(TextKind::Query, vec![query.text.clone()])
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
    let mut methods: Vec<(String, Vec<Vec<String>>)> = vec![
        ("content only (pgvector cosine)".into(), content),
        (
            "lexical only (the service's lexical signal)".into(),
            lexical,
        ),
        ("content + lexical (RRF, c = 60)".into(), fused),
    ];
    let default_variant = HybridVariant {
        name: "defaults".into(),
        overrides: Vec::new(),
    };
    let variants: Vec<&HybridVariant> = std::iter::once(&default_variant)
        .chain(run.variants)
        .collect();
    let hybrid = service_hybrid_lists(&db, settings, &queries, &variants).await?;
    db.close().await.ok();
    let intents = hybrid.intents;
    for (variant, lists) in variants.iter().zip(hybrid.lists) {
        methods.push((variant_label(variant), lists));
    }
    let scores: Vec<esci::QueryScore> = methods
        .iter()
        .map(|(label, lists)| esci::score(label, &queries, lists, K))
        .collect();
    if let Some(path) = run.dump {
        write_dump(path, &queries, &intents, &methods)?;
    }
    Ok(format!(
        "ESCI, {} queries (dev/test halves by the FNV-1a parity of the query text), \
         gains E/S/C/I = 3/2/1/0.\n\n{}",
        queries.len(),
        esci::markdown_table(&scores, K)
    ))
}

/// One line per query: its half, the analysed intent (JSON) and NDCG@10 of each method.
fn write_dump(
    path: &std::path::Path,
    queries: &[esci::JudgedQuery],
    intents: &[crate::intent::ShoppingIntent],
    methods: &[(String, Vec<Vec<String>>)],
) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let per_method: Vec<Vec<f64>> = methods
        .iter()
        .map(|(_, lists)| esci::per_query(queries, lists, K))
        .collect();
    let mut out = String::from("half\tquery\tintent");
    for (label, _) in methods {
        let _ = write!(out, "\t{label}");
    }
    out.push('\n');
    for (i, query) in queries.iter().enumerate() {
        let _ = write!(
            out,
            "{:?}\t{}\t{}",
            esci::half_of(&query.text),
            query.text,
            serde_json::to_string(&intents[i])?
        );
        for scores in &per_method {
            let _ = write!(out, "\t{:.4}", scores[i]);
        }
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// The hybrid's lists (one per variant, in query order) and the intents they were given.
struct HybridLists {
    intents: Vec<crate::intent::ShoppingIntent>,
    lists: Vec<Vec<Vec<String>>>,
}

/// The service's own ranking: each query goes through the fallback intent analyser as a
/// chat message and then through the [`HybridEngine`] built as `app.rs` builds it for the
/// recommender actors (anonymous member, limit [`K`]) — what the [`Recommender`] computes on
/// a cache miss. Calling the engine directly keeps every variant uncached. Its Redis keys
/// live under a prefix of their own, so no analytics ZSet of the service is read.
///
/// [`HybridEngine`]: crate::recommend::engine::HybridEngine
/// [`Recommender`]: crate::actors::recommender::Recommender
async fn service_hybrid_lists(
    db: &sea_orm::DatabaseConnection,
    settings: &Settings,
    queries: &[esci::JudgedQuery],
    variants: &[&HybridVariant],
) -> anyhow::Result<HybridLists> {
    use crate::intent::IntentAnalyzer;
    use crate::recommend::RecommendRequest;

    let key_prefix = format!("eval:{}:", uuid::Uuid::new_v4());
    let keys = crate::redis::RedisKeys::new(&key_prefix);
    let redis = crate::redis::connect(&settings.redis)?;
    let state = crate::redis::connect_state(&settings.redis)?;
    let (embeddings, _) = crate::actors::embedding::start_embeddings(
        crate::app::load_model(&settings.content_model()).await?,
        &settings.embedding,
        redis.clone(),
        keys.clone(),
        crate::metrics::Metrics::new(),
    );
    let reco = &settings.recommender;
    let (cf, _) = crate::recommend::cf_store::train(db, CfConfig::from(reco)).await?;
    let cf = crate::recommend::cf::ServedNeighbours::new(None, cf.neighbours);
    let analyzer = crate::analysis::FallbackAnalyzer::load(db, settings.llm.usd_krw_rate).await?;
    let mut intents = Vec::with_capacity(queries.len());
    for query in queries {
        let mut intent = analyzer.analyze(&query.text, None).await.intent;
        // Every ESCI product has the same synthetic stock (100); the filter would change nothing.
        intent.in_stock_only = false;
        intents.push(intent);
    }

    let mut all = Vec::with_capacity(variants.len());
    for variant in variants {
        let mut tuned = reco.clone();
        variant.apply(&mut tuned)?;
        let engine = crate::recommend::engine::HybridEngine {
            db: db.clone(),
            redis: redis.clone(),
            state: state.clone(),
            embeddings: embeddings.clone(),
            keys: keys.clone(),
            settings: tuned,
            cf: cf.clone(),
            as_of: None,
        };
        let started = std::time::Instant::now();
        let mut lists = Vec::with_capacity(queries.len());
        for (query, intent) in queries.iter().zip(&intents) {
            let recommended = engine
                .recommend(RecommendRequest {
                    member_id: None,
                    query_text: Some(query.text.clone()),
                    query_embedding: None,
                    intent: intent.clone(),
                    limit: K,
                    exclude: Vec::new(),
                    ..RecommendRequest::default()
                })
                .await
                .map_err(|e| anyhow::anyhow!("recommending for {:?}: {e}", query.text))?;
            lists.push(recommended.into_iter().map(|p| p.sku).collect());
        }
        eprintln!(
            "hybrid {}: {} queries in {:.1}s",
            variant.name,
            queries.len(),
            started.elapsed().as_secs_f64()
        );
        all.push(lists);
    }
    Ok(HybridLists {
        intents,
        lists: all,
    })
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
    fn hybrid_variants_override_recommender_settings() {
        let variant = parse_variant("flat:diversity_lambda=1,normalisation=minmax").unwrap();
        assert_eq!(variant.name, "flat");
        let mut settings = Settings::load(None).unwrap().recommender;
        variant.apply(&mut settings).unwrap();
        assert_eq!(settings.diversity_lambda, 1.0);
        assert_eq!(settings.normalisation, ScoreNormalisation::MinMax);
        assert!(parse_variant("x:pool_size=3").is_err());
        assert!(parse_variant("x:weight_cf=lots").is_err());
        assert!(parse_variant("no-colon").is_err());
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
