//! EASE and RP3beta ([`crate::recommend::linear`]) on the Online Retail splits, served
//! through the same [`ItemNeighbours`] and member histories as the service: small grids
//! scored on validation and test, the setting chosen by the validation column.

use super::online_retail::{RetailSplit, SplitScores};
use crate::catalog::InteractionKind;
use crate::recommend::cf::{
    history_strengths, weigh_history, CfConfig, HistoryWeights, Interaction, ItemNeighbours,
};
use crate::recommend::linear::{ease, rp3beta, Keep, MemberRows, Values};
use std::collections::HashMap;
use uuid::Uuid;

/// One split's training purchases as the trainers and the request path see them.
pub struct SplitContext<'a> {
    pub split: &'a RetailSplit,
    pub cutoff_secs: i64,
    pairs: Vec<(&'a str, Interaction)>,
    skus: HashMap<Uuid, &'a str>,
    histories: HashMap<&'a str, Vec<Interaction>>,
}

impl<'a> SplitContext<'a> {
    pub fn new(split: &'a RetailSplit, cutoff_secs: i64) -> Self {
        let mut ids: HashMap<&str, Uuid> = HashMap::new();
        let mut skus = HashMap::new();
        let mut pairs = Vec::with_capacity(split.train.len());
        let mut histories: HashMap<&str, Vec<Interaction>> = HashMap::new();
        for purchase in &split.train {
            let next = Uuid::from_u128(ids.len() as u128 + 1);
            let id = *ids.entry(purchase.sku.as_str()).or_insert(next);
            skus.entry(id).or_insert(purchase.sku.as_str());
            let interaction = Interaction {
                item: id,
                kind: InteractionKind::Order,
                quantity: purchase.quantity,
                at_secs: purchase.at.and_utc().timestamp(),
            };
            if split.relevant.contains_key(&purchase.member) {
                histories
                    .entry(purchase.member.as_str())
                    .or_default()
                    .push(interaction);
            }
            pairs.push((purchase.member.as_str(), interaction));
        }
        Self {
            split,
            cutoff_secs,
            pairs,
            skus,
            histories,
        }
    }

    fn rows(&self, config: &CfConfig, values: Values) -> MemberRows {
        MemberRows::build(
            config,
            self.pairs.iter().map(|(m, i)| (*m, i)),
            self.cutoff_secs,
            values,
        )
    }

    /// Each test customer's top `k` from `neighbours`, their history weighed by `weights`.
    pub fn lists(
        &self,
        config: &CfConfig,
        neighbours: &ItemNeighbours,
        weights: HistoryWeights,
        k: usize,
    ) -> HashMap<String, Vec<String>> {
        self.split
            .relevant
            .keys()
            .map(|member| {
                let interactions = self
                    .histories
                    .get(member.as_str())
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let history = weigh_history(
                    weights,
                    history_strengths(config, interactions, self.cutoff_secs),
                );
                let list = neighbours
                    .recommend_for_history(&history, k + history.len())
                    .into_iter()
                    .filter_map(|(id, _)| self.skus.get(&id).copied())
                    .filter(|sku| self.split.may_recommend(member, sku))
                    .take(k)
                    .map(str::to_string)
                    .collect();
                (member.clone(), list)
            })
            .collect()
    }
}

/// A model setting to score.
#[derive(Debug, Clone, PartialEq)]
pub enum Variant {
    Ease {
        lambda: f32,
        max_dense_items: usize,
        /// `None`: dense (every non-zero weight kept).
        neighbours: Option<usize>,
        values: Values,
        history: HistoryWeights,
    },
    Rp3beta {
        alpha: f32,
        beta: f32,
        history: HistoryWeights,
    },
}

impl Variant {
    pub fn label(&self, config: &CfConfig) -> String {
        let history = |h: &HistoryWeights| match h {
            HistoryWeights::Binary => "binary history",
            HistoryWeights::Strength => "decayed history",
        };
        match self {
            Variant::Ease {
                lambda,
                max_dense_items,
                neighbours,
                values,
                history: h,
            } => format!(
                "EASE λ {lambda}, {}, {}, X {}, {}",
                match neighbours {
                    Some(k) => format!("top {k} positive"),
                    None => "dense B".to_string(),
                },
                if *max_dense_items >= usize::MAX / 2 {
                    "all items".to_string()
                } else {
                    format!("≤ {max_dense_items} items")
                },
                match values {
                    Values::Binary => "binary",
                    Values::Strength => "decayed strengths",
                },
                history(h)
            ),
            Variant::Rp3beta {
                alpha,
                beta,
                history: h,
            } => format!(
                "RP3beta α {alpha}, β {beta}, top {}, {}",
                config.neighbours_per_item,
                history(h)
            ),
        }
    }

