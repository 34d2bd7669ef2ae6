//! Item-item collaborative filtering, pure (no I/O): the service feeds it `interactions` and
//! live events, the offline evaluation feeds it a data set's training split.
//!
//! Each member × item strength is the sum of that member's interactions with the item,
//! weighted by kind (orders > carts > views, times `1 + ln(quantity)` so bulk orders do not
//! drown everything) and decayed with a half-life. Two items are similar when the same
//! members are strong on both: the cosine of their member-strength columns. Only the top
//! `neighbours_per_item` neighbours of each item are kept.

use crate::catalog::InteractionKind;
use std::collections::HashMap;
use uuid::Uuid;

const SECS_PER_DAY: f32 = 86_400.0;

#[derive(Debug, Clone, PartialEq)]
pub struct CfConfig {
    pub half_life_days: f32,
    pub neighbours_per_item: usize,
}

impl Default for CfConfig {
    fn default() -> Self {
        Self {
            half_life_days: 365.0,
            neighbours_per_item: 200,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Observation {
    item: u32,
    weight: f32,
    at_secs: i64,
}

#[derive(Debug, Clone)]
pub struct ItemItemModel {
    config: CfConfig,
    items: Vec<Uuid>,
    item_index: HashMap<Uuid, u32>,
    member_index: HashMap<String, u32>,
    /// Raw observations per member (index = member number).
    observations: Vec<Vec<Observation>>,
    /// Top neighbours per item, best first (index = item number).
    neighbours: Vec<Vec<(u32, f32)>>,
    /// The time strengths were last decayed to.
    decayed_to: i64,
}

impl ItemItemModel {
    pub fn new(config: CfConfig) -> Self {
        Self {
            config,
            items: Vec::new(),
            item_index: HashMap::new(),
            member_index: HashMap::new(),
            observations: Vec::new(),
            neighbours: Vec::new(),
            decayed_to: 0,
        }
    }

    pub fn config(&self) -> &CfConfig {
        &self.config
    }

    /// Items and members seen so far.
    pub fn counts(&self) -> (usize, usize) {
        (self.items.len(), self.member_index.len())
    }

    /// The kind's weight, times `1 + ln(quantity)` so bulk orders do not drown everything.
    fn kind_weight(kind: InteractionKind, quantity: i32) -> f32 {
        kind.weight() as f32 * (1.0 + (quantity.max(1) as f32).ln())
    }

    fn decay(&self, at_secs: i64, now_secs: i64) -> f32 {
        let age_days = (now_secs - at_secs).max(0) as f32 / SECS_PER_DAY;
        let half_life = self.config.half_life_days.max(f32::EPSILON);
        0.5f32.powf(age_days / half_life)
    }

    /// member, item, kind, quantity, unix seconds; call in any order
    pub fn observe(
        &mut self,
        member: &str,
        item: Uuid,
        kind: InteractionKind,
        quantity: i32,
        at_secs: i64,
    ) {
        let weight = Self::kind_weight(kind, quantity);
        let item = match self.item_index.get(&item) {
            Some(&i) => i,
            None => {
                let i = self.items.len() as u32;
                self.items.push(item);
                self.item_index.insert(item, i);
                self.neighbours.push(Vec::new());
                i
            }
        };
        let member = match self.member_index.get(member) {
            Some(&m) => m,
            None => {
                let m = self.observations.len() as u32;
                self.observations.push(Vec::new());
                self.member_index.insert(member.to_string(), m);
                m
            }
        };
        self.observations[member as usize].push(Observation {
            item,
            weight,
            at_secs,
        });
    }

    /// A member's decayed strength per item, summed over their observations.
    fn strengths(&self, member: usize, now_secs: i64) -> Vec<(u32, f32)> {
        let mut by_item: HashMap<u32, f32> = HashMap::new();
        for o in &self.observations[member] {
            *by_item.entry(o.item).or_default() += o.weight * self.decay(o.at_secs, now_secs);
        }
        let mut strengths: Vec<(u32, f32)> = by_item.into_iter().collect();
        strengths.sort_unstable_by_key(|(item, _)| *item);
        strengths
    }

    /// recompute similarities (decayed to `now_secs`); cheap enough to call every few minutes
    pub fn rebuild(&mut self, now_secs: i64) {
        self.decayed_to = now_secs;
        let n_items = self.items.len();
        // Item-major columns: for each item, (member, strength).
        let rows: Vec<Vec<(u32, f32)>> = (0..self.observations.len())
            .map(|m| self.strengths(m, now_secs))
            .collect();
        let mut columns: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n_items];
        let mut norms = vec![0f32; n_items];
        for (member, row) in rows.iter().enumerate() {
            for &(item, strength) in row {
                columns[item as usize].push((member as u32, strength));
                norms[item as usize] += strength * strength;
            }
        }
        for norm in &mut norms {
            *norm = norm.sqrt();
        }
        // Dense accumulation per item: sum over its members of their rows (Σ deg² work).
        let k = self.config.neighbours_per_item;
        let mut dots = vec![0f32; n_items];
        let mut touched: Vec<u32> = Vec::new();
        for item in 0..n_items {
            for &(member, si) in &columns[item] {
                for &(other, sj) in &rows[member as usize] {
                    if other as usize == item {
                        continue;
                    }
                    if dots[other as usize] == 0.0 {
                        touched.push(other);
                    }
                    dots[other as usize] += si * sj;
                }
            }
            let mut list: Vec<(u32, f32)> = touched
                .iter()
                .filter_map(|&other| {
                    let denominator = norms[item] * norms[other as usize];
                    let similarity = dots[other as usize] / denominator;
                    (denominator > 0.0 && similarity > 0.0).then_some((other, similarity))
                })
                .collect();
            for &other in &touched {
                dots[other as usize] = 0.0;
            }
            touched.clear();
            if list.len() > k {
                list.select_nth_unstable_by(k, |a, b| b.1.total_cmp(&a.1));
                list.truncate(k);
            }
            list.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            self.neighbours[item] = list;
        }
    }

    pub fn similar(&self, item: Uuid, k: usize) -> Vec<(Uuid, f32)> {
        let Some(&i) = self.item_index.get(&item) else {
            return Vec::new();
        };
        self.neighbours[i as usize]
            .iter()
            .take(k)
            .map(|&(j, s)| (self.items[j as usize], s))
            .collect()
    }

    /// The similarity of `b` to `a` if `b` is among `a`'s kept neighbours, else 0.
    pub fn similarity(&self, a: Uuid, b: Uuid) -> f32 {
        match (self.item_index.get(&a), self.item_index.get(&b)) {
            (Some(&a), Some(&b)) => self.neighbours[a as usize]
                .iter()
                .find(|(j, _)| *j == b)
                .map_or(0.0, |(_, s)| *s),
            _ => 0.0,
        }
    }

    /// scores for items related to `history` (member's items with their weights), excluding them
    pub fn recommend_for_history(&self, history: &[(Uuid, f32)], k: usize) -> Vec<(Uuid, f32)> {
        let mut scores: HashMap<u32, f32> = HashMap::new();
        let owned: Vec<u32> = history
            .iter()
            .filter_map(|(item, _)| self.item_index.get(item).copied())
            .collect();
        for (item, weight) in history {
            let Some(&i) = self.item_index.get(item) else {
                continue;
            };
            for &(j, similarity) in &self.neighbours[i as usize] {
                if !owned.contains(&j) {
                    *scores.entry(j).or_default() += weight * similarity;
                }
            }
        }
        let mut ranked: Vec<(Uuid, f32)> = scores
            .into_iter()
            .map(|(j, s)| (self.items[j as usize], s))
            .collect();
        ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        ranked
    }

    /// The member's items with their decayed strengths (to the later of the last rebuild and
    /// their latest observation), strongest first.
    pub fn member_history(&self, member: &str) -> Vec<(Uuid, f32)> {
        let Some(&m) = self.member_index.get(member) else {
            return Vec::new();
        };
        let latest = self.observations[m as usize]
            .iter()
            .map(|o| o.at_secs)
            .max()
            .unwrap_or(0);
        let mut history: Vec<(Uuid, f32)> = self
            .strengths(m as usize, self.decayed_to.max(latest))
            .into_iter()
            .map(|(i, s)| (self.items[i as usize], s))
            .collect();
        history.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        history
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// Tents (1) and sleeping bags (2) are bought together; phones (3) and cases (4) too.
    fn shop() -> ItemItemModel {
        let mut model = ItemItemModel::new(CfConfig::default());
        for m in 0..10 {
            let member = format!("camper-{m}");
            model.observe(&member, id(1), InteractionKind::Order, 1, 10 * DAY);
            model.observe(&member, id(2), InteractionKind::Order, 1, 10 * DAY);
            let member = format!("techie-{m}");
            model.observe(&member, id(3), InteractionKind::Order, 1, 10 * DAY);
            model.observe(&member, id(4), InteractionKind::View, 1, 10 * DAY);
        }
        // One member crosses over, weakly.
        model.observe("camper-0", id(3), InteractionKind::View, 1, 10 * DAY);
        model.rebuild(11 * DAY);
        model
    }

    #[test]
    fn co_bought_items_are_the_nearest_neighbours() {
        let model = shop();
        assert_eq!(model.similar(id(1), 5)[0].0, id(2));
        assert_eq!(model.similar(id(3), 5)[0].0, id(4));
        assert!(model.similarity(id(1), id(2)) > model.similarity(id(1), id(3)));
        assert!(model.similar(id(99), 5).is_empty());
    }

    #[test]
    fn recommendations_follow_the_history_and_exclude_it() {
        let model = shop();
        let recs = model.recommend_for_history(&[(id(1), 1.0)], 3);
        assert_eq!(recs[0].0, id(2));
        assert!(recs.iter().all(|(item, _)| *item != id(1)));
        let history = model.member_history("techie-1");
        assert_eq!(history[0].0, id(3), "the order outweighs the view");
        assert!(model.member_history("nobody").is_empty());
    }

    #[test]
    fn old_interactions_fade() {
        let mut model = ItemItemModel::new(CfConfig {
            half_life_days: 1.0,
            ..CfConfig::default()
        });
        model.observe("m", id(1), InteractionKind::Order, 1, 0);
        model.observe("m", id(2), InteractionKind::View, 1, 10 * DAY);
        model.rebuild(10 * DAY);
        let history = model.member_history("m");
        assert_eq!(
            history[0].0,
            id(2),
            "a fresh view beats a ten-half-lives-old order"
        );
    }

    #[test]
    fn a_retail_sized_data_set_rebuilds_in_seconds() {
        let mut model = ItemItemModel::new(CfConfig::default());
        let mut state: u64 = 42;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        for line in 0..400_000u32 {
            let member = format!("m{}", next() % 4000);
            // Skewed popularity, like real baskets.
            let item = (next() % 4000).min(next() % 4000) as u128;
            model.observe(
                &member,
                id(item),
                InteractionKind::Order,
                1,
                i64::from(line),
            );
        }
        let started = std::time::Instant::now();
        model.rebuild(400_000);
        let took = started.elapsed();
        assert!(took.as_secs() < 30, "rebuild took {took:?}");
        let kept = CfConfig::default().neighbours_per_item;
        assert_eq!(model.similar(id(0), kept + 10).len(), kept);
    }
}
