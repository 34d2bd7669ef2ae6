//! Offline evaluation of the recommender on public data (`convrec eval`, docs/evaluation.md).

pub mod metrics;
pub mod online_retail;

use anyhow::Context;
use clap::Subcommand;
use online_retail::{
    markdown_table, popularity_lists, read_ranked_lists, RetailSplit, SplitOptions,
};
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
        /// Score an outside baseline's lists too: `NAME=FILE`, FILE holding `member<TAB>sku`
        /// lines in rank order. Repeatable.
        #[arg(long = "ranked", value_parser = parse_named_path)]
        ranked: Vec<(String, PathBuf)>,
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

pub async fn run(command: EvalCommand) -> anyhow::Result<()> {
    match command {
        EvalCommand::OnlineRetail {
            path,
            cutoff,
            include_train_items,
            limit_customers,
            export_split,
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
    }
    Ok(())
}
