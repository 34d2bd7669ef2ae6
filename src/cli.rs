//! The `convrec` command line.

use crate::app::Application;
use crate::catalog::embedding::{embed_products, Scope};
use crate::config::Settings;
use crate::import::{self, ImportSource};
use crate::ml::blocking::BlockingEmbedder;
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "convrec",
    version,
    about = "Conversational hybrid product recommendations"
)]
pub struct Cli {
    /// TOML settings file (defaults, then this file, then CONVREC__* variables).
    #[arg(long, global = true, env = "CONVREC_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP/WebSocket service.
    Serve,
    /// Create the database if needed and apply pending migrations.
    Migrate,
    /// Import products (and, for Online Retail, orders) into the catalog.
    Import {
        /// The file format.
        #[arg(value_enum)]
        format: ImportFormat,
        /// File (or, for instacart, folder) to read; not needed for `demo`.
        path: Option<PathBuf>,
        /// Stock given to products whose source has no stock figure.
        #[arg(long, default_value_t = 100)]
        default_stock: i32,
        /// Online Retail only: also import the invoices as members and order interactions.
        #[arg(long)]
        with_orders: bool,
        /// Online Retail only: import only the sales before this date (products first sold
        /// later and later orders are left out), e.g. a training period.
        #[arg(long)]
        before: Option<chrono::NaiveDate>,
        /// Do not compute product embeddings now (`convrec reembed` does it later).
        #[arg(long)]
        no_embed: bool,
    },
    /// Compute product embeddings with the content model (`multilingual_model.dir` when
    /// set, else `model.dir`): those missing or computed by another model (so a change of
    /// model switches the catalog), or with --all every product.
    Reembed {
        #[arg(long)]
        all: bool,
    },
    /// Rebuild a search index from the database behind a new name and move its alias to it.
    Reindex {
        #[arg(value_enum)]
        index: ReindexTarget,
    },
    /// Rebuild derived state from the database: `analytics` rebuilds trending and popular
    /// from `interactions` and swaps them in (docs/events.md).
    Rebuild {
        #[arg(value_enum)]
        what: RebuildTarget,
    },
    /// The transactional outbox: `retry-dead` moves dead-letter rows back to pending so the
    /// dispatcher publishes them again (docs/events.md).
    Outbox {
        #[command(subcommand)]
        what: OutboxCommand,
    },
    /// Measurements run by hand (docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        what: crate::bench::BenchCommand,
    },
    /// Offline evaluation of the recommender on public data (docs/evaluation.md).
    Eval {
        #[command(subcommand)]
        what: crate::eval::EvalCommand,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportFormat {
    /// The demo catalog that ships with convrec.
    Demo,
    /// The documented generic CSV / JSON Lines format (docs/import-formats.md).
    Generic,
    /// Amazon ESCI products (JSON Lines).
    Esci,
    /// UCI Online Retail invoices (CSV).
    OnlineRetail,
    /// Instacart products.csv + aisles.csv + departments.csv (a folder).
    Instacart,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReindexTarget {
    Messages,
    Products,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Re-drive dead rows (all, or one topic's).
    RetryDead {
        /// Only rows of this topic (its name without the deployment's prefix, e.g.
        /// `order-completed`).
        #[arg(long)]
        topic: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RebuildTarget {
    /// Trending and popular (`rec:trending`, `rec:popular:category:*`) in the state store.
    Analytics,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    crate::telemetry::init(&settings.log);
    match cli.command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            let port = app.port();
            tracing::info!(port, "convrec is listening");
            app.run_until_stopped().await?;
            tracing::info!("convrec stopped");
        }
        Command::Migrate => {
            crate::db::ensure_database(&settings.database).await?;
            let db = crate::db::connect(&settings.database).await?;
            crate::db::migrate(&db).await?;
            println!("migrations applied");
        }
        Command::Import {
            format,
            path,
            default_stock,
            with_orders,
            before,
            no_embed,
        } => {
            let need_path = || {
                path.clone()
                    .context("this format needs a PATH to the file (or folder)")
            };
            let source = match format {
                ImportFormat::Demo => ImportSource::Demo,
                ImportFormat::Generic => ImportSource::Generic(need_path()?),
                ImportFormat::Esci => ImportSource::Esci(need_path()?),
                ImportFormat::OnlineRetail => ImportSource::OnlineRetail {
                    path: need_path()?,
                    with_orders,
                    before: before.and_then(|day| day.and_hms_opt(0, 0, 0)),
                },
                ImportFormat::Instacart => ImportSource::Instacart(need_path()?),
            };
            crate::db::ensure_database(&settings.database).await?;
            let db = crate::db::connect(&settings.database).await?;
            crate::db::migrate(&db).await?;
            let report = import::run(&db, source, default_stock, true).await?;
            println!("{report}");
            if !no_embed {
                let written = reembed(&settings, &db, Scope::Missing).await?;
                println!("product embeddings computed: {written}");
            }
        }
        Command::Reembed { all } => {
            crate::db::ensure_database(&settings.database).await?;
            let db = crate::db::connect(&settings.database).await?;
            crate::db::migrate(&db).await?;
            let scope = if all { Scope::All } else { Scope::Missing };
            let written = reembed(&settings, &db, scope).await?;
            println!("product embeddings computed: {written}");
        }
        Command::Reindex { index } => {
            let kind = match index {
                ReindexTarget::Messages => crate::search::IndexKind::Messages,
                ReindexTarget::Products => crate::search::IndexKind::Products,
            };
            let db = crate::db::connect(&settings.database).await?;
            let client = crate::search::SearchClient::new(
                crate::app::elasticsearch_client(&settings.elasticsearch)?,
                &settings.elasticsearch,
            );
            client.ensure_indices().await?;
            let report = crate::search::reindex::reindex(&db, &client, kind, true).await?;
            println!(
                "{} documents indexed into {} (alias {})",
                report.documents,
                report.index,
                client.alias(kind)
            );
        }
        Command::Rebuild {
            what: RebuildTarget::Analytics,
        } => {
            use crate::recommend::analytics_rebuild::{rebuild, Rebuild};
            let db = crate::db::connect(&settings.database).await?;
            let redis = crate::redis::connect_state(&settings.redis)?;
            let keys = crate::redis::RedisKeys::new(&settings.redis.key_prefix);
            let half_life =
                std::time::Duration::from_secs(settings.events.trending_half_life_secs.max(1));
            match rebuild(&db, &redis, &keys, half_life).await? {
                Rebuild::Built(report) => println!(
                    "trending and popular rebuilt from interactions: {} products, {} categories \
                     ({} trending, {} stale categories removed) in {:.2}s",
                    report.products,
                    report.categories,
                    report.trending,
                    report.removed,
                    report.elapsed.as_secs_f64()
                ),
                Rebuild::Busy => {
                    anyhow::bail!(
                        "another instance is rebuilding trending and popular; try again later"
                    )
                }
            }
        }
        Command::Outbox {
            what: OutboxCommand::RetryDead { topic },
        } => {
            let db = crate::db::connect(&settings.database).await?;
            let redriven = crate::events::outbox::retry_dead(&db, topic.as_deref()).await?;
            println!(
                "{} dead outbox rows moved back to pending; the dispatcher publishes them",
                redriven.rows
            );
        }
        Command::Bench { what } => crate::bench::run(what, &settings)?,
        Command::Eval { what } => crate::eval::run(what, &settings).await?,
    }
    Ok(())
}

/// Loads the encoder and embeds the products in `scope`.
async fn reembed(
    settings: &Settings,
    db: &sea_orm::DatabaseConnection,
    scope: Scope,
) -> anyhow::Result<u64> {
    let embedder = BlockingEmbedder::new(crate::ml::load_embedder(&settings.content_model())?);
    embed_products(
        db,
        scope,
        embedder.model_id(),
        |texts| embedder.embed_as(crate::ml::TextKind::Passage, texts),
        true,
    )
    .await
}
