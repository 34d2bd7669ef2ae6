//! `convrec bench training`: a collaborative trainer's time and peak memory on a generated
//! shop (skewed item popularity, like real baskets), the same code path as
//! `recommend::cf_store::train` after its database read (`recommend::linear::train`: the
//! configured model, item-item, EASE or RP3beta), then the encoding that is stored.

use crate::catalog::InteractionKind;
use crate::config::CfModelKind;
use crate::recommend::cf::{CfConfig, Interaction};
use std::time::Instant;
use uuid::Uuid;

/// The process's peak resident memory so far (`VmHWM`), in MiB; `None` off Linux.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub struct TrainingRun {
    pub model: CfModelKind,
    pub max_dense_items: usize,
    pub products: usize,
    pub members: usize,
    pub interactions: usize,
    pub generate_ms: u128,
    pub train_ms: u128,
    pub encode_ms: u128,
    pub encoded_mib: f64,
    pub peak_rss_mib: Option<f64>,
}

/// Generates `interactions` views, carts and orders of `members` over `products` (item i drawn
/// as the minimum of two uniform draws: a triangular skew towards the head) and trains
/// `config.model`. Peak RSS is the process's: run one model per process.
pub fn run(
    products: usize,
    members: usize,
    interactions: usize,
    config: CfConfig,
) -> anyhow::Result<TrainingRun> {
    let mut state: u64 = 0x5eed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let started = Instant::now();
    let names: Vec<String> = (0..members).map(|m| format!("member-{m}")).collect();
    let now = 400 * 86_400;
    let mut rows: Vec<(u32, Interaction)> = Vec::with_capacity(interactions);
    for line in 0..interactions {
        let member = (next() % members) as u32;
        let item = (next() % products).min(next() % products);
        let kind = match next() % 10 {
            0..=5 => InteractionKind::View,
            6..=7 => InteractionKind::Cart,
            _ => InteractionKind::Order,
        };
        let at = now - (line % (365 * 86_400)) as i64;
        let interaction = Interaction {
            item: Uuid::from_u128(item as u128 + 1),
            kind,
            quantity: 1,
            at_secs: at,
        };
        rows.push((member, interaction));
    }
    let generate_ms = started.elapsed().as_millis();
    let started = Instant::now();
    let trained = crate::recommend::linear::train(
        &config,
        rows.iter().map(|(m, i)| (names[*m as usize].as_str(), i)),
        now,
    )?;
    let train_ms = started.elapsed().as_millis();
    let started = Instant::now();
    let encoded = trained.neighbours.encode();
    let encode_ms = started.elapsed().as_millis();
    Ok(TrainingRun {
        model: config.model,
        max_dense_items: config.max_dense_items,
        products,
        members,
        interactions,
        generate_ms,
        train_ms,
        encode_ms,
        encoded_mib: encoded.len() as f64 / (1024.0 * 1024.0),
        peak_rss_mib: peak_rss_mib(),
    })
}

pub fn markdown_row(run: &TrainingRun) -> String {
    let model = match run.model {
        CfModelKind::Ease => format!("ease (≤ {} dense items)", run.max_dense_items),
        other => other.as_str().to_string(),
    };
    format!(
        "| {model} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
        run.products,
        run.members,
        run.interactions,
        run.generate_ms,
        run.train_ms,
        run.encode_ms,
        run.encoded_mib,
        run.peak_rss_mib
            .map_or("n/a".to_string(), |m| format!("{m:.0}"))
    )
}
