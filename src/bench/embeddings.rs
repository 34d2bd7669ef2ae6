//! Encoder throughput: embeddings per second through [`Embedder::embed_batch`] (tokenising,
//! the forward pass, pooling and normalisation: everything a caller waits for), for each
//! text kind and batch size, on each CPU backend compiled into this binary.
//!
//! Each cell warms up, then times whole batches until both a minimum number of batches and
//! a time budget are reached. The per-batch times are written as JSON so that several runs
//! (and the Python baseline, which writes the same shape) can be pooled and compared by
//! `scripts/bench_embeddings_report.py`; the median is printed here too.

use super::texts::{TextKind, TextSets};
use crate::config::{EncoderKind, ModelSettings};
use crate::ml::Embedder;
use anyhow::Context;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to measure and for how long.
#[derive(Debug, Clone)]
pub struct Plan {
    pub kinds: Vec<TextKind>,
    pub batch_sizes: Vec<usize>,
    /// Untimed batches before each cell.
    pub warmup: usize,
    /// Timed batches per cell, at least…
    pub min_batches: usize,
    /// …and until this much time has passed…
    pub budget: Duration,
    /// …but never more batches than this.
    pub max_batches: usize,
}

/// One cell: a text kind at a batch size.
#[derive(Debug, Serialize)]
pub struct Cell {
    pub kind: TextKind,
    pub batch: usize,
    /// Mean tokens per text (special tokens included) of the texts this cell embedded.
    pub mean_tokens: f64,
    /// Seconds per batch, in the order measured.
    pub seconds: Vec<f64>,
}

impl Cell {
    pub fn median_seconds(&self) -> f64 {
        median(&self.seconds)
    }

    pub fn throughput(&self) -> f64 {
        self.batch as f64 / self.median_seconds()
    }
}

/// The results of one backend in one process.
#[derive(Debug, Serialize)]
pub struct Run {
    /// `convrec` here, `sentence-transformers` in the baseline's files.
    pub implementation: &'static str,
    /// The backend, e.g. `ndarray`, `ndarray+simd+threads`, `flex`, `candle`.
    pub backend: String,
    /// The cargo profile and backend-related features this binary was built with.
    pub build: String,
    /// `RAYON_NUM_THREADS` (or the CPU count) at run time.
    pub threads: usize,
    pub cells: Vec<Cell>,
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The cargo profile and backend-related cargo features of this build, for labelling
/// results.
pub fn build_features() -> String {
    let features: &[(&str, bool)] = &[
        ("backend-blas", cfg!(feature = "backend-blas")),
        ("backend-candle", cfg!(feature = "backend-candle")),
        ("backend-flex", cfg!(feature = "backend-flex")),
        ("ndarray-simd", cfg!(feature = "ndarray-simd")),
        ("ndarray-threads", cfg!(feature = "ndarray-threads")),
    ];
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    std::iter::once(profile)
        .chain(features.iter().filter(|(_, on)| *on).map(|(name, _)| *name))
        .collect::<Vec<_>>()
        .join(",")
}

/// ndarray's flavour in this build: its cargo features change the whole binary's ndarray.
fn ndarray_flavour() -> String {
    let mut name = String::from("ndarray");
    for (suffix, on) in [
        ("+simd", cfg!(feature = "ndarray-simd")),
        ("+threads", cfg!(feature = "ndarray-threads")),
        ("+openblas", cfg!(feature = "backend-blas")),
    ] {
        if on {
            name.push_str(suffix);
        }
    }
    name
}

/// The backends compiled into this binary: `default` is the encoder the service runs
/// (`model.encoder`), `native` convrec's own CPU kernels, `burn` burn on
/// [`crate::ml::bert::CpuBackend`]; the rest name burn backends.
pub fn available_backends() -> Vec<&'static str> {
    let mut names = vec!["default", "native", "burn", "ndarray"];
    if cfg!(feature = "backend-flex") {
        names.push("flex");
    }
    if cfg!(feature = "backend-candle") {
        names.push("candle");
    }
    names
}

/// Loads the encoder on the named CPU backend.
pub fn load_backend(name: &str, model: &ModelSettings) -> anyhow::Result<Box<dyn Embedder>> {
    use crate::ml::bert::BertEmbedder;
    let model_dir = model.dir.as_path();
    let embedder: Box<dyn Embedder> = match name {
        "default" => crate::ml::load_embedder(model)?,
        "native" => Box::new(crate::ml::native::NativeEmbedder::load(model_dir)?),
        "burn" => Box::new(BertEmbedder::<crate::ml::bert::CpuBackend>::load(
            model_dir,
            Default::default(),
        )?),
        "ndarray" => Box::new(BertEmbedder::<burn::backend::NdArray<f32>>::load(
            model_dir,
            Default::default(),
        )?),
        #[cfg(feature = "backend-flex")]
        "flex" => Box::new(BertEmbedder::<burn::backend::Flex>::load(
            model_dir,
            Default::default(),
        )?),
        // burn 0.21 marks burn-candle deprecated (in favour of flex); measured all the same.
        #[cfg(feature = "backend-candle")]
        #[allow(deprecated)]
        "candle" => Box::new(BertEmbedder::<burn::backend::Candle<f32, i64>>::load(
            model_dir,
            Default::default(),
        )?),
        other => anyhow::bail!(
            "backend {other:?} is not in this build (available: {}; see docs/benchmarks.md \
             for the cargo features)",
            available_backends().join(", ")
        ),
    };
    Ok(embedder)
}

