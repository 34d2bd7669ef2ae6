//! The service's item-item CF model ([`crate::recommend::cf::ItemItemModel`]) on the
//! Online Retail training split.

use super::online_retail::RetailSplit;
use crate::catalog::InteractionKind;
use crate::recommend::cf::{CfConfig, ItemItemModel};
use std::collections::HashMap;
use uuid::Uuid;

/// Trains the model on every training purchase (as orders, decayed to the cutoff) and
/// ranks each test customer's top `k` from their own history. The model never recommends
/// an item already in the history, so with `--include-train-items` it cannot score repeats.
pub fn cf_lists(
    split: &RetailSplit,
    config: CfConfig,
    cutoff_secs: i64,
    k: usize,
) -> HashMap<String, Vec<String>> {
    // The model keys items by product id; a stock code's number in order of appearance.
    let mut ids: HashMap<&str, Uuid> = HashMap::new();
    let mut skus: HashMap<Uuid, &str> = HashMap::new();
    let mut model = ItemItemModel::new(config);
    for purchase in &split.train {
        let next = Uuid::from_u128(ids.len() as u128 + 1);
        let id = *ids.entry(purchase.sku.as_str()).or_insert(next);
        skus.entry(id).or_insert(purchase.sku.as_str());
        model.observe(
            &purchase.member,
            id,
            InteractionKind::Order,
            purchase.quantity,
            purchase.at.and_utc().timestamp(),
        );
    }
    let started = std::time::Instant::now();
    model.rebuild(cutoff_secs);
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "item-item model rebuilt"
    );
    split
        .relevant
        .keys()
        .map(|member| {
            let history = model.member_history(member);
            // A margin for the items the split forbids, dropped below.
            let list = model
                .recommend_for_history(&history, k + history.len())
                .into_iter()
                .filter_map(|(id, _)| skus.get(&id).copied())
                .filter(|sku| split.may_recommend(member, sku))
                .take(k)
                .map(str::to_string)
                .collect();
            (member.clone(), list)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::online_retail::SplitOptions;
    use crate::import::rows::OrderLine;
    use chrono::NaiveDate;

    #[test]
    fn co_bought_items_are_recommended() {
        let day = |d: u32, m: u32| {
            NaiveDate::from_ymd_opt(2011, m, d)
                .unwrap()
                .and_hms_opt(9, 0, 0)
                .unwrap()
        };
        let line = |member: &str, sku: &str, at| OrderLine {
            order_id: "1".into(),
            member_id: member.into(),
            sku: sku.into(),
            quantity: 2,
            unit_price_minor: 100,
            occurred_at: at,
        };
        let lines = vec![
            line("1", "MUG", day(1, 10)),
            line("1", "TEA", day(1, 10)),
            line("2", "MUG", day(2, 10)),
            line("2", "TEA", day(2, 10)),
            line("3", "MUG", day(3, 10)),
            line("3", "SOCK", day(3, 10)),
            line("4", "MUG", day(5, 10)),
            line("4", "TEA", day(3, 11)),
        ];
        let cutoff = day(1, 11);
        let split = RetailSplit::build(
            lines,
            &SplitOptions {
                cutoff,
                include_train_items: false,
                limit_customers: None,
            },
        );
        let lists = cf_lists(
            &split,
            CfConfig::default(),
            cutoff.and_utc().timestamp(),
            10,
        );
        // Customer 4 bought a mug; tea goes with mugs more often than socks do.
        assert_eq!(lists["4"][0], "TEA");
        assert_eq!(split.score("cf", &lists, 10).recall, 1.0);
    }
}
