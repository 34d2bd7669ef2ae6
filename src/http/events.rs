//! `POST /api/events`: the shop reports product views, cart adds and orders. The caller is the
//! shop (service token, any member, any kind and quantity) or a member reporting their own views
//! and single cart adds (member token): orders and quantities move trending and popularity for
//! everyone, so only the shop's back end may report them. Each event is validated, written as an
//! `interactions` row with its outbox row in one transaction (so the CF model rebuilt from
//! `interactions` after a restart, on any instance, has it) and answered `202 Accepted` with the
//! event id; Kafka delivery follows from the outbox. With an idempotency key (`Idempotency-Key`
//! or the body's `event_id`) a retry is answered `200 OK` with the first event's id and counted
//! once (`events::idempotency`).

use crate::catalog::InteractionKind;
use crate::db::members::ensure_member;
use crate::errors::FieldError;
use crate::errors::{ErrorKind, PublicError};
use crate::events::envelope::{Envelope, EventType, InteractionPayload};
use crate::events::idempotency::{self, Claim, IdempotencyKey};
use crate::events::outbox;
use crate::http::auth::require_access;
use crate::http::error::respond_by_kind;
use crate::http::error::ErrorBody;
use crate::http::optional_json::JsonObject;
use crate::http::AppState;
use crate::identity::{Caller, MemberId};
use crate::recommend::list_cache::invalidate_member_lists;
use actix_web::http::header::HeaderValue;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, Statement, TransactionTrait};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;
use uuid::Uuid;