/// What a backend name stands for in this build (`default` and `burn` resolved, ndarray's
/// features spelled out), so results say which backend actually ran.
pub fn describe(name: &str, model: &ModelSettings) -> String {
    let burn_on_cpu = model.encoder == EncoderKind::Burn || cfg!(feature = "cuda");
    let name = if name == "default" && !burn_on_cpu {
        "native"
    } else if name == "default" || name == "burn" {
        let full = std::any::type_name::<crate::ml::bert::CpuBackend>();
        ["flex", "candle", "ndarray"]
            .into_iter()
            .find(|n| full.contains(n))
            .unwrap_or("ndarray")
    } else {
        name
    };
    if name == "ndarray" {
        ndarray_flavour()
    } else {
        name.to_string()
    }
}

/// Threads the backends' thread pools use (rayon's default is one per CPU).
pub fn thread_count() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Measures `embedder` on every cell of `plan`, printing a line per cell to stderr.
pub fn measure(
    embedder: &dyn Embedder,
    texts: &TextSets,
    plan: &Plan,
) -> anyhow::Result<Vec<Cell>> {
    let mut cells = Vec::new();
    for &kind in &plan.kinds {
        let pool = texts.get(kind);
        anyhow::ensure!(!pool.is_empty(), "no {} texts", kind.name());
        for &batch in &plan.batch_sizes {
            // Consecutive batches take consecutive texts, wrapping around the pool.
            let mut next = 0usize;
            let mut take = || -> Vec<String> {
                let out = (0..batch)
                    .map(|i| pool[(next + i) % pool.len()].clone())
                    .collect();
                next = (next + batch) % pool.len();
                out
            };
            for _ in 0..plan.warmup {
                embedder.embed_batch(&take())?;
            }
            let (mut seconds, mut tokens, mut texts_seen) = (Vec::new(), 0usize, 0usize);
            let started = Instant::now();
            while seconds.len() < plan.max_batches
                && (seconds.len() < plan.min_batches || started.elapsed() < plan.budget)
            {
                let batch_texts = take();
                tokens += embedder.token_counts(&batch_texts)?.iter().sum::<usize>();
                texts_seen += batch_texts.len();
                let t0 = Instant::now();
                let vectors = embedder.embed_batch(&batch_texts)?;
                seconds.push(t0.elapsed().as_secs_f64());
                anyhow::ensure!(vectors.len() == batch, "expected {batch} vectors");
            }
            let cell = Cell {
                kind,
                batch,
                mean_tokens: tokens as f64 / texts_seen.max(1) as f64,
                seconds,
            };
            eprintln!(
                "  {:<5} batch {:>3}: {:>8.1} embeddings/s (median of {} batches, {:.1} tokens/text)",
                kind.name(),
                batch,
                cell.throughput(),
                cell.seconds.len(),
                cell.mean_tokens
            );
            cells.push(cell);
        }
    }
    Ok(cells)
}

/// Runs the plan for each (named) model on each backend in turn and writes the results (a
/// JSON array of [`Run`]s) to `out` when given. A model other than `default` is named in
/// the backend's label (`native [multilingual]`), so reports keep the two apart.
pub fn run(
    backends: &[String],
    models: &[(String, ModelSettings)],
    texts: &TextSets,
    plan: &Plan,
    out: Option<&PathBuf>,
) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for (model_name, model) in models {
        for name in backends {
            let mut backend = describe(name, model);
            if model_name != "default" {
                backend = format!("{backend} [{model_name}]");
            }
            eprintln!(
                "convrec on {backend} (build: {}, {} threads)",
                build_features(),
                thread_count()
            );
            let embedder = load_backend(name, model)
                .with_context(|| format!("loading the encoder on {backend}"))?;
            let cells = measure(embedder.as_ref(), texts, plan)?;
            runs.push(Run {
                implementation: "convrec",
                backend,
                build: build_features(),
                threads: thread_count(),
                cells,
            });
        }
    }
    if let Some(path) = out {
        std::fs::write(path, serde_json::to_string_pretty(&runs)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(runs)
}

/// The runs as a Markdown table of median throughput.
pub fn markdown(runs: &[Run]) -> String {
    let mut out = String::from(
        "| backend | build | texts | batch | tokens/text | embeddings/s | batches |\n\
         | --- | --- | --- | ---: | ---: | ---: | ---: |\n",
    );
    for run in runs {
        for cell in &run.cells {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {:.1} | {:.1} | {} |\n",
                run.backend,
                run.build,
                cell.kind.name(),
                cell.batch,
                cell.mean_tokens,
                cell.throughput(),
                cell.seconds.len()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn the_default_backend_is_described_by_name() {
        let mut model = crate::config::Settings::load_with_env(None, [])
            .unwrap()
            .model;
        model.encoder = EncoderKind::Auto;
        assert_eq!(describe("default", &model), "native");
        model.encoder = EncoderKind::Burn;
        let name = describe("default", &model);
        assert!(
            ["ndarray", "flex", "candle"]
                .iter()
                .any(|n| name.starts_with(n)),
            "{name}"
        );
        assert_eq!(describe("burn", &model), name);
        assert_eq!(describe("flex", &model), "flex");
    }
}
