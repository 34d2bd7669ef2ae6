//! Item-item collaborative filtering, pure (no I/O): the service feeds it `interactions` and
//! live events, the offline evaluation feeds it a data set's training split.
//!
//! Each member × item strength is the sum of that member's interactions with the item,
//! weighted by kind (orders > carts > views, times `1 + ln(quantity)` so bulk orders do not
//! drown everything) and decayed with a half-life. Two items are similar when the same
//! members are strong on both: the cosine of their member-strength columns. Only the top
//! `neighbours_per_item` neighbours of each item are kept.

use crate::catalog::InteractionKind;
use crate::config::CfModelKind;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

const SECS_PER_DAY: f32 = 86_400.0;

#[derive(Debug, Clone, PartialEq)]
pub struct CfConfig {
    pub half_life_days: f32,
    pub neighbours_per_item: usize,
    /// Which model [`crate::recommend::linear::train`] trains.
    pub model: CfModelKind,
    /// EASE's L2 penalty λ.
    pub ease_lambda: f32,
    /// EASE: the most-interacted items in the dense solve; the rest get no neighbours.
    pub max_dense_items: usize,
    /// RP3beta's transition exponent α.
    pub rp3_alpha: f32,
    /// RP3beta's popularity penalty β.
    pub rp3_beta: f32,
}

impl From<&crate::config::RecommenderSettings> for CfConfig {
    fn from(settings: &crate::config::RecommenderSettings) -> Self {
        Self {
            half_life_days: settings.cf_half_life_days,
            neighbours_per_item: settings.cf_neighbours_per_item,
            model: settings.cf_model,
            ease_lambda: settings.cf_ease_lambda,
            max_dense_items: settings.cf_max_dense_items,
            rp3_alpha: settings.cf_rp3_alpha,
            rp3_beta: settings.cf_rp3_beta,
        }
    }
}

/// The service's defaults (`[recommender]` in `config::DEFAULTS`; a test keeps them equal).
impl Default for CfConfig {
    fn default() -> Self {
        Self {
            half_life_days: 365.0,
            neighbours_per_item: 200,
            model: CfModelKind::Ease,
            ease_lambda: 1000.0,
            max_dense_items: 8000,
            rp3_alpha: 1.0,
            rp3_beta: 0.5,
        }
    }
}

/// How a member's items weigh when their neighbours' weights are summed at serving time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryWeights {
    /// The decayed, kind-weighted strength of [`history_strengths`].
    Strength,
    /// 1 per item (the strongest items still come first).
    Binary,
}

