//! Writing an event into the outbox: call [`enqueue`] with the same transaction that writes
//! the change the event describes, so both are committed or neither is. The
//! `OutboxDispatcher` actor publishes the row later.

use crate::events::envelope::Envelope;
use sea_orm::{ConnectionTrait, DbErr, Statement};

/// Outbox row states (`outbox.status`).
pub const PENDING: &str = "pending";
pub const SENT: &str = "sent";
pub const DEAD: &str = "dead";

/// Adds `event` to the outbox inside the caller's transaction (or connection). The topic is
/// stored without the deployment's prefix; the dispatcher adds it.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, event: &Envelope) -> Result<(), DbErr> {
    let payload = serde_json::to_value(event).map_err(|e| DbErr::Custom(e.to_string()))?;
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "INSERT INTO outbox (event_id, topic, key, payload) VALUES ($1, $2, $3, $4)",
        [
            event.event_id.into(),
            event.topic().base_name().into(),
            event.key().into(),
            payload.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Dead-letter rows moved back to `pending` by [`retry_dead`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redriven {
    pub rows: u64,
}

/// Moves `dead` rows (all, or those on `topic`, its name without the deployment prefix) back to
/// `pending` with their attempts reset, so the dispatcher publishes them again: after the
/// cause (a broker outage, a bad topic setting) is fixed. Consumers are idempotent, so a row
/// that had in fact reached the broker is applied once anyway.
pub async fn retry_dead<C: ConnectionTrait>(
    conn: &C,
    topic: Option<&str>,
) -> Result<Redriven, DbErr> {
    let result = conn
        .execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "UPDATE outbox SET status = $1, attempts = 0, available_at = now(), \
             last_error = 'redriven after: ' || coalesce(last_error, 'unknown') \
             WHERE status = $2 AND ($3::text IS NULL OR topic = $3)",
            [
                PENDING.into(),
                DEAD.into(),
                topic.map(str::to_string).into(),
            ],
        ))
        .await?;
    Ok(Redriven {
        rows: result.rows_affected(),
    })
}
