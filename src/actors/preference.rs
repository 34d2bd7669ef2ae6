//! `PreferenceActor`: the owner of the `preference-analysis` consumer group. It merges each
//! member's behaviour (views, cart adds, orders) and messages into their profile in
//! `user_preferences` (row locked for the merge, so one member's updates apply in order),
//! mirrors it to `user:preference:{id}`, invalidates `rec:user:{id}`, and on an order enqueues
//! `purchase_pattern.analyzed` in the same transaction.

use crate::catalog::attributes::ProductAttributes;
use crate::catalog::InteractionKind;
use crate::db::entities::product;
use crate::db::members::ensure_member;
use crate::events::apply::{ApplyError, ApplyEvent};
use crate::events::envelope::{Envelope, EventType};
use crate::events::outbox;
use crate::identity::MemberId;
use crate::intent::{IntentAnalyzer, Sentiment, ShoppingIntent};
use crate::recommend::list_cache::invalidate_member_lists;
use crate::redis::{RedisKeys, RedisPool};
use actix::prelude::*;
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, EntityTrait, Statement, TransactionTrait, Value as DbValue,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// Messages kept in the profile.
const RECENT_MESSAGES: usize = 5;
/// Event ids remembered so a redelivered event is not merged twice.
const APPLIED_IDS: usize = 32;
/// Entries kept per frequency map.
const MAX_ENTRIES: usize = 32;
const RECENT_COLORS: usize = 8;
/// Half-life of a category weight, in days.
const CATEGORY_HALF_LIFE_DAYS: f64 = 30.0;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreferenceProfile {
    /// Category path → decayed weight (views 1, carts 3, orders 5, asked for 2).
    pub categories: BTreeMap<String, f64>,
    /// Style → how often seen.
    pub styles: BTreeMap<String, u32>,
    /// Most recent first.
    pub colors: Vec<String>,
    pub brands: BTreeMap<String, u32>,
    pub keywords: BTreeMap<String, u32>,
    /// Lowest and highest price carted or bought, or asked for.
    pub price_min_minor: Option<i64>,
    pub price_max_minor: Option<i64>,
    pub sentiment: Sentiment,
    /// 0–1, grows with the number of signals.
    pub confidence: f64,
    pub signals: u64,
    pub recent_messages: Vec<String>,
    pub last_event_at: Option<DateTime<Utc>>,
    pub applied_event_ids: Vec<Uuid>,
}

fn bump(map: &mut BTreeMap<String, u32>, key: &str) {
    *map.entry(key.to_lowercase()).or_default() += 1;
    if map.len() > MAX_ENTRIES {
        if let Some(rarest) = map.iter().min_by_key(|(_, n)| **n).map(|(k, _)| k.clone()) {
            map.remove(&rarest);
        }
    }
}

impl PreferenceProfile {
    fn decay_to(&mut self, at: DateTime<Utc>) {
        if let Some(last) = self.last_event_at {
            let days = (at - last).num_seconds().max(0) as f64 / 86_400.0;
            let factor = 0.5f64.powf(days / CATEGORY_HALF_LIFE_DAYS);
            for weight in self.categories.values_mut() {
                *weight *= factor;
            }
        }
        if self.last_event_at.is_none_or(|last| at > last) {
            self.last_event_at = Some(at);
        }
    }

    fn count_signal(&mut self) {
        self.signals += 1;
        self.confidence = 1.0 - (-(self.signals as f64) / 10.0).exp();
    }

    fn note_color(&mut self, color: &str) {
        let color = color.to_lowercase();
        self.colors.retain(|c| *c != color);
        self.colors.insert(0, color);
        self.colors.truncate(RECENT_COLORS);
    }

    fn note_price(&mut self, price: i64) {
        self.price_min_minor = Some(self.price_min_minor.map_or(price, |p| p.min(price)));
        self.price_max_minor = Some(self.price_max_minor.map_or(price, |p| p.max(price)));
    }

    /// Merges a view (1), cart add (3) or order (5) of `product`.
    pub fn merge_behaviour(
        &mut self,
        kind: EventType,
        product: &product::Model,
        at: DateTime<Utc>,
    ) {
        self.decay_to(at);
        let weight = kind
            .interaction_kind()
            .unwrap_or(InteractionKind::View)
            .weight();
        *self.categories.entry(product.category.clone()).or_default() += weight;
        let attributes = ProductAttributes::of(&product.attributes);
        for style in &attributes.styles {
            bump(&mut self.styles, style);
        }
        if kind != EventType::ProductViewed {
            if let Some(color) = attributes.colors.first() {
                self.note_color(color);
            }
            if let Some(price) = product.price_minor {
                self.note_price(price);
            }
            if let Some(brand) = &product.brand {
                bump(&mut self.brands, brand);
            }
        }
        self.count_signal();
    }