impl CfConfig {
    /// The one rule for serving weights, as measured on the Online Retail validation split
    /// (docs/evaluation.md#a-stronger-collaborative-model-issue-17-part-1): EASE, trained on
    /// binary rows, scores best with binary histories (NDCG@10 0.0936 against 0.0921 with
    /// the decayed strengths); RP3beta (0.0771 against 0.0765) and item-item keep the strengths.
    pub fn history_weights(&self) -> HistoryWeights {
        match self.model {
            CfModelKind::Ease => HistoryWeights::Binary,
            CfModelKind::ItemItem | CfModelKind::Rp3beta => HistoryWeights::Strength,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Observation {
    item: u32,
    weight: f32,
    at_secs: i64,
}

/// The kind's weight, times `1 + ln(quantity)` so bulk orders do not drown everything.
pub(crate) fn kind_weight(kind: InteractionKind, quantity: i32) -> f32 {
    kind.weight() as f32 * (1.0 + (quantity.max(1) as f32).ln())
}

/// How much of an interaction's weight is left `now_secs`, after `half_life_days`.
pub(crate) fn decay(half_life_days: f32, at_secs: i64, now_secs: i64) -> f32 {
    let age_days = (now_secs - at_secs).max(0) as f32 / SECS_PER_DAY;
    0.5f32.powf(age_days / half_life_days.max(f32::EPSILON))
}

/// One interaction as the member's history counts it (a row of `interactions`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    pub item: Uuid,
    pub kind: InteractionKind,
    pub quantity: i32,
    pub at_secs: i64,
}

/// A member's items with their decayed strengths at `now_secs`, strongest first: the one rule
/// for "what this member likes", used by the trainer and by the request path alike.
pub fn history_strengths(
    config: &CfConfig,
    interactions: &[Interaction],
    now_secs: i64,
) -> Vec<(Uuid, f32)> {
    let mut by_item: HashMap<Uuid, f32> = HashMap::new();
    // A rejection is no vote for the item (its penalty is `recommend::rejection`'s).
    for i in interactions.iter().filter(|i| i.kind.is_positive()) {
        *by_item.entry(i.item).or_default() +=
            kind_weight(i.kind, i.quantity) * decay(config.half_life_days, i.at_secs, now_secs);
    }
    let mut history: Vec<(Uuid, f32)> = by_item.into_iter().collect();
    history.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    history
}

/// A member's items as the served model weighs them: [`history_strengths`] (strongest
/// first), then [`CfConfig::history_weights`]. What the request path feeds
/// [`ItemNeighbours::recommend_for_history`].
pub fn serving_history(
    config: &CfConfig,
    interactions: &[Interaction],
    now_secs: i64,
) -> Vec<(Uuid, f32)> {
    weigh_history(
        config.history_weights(),
        history_strengths(config, interactions, now_secs),
    )
}

/// Applies `weights` to a history in [`history_strengths`]' order.
pub fn weigh_history(weights: HistoryWeights, mut history: Vec<(Uuid, f32)>) -> Vec<(Uuid, f32)> {
    if weights == HistoryWeights::Binary {
        for (_, weight) in &mut history {
            *weight = 1.0;
        }
    }
    history
}

/// The trained part of the model, which is all that serving needs: each item's top
/// neighbours. Stored as a model version in PostgreSQL ([`Self::encode`]) and loaded by every
/// instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemNeighbours {
    items: Vec<Uuid>,
    item_index: HashMap<Uuid, u32>,
    /// Top neighbours per item, best first (index = item number).
    neighbours: Vec<Vec<(u32, f32)>>,
}

/// The first bytes of an encoded [`ItemNeighbours`] (format version 1).
const ENCODING_MAGIC: &[u8; 4] = b"CFN1";

/// An encoded model that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("item-neighbour model not readable: {0}")]
pub struct DecodeError(&'static str);

impl ItemNeighbours {
    /// A trained model from its items and, per item (same order), its neighbours as
    /// `(item number, weight)`; each list is sorted best first here.
    pub fn from_lists(items: Vec<Uuid>, mut lists: Vec<Vec<(u32, f32)>>) -> Self {
        assert_eq!(items.len(), lists.len(), "one neighbour list per item");
        for list in &mut lists {
            debug_assert!(list
                .iter()
                .all(|&(j, s)| (j as usize) < items.len() && s.is_finite()));
            list.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        let item_index = items
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i as u32))
            .collect();
        Self {
            items,
            item_index,
            neighbours: lists,
        }
    }

    /// Neighbours kept, over all items.
    pub fn kept(&self) -> usize {
        self.neighbours.iter().map(Vec::len).sum()
    }

    /// Items known to the model.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
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

    /// Little-endian: magic, item count, the item ids, then per item its neighbour count and
    /// (neighbour number, similarity) pairs. About 8 bytes per kept neighbour.
    pub fn encode(&self) -> Vec<u8> {
        let kept: usize = self.neighbours.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(8 + self.items.len() * 20 + kept * 8);
        out.extend_from_slice(ENCODING_MAGIC);
        out.extend_from_slice(&(self.items.len() as u32).to_le_bytes());
        for item in &self.items {
            out.extend_from_slice(item.as_bytes());
        }
        for list in &self.neighbours {
            out.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for &(j, s) in list {
                out.extend_from_slice(&j.to_le_bytes());
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut rest = bytes
            .strip_prefix(ENCODING_MAGIC.as_slice())
            .ok_or(DecodeError("unknown format"))?;
        let mut take = |n: usize| -> Result<&[u8], DecodeError> {
            if rest.len() < n {
                return Err(DecodeError("truncated"));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let u32_at = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("four bytes"));
        let n = u32_at(take(4)?) as usize;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(Uuid::from_slice(take(16)?).expect("sixteen bytes"));
        }
        let mut neighbours = Vec::with_capacity(n);
        for _ in 0..n {
            let count = u32_at(take(4)?) as usize;
            let mut list = Vec::with_capacity(count.min(1 << 16));
            for _ in 0..count {
                let j = u32_at(take(4)?);
                let s = f32::from_le_bytes(take(4)?.try_into().expect("four bytes"));
                if j as usize >= n || !s.is_finite() {
                    return Err(DecodeError("neighbour out of range"));
                }
                list.push((j, s));
            }
            neighbours.push(list);
        }
        if !rest.is_empty() {
            return Err(DecodeError("trailing bytes"));
        }
        let item_index = items
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i as u32))
            .collect();
        Ok(Self {
            items,
            item_index,
            neighbours,
        })
    }
}

/// The training side: raw observations in, [`ItemNeighbours`] out.
#[derive(Debug, Clone)]
pub struct ItemItemModel {
    config: CfConfig,
    graph: ItemNeighbours,
    member_index: HashMap<String, u32>,
    /// Raw observations per member (index = member number).
    observations: Vec<Vec<Observation>>,
    /// The time strengths were last decayed to.
    decayed_to: i64,
}

impl ItemItemModel {
    pub fn new(config: CfConfig) -> Self {
        Self {
            config,
            graph: ItemNeighbours::default(),
            member_index: HashMap::new(),
            observations: Vec::new(),
            decayed_to: 0,
        }
    }

