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
