//! Collaborative models stronger than item-item cosine, pure (no I/O), trained into the same
//! serving structure ([`ItemNeighbours`]: per item its top neighbours with a weight), so that
//! serving, encoding, storage and loading do not change with the model:
//!
//! - **EASE** (Steck 2019, "Embarrassingly shallow autoencoders"): with `X` the binary
//!   member × item matrix and `G = XᵀX + λI`, `P = G⁻¹`, the item-to-item weights are
//!   `B_ij = −P_ij / P_jj` (`B_jj = 0`), and a member's score of `j` is `Σ_h x_h·B_hj`. `G`
//!   is dense (items²), so only the `max_dense_items` most-interacted items take part; the
//!   others get no neighbours (and are never recommended by it). Each item keeps its top
//!   `neighbours_per_item` positive weights.
//! - **RP3beta** (Paudel et al. 2017): a random walk item → member → item,
//!   `W_ij = Σ_u P(i→u)^α·P(u→j)^α / deg(j)^β`, top `neighbours_per_item` per item, each
//!   list normalised to sum 1. Sparse, as cheap as the item-item pass.
//!
//! [`train`] trains whichever model the configuration names.

use crate::config::CfModelKind;
use crate::ml::dense::spd_inverse;
use crate::recommend::cf::{
    decay, kind_weight, CfConfig, Interaction, ItemItemModel, ItemNeighbours,
};
use std::collections::HashMap;
use uuid::Uuid;

/// What a member × item cell of the training matrix holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// 1 when the member interacted with the item at all (what the service trains on).
    Binary,
    /// The decayed, kind-weighted strength (as [`crate::recommend::cf::history_strengths`]).
    Strength,
}

/// The sparse member × item matrix models are trained from.
#[derive(Debug, Clone, Default)]
pub struct MemberRows {
    /// Item number → product id, in order of first appearance.
    pub items: Vec<Uuid>,
    /// Per member: (item number, value), by item number.
    pub rows: Vec<Vec<(u32, f32)>>,
}

impl MemberRows {
    /// Rows from `(member, interaction)` pairs, strengths decayed to `now_secs`.
    pub fn build<'a>(
        config: &CfConfig,
        interactions: impl IntoIterator<Item = (&'a str, &'a Interaction)>,
        now_secs: i64,
        values: Values,
    ) -> Self {
        let mut item_index: HashMap<Uuid, u32> = HashMap::new();
        let mut member_index: HashMap<&'a str, u32> = HashMap::new();
        let mut items = Vec::new();
        let mut cells: Vec<(u32, u32, f32)> = Vec::new();
        for (member, i) in interactions {
            if !i.kind.is_positive() {
                continue;
            }
            let item = *item_index.entry(i.item).or_insert_with(|| {
                items.push(i.item);
                items.len() as u32 - 1
            });
            let next = member_index.len() as u32;
            let member = *member_index.entry(member).or_insert(next);
            let strength =
                kind_weight(i.kind, i.quantity) * decay(config.half_life_days, i.at_secs, now_secs);
            cells.push((member, item, strength));
        }
        cells.sort_unstable_by_key(|&(m, i, _)| (m, i));
        let mut rows: Vec<Vec<(u32, f32)>> = vec![Vec::new(); member_index.len()];
        for (member, item, strength) in cells {
            let row = &mut rows[member as usize];
            match row.last_mut() {
                Some((last, sum)) if *last == item => *sum += strength,
                _ => row.push((item, strength)),
            }
        }
        if values == Values::Binary {
            for (_, value) in rows.iter_mut().flatten() {
                *value = 1.0;
            }
        }
        Self { items, rows }
    }

    pub fn members(&self) -> usize {
        self.rows.len()
    }

    /// Per item: its members and their values.
    fn columns(&self) -> Vec<Vec<(u32, f32)>> {
        let mut columns: Vec<Vec<(u32, f32)>> = vec![Vec::new(); self.items.len()];
        for (member, row) in self.rows.iter().enumerate() {
            for &(item, value) in row {
                columns[item as usize].push((member as u32, value));
            }
        }
        columns
    }
}

