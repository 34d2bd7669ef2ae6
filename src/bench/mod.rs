//! `convrec bench …`: measurements that are run by hand (`scripts/bench-embeddings.sh`),
//! not by the test suite. Results and how to read them: docs/benchmarks.md.

pub mod embeddings;
pub mod texts;
pub mod training;

use crate::config::Settings;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use texts::{TextKind, TextSets};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Encoder throughput (embeddings/s) on short and long texts at several batch sizes.
    Embeddings(EmbeddingsArgs),
    /// Write the benchmark's text sets (short titles, ~128-token texts) as JSON.
    Texts(TextsArgs),
    /// The item-item trainer's time and peak memory on a generated shop (run one size per
    /// process: the peak memory is the process's).
    Training(TrainingArgs),
}

#[derive(Debug, Args)]
pub struct TrainingArgs {
    #[arg(long, default_value_t = 4_000)]
    pub products: usize,
    #[arg(long, default_value_t = 4_300)]
    pub members: usize,
    #[arg(long, default_value_t = 400_000)]
    pub interactions: usize,
    /// The model to train: item_item, ease or rp3beta; default `recommender.cf_model`.
    #[arg(long, value_parser = parse_model)]
    pub model: Option<crate::config::CfModelKind>,
    /// EASE's dense cap; default `recommender.cf_max_dense_items`.
    #[arg(long)]
    pub max_dense_items: Option<usize>,
}

fn parse_model(text: &str) -> Result<crate::config::CfModelKind, String> {
    use crate::config::CfModelKind;
    [
        CfModelKind::ItemItem,
        CfModelKind::Ease,
        CfModelKind::Rp3beta,
    ]
    .into_iter()
    .find(|kind| kind.as_str() == text)
    .ok_or_else(|| format!("{text:?}: item_item, ease or rp3beta"))
}

#[derive(Debug, Args)]
pub struct TextSource {
    /// Text sets written by `convrec bench texts`; otherwise they are chosen from --catalog.
    #[arg(long)]
    pub texts: Option<PathBuf>,
    /// A JSON Lines catalog (ESCI products or the demo catalog) to choose texts from.
    /// Default: ../shared/data/esci/esci_products.jsonl when present, else
    /// data/demo_catalog.jsonl.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Texts of each kind to choose.
    #[arg(long, default_value_t = 256)]
    pub per_kind: usize,
}

#[derive(Debug, Args)]
pub struct TextsArgs {
    #[command(flatten)]
    pub source: TextSource,
    /// Where to write the JSON.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct EmbeddingsArgs {
    #[command(flatten)]
    pub source: TextSource,
    /// Backends to measure, in order: `default` (what the service runs), `native`, `burn`
    /// (burn's default CPU backend), `ndarray`, `flex`, `candle` (the last two need their
    /// cargo feature).
    #[arg(long, value_delimiter = ',', default_value = "default")]
    pub backends: Vec<String>,
    /// Models to measure, each on every backend: `default` (`model.dir`, MiniLM) and
    /// `multilingual` (`multilingual_model.dir`, multilingual-e5-small).
    #[arg(long, value_delimiter = ',', default_value = "default")]
    pub models: Vec<String>,
    #[arg(long, value_enum, value_delimiter = ',', default_value = "short,long")]
    pub kinds: Vec<TextKind>,
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    pub batch_sizes: Vec<usize>,
    /// Untimed batches before each cell.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Timed batches per cell, at least.
    #[arg(long, default_value_t = 5)]
    pub min_batches: usize,
    /// Time per cell (seconds); timing goes on until both this and --min-batches are met.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Timed batches per cell, at most.
    #[arg(long, default_value_t = 2000)]
    pub max_batches: usize,
    /// Write the per-batch times as JSON here (for scripts/bench_embeddings_report.py).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl TextSource {
    fn load(&self, settings: &Settings) -> anyhow::Result<TextSets> {
        if let Some(path) = &self.texts {
            return TextSets::read(path);
        }
        let catalog = self.catalog.clone().unwrap_or_else(default_catalog);
        texts::from_catalog(
            &catalog,
            &settings.model.dir.join("tokenizer.json"),
            self.per_kind,
        )
    }
}

/// ESCI titles when the shared data is beside the checkout, else the demo catalog.
fn default_catalog() -> PathBuf {
    let shared = std::env::var_os("CONVREC_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data"))
        .join("esci/esci_products.jsonl");
    if shared.exists() {
        shared
    } else {
        PathBuf::from("data/demo_catalog.jsonl")
    }
}

pub fn run(command: BenchCommand, settings: &Settings) -> anyhow::Result<()> {
    match command {
        BenchCommand::Texts(args) => {
            let sets = args.source.load(settings)?;
            sets.write(&args.out)?;
            println!(
                "{} short and {} long texts from {} written to {}",
                sets.short.len(),
                sets.long.len(),
                sets.source,
                args.out.display()
            );
        }
        BenchCommand::Training(args) => {
            anyhow::ensure!(
                args.products > 0 && args.members > 0,
                "--products and --members must be positive"
            );
            let mut config = crate::recommend::cf::CfConfig::from(&settings.recommender);
            config.model = args.model.unwrap_or(config.model);
            config.max_dense_items = args.max_dense_items.unwrap_or(config.max_dense_items);
            let run = training::run(args.products, args.members, args.interactions, config)?;
            println!("| model | products | members | interactions | generate ms | train ms | encode ms | stored MiB | peak RSS MiB |");
            println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            println!("{}", training::markdown_row(&run));
        }
        BenchCommand::Embeddings(args) => {
            anyhow::ensure!(
                args.seconds.is_finite() && args.seconds >= 0.0,
                "--seconds must be a non-negative number"
            );
            let sets = args.source.load(settings)?;
            let plan = embeddings::Plan {
                kinds: args.kinds,
                batch_sizes: args.batch_sizes,
                warmup: args.warmup,
                min_batches: args.min_batches.max(1),
                budget: Duration::from_secs_f64(args.seconds),
                max_batches: args.max_batches.max(1),
            };
            let models = args
                .models
                .iter()
                .map(|name| match name.as_str() {
                    "default" => Ok((name.clone(), settings.model.clone())),
                    "multilingual" => settings
                        .multilingual()
                        .map(|model| (name.clone(), model))
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "no multilingual model configured (multilingual_model.dir)"
                            )
                        }),
                    other => anyhow::bail!("unknown model {other:?}: default or multilingual"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let runs = embeddings::run(&args.backends, &models, &sets, &plan, args.json.as_ref())?;
            print!("{}", embeddings::markdown(&runs));
        }
    }
    Ok(())
}
