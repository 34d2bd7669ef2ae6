//! What a member did with a product: the one owner of the interaction kinds and their weights.
//! Views, cart adds and orders say "I want this"; a rejection in the chat ("그거 말고", "not
//! that one") says the opposite and only ever lowers that member's own lists (docs/intent.md).

use serde::{Deserialize, Serialize};

/// A view, a cart add, an order or a rejection (the `interactions.kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InteractionKind {
    View,
    Cart,
    Order,
    /// The shopper turned the product down in the chat (`analysis::feedback`).
    Reject,
}

impl InteractionKind {
    pub const ALL: [InteractionKind; 4] = [Self::View, Self::Cart, Self::Order, Self::Reject];
    /// The kinds that say "I want this": the only ones CF, trending, popularity and the taste
    /// centroid count.
    pub const POSITIVE: [InteractionKind; 3] = [Self::View, Self::Cart, Self::Order];

    /// `view`, `cart`, `order`, `reject`; anything else is `None`.
    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Cart => "cart",
            Self::Order => "order",
            Self::Reject => "reject",
        }
    }

    /// Whether the kind says "I want this" (everything but a rejection).
    pub fn is_positive(self) -> bool {
        self != Self::Reject
    }

    /// How strongly one interaction says "I want this": a view 1, a cart add 3, an order 5,
    /// a rejection 0 (it is no vote for the product; its penalty is
    /// `recommender.rejection_weight`, applied to the rejecting member's lists only).
    /// Every signal that weighs behaviour (trending, popularity, CF, the learned profile)
    /// starts from these.
    pub fn weight(self) -> f64 {
        match self {
            Self::View => 1.0,
            Self::Cart => 3.0,
            Self::Order => 5.0,
            Self::Reject => 0.0,
        }
    }

    /// The weight counted into trending and popularity: an order counts per unit bought; a
    /// rejection never counts.
    pub fn counted_weight(self, quantity: i32) -> f64 {
        match self {
            Self::Order => self.weight() * f64::from(quantity.max(1)),
            _ => self.weight(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_orders_weigh_most() {
        for kind in InteractionKind::ALL {
            assert_eq!(InteractionKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(InteractionKind::parse("like"), None);
        assert!(InteractionKind::Order.weight() > InteractionKind::Cart.weight());
        assert!(InteractionKind::Cart.weight() > InteractionKind::View.weight());
        assert_eq!(InteractionKind::Order.counted_weight(2), 10.0);
        assert_eq!(InteractionKind::Cart.counted_weight(2), 3.0);
        assert_eq!(InteractionKind::View.counted_weight(0), 1.0);
    }

    #[test]
    fn a_rejection_is_no_vote_for_the_product() {
        assert!(!InteractionKind::Reject.is_positive());
        assert!(!InteractionKind::POSITIVE.contains(&InteractionKind::Reject));
        assert_eq!(InteractionKind::Reject.weight(), 0.0);
        assert_eq!(InteractionKind::Reject.counted_weight(3), 0.0);
    }
}