/// The request header carrying an idempotency key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
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

    fn interaction_kind(self) -> InteractionKind {
        match self {
            ShopEventKind::View => InteractionKind::View,
            ShopEventKind::Cart => InteractionKind::Cart,
            ShopEventKind::Order => InteractionKind::Order,
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
    /// An idempotency key written as a UUID: the same key as an `Idempotency-Key` header with
    /// this UUID (send either or both; both must name the same UUID). A retry with the same key
    /// is answered `200 OK` with the first event's id. It is not the event's id: the answer's
    /// `event_id` is.
    #[serde(default)]
    pub event_id: Option<Uuid>,
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
    /// Whether `occurred_at` was sent (a default "now" is not part of the request's identity).
    occurred_at_sent: bool,
}

impl ShopEvent {
    /// What makes two requests with one idempotency key the same request.
    fn fingerprint(&self) -> String {
        let product = self.product_id.to_string();
        let quantity = self.quantity.to_string();
        let occurred_at = if self.occurred_at_sent {
            self.occurred_at.to_rfc3339()
        } else {
            String::new()
        };
        idempotency::fingerprint(&[
            self.kind.interaction_kind().as_str(),
            self.member_id.as_str(),
            &product,
            &quantity,
            self.order_id.as_deref().unwrap_or(""),
            &occurred_at,
        ])
    }

    /// A member token reports only its own views and single cart adds; orders and quantities
    /// (which move trending and popularity for every shopper) come from the shop's back end.
    fn check_reporter(&self, caller: &Caller) -> Result<(), EventsError> {
        match caller {
            Caller::Shop => Ok(()),
            Caller::Member(_) if self.kind == ShopEventKind::Order => {
                Err(EventsError::NotForMembers("orders"))
            }
            Caller::Member(_) if self.quantity != 1 => {
                Err(EventsError::NotForMembers("quantities above 1"))
            }
            Caller::Member(_) => Ok(()),
        }
    }
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
        let occurred_at_sent = self.occurred_at.is_some();
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
            occurred_at_sent,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("the event is invalid")]
    Validation(Vec<FieldError>),
    #[error("order {0} already has this product")]
    DuplicateOrderLine(String),
    #[error(
        "a member token may report only the member's own views and cart adds of one unit; \
         {0} need the shop's service token"
    )]
    NotForMembers(&'static str),
    #[error("this idempotency key was already used for a different event")]
    KeyReused,
    #[error("database error")]
    Database(#[from] DbErr),
}

impl PublicError for EventsError {
    fn kind(&self) -> ErrorKind {
        match self {
            EventsError::Validation(_) => ErrorKind::Invalid,
            EventsError::DuplicateOrderLine(_) => ErrorKind::Conflict,
            EventsError::NotForMembers(_) => ErrorKind::Forbidden,
            EventsError::KeyReused => ErrorKind::Invalid,
            EventsError::Database(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            EventsError::Validation(_) => "validation_failed",
            EventsError::DuplicateOrderLine(_) => "conflict",
            EventsError::NotForMembers(_) => "forbidden",
            EventsError::KeyReused => "idempotency_key_reused",
            EventsError::Database(_) => "internal",
        }
    }

    fn details(&self) -> Vec<FieldError> {
        match self {
            EventsError::Validation(details) => details.clone(),
            EventsError::KeyReused => vec![FieldError {
                field: "idempotency_key",
                message: "send a new key for a new event".into(),
            }],
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

/// The idempotency key of a request: the `Idempotency-Key` header and/or the body's
/// `event_id`; when both are sent they must name the same key.
fn idempotency_key(
    header: Option<&HeaderValue>,
    body: Option<Uuid>,
) -> Result<Option<IdempotencyKey>, Vec<FieldError>> {
    let from_body = body.map(IdempotencyKey::from_uuid);
    let Some(header) = header else {
        return Ok(from_body);
    };
    let from_header = header
        .to_str()
        .map_err(|_| idempotency::KeyError::NotPrintable)
        .and_then(IdempotencyKey::parse)
        .map_err(|e| {
            vec![FieldError {
                field: "Idempotency-Key",
                message: e.to_string(),
            }]
        })?;
    match from_body {
        Some(key) if key != from_header => Err(vec![FieldError {
            field: "event_id",
            message: "differs from the Idempotency-Key header; send one key".into(),
        }]),
        _ => Ok(Some(from_header)),
    }
}

/// Records a shop event (view, cart add, order) for the recommender.
#[utoipa::path(
    post,
    path = "/api/events",
    tag = "events",
    request_body = ShopEventBody,
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "Optional idempotency key: 1 to 128 bytes of printable ASCII without spaces \
            (a UUID is compared as a UUID). Keys are kept per caller (the shop's token, or each \
            member's token). A retry with the same key and the same event is answered 200 with \
            the first event's id and counted once; with a different event it is 422 \
            `idempotency_key_reused`. The body's `event_id` is the same key written as a UUID."),
    ),
    security(("service_token" = []), ("member_token" = [])),
    responses(
        (status = 200, description = "A replay: this idempotency key was accepted before with the same event; the first event's id, nothing written again", body = EventAccepted),
        (status = 202, description = "Stored (an `interactions` row and its outbox row); delivered to Kafka from the outbox", body = EventAccepted),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a member posting for another member, or a member token posting an order or a quantity above 1 (the shop's service token only)", body = ErrorBody),
        (status = 409, description = "`conflict`: the order already has this product", body = ErrorBody),
        (status = 422, description = "`validation_failed` (with `details`; also an unknown `product_id`, a malformed `Idempotency-Key`, or a body `event_id` that differs from the header), `idempotency_key_reused` (the key was used for a different event) or `invalid_body`", body = ErrorBody),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(kind = ?body.kind))]
async fn post_event(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: JsonObject<ShopEventBody>,
) -> Result<HttpResponse, actix_web::Error> {
    let body = body.into_inner();
    let key = idempotency_key(req.headers().get(IDEMPOTENCY_KEY_HEADER), body.event_id);
    let (event, key) = match (body.validate(Utc::now()), key) {
        (Ok(event), Ok(key)) => (event, key),
        (event, key) => {
            let mut errors = event.err().unwrap_or_default();
            errors.extend(key.err().unwrap_or_default());
            return Err(EventsError::Validation(errors).into());
        }
    };
    require_access(&caller, &event.member_id)?;
    event.check_reporter(&caller)?;
    let key = key.map(|key| (idempotency::scope(&caller), key));
    Ok(store_event(&state, event, key).await?)
}

/// Writes the event (its `interactions` row and outbox row) in one transaction, or answers a
/// replay of `key` with the first event's id.
async fn store_event(
    state: &AppState,
    event: ShopEvent,
    key: Option<(String, IdempotencyKey)>,
) -> Result<HttpResponse, EventsError> {
    let txn = state.db.begin().await?;
    let event_id = Uuid::now_v7();
    if let Some((scope, key)) = &key {
        match idempotency::claim(&txn, scope, key, event_id, &event.fingerprint()).await? {
            Claim::New => {}
            Claim::Replay(first) => {
                txn.rollback().await?;
                let event_type = event.kind.event_type();
                return Ok(HttpResponse::Ok().json(EventAccepted {
                    event_id: first,
                    event_type,
                    topic: event_type.topic().base_name(),
                }));
            }
            Claim::Reused => return Err(EventsError::KeyReused),
        }
    }
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
    envelope.event_id = event_id;
    envelope.occurred_at = event.occurred_at;
    ensure_member(&txn, &event.member_id).await?;
    // Orders are deduplicated by order line; a view or cart add is its own event.
    let source_ref = match &event.order_id {
        Some(order_id) if event.kind == ShopEventKind::Order => order_id.clone(),
        _ => event_id.to_string(),
    };
    if !insert_interaction(&txn, &event, &source_ref).await? {
        return Err(EventsError::DuplicateOrderLine(source_ref));
    }
    outbox::enqueue(&txn, &envelope).await?;
    txn.commit().await?;
    // The member's next list, on any instance, must see this event: their cached lists go
    // now (best effort; the `recommendation` group invalidates again when it applies it).
    let invalidate = invalidate_member_lists(&state.redis, &state.keys, event.member_id.as_str());
    let timeout = Duration::from_millis(state.settings.recommender.cache_timeout_ms.max(1));
    match tokio::time::timeout(timeout, invalidate).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "cached lists left to the consumer group"),
        Err(_) => tracing::debug!("Redis too slow; cached lists left to the consumer group"),
    }
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

/// Writes the `interactions` row; `false` when a row with this `source_ref` (an order's line)
/// exists already.
async fn insert_interaction(
    txn: &DatabaseTransaction,
    event: &ShopEvent,
    source_ref: &str,
) -> Result<bool, DbErr> {
    let result = txn
        .execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "INSERT INTO interactions (member_id, product_id, kind, quantity, source_ref, occurred_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (source_ref, product_id, kind) WHERE source_ref IS NOT NULL DO NOTHING",
            [
                event.member_id.as_str().into(),
                event.product_id.into(),
                event.kind.interaction_kind().as_str().into(),
                event.quantity.into(),
                source_ref.into(),
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
            event_id: None,
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

    #[test]
    fn the_header_and_the_body_name_one_key() {
        let id = Uuid::now_v7();
        let upper = HeaderValue::from_str(&id.to_string().to_uppercase()).unwrap();
        assert_eq!(
            idempotency_key(Some(&upper), Some(id)).unwrap(),
            Some(IdempotencyKey::from_uuid(id))
        );
        assert_eq!(
            idempotency_key(None, Some(id)).unwrap(),
            Some(IdempotencyKey::from_uuid(id))
        );
        assert_eq!(idempotency_key(None, None).unwrap(), None);
        let other = HeaderValue::from_static("retry-7");
        assert_eq!(
            idempotency_key(Some(&other), None)
                .unwrap()
                .unwrap()
                .as_str(),
            "retry-7"
        );
        let errors = idempotency_key(Some(&other), Some(id)).unwrap_err();
        assert_eq!(errors[0].field, "event_id");
        let long = HeaderValue::from_str(&"k".repeat(129)).unwrap();
        assert_eq!(
            idempotency_key(Some(&long), None).unwrap_err()[0].field,
            "Idempotency-Key"
        );
    }

    #[test]
    fn members_report_only_views_and_single_cart_adds() {
        let member = Caller::Member(MemberId::parse("m-1").unwrap());
        let event = |kind, quantity: Option<i32>| {
            let mut b = body(kind);
            b.quantity = quantity;
            if kind == ShopEventKind::Order {
                b.order_id = Some("o-1".into());
            }
            b.validate(Utc::now()).unwrap()
        };
        assert!(event(ShopEventKind::View, None)
            .check_reporter(&member)
            .is_ok());
        assert!(event(ShopEventKind::Cart, Some(1))
            .check_reporter(&member)
            .is_ok());
        for refused in [
            event(ShopEventKind::Order, None),
            event(ShopEventKind::Cart, Some(2)),
            event(ShopEventKind::View, Some(2)),
        ] {
            let error = refused.check_reporter(&member).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Forbidden);
            assert_eq!(error.code(), "forbidden");
            assert!(refused.check_reporter(&Caller::Shop).is_ok());
        }
    }

    #[test]
    fn a_request_is_the_same_request_without_its_default_time() {
        let first = body(ShopEventKind::View).validate(Utc::now()).unwrap();
        let later = body(ShopEventKind::View)
            .validate(Utc::now() + chrono::Duration::seconds(5))
            .unwrap();
        assert_eq!(first.fingerprint(), later.fingerprint());
        let mut cart = body(ShopEventKind::Cart);
        cart.quantity = Some(1);
        assert_ne!(
            cart.validate(Utc::now()).unwrap().fingerprint(),
            first.fingerprint()
        );
    }
}
