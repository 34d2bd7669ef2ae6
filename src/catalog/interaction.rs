//! What a member did with a product: the one owner of the interaction kinds and their weights.

use serde::{Deserialize, Serialize};

/// A view, a cart add or an order (the `interactions.kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InteractionKind {
    View,
    Cart,
    Order,
}

impl InteractionKind {
    pub const ALL: [InteractionKind; 3] = [Self::View, Self::Cart, Self::Order];

    /// `view`, `cart`, `order`; anything else is `None`.
    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Cart => "cart",
            Self::Order => "order",
        }
    }

    /// How strongly one interaction says "I want this": a view 1, a cart add 3, an order 5.
    /// Every signal that weighs behaviour (trending, popularity, CF, the learned profile)
    /// starts from these.
    pub fn weight(self) -> f64 {
        match self {
            Self::View => 1.0,
            Self::Cart => 3.0,
            Self::Order => 5.0,
        }
    }

    /// The weight counted into trending and popularity: an order counts per unit bought.
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
}
