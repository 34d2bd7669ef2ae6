//! `PreferenceActor`: the owner of the `preference-analysis` consumer group. It merges each
//! member's behaviour (views, cart adds, orders) and messages into their profile in
//! `user_preferences` (row locked for the merge, so one member's updates apply in order),
//! mirrors it to `user:preference:{id}`, invalidates `rec:user:{id}`, and on an order enqueues
//! `purchase_pattern.analyzed` in the same transaction. The profile and its merge rules are
//! domain logic in `recommend::profile`; this is the shell around them.

use crate::catalog::InteractionKind;
use crate::db::entities::product;
use crate::db::members::ensure_member;
use crate::events::apply::{ApplyError, ApplyEvent};
use crate::events::envelope::{Envelope, EventType};
use crate::events::outbox;
use crate::identity::MemberId;
use crate::intent::{IntentAnalyzer, ShoppingIntent};
use crate::recommend::list_cache::invalidate_member_lists;
use crate::recommend::profile::PreferenceProfile;
use crate::redis::{RedisKeys, RedisPool};
use actix::prelude::*;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, EntityTrait, Statement, TransactionTrait, Value as DbValue,
};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

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

crate::actors::supervision::supervised!(PreferenceActor, "preference");

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
        Behaviour(InteractionKind, product::Model),
        Message(String, Option<ShoppingIntent>),
    }
    let input = match event.event_type {
        EventType::ProductViewed | EventType::CartAdded | EventType::OrderCompleted => {
            let kind = event
                .event_type
                .interaction_kind()
                .expect("an interaction type");
            let payload = event
                .interaction()
                .expect("an interaction type")
                .map_err(|e| ApplyError::Invalid(format!("interaction payload: {e}")))?;
            match product::Entity::find_by_id(payload.product_id)
                .one(db)
                .await
                .map_err(retry)?
            {
                Some(p) => Input::Behaviour(kind, p),
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
        Input::Behaviour(kind, p) => profile.merge_behaviour(*kind, p, event.occurred_at),
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