    /// Merges a message and, when analysed, its intent.
    pub fn merge_message(
        &mut self,
        text: &str,
        intent: Option<&ShoppingIntent>,
        at: DateTime<Utc>,
    ) {
        self.decay_to(at);
        self.recent_messages.push(text.chars().take(500).collect());
        let excess = self.recent_messages.len().saturating_sub(RECENT_MESSAGES);
        self.recent_messages.drain(..excess);
        if let Some(intent) = intent {
            for category in &intent.categories {
                *self.categories.entry(category.clone()).or_default() += 2.0;
            }
            for style in &intent.styles {
                bump(&mut self.styles, style);
            }
            for color in &intent.colors {
                self.note_color(color);
            }
            for brand in &intent.brands {
                bump(&mut self.brands, brand);
            }
            for keyword in &intent.keywords {
                bump(&mut self.keywords, keyword);
            }
            if let Some(range) = intent.price_range {
                for price in [range.min_minor, range.max_minor].into_iter().flatten() {
                    self.note_price(price);
                }
            }
            self.sentiment = intent.sentiment;
        }
        self.count_signal();
    }

    /// Whether `event_id` was merged already; remembers it otherwise.
    fn first_time(&mut self, event_id: Uuid) -> bool {
        if self.applied_event_ids.contains(&event_id) {
            return false;
        }
        self.applied_event_ids.push(event_id);
        let excess = self.applied_event_ids.len().saturating_sub(APPLIED_IDS);
        self.applied_event_ids.drain(..excess);
        true
    }

    /// The top categories, normalised to sum 1.
    pub fn top_categories(&self, n: usize) -> BTreeMap<String, f64> {
        let mut ranked: Vec<(&String, &f64)> = self.categories.iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(a.1));
        ranked.truncate(n);
        let total: f64 = ranked
            .iter()
            .map(|(_, w)| **w)
            .sum::<f64>()
            .max(f64::EPSILON);
        ranked
            .into_iter()
            .map(|(c, w)| (c.clone(), w / total))
            .collect()
    }
}

pub struct PreferenceActor {
    db: DatabaseConnection,
    redis: RedisPool,
    keys: RedisKeys,
    cache_ttl_secs: u64,
    /// `None` until an analyser is wired: messages are then only kept as recent messages.
    analyzer: Option<Arc<dyn IntentAnalyzer>>,
}

impl PreferenceActor {
    pub fn new(
        db: DatabaseConnection,
        redis: RedisPool,
        keys: RedisKeys,
        cache_ttl_secs: u64,
        analyzer: Option<Arc<dyn IntentAnalyzer>>,
    ) -> Self {
        Self {
            db,
            redis,
            keys,
            cache_ttl_secs,
            analyzer,
        }
    }
}

impl Actor for PreferenceActor {
    type Context = Context<Self>;
}

fn retry(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Retry(e.to_string())
}

#[derive(Debug, Deserialize)]
struct MessagePayload {
    /// Absent in older producers' payloads: a shopper's message.
    #[serde(default = "user_role")]
    role: String,
    text: String,
}

fn user_role() -> String {
    "user".into()
}

impl Handler<ApplyEvent> for PreferenceActor {
    // Atomic: one event at a time, so a member's events merge in the order they arrive.
    type Result = AtomicResponse<Self, Result<(), ApplyError>>;

    fn handle(&mut self, msg: ApplyEvent, _: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        let redis = self.redis.clone();
        let keys = self.keys.clone();
        let ttl = self.cache_ttl_secs.max(1);
        let analyzer = self.analyzer.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let event = msg.event;
                let Some(profile) = merge(&db, &event, analyzer.as_deref()).await? else {
                    return Ok(());
                };
                // The database is the truth; the cache copy and the invalidation are best
                // effort (the list cache expires by itself).
                let member = &event.member_id;
                let result: Result<(), String> = async {
                    let mut conn = redis.get().await.map_err(|e| e.to_string())?;
                    redis::pipe()
                        .cmd("SET")
                        .arg(keys.member_preference(member))
                        .arg(serde_json::to_string(&profile).unwrap_or_default())
                        .arg("EX")
                        .arg(ttl)
                        .ignore()
                        .query_async::<()>(&mut *conn)
                        .await
                        .map_err(|e| e.to_string())?;
                    invalidate_member_lists(&redis, &keys, member).await
                }
                .await;
                if let Err(error) = result {
                    tracing::warn!(%error, member, "preference cache not updated");
                }
                Ok(())
            }
            .into_actor(self),
        ))
    }
}

