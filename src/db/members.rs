//! The `members` table: one row per member id the service has seen (interactions,
//! conversations and preferences reference it).

use crate::identity::MemberId;
use sea_orm::{ConnectionTrait, DbErr, Statement};

/// Makes sure `member` has a row; idempotent, and safe inside a caller's transaction.
pub async fn ensure_member(conn: &impl ConnectionTrait, member: &MemberId) -> Result<(), DbErr> {
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "INSERT INTO members (id) VALUES ($1) ON CONFLICT (id) DO NOTHING",
        [member.as_str().into()],
    ))
    .await?;
    Ok(())
}