    pub fn config(&self) -> &CfConfig {
        &self.config
    }

    /// Items and members seen so far.
    pub fn counts(&self) -> (usize, usize) {
        (self.graph.items.len(), self.member_index.len())
    }

    /// The neighbours as of the last [`Self::rebuild`].
    pub fn neighbours(&self) -> &ItemNeighbours {
        &self.graph
    }

    pub fn into_neighbours(self) -> ItemNeighbours {
        self.graph
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
        if !kind.is_positive() {
            return;
        }
        let weight = kind_weight(kind, quantity);
        let graph = &mut self.graph;
        let item = match graph.item_index.get(&item) {
            Some(&i) => i,
            None => {
                let i = graph.items.len() as u32;
                graph.items.push(item);
                graph.item_index.insert(item, i);
                graph.neighbours.push(Vec::new());
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
            *by_item.entry(o.item).or_default() +=
                o.weight * decay(self.config.half_life_days, o.at_secs, now_secs);
        }
        let mut strengths: Vec<(u32, f32)> = by_item.into_iter().collect();
        strengths.sort_unstable_by_key(|(item, _)| *item);
        strengths
    }

    /// recompute similarities (decayed to `now_secs`); cheap enough to call every few minutes
    pub fn rebuild(&mut self, now_secs: i64) {
        self.decayed_to = now_secs;
        let n_items = self.graph.items.len();
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
            self.graph.neighbours[item] = list;
        }
    }

    pub fn similar(&self, item: Uuid, k: usize) -> Vec<(Uuid, f32)> {
        self.graph.similar(item, k)
    }

    /// The similarity of `b` to `a` if `b` is among `a`'s kept neighbours, else 0.
    pub fn similarity(&self, a: Uuid, b: Uuid) -> f32 {
        self.graph.similarity(a, b)
    }