/// Merges one event into the member's profile under a row lock; `None` when the event
/// carries nothing for the profile or was merged before.
async fn merge(
    db: &DatabaseConnection,
    event: &Envelope,
    analyzer: Option<&dyn IntentAnalyzer>,
) -> Result<Option<PreferenceProfile>, ApplyError> {
    enum Input {
        Behaviour(product::Model),
        Message(String, Option<ShoppingIntent>),
    }
    let input = match event.event_type {
        EventType::ProductViewed | EventType::CartAdded | EventType::OrderCompleted => {
            let payload = event
                .interaction()
                .expect("an interaction type")
                .map_err(|e| ApplyError::Invalid(format!("interaction payload: {e}")))?;
            match product::Entity::find_by_id(payload.product_id)
                .one(db)
                .await
                .map_err(retry)?
            {
                Some(p) => Input::Behaviour(p),
                // Deleted since: nothing to learn from it.
                None => return Ok(None),
            }
        }
        EventType::ConversationMessageCreated => {
            let payload: MessagePayload = serde_json::from_value(event.payload.clone())
                .map_err(|e| ApplyError::Invalid(format!("message payload: {e}")))?;
            if payload.role != "user" {
                return Ok(None);
            }
            let intent = match analyzer {
                Some(a) => Some(a.analyze(&payload.text, None).await.intent),
                None => None,
            };
            Input::Message(payload.text, intent)
        }
        _ => return Ok(None),
    };

    let member = MemberId::parse(event.member_id.as_str())
        .map_err(|e| ApplyError::Invalid(format!("member id: {e}")))?;
    let backend = db.get_database_backend();
    let txn = db.begin().await.map_err(retry)?;
    ensure_member(&txn, &member).await.map_err(retry)?;
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO user_preferences (member_id) VALUES ($1) ON CONFLICT (member_id) DO NOTHING",
        [event.member_id.clone().into()],
    ))
    .await
    .map_err(retry)?;
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT profile FROM user_preferences WHERE member_id = $1 FOR UPDATE",
            [event.member_id.clone().into()],
        ))
        .await
        .map_err(retry)?
        .ok_or_else(|| retry("profile row vanished"))?;
    let stored: serde_json::Value = row.try_get("", "profile").map_err(retry)?;
    let mut profile: PreferenceProfile = serde_json::from_value(stored).unwrap_or_default();
    if !profile.first_time(event.event_id) {
        return Ok(None);
    }
    match &input {
        Input::Behaviour(p) => profile.merge_behaviour(event.event_type, p, event.occurred_at),
        Input::Message(text, intent) => {
            profile.merge_message(text, intent.as_ref(), event.occurred_at)
        }
    }
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE user_preferences SET profile = $2, version = version + 1, updated_at = now() \
         WHERE member_id = $1",
        [
            event.member_id.clone().into(),
            DbValue::from(serde_json::to_value(&profile).expect("profile serialises")),
        ],
    ))
    .await
    .map_err(retry)?;
    if event.event_type == EventType::OrderCompleted {
        let price = match (profile.price_min_minor, profile.price_max_minor) {
            (Some(min), Some(max)) => json!([min, max]),
            _ => serde_json::Value::Null,
        };
        let pattern = Envelope::new(
            EventType::PurchasePatternAnalyzed,
            &event.member_id,
            json!({"top_categories": profile.top_categories(3), "price_range_minor": price}),
        );
        outbox::enqueue(&txn, &pattern).await.map_err(retry)?;
    }
    txn.commit().await.map_err(retry)?;
    Ok(Some(profile))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jacket() -> product::Model {
        let now = Utc::now().into();
        product::Model {
            id: Uuid::nil(),
            sku: "J".into(),
            title: "Rain jacket".into(),
            description: String::new(),
            category: "outdoor/jackets".into(),
            brand: Some("Peak".into()),
            price_minor: Some(120_000),
            currency: "KRW".into(),
            stock: 3,
            attributes: json!({"colors": ["navy"], "style": ["sporty"]}),
            image_url: None,
            embedding: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn behaviour_builds_the_profile_and_old_categories_fade() {
        let mut profile = PreferenceProfile::default();
        let start = Utc::now();
        profile.merge_behaviour(EventType::OrderCompleted, &jacket(), start);
        assert_eq!(profile.categories["outdoor/jackets"], 5.0);
        assert_eq!(profile.colors, vec!["navy"]);
        assert_eq!(profile.price_max_minor, Some(120_000));
        assert_eq!(profile.brands["peak"], 1);
        let mut later = jacket();
        later.category = "beauty/skincare".into();
        profile.merge_behaviour(
            EventType::ProductViewed,
            &later,
            start + chrono::Duration::days(30),
        );
        assert!(
            (profile.categories["outdoor/jackets"] - 2.5).abs() < 1e-9,
            "one half-life"
        );
        assert!(profile.confidence > 0.0 && profile.signals == 2);
    }

    #[test]
    fn messages_are_kept_and_a_redelivered_event_is_merged_once() {
        let mut profile = PreferenceProfile::default();
        for i in 0..7 {
            profile.merge_message(&format!("m{i}"), None, Utc::now());
        }
        assert_eq!(profile.recent_messages, vec!["m2", "m3", "m4", "m5", "m6"]);
        let id = Uuid::now_v7();
        assert!(profile.first_time(id));
        assert!(!profile.first_time(id));
    }
}