    /// Trains on the context's split and answers each test customer's top `k`.
    pub fn lists(
        &self,
        context: &SplitContext<'_>,
        config: &CfConfig,
        k: usize,
    ) -> HashMap<String, Vec<String>> {
        let started = std::time::Instant::now();
        let (items, lists, history) = match self {
            Variant::Ease {
                lambda,
                max_dense_items,
                neighbours,
                values,
                history,
            } => {
                let rows = context.rows(config, *values);
                let keep = neighbours.map_or(Keep::All, Keep::TopPositive);
                let lists = ease(&rows, *lambda, *max_dense_items, keep)
                    .expect("λ > 0 makes the Gram matrix positive definite");
                (rows.items, lists, *history)
            }
            Variant::Rp3beta {
                alpha,
                beta,
                history,
            } => {
                let rows = context.rows(config, Values::Binary);
                let lists = rp3beta(&rows, *alpha, *beta, config.neighbours_per_item);
                (rows.items, lists, *history)
            }
        };
        let neighbours = ItemNeighbours::from_lists(items, lists);
        tracing::info!(
            variant = self.label(config),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "trained"
        );
        context.lists(config, &neighbours, history, k)
    }
}

/// The grids.
#[derive(Debug, Clone)]
pub struct Grid {
    pub lambdas: Vec<f32>,
    pub alphas: Vec<f32>,
    pub betas: Vec<f32>,
}

impl Default for Grid {
    fn default() -> Self {
        Self {
            lambdas: vec![100.0, 250.0, 500.0, 1000.0, 2000.0],
            alphas: vec![0.5, 1.0],
            betas: vec![0.0, 0.25, 0.5, 0.75],
        }
    }
}

fn score(
    variant: &Variant,
    [validation, test]: [&SplitContext<'_>; 2],
    config: &CfConfig,
    k: usize,
) -> SplitScores {
    let label = variant.label(config);
    SplitScores {
        validation: Some(
            validation
                .split
                .score(&label, &variant.lists(validation, config, k), k),
        ),
        test: test.split.score(&label, &variant.lists(test, config, k), k),
        method: label,
    }
}

fn best(rows: &[SplitScores]) -> usize {
    let ndcg = |s: &SplitScores| s.validation.as_ref().map_or(0.0, |v| v.ndcg);
    (0..rows.len())
        .max_by(|&a, &b| ndcg(&rows[a]).total_cmp(&ndcg(&rows[b])).then(b.cmp(&a)))
        .expect("a non-empty grid")
}

/// The grids and the comparisons around each family's validation choice; answers the rows
/// and a line naming what validation chose.
pub fn compare(
    contexts: [&SplitContext<'_>; 2],
    config: &CfConfig,
    grid: &Grid,
    k: usize,
) -> (Vec<SplitScores>, String) {
    let neighbours = Some(config.neighbours_per_item);
    let all_items = usize::MAX;
    let mut out = Vec::new();

    let rp3: Vec<Variant> = grid
        .alphas
        .iter()
        .flat_map(|&alpha| {
            grid.betas.iter().map(move |&beta| Variant::Rp3beta {
                alpha,
                beta,
                history: HistoryWeights::Binary,
            })
        })
        .collect();
    let rp3_rows: Vec<SplitScores> = rp3.iter().map(|v| score(v, contexts, config, k)).collect();
    let rp3_best = rp3[best(&rp3_rows)].clone();
    out.extend(rp3_rows);
    if let Variant::Rp3beta { alpha, beta, .. } = rp3_best {
        out.push(score(
            &Variant::Rp3beta {
                alpha,
                beta,
                history: HistoryWeights::Strength,
            },
            contexts,
            config,
            k,
        ));
    }

    let ease_grid: Vec<Variant> = grid
        .lambdas
        .iter()
        .map(|&lambda| Variant::Ease {
            lambda,
            max_dense_items: all_items,
            neighbours,
            values: Values::Binary,
            history: HistoryWeights::Binary,
        })
        .collect();
    let ease_rows: Vec<SplitScores> = ease_grid
        .iter()
        .map(|v| score(v, contexts, config, k))
        .collect();
    let ease_best = ease_grid[best(&ease_rows)].clone();
    out.extend(ease_rows);
    let Variant::Ease { lambda, .. } = ease_best else {
        unreachable!("the EASE grid holds EASE variants")
    };
    let around = [
        Variant::Ease {
            lambda,
            max_dense_items: all_items,
            neighbours: None,
            values: Values::Binary,
            history: HistoryWeights::Binary,
        },
        Variant::Ease {
            lambda,
            max_dense_items: all_items,
            neighbours,
            values: Values::Binary,
            history: HistoryWeights::Strength,
        },
        Variant::Ease {
            lambda,
            max_dense_items: all_items,
            neighbours,
            values: Values::Strength,
            history: HistoryWeights::Binary,
        },
        Variant::Ease {
            lambda,
            max_dense_items: 2000,
            neighbours,
            values: Values::Binary,
            history: HistoryWeights::Binary,
        },
        Variant::Ease {
            lambda,
            max_dense_items: 1000,
            neighbours,
            values: Values::Binary,
            history: HistoryWeights::Binary,
        },
    ];
    out.extend(around.iter().map(|v| score(v, contexts, config, k)));
    let chosen = format!(
        "Chosen on the validation split (NDCG@{k}): {} and {}.",
        rp3_best.label(config),
        ease_best.label(config)
    );
    (out, chosen)
}
