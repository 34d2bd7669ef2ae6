//! The documents we index, built from database rows or event payloads.

use crate::db::entities::{conversation_message, product};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageDoc {
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub user_id: String,
    pub content: String,
    /// `user` or `assistant`.
    #[serde(rename = "type")]
    pub role: String,
    pub timestamp: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
}

impl MessageDoc {
    pub fn from_row(row: &conversation_message::Model) -> Self {
        Self {
            message_id: row.id,
            conversation_id: row.conversation_id,
            user_id: row.member_id.clone(),
            content: row.content.clone(),
            role: row.role.clone(),
            timestamp: row.created_at.with_timezone(&Utc),
            embedding: row.embedding.as_ref().map(|v| v.to_vec()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductDoc {
    pub product_id: Uuid,
    pub sku: String,
    pub title: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    pub currency: String,
    pub stock: i32,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
}

impl ProductDoc {
    pub fn from_row(row: &product::Model) -> Self {
        Self {
            product_id: row.id,
            sku: row.sku.clone(),
            title: row.title.clone(),
            description: row.description.clone(),
            brand: row.brand.clone(),
            category: row.category.clone(),
            price: row.price_minor,
            currency: row.currency.clone(),
            stock: row.stock,
            updated_at: row.updated_at.with_timezone(&Utc),
            embedding: row.embedding.as_ref().map(|v| v.to_vec()),
        }
    }
}
