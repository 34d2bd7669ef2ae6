//! What the member turned down in the chat ("그거 말고", "not that one";
//! docs/intent.md#dialogue-as-feedback) as a soft penalty on their later lists: each
//! rejected product loses `recommender.rejection_weight` × its penalty from its total. The
//! penalty is 1 when the rejection is fresh and halves every
//! `recommender.rejection_half_life_days`, so a product turned down long ago comes back. It is
//! read from the member's own `interactions` (the same rows as their history), so it holds on
//! every instance at once, and it never touches another member's lists, trending or CF.

use crate::catalog::InteractionKind;
use crate::recommend::cf::Interaction;
use std::collections::HashMap;
use uuid::Uuid;

const SECS_PER_DAY: f64 = 86_400.0;

/// Each rejected product's penalty at `now_secs`, in (0, 1]: 0.5^(age / half-life) of its
/// latest rejection (no decay when `half_life_days` is 0). Products never rejected are absent.
pub fn penalties(
    interactions: &[Interaction],
    now_secs: i64,
    half_life_days: f32,
) -> HashMap<Uuid, f32> {
    let mut penalties: HashMap<Uuid, f32> = HashMap::new();
    for rejection in interactions
        .iter()
        .filter(|i| i.kind == InteractionKind::Reject)
    {
        let penalty = decay(rejection.at_secs, now_secs, half_life_days);
        let entry = penalties.entry(rejection.item).or_default();
        *entry = entry.max(penalty);
    }
    penalties
}

fn decay(at_secs: i64, now_secs: i64, half_life_days: f32) -> f32 {
    if half_life_days <= 0.0 {
        return 1.0;
    }
    let age_days = (now_secs - at_secs).max(0) as f64 / SECS_PER_DAY;
    0.5f64.powf(age_days / f64::from(half_life_days)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn at(item: u128, kind: InteractionKind, days_ago: i64) -> Interaction {
        Interaction {
            item: Uuid::from_u128(item),
            kind,
            quantity: 1,
            at_secs: 100 * DAY - days_ago * DAY,
        }
    }

    #[test]
    fn a_rejection_weighs_fully_when_fresh_and_halves_every_half_life() {
        let now = 100 * DAY;
        let found = penalties(
            &[
                at(1, InteractionKind::Reject, 0),
                at(2, InteractionKind::Reject, 14),
                at(3, InteractionKind::Reject, 28),
                at(4, InteractionKind::Order, 0),
                at(4, InteractionKind::View, 0),
            ],
            now,
            14.0,
        );
        assert!((found[&Uuid::from_u128(1)] - 1.0).abs() < 1e-6);
        assert!((found[&Uuid::from_u128(2)] - 0.5).abs() < 1e-6);
        assert!((found[&Uuid::from_u128(3)] - 0.25).abs() < 1e-6);
        assert!(!found.contains_key(&Uuid::from_u128(4)), "only rejections");
    }

    #[test]
    fn the_latest_rejection_counts_and_zero_half_life_never_decays() {
        let now = 100 * DAY;
        let twice = [
            at(1, InteractionKind::Reject, 30),
            at(1, InteractionKind::Reject, 1),
        ];
        let found = penalties(&twice, now, 14.0);
        assert!(found[&Uuid::from_u128(1)] > 0.9);
        let found = penalties(&[at(1, InteractionKind::Reject, 365)], now, 0.0);
        assert_eq!(found[&Uuid::from_u128(1)], 1.0);
    }
}
