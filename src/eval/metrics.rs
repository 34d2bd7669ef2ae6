//! Ranking metrics shared by every evaluation, so the Rust baselines and the outside ones
//! (ALS lists read back from a file) are scored by one implementation.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// Share of the relevant items found in the first `k` of `ranked`: hits / |relevant|.
/// An empty relevant set scores 0 (such cases are left out of an evaluation beforehand).
pub fn recall_at_k<T: Eq + Hash>(ranked: &[T], relevant: &HashSet<T>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let hits = ranked
        .iter()
        .take(k)
        .filter(|item| relevant.contains(item))
        .count();
    hits as f64 / relevant.len() as f64
}

/// NDCG@k with graded gains: DCG = Σ gain(item at rank i) / log2(i + 1) over the first `k`
/// ranks (i from 1), divided by the DCG of the ideal order of every judged gain. Linear
/// gains (not 2^g − 1), so a gain table of 3/2/1/0 weights exact matches 3× complements.
/// Unjudged items gain 0. No positive gain at all scores 0.
pub fn ndcg_at_k<T: Eq + Hash>(ranked: &[T], gains: &HashMap<T, f64>, k: usize) -> f64 {
    let discount = |rank0: usize| 1.0 / ((rank0 + 2) as f64).log2();
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, item)| gains.get(item).copied().unwrap_or(0.0) * discount(i))
        .sum();
    let mut ideal: Vec<f64> = gains.values().copied().filter(|g| *g > 0.0).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| g * discount(i))
        .sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}

/// NDCG@k with binary relevance (gain 1 for every relevant item).
pub fn binary_ndcg_at_k<T: Eq + Hash + Clone>(
    ranked: &[T],
    relevant: &HashSet<T>,
    k: usize,
) -> f64 {
    let gains: HashMap<T, f64> = relevant.iter().map(|item| (item.clone(), 1.0)).collect();
    ndcg_at_k(ranked, &gains, k)
}

/// Running mean of per-case scores.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mean {
    sum: f64,
    count: u64,
}

impl Mean {
    pub fn add(&mut self, value: f64) {
        self.sum += value;
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn value(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&'static str]) -> HashSet<&'static str> {
        items.iter().copied().collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn recall_counts_hits_in_the_first_k_over_all_relevant() {
        let ranked = ["a", "b", "c", "d"];
        assert!(close(
            recall_at_k(&ranked, &set(&["a", "d", "z"]), 4),
            2.0 / 3.0
        ));
        assert!(close(
            recall_at_k(&ranked, &set(&["a", "d", "z"]), 3),
            1.0 / 3.0
        ));
        assert!(close(recall_at_k(&ranked, &set(&["z"]), 4), 0.0));
        assert!(close(recall_at_k(&ranked, &set(&[]), 4), 0.0));
    }

    #[test]
    fn binary_ndcg_matches_hand_computed_values() {
        // Relevant at ranks 1 and 3 of 2 relevant: (1 + 1/log2 4) / (1 + 1/log2 3).
        let ranked = ["a", "x", "b"];
        let expected = (1.0 + 0.5) / (1.0 + 1.0 / 3f64.log2());
        assert!(close(
            binary_ndcg_at_k(&ranked, &set(&["a", "b"]), 10),
            expected
        ));
        // The ideal order scores 1, a miss 0.
        assert!(close(
            binary_ndcg_at_k(&["a", "b"], &set(&["a", "b"]), 10),
            1.0
        ));
        assert!(close(binary_ndcg_at_k(&["x"], &set(&["a"]), 10), 0.0));
        // Cut at k: the hit at rank 3 does not count with k = 2.
        assert!(close(
            binary_ndcg_at_k(&ranked, &set(&["a", "b"]), 2),
            1.0 / (1.0 + 1.0 / 3f64.log2())
        ));
    }

    #[test]
    fn graded_ndcg_uses_linear_gains_and_the_ideal_order_of_all_judgments() {
        let gains: HashMap<&str, f64> = [("e", 3.0), ("s", 2.0), ("c", 1.0), ("i", 0.0)]
            .into_iter()
            .collect();
        // Ranked c, e, i: DCG = 1 + 3/log2 3 + 0; ideal e, s, c: 3 + 2/log2 3 + 1/2.
        let dcg = 1.0 + 3.0 / 3f64.log2();
        let idcg = 3.0 + 2.0 / 3f64.log2() + 0.5;
        assert!(close(ndcg_at_k(&["c", "e", "i"], &gains, 10), dcg / idcg));
        assert!(close(ndcg_at_k(&["e", "s", "c"], &gains, 10), 1.0));
        // Only irrelevant judgments: nothing to find, scores 0.
        let none: HashMap<&str, f64> = [("i", 0.0)].into_iter().collect();
        assert!(close(ndcg_at_k(&["i"], &none, 10), 0.0));
    }

    #[test]
    fn mean_of_nothing_is_zero() {
        let mut mean = Mean::default();
        assert_eq!(mean.value(), 0.0);
        mean.add(1.0);
        mean.add(0.5);
        assert!(close(mean.value(), 0.75));
        assert_eq!(mean.count(), 2);
    }
}