/// Which of a row's weights an item keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The `k` largest positive weights (what is served).
    TopPositive(usize),
    /// Every non-zero weight, negative ones included (dense EASE, for measuring the cost of
    /// sparsifying).
    All,
}

/// The top `k` positive `(item, weight)`s of `candidates`.
fn top_positive(mut candidates: Vec<(u32, f32)>, k: usize) -> Vec<(u32, f32)> {
    candidates.retain(|&(_, w)| w > 0.0 && w.is_finite());
    if candidates.len() > k {
        candidates.select_nth_unstable_by(k, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        candidates.truncate(k);
    }
    candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    candidates
}

/// The items of the dense solve: the `max_items` with the most members (ties: first seen).
pub fn dense_items(rows: &MemberRows, max_items: usize) -> Vec<u32> {
    let mut degree = vec![0u32; rows.items.len()];
    for &(item, _) in rows.rows.iter().flatten() {
        degree[item as usize] += 1;
    }
    let mut order: Vec<u32> = (0..rows.items.len() as u32).collect();
    order.sort_by(|&a, &b| degree[b as usize].cmp(&degree[a as usize]).then(a.cmp(&b)));
    order.truncate(max_items);
    order.sort_unstable();
    order
}

/// EASE's neighbour lists (index = item number; items outside the dense set get none).
/// `None` when the Gram matrix is not positive definite (λ ≤ 0 with collinear items).
pub fn ease(
    rows: &MemberRows,
    lambda: f32,
    max_dense_items: usize,
    keep: Keep,
) -> Option<Vec<Vec<(u32, f32)>>> {
    let dense = dense_items(rows, max_dense_items);
    let n = dense.len();
    let mut position = vec![u32::MAX; rows.items.len()];
    for (p, &item) in dense.iter().enumerate() {
        position[item as usize] = p as u32;
    }
    // G = XᵀX + λI over the dense items: Σ over members of their row's outer product.
    let mut gram = vec![0f32; n * n];
    let mut row_dense: Vec<(usize, f32)> = Vec::new();
    for row in &rows.rows {
        row_dense.clear();
        row_dense.extend(
            row.iter()
                .filter(|(item, _)| position[*item as usize] != u32::MAX)
                .map(|&(item, v)| (position[item as usize] as usize, v)),
        );
        for &(a, va) in &row_dense {
            let line = &mut gram[a * n..(a + 1) * n];
            for &(b, vb) in &row_dense {
                line[b] += va * vb;
            }
        }
    }
    for a in 0..n {
        gram[a * n + a] += lambda;
    }
    let p = spd_inverse(gram, n)?;
    let mut lists: Vec<Vec<(u32, f32)>> = vec![Vec::new(); rows.items.len()];
    for (a, &item) in dense.iter().enumerate() {
        let line = &p[a * n..(a + 1) * n];
        // B_ab = −P_ab / P_bb: how much having `a` adds to `b`'s score.
        let weights = dense
            .iter()
            .enumerate()
            .filter(|&(b, _)| b != a)
            .map(|(b, &other)| (other, -line[b] / p[b * n + b]));
        lists[item as usize] = match keep {
            Keep::TopPositive(k) => top_positive(weights.collect(), k),
            Keep::All => weights.filter(|&(_, w)| w != 0.0).collect(),
        };
    }
    Some(lists)
}

/// RP3beta's neighbour lists (index = item number).
pub fn rp3beta(rows: &MemberRows, alpha: f32, beta: f32, k: usize) -> Vec<Vec<(u32, f32)>> {
    let n_items = rows.items.len();
    let columns = rows.columns();
    let item_degree: Vec<f32> = columns
        .iter()
        .map(|c| c.iter().map(|(_, v)| v).sum())
        .collect();
    // P(u→j)^α per member row, and P(i→u)^α per item column.
    let forward: Vec<Vec<(u32, f32)>> = rows
        .rows
        .iter()
        .map(|row| {
            let degree: f32 = row.iter().map(|(_, v)| v).sum();
            row.iter()
                .map(|&(j, v)| (j, (v / degree).powf(alpha)))
                .collect()
        })
        .collect();
    let penalty: Vec<f32> = item_degree
        .iter()
        .map(|&d| if d > 0.0 { d.powf(-beta) } else { 0.0 })
        .collect();
    let mut acc = vec![0f32; n_items];
    let mut touched: Vec<u32> = Vec::new();
    let mut lists = Vec::with_capacity(n_items);
    for (item, column) in columns.iter().enumerate() {
        for &(member, v) in column {
            let back = (v / item_degree[item]).powf(alpha);
            for &(j, forward) in &forward[member as usize] {
                if j as usize == item {
                    continue;
                }
                if acc[j as usize] == 0.0 {
                    touched.push(j);
                }
                acc[j as usize] += back * forward;
            }
        }
        let candidates: Vec<(u32, f32)> = touched
            .iter()
            .map(|&j| (j, acc[j as usize] * penalty[j as usize]))
            .collect();
        for &j in &touched {
            acc[j as usize] = 0.0;
        }
        touched.clear();
        let mut list = top_positive(candidates, k);
        let total: f32 = list.iter().map(|(_, w)| w).sum();
        if total > 0.0 {
            for (_, w) in &mut list {
                *w /= total;
            }
        }
        lists.push(list);
    }
    lists
}

/// A trained model and what it was trained on.
#[derive(Debug, Clone)]
pub struct Trained {
    pub neighbours: ItemNeighbours,
    pub items: usize,
    pub members: usize,
}

/// An error of a training that produced no model.
#[derive(Debug, thiserror::Error)]
#[error("EASE: the Gram matrix is not positive definite (cf_ease_lambda = {0}); use λ > 0")]
pub struct NotPositiveDefinite(pub f32);

/// Trains `config.model` on `(member, interaction)` pairs, strengths decayed to `now_secs`.
/// CPU-bound (EASE: seconds to minutes, see docs/evaluation.md): callers on an async
/// executor run it on a blocking thread.
pub fn train<'a>(
    config: &CfConfig,
    interactions: impl IntoIterator<Item = (&'a str, &'a Interaction)>,
    now_secs: i64,
) -> Result<Trained, NotPositiveDefinite> {
    let k = config.neighbours_per_item;
    let from_lists = |rows: MemberRows, lists: Vec<Vec<(u32, f32)>>| Trained {
        items: rows.items.len(),
        members: rows.members(),
        neighbours: ItemNeighbours::from_lists(rows.items, lists),
    };
    match config.model {
        CfModelKind::ItemItem => {
            let mut model = ItemItemModel::new(config.clone());
            for (member, i) in interactions {
                model.observe(member, i.item, i.kind, i.quantity, i.at_secs);
            }
            model.rebuild(now_secs);
            let (items, members) = model.counts();
            Ok(Trained {
                neighbours: model.into_neighbours(),
                items,
                members,
            })
        }
        CfModelKind::Ease => {
            let rows = MemberRows::build(config, interactions, now_secs, Values::Binary);
            let lists = ease(
                &rows,
                config.ease_lambda,
                config.max_dense_items,
                Keep::TopPositive(k),
            )
            .ok_or(NotPositiveDefinite(config.ease_lambda))?;
            Ok(from_lists(rows, lists))
        }
        CfModelKind::Rp3beta => {
            let rows = MemberRows::build(config, interactions, now_secs, Values::Binary);
            let lists = rp3beta(&rows, config.rp3_alpha, config.rp3_beta, k);
            Ok(from_lists(rows, lists))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::InteractionKind;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn order(item: u128) -> Interaction {
        Interaction {
            item: id(item),
            kind: InteractionKind::Order,
            quantity: 1,
            at_secs: 0,
        }
    }

    /// Binary rows from lists of item numbers (item n is `id(n)`, first seen in that order).
    fn rows_of(baskets: &[&[u128]]) -> MemberRows {
        let pairs: Vec<(String, Interaction)> = baskets
            .iter()
            .enumerate()
            .flat_map(|(m, basket)| basket.iter().map(move |&i| (format!("m{m}"), order(i))))
            .collect();
        MemberRows::build(
            &CfConfig::default(),
            pairs.iter().map(|(m, i)| (m.as_str(), i)),
            0,
            Values::Binary,
        )
    }

    /// Dense `B` from the direct formula, by hand: `G⁻¹` of a 3 × 3 matrix by cofactors.
    #[test]
    fn ease_weights_match_the_closed_form() {
        // Items 0, 1, 2; members {0,1}, {0,1}, {1,2}, {0}.
        let rows = rows_of(&[&[0, 1], &[0, 1], &[1, 2], &[0]]);
        let lambda = 1.0f64;
        // XᵀX = [[3,2,0],[2,3,1],[0,1,1]]; G = XᵀX + I.
        let g = [[4.0, 2.0, 0.0], [2.0, 4.0, 1.0], [0.0, 1.0, 2.0]];
        let det = g[0][0] * (g[1][1] * g[2][2] - g[1][2] * g[2][1])
            - g[0][1] * (g[1][0] * g[2][2] - g[1][2] * g[2][0])
            + g[0][2] * (g[1][0] * g[2][1] - g[1][1] * g[2][0]);
        let cof = |i: usize, j: usize| {
            let r: Vec<usize> = (0..3).filter(|&x| x != i).collect();
            let c: Vec<usize> = (0..3).filter(|&x| x != j).collect();
            let minor = g[r[0]][c[0]] * g[r[1]][c[1]] - g[r[0]][c[1]] * g[r[1]][c[0]];
            if (i + j).is_multiple_of(2) {
                minor
            } else {
                -minor
            }
        };
        // P = adj(G) / det, adj = cofactorᵀ (G symmetric: the same).
        let p = |i: usize, j: usize| cof(j, i) / det;
        let b = |i: usize, j: usize| -p(i, j) / p(j, j);
        let lists = ease(&rows, lambda as f32, 10, Keep::All).unwrap();
        for (i, list) in lists.iter().enumerate() {
            assert!(list.iter().all(|&(j, _)| j as usize != i), "B_ii = 0");
            for j in (0..3).filter(|&j| j != i) {
                let got = list
                    .iter()
                    .find(|&&(o, _)| o as usize == j)
                    .map_or(0.0, |&(_, w)| w);
                assert!(
                    (f64::from(got) - b(i, j)).abs() < 1e-5,
                    "B[{i}][{j}] = {got}, expected {}",
                    b(i, j)
                );
            }
        }
        // Items 0 and 2 never co-occur: B_02 is negative, so the sparse list drops it.
        assert!(b(0, 2) < 0.0);
        let sparse = ease(&rows, 1.0, 10, Keep::TopPositive(10)).unwrap();
        assert_eq!(sparse[0].iter().map(|&(j, _)| j).collect::<Vec<_>>(), [1]);
        assert!(sparse.iter().flatten().all(|&(_, w)| w > 0.0));
    }

    #[test]
    fn ease_keeps_the_top_k_and_leaves_items_outside_the_dense_set_empty() {
        // Item 0 is in every basket; 1..=4 each in fewer; 9 once.
        let rows = rows_of(&[
            &[0, 1, 2, 3],
            &[0, 1, 2],
            &[0, 1, 3],
            &[0, 1, 4],
            &[0, 2, 9],
            &[0, 1],
        ]);
        let all = ease(&rows, 0.5, 10, Keep::TopPositive(100)).unwrap();
        let top2 = ease(&rows, 0.5, 10, Keep::TopPositive(2)).unwrap();
        for (full, cut) in all.iter().zip(&top2) {
            assert_eq!(cut.len(), full.len().min(2));
            assert_eq!(&full[..cut.len()], cut.as_slice(), "the best two, in order");
        }
        // Only the 3 most-interacted items (0, 1, 2) in the dense solve.
        let capped = ease(&rows, 0.5, 3, Keep::TopPositive(100)).unwrap();
        let number = |n: u128| rows.items.iter().position(|&i| i == id(n)).unwrap();
        for n in [3, 4, 9] {
            assert!(capped[number(n)].is_empty());
        }
        assert!(capped
            .iter()
            .flatten()
            .all(|&(j, _)| [0, 1, 2].map(number).contains(&(j as usize))));
    }

    #[test]
    fn rp3beta_follows_the_walk_and_penalises_popular_items() {
        // Tent (1) with sleeping bag (2); the hugely popular mug (3) with everything.
        let rows = rows_of(&[&[1, 2, 3], &[1, 2, 3], &[1, 3], &[3], &[3], &[3, 4]]);
        let number = |n: u128| rows.items.iter().position(|&i| i == id(n)).unwrap() as u32;
        let plain = rp3beta(&rows, 1.0, 0.0, 10);
        let penalised = rp3beta(&rows, 1.0, 0.75, 10);
        let from_tent = |lists: &[Vec<(u32, f32)>]| lists[number(1) as usize].clone();
        // Without the penalty the walk from the tent lands on the mug most.
        assert_eq!(from_tent(&plain)[0].0, number(3));
        // Divided by degree^0.75 (bag 2, mug 6): 0.132 against 0.102, the sleeping bag wins.
        assert_eq!(from_tent(&penalised)[0].0, number(2));
        // By hand, β = 0, α = 1, from the tent (members 0, 1, 2; P(tent→u) = 1/3):
        // to 2: (1/3)(1/3) + (1/3)(1/3) = 2/9; to 3: 2/9 + (1/3)(1/2) = 7/18; normalised.
        let total = 2.0 / 9.0 + 7.0 / 18.0;
        let weight = |list: &[(u32, f32)], n| {
            list.iter()
                .find(|&&(j, _)| j == number(n))
                .map_or(0.0, |&(_, w)| w)
        };
        assert!((weight(&from_tent(&plain), 2) - (2.0 / 9.0) / total).abs() < 1e-6);
        assert!((weight(&from_tent(&plain), 3) - (7.0 / 18.0) / total).abs() < 1e-6);
        for list in &penalised {
            let sum: f32 = list.iter().map(|(_, w)| w).sum();
            assert!(list.is_empty() || (sum - 1.0).abs() < 1e-5, "rows sum to 1");
        }
        assert!(rp3beta(&rows, 1.0, 0.5, 1).iter().all(|l| l.len() <= 1));
    }

    #[test]
    fn every_model_trains_into_servable_neighbours() {
        let pairs: Vec<(String, Interaction)> = (0..40)
            .flat_map(|m| {
                let basket = if m % 2 == 0 { [1, 2] } else { [3, 4] };
                basket.map(|i| (format!("m{m}"), order(i)))
            })
            .collect();
        for model in [
            CfModelKind::ItemItem,
            CfModelKind::Ease,
            CfModelKind::Rp3beta,
        ] {
            let config = CfConfig {
                model,
                ..CfConfig::default()
            };
            let trained = train(&config, pairs.iter().map(|(m, i)| (m.as_str(), i)), 0).unwrap();
            assert_eq!((trained.items, trained.members), (4, 40), "{model:?}");
            let recs = trained.neighbours.recommend_for_history(&[(id(1), 1.0)], 3);
            assert_eq!(recs[0].0, id(2), "{model:?}");
            let read = ItemNeighbours::decode(&trained.neighbours.encode()).unwrap();
            assert_eq!(read, trained.neighbours);
        }
        let broken = CfConfig {
            ease_lambda: -1000.0,
            ..CfConfig::default()
        };
        assert!(train(&broken, pairs.iter().map(|(m, i)| (m.as_str(), i)), 0).is_err());
    }
}
