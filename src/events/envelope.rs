//! The event envelope every topic carries (docs/events.md): JSON with an `event_id` for
//! idempotent consumers, a `type` and `version` to pick the reader, and the member id, which
//! is also the Kafka key so one member's events stay in order.

use crate::catalog::InteractionKind;
use crate::events::topics::Topic;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The envelope version this build writes and reads.
pub const ENVELOPE_VERSION: u32 = 1;

/// What happened. The type decides the topic; an unknown type is a poison record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "conversation.message.created")]
    ConversationMessageCreated,
    #[serde(rename = "product.viewed")]
    ProductViewed,
    #[serde(rename = "cart.added")]
    CartAdded,
    #[serde(rename = "order.completed")]
    OrderCompleted,
    #[serde(rename = "recommendation.served")]
    RecommendationServed,
    #[serde(rename = "analytics.recorded")]
    AnalyticsRecorded,
    #[serde(rename = "purchase_pattern.analyzed")]
    PurchasePatternAnalyzed,
    /// The shopper turned products down in the chat (docs/intent.md#dialogue-as-feedback);
    /// the payload is a [`RejectionPayload`].
    #[serde(rename = "product.rejected")]
    ProductRejected,
}

impl EventType {
    pub fn topic(self) -> Topic {
        match self {
            EventType::ConversationMessageCreated => Topic::ConvMsgCreated,
            EventType::ProductViewed => Topic::ProductViewed,
            EventType::CartAdded => Topic::UserBehavior,
            EventType::OrderCompleted => Topic::OrderCompleted,
            EventType::RecommendationServed => Topic::RecommendationEvents,
            EventType::AnalyticsRecorded => Topic::AnalyticsEvents,
            EventType::PurchasePatternAnalyzed => Topic::PurchasePatternAnalyzed,
            EventType::ProductRejected => Topic::UserBehavior,
        }
    }

    /// The interaction a behaviour event records; `None` for the other events.
    pub fn interaction_kind(self) -> Option<InteractionKind> {
        match self {
            EventType::ProductViewed => Some(InteractionKind::View),
            EventType::CartAdded => Some(InteractionKind::Cart),
            EventType::OrderCompleted => Some(InteractionKind::Order),
            EventType::ProductRejected => Some(InteractionKind::Reject),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub version: u32,
    pub occurred_at: DateTime<Utc>,
    pub member_id: String,
    pub payload: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not an event envelope: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported envelope version {0} (this build reads {ENVELOPE_VERSION})")]
    Version(u32),
    #[error("empty member_id")]
    NoMember,
}

impl Envelope {
    /// A new event of `event_type` for `member_id`, with a fresh id, happening now.
    pub fn new(event_type: EventType, member_id: impl Into<String>, payload: Value) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type,
            version: ENVELOPE_VERSION,
            occurred_at: Utc::now(),
            member_id: member_id.into(),
            payload,
        }
    }

    pub fn topic(&self) -> Topic {
        self.event_type.topic()
    }

    /// The Kafka key: the member id, so one member's events share a partition.
    pub fn key(&self) -> &str {
        &self.member_id
    }

    /// Reads a record's value; anything this build cannot read is an error (a poison record).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let envelope: Envelope = serde_json::from_slice(bytes)?;
        if envelope.version != ENVELOPE_VERSION {
            return Err(DecodeError::Version(envelope.version));
        }
        if envelope.member_id.is_empty() {
            return Err(DecodeError::NoMember);
        }
        Ok(envelope)
    }

    /// The typed payload of a shop interaction (`product.viewed`, `cart.added`,
    /// `order.completed`), if this is one.
    pub fn interaction(&self) -> Option<Result<InteractionPayload, serde_json::Error>> {
        matches!(
            self.event_type,
            EventType::ProductViewed | EventType::CartAdded | EventType::OrderCompleted
        )
        .then(|| serde_json::from_value(self.payload.clone()))
    }
}

/// The payload of `product.rejected`: what the shopper turned down, and in which message.
/// Not an [`InteractionPayload`] (so [`Envelope::interaction`] is `None` for it): a
/// rejection never counts into trending or popularity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectionPayload {
    pub conversation_id: Uuid,
    /// The user message that said it (the rows' `interactions.source_ref`).
    pub message_id: Uuid,
    pub product_ids: Vec<Uuid>,
    /// Why: `product`, `price` or `color` (or `brand`).
    pub reason: String,
}

/// The payload of the shop's interaction events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractionPayload {
    pub product_id: Uuid,
    /// The product's category when the event happened (`fashion/outerwear`).
    pub category: String,
    pub quantity: i32,
    /// The shop's order number (orders only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_envelope_round_trips_through_json() {
        let event = Envelope::new(
            EventType::ProductViewed,
            "m-1",
            json!({"product_id": Uuid::nil(), "category": "a/b", "quantity": 1}),
        );
        let bytes = serde_json::to_vec(&event).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"type\":\"product.viewed\""), "{text}");
        let back = Envelope::decode(&bytes).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.key(), "m-1");
        assert_eq!(back.interaction().unwrap().unwrap().category, "a/b");
    }

    #[test]
    fn unreadable_records_are_decode_errors() {
        assert!(Envelope::decode(b"not json").is_err());
        let unknown_type = json!({"event_id": Uuid::nil(), "type": "nope", "version": 1,
            "occurred_at": "2026-01-01T00:00:00Z", "member_id": "m", "payload": {}});
        assert!(Envelope::decode(unknown_type.to_string().as_bytes()).is_err());
        let mut future = unknown_type.clone();
        future["type"] = json!("product.viewed");
        future["version"] = json!(2);
        assert!(matches!(
            Envelope::decode(future.to_string().as_bytes()),
            Err(DecodeError::Version(2))
        ));
    }

    #[test]
    fn every_type_has_its_topic() {
        assert_eq!(EventType::CartAdded.topic(), Topic::UserBehavior);
        assert_eq!(
            EventType::ConversationMessageCreated.topic(),
            Topic::ConvMsgCreated
        );
    }
}
