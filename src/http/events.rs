//! `POST /api/events`: the shop reports product views, cart adds and orders. The caller is the
//! shop (service token, any member) or a member reporting their own events (member token);
//! anyone else could otherwise steer another member's recommendations. Each is validated, written with its outbox row in one transaction (orders also as
//! `interactions` rows) and answered `202 Accepted` with the event id; Kafka delivery follows
//! from the outbox.

use crate::db::members::ensure_member;
use crate::errors::FieldError;
use crate::errors::{ErrorKind, PublicError};
use crate::events::envelope::{Envelope, EventType, InteractionPayload};
use crate::events::outbox;
use crate::http::auth::require_access;
use crate::http::error::respond_by_kind;
use crate::http::error::ErrorBody;
use crate::http::AppState;
use crate::identity::{Caller, MemberId};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, Statement, TransactionTrait};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub const MAX_ORDER_ID_CHARS: usize = 128;
pub const MAX_QUANTITY: i32 = 1000;
/// How far in the future `occurred_at` may be (clock skew between shop and service).
const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/events", web::post().to(post_event));
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShopEventKind {
    View,
    Cart,
    Order,
}

impl ShopEventKind {
    fn event_type(self) -> EventType {
        match self {
            ShopEventKind::View => EventType::ProductViewed,
            ShopEventKind::Cart => EventType::CartAdded,
            ShopEventKind::Order => EventType::OrderCompleted,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShopEventBody {
    #[serde(rename = "type")]
    pub kind: ShopEventKind,
    pub member_id: String,
    pub product_id: Uuid,
    /// 1 to 1000 (default 1).
    #[serde(default)]
    pub quantity: Option<i32>,
    /// Required for orders: the shop's order number.
    #[serde(default)]
    pub order_id: Option<String>,
    /// When it happened; defaults to now.
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
}

/// A body that passed validation.
#[derive(Debug)]
struct ShopEvent {
    kind: ShopEventKind,
    member_id: MemberId,
    product_id: Uuid,
    quantity: i32,
    order_id: Option<String>,
    occurred_at: DateTime<Utc>,
}

impl ShopEventBody {
    fn validate(self, now: DateTime<Utc>) -> Result<ShopEvent, Vec<FieldError>> {
        let mut errors = Vec::new();
        // The rule every member token obeys: an id no token can carry is refused here.
        let member_id = MemberId::parse(self.member_id.trim())
            .map_err(|e| {
                errors.push(FieldError {
                    field: "member_id",
                    message: e.to_string(),
                })
            })
            .ok();
        let quantity = self.quantity.unwrap_or(1);
        if !(1..=MAX_QUANTITY).contains(&quantity) {
            errors.push(FieldError {
                field: "quantity",
                message: format!("must be between 1 and {MAX_QUANTITY}"),
            });
        }
        let order_id = self.order_id.map(|o| o.trim().to_string());
        match (&self.kind, &order_id) {
            (ShopEventKind::Order, None) => errors.push(FieldError {
                field: "order_id",
                message: "is required for orders".into(),
            }),
            (ShopEventKind::Order, Some(o))
                if o.is_empty() || o.chars().count() > MAX_ORDER_ID_CHARS =>
            {
                errors.push(FieldError {
                    field: "order_id",
                    message: format!("must be 1 to {MAX_ORDER_ID_CHARS} characters"),
                })
            }
            (ShopEventKind::Order, Some(o)) if o.chars().any(char::is_control) => {
                errors.push(FieldError {
                    field: "order_id",
                    message: "must not contain control characters".into(),
                })
            }
            (ShopEventKind::View | ShopEventKind::Cart, Some(_)) => errors.push(FieldError {
                field: "order_id",
                message: "only orders have an order id".into(),
            }),
            _ => {}
        }
        let occurred_at = self.occurred_at.unwrap_or(now);
        if occurred_at > now + MAX_CLOCK_SKEW {
            errors.push(FieldError {
                field: "occurred_at",
                message: "must not be in the future".into(),
            });
        }
        let (Some(member_id), true) = (member_id, errors.is_empty()) else {
            return Err(errors);
        };
        Ok(ShopEvent {
            kind: self.kind,
            member_id,
            product_id: self.product_id,
            quantity,
            order_id,
            occurred_at,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("the event is invalid")]
    Validation(Vec<FieldError>),
    #[error("order {0} already has this product")]
    DuplicateOrderLine(String),
    #[error("database error")]
    Database(#[from] DbErr),
}

impl PublicError for EventsError {
    fn kind(&self) -> ErrorKind {
        match self {
            EventsError::Validation(_) => ErrorKind::Invalid,
            EventsError::DuplicateOrderLine(_) => ErrorKind::Conflict,
            EventsError::Database(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            EventsError::Validation(_) => "validation_failed",
            EventsError::DuplicateOrderLine(_) => "conflict",
            EventsError::Database(_) => "internal",
        }
    }

    fn details(&self) -> Vec<FieldError> {
        match self {
            EventsError::Validation(details) => details.clone(),
            _ => Vec::new(),
        }
    }
}

respond_by_kind!(EventsError);

/// The answer to an accepted event: its id and where it is published.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventAccepted {
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The Kafka topic's base name (without the deployment's prefix).
    pub topic: &'static str,
}

/// Records a shop event (view, cart add, order) for the recommender.
#[utoipa::path(
    post,
    path = "/api/events",
    tag = "events",
    request_body = ShopEventBody,
    security(("service_token" = []), ("member_token" = [])),
    responses(
        (status = 202, description = "Stored; delivered to Kafka from the outbox", body = EventAccepted),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a member posting for another member", body = ErrorBody),
        (status = 409, description = "`conflict`: the order already has this product", body = ErrorBody),
        (status = 422, description = "`validation_failed` (with `details`; also an unknown `product_id`) or `invalid_body`", body = ErrorBody),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(kind = ?body.kind))]
async fn post_event(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<ShopEventBody>,
) -> Result<HttpResponse, actix_web::Error> {
    let event = body
        .into_inner()
        .validate(Utc::now())
        .map_err(EventsError::Validation)?;
    require_access(&caller, &event.member_id)?;
    Ok(store_event(&state, event).await?)
}

async fn store_event(state: &AppState, event: ShopEvent) -> Result<HttpResponse, EventsError> {
    let txn = state.db.begin().await?;
    let Some(category) = product_category(&txn, event.product_id).await? else {
        return Err(EventsError::Validation(vec![FieldError {
            field: "product_id",
            message: "no such product".into(),
        }]));
    };
    let payload = InteractionPayload {
        product_id: event.product_id,
        category,
        quantity: event.quantity,
        order_id: event.order_id.clone(),
    };
    let mut envelope = Envelope::new(
        event.kind.event_type(),
        event.member_id.as_str(),
        serde_json::to_value(&payload).expect("payload serialises"),
    );
    envelope.occurred_at = event.occurred_at;
    ensure_member(&txn, &event.member_id).await?;
    if event.kind == ShopEventKind::Order {
        let order_id = event.order_id.clone().unwrap_or_default();
        if !insert_order_line(&txn, &event, &order_id).await? {
            return Err(EventsError::DuplicateOrderLine(order_id));
        }
    }
    outbox::enqueue(&txn, &envelope).await?;
    txn.commit().await?;
    Ok(HttpResponse::Accepted().json(EventAccepted {
        event_id: envelope.event_id,
        event_type: envelope.event_type,
        topic: envelope.topic().base_name(),
    }))
}

async fn product_category(txn: &DatabaseTransaction, id: Uuid) -> Result<Option<String>, DbErr> {
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "SELECT category FROM products WHERE id = $1",
            [id.into()],
        ))
        .await?;
    row.map(|r| r.try_get("", "category")).transpose()
}

/// Writes the order line; `false` when the order already has this product.
async fn insert_order_line(
    txn: &DatabaseTransaction,
    event: &ShopEvent,
    order_id: &str,
) -> Result<bool, DbErr> {
    let result = txn
        .execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "INSERT INTO interactions (member_id, product_id, kind, quantity, source_ref, occurred_at) \
             VALUES ($1, $2, 'order', $3, $4, $5) \
             ON CONFLICT (source_ref, product_id, kind) WHERE source_ref IS NOT NULL DO NOTHING",
            [
                event.member_id.as_str().into(),
                event.product_id.into(),
                event.quantity.into(),
                order_id.into(),
                event.occurred_at.into(),
            ],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(kind: ShopEventKind) -> ShopEventBody {
        ShopEventBody {
            kind,
            member_id: "m-1".into(),
            product_id: Uuid::nil(),
            quantity: None,
            order_id: None,
            occurred_at: None,
        }
    }

    #[test]
    fn a_view_needs_no_order_id_and_defaults_to_one_unit() {
        let event = body(ShopEventKind::View).validate(Utc::now()).unwrap();
        assert_eq!(event.quantity, 1);
    }

    #[test]
    fn an_order_needs_an_order_id() {
        let errors = body(ShopEventKind::Order).validate(Utc::now()).unwrap_err();
        assert_eq!(errors[0].field, "order_id");
    }

    #[test]
    fn bad_fields_are_all_reported() {
        let mut b = body(ShopEventKind::Cart);
        b.member_id = " ".into();
        b.quantity = Some(0);
        b.occurred_at = Some(Utc::now() + chrono::Duration::hours(1));
        let fields: Vec<_> = b
            .validate(Utc::now())
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, vec!["member_id", "quantity", "occurred_at"]);
    }
}