    /// scores for items related to `history` (member's items with their weights), excluding them
    pub fn recommend_for_history(&self, history: &[(Uuid, f32)], k: usize) -> Vec<(Uuid, f32)> {
        self.graph.recommend_for_history(history, k)
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
            .map(|(i, s)| (self.graph.items[i as usize], s))
            .collect();
        history.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        history
    }
}

/// The model version an instance serves, swapped whole when a newer one is loaded: a reader
/// holds the lock only to clone an `Arc`, so a load never waits for readers or blocks them.
#[derive(Clone, Default)]
pub struct ServedNeighbours(Arc<RwLock<Arc<ServedVersion>>>);

/// A loaded model version (`None`: nothing trained yet).
#[derive(Debug, Default)]
pub struct ServedVersion {
    pub version: Option<i64>,
    pub neighbours: ItemNeighbours,
}

impl ServedNeighbours {
    pub fn new(version: Option<i64>, neighbours: ItemNeighbours) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(ServedVersion {
            version,
            neighbours,
        }))))
    }

    pub fn current(&self) -> Arc<ServedVersion> {
        self.0
            .read()
            .expect("served model lock not poisoned")
            .clone()
    }

    pub fn version(&self) -> Option<i64> {
        self.current().version
    }

    pub fn replace(&self, version: i64, neighbours: ItemNeighbours) {
        *self.0.write().expect("served model lock not poisoned") = Arc::new(ServedVersion {
            version: Some(version),
            neighbours,
        });
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

    #[test]
    fn a_stored_model_reads_back_the_same_and_garbage_is_refused() {
        let model = shop();
        let bytes = model.neighbours().encode();
        let read = ItemNeighbours::decode(&bytes).unwrap();
        assert_eq!(&read, model.neighbours());
        assert_eq!(read.similar(id(1), 5), model.similar(id(1), 5));
        assert!(ItemNeighbours::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(ItemNeighbours::decode(b"CFN0").is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ItemNeighbours::decode(&longer).is_err());
        let empty = ItemNeighbours::default();
        assert_eq!(ItemNeighbours::decode(&empty.encode()).unwrap(), empty);
    }

    /// What `shop()` recorded for each techie, as rows of `interactions`.
    fn techie_rows() -> [Interaction; 2] {
        [
            Interaction {
                item: id(3),
                kind: InteractionKind::Order,
                quantity: 1,
                at_secs: 10 * DAY,
            },
            Interaction {
                item: id(4),
                kind: InteractionKind::View,
                quantity: 1,
                at_secs: 10 * DAY,
            },
        ]
    }

    #[test]
    fn the_request_path_history_weighs_like_the_trainer() {
        let model = shop();
        let rows = techie_rows();
        let from_rows = history_strengths(&CfConfig::default(), &rows, 11 * DAY);
        let trained = model.member_history("techie-1");
        assert_eq!(from_rows.len(), trained.len());
        for ((a, sa), (b, sb)) in from_rows.iter().zip(&trained) {
            assert_eq!(a, b);
            assert!((sa - sb).abs() < 1e-6, "{sa} vs {sb}");
        }
    }

    #[test]
    fn the_default_config_is_the_services_and_serves_binary_histories() {
        let settings = crate::config::Settings::load(None).unwrap().recommender;
        assert_eq!(CfConfig::from(&settings), CfConfig::default());
        assert_eq!(settings.cf_model, CfModelKind::Ease);
        assert_eq!(settings.cf_model.as_str(), "ease");
        let rows = techie_rows();
        let served = serving_history(&CfConfig::default(), &rows, 11 * DAY);
        assert_eq!(
            served,
            vec![(id(3), 1.0), (id(4), 1.0)],
            "strongest first, weight 1"
        );
        let item_item = CfConfig {
            model: CfModelKind::ItemItem,
            ..CfConfig::default()
        };
        assert_eq!(
            serving_history(&item_item, &rows, 11 * DAY),
            history_strengths(&item_item, &rows, 11 * DAY)
        );
    }

    #[test]
    fn a_served_model_is_swapped_whole() {
        let served = ServedNeighbours::default();
        assert_eq!(served.version(), None);
        let before = served.current();
        served.replace(7, shop().into_neighbours());
        assert_eq!(served.version(), Some(7));
        assert!(
            before.neighbours.is_empty(),
            "a reader keeps the version it took"
        );
        assert_eq!(served.current().neighbours.similar(id(1), 1)[0].0, id(2));
    }
}
