//! Idempotency keys for the interactions callers report (`POST /api/events`, docs/events.md):
//! a caller that retries with the same key gets the first event's id back, and the event is
//! counted once (one `interactions` row, one outbox row, one Kafka record).
//!
//! A key belongs to whoever sent it ([`scope`]): the shop's keys and each member's keys are
//! separate sets, so a member can neither replay nor detect another caller's key. Keys are
//! stored in `event_idempotency_keys`, claimed inside the transaction that writes the event, so
//! a key is kept exactly when its event is.

use crate::identity::Caller;
use sea_orm::{ConnectionTrait, DbErr, Statement};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 128;

/// An idempotency key: 1 to [`MAX_KEY_BYTES`] bytes of printable ASCII without spaces (`!` to
/// `~`). A UUID, however spelled, is kept in its lowercase hyphenated form, so the header
/// `Idempotency-Key: 0193…` and the body's `"event_id": "0193…"` are the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("must be 1 to {MAX_KEY_BYTES} bytes, not {0}")]
    Length(usize),
    #[error("must be printable ASCII without spaces (`!` to `~`)")]
    NotPrintable,
}

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        if raw.is_empty() || raw.len() > MAX_KEY_BYTES {
            return Err(KeyError::Length(raw.len()));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::NotPrintable);
        }
        Ok(match Uuid::parse_str(raw) {
            Ok(id) => Self::from_uuid(id),
            Err(_) => Self(raw.to_string()),
        })
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id.hyphenated().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose keys a key is compared with: `shop` for the service token, `member:<id>` for a
/// member token.
pub fn scope(caller: &Caller) -> String {
    match caller {
        Caller::Shop => "shop".into(),
        Caller::Member(id) => format!("member:{id}"),
    }
}

/// SHA-256 (hex) of the parts of a request, each length-prefixed so that no two lists of parts
/// hash alike by shifting a separator.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: it now names `event_id` (once the caller's transaction commits).
    New,
    /// The same request was accepted before, as this event.
    Replay(Uuid),
    /// The key was used before for a different request.
    Reused,
}

/// Claims `key` in `scope` for the event `event_id` with `request_hash` ([`fingerprint`]),
/// inside the caller's transaction. A concurrent claim of the same key waits for the other
/// transaction and then sees its row (or, if it rolled back, takes the key).
pub async fn claim<C: ConnectionTrait>(
    conn: &C,
    scope: &str,
    key: &IdempotencyKey,
    event_id: Uuid,
    request_hash: &str,
) -> Result<Claim, DbErr> {
    let inserted = conn
        .execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "INSERT INTO event_idempotency_keys (scope, key, event_id, request_hash) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (scope, key) DO NOTHING",
            [
                scope.into(),
                key.as_str().into(),
                event_id.into(),
                request_hash.into(),
            ],
        ))
        .await?
        .rows_affected();
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "SELECT event_id, request_hash FROM event_idempotency_keys \
             WHERE scope = $1 AND key = $2",
            [scope.into(), key.as_str().into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("an idempotency key vanished while claimed".into()))?;
    let first_event: Uuid = row.try_get("", "event_id")?;
    let first_hash: String = row.try_get("", "request_hash")?;
    Ok(if first_hash == request_hash {
        Claim::Replay(first_event)
    } else {
        Claim::Reused
    })
}

/// Deletes keys older than `hours` (the outbox retention): a retry later than that is a new
/// event. Answers how many went.
pub async fn prune<C: ConnectionTrait>(conn: &C, hours: i64) -> Result<u64, DbErr> {
    let result = conn
        .execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "DELETE FROM event_idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
            [(hours.clamp(1, i64::from(i32::MAX)) as i32).into()],
        ))
        .await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::MemberId;

    #[test]
    fn keys_are_bounded_printable_and_uuids_are_canonical() {
        assert_eq!(
            IdempotencyKey::parse("order-42/retry").unwrap().as_str(),
            "order-42/retry"
        );
        assert!(IdempotencyKey::parse(&"k".repeat(128)).is_ok());
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(129)),
            Err(KeyError::Length(129))
        );
        assert_eq!(IdempotencyKey::parse(""), Err(KeyError::Length(0)));
        for bad in ["a b", "a\tb", "키", "a\0"] {
            assert_eq!(
                IdempotencyKey::parse(bad),
                Err(KeyError::NotPrintable),
                "{bad:?}"
            );
        }
        let id = Uuid::now_v7();
        let upper = id.hyphenated().to_string().to_uppercase();
        assert_eq!(
            IdempotencyKey::parse(&upper).unwrap(),
            IdempotencyKey::from_uuid(id)
        );
        assert_eq!(
            IdempotencyKey::parse(&id.simple().to_string()).unwrap(),
            IdempotencyKey::from_uuid(id)
        );
    }

    #[test]
    fn the_shop_and_each_member_have_their_own_keys() {
        let alice = Caller::Member(MemberId::parse("alice").unwrap());
        let shop_named_member = Caller::Member(MemberId::parse("shop").unwrap());
        assert_eq!(scope(&Caller::Shop), "shop");
        assert_eq!(scope(&alice), "member:alice");
        assert_ne!(scope(&shop_named_member), scope(&Caller::Shop));
    }

    #[test]
    fn fingerprints_do_not_collide_by_moving_a_boundary() {
        assert_eq!(fingerprint(&["a", "b"]), fingerprint(&["a", "b"]));
        assert_ne!(fingerprint(&["ab", ""]), fingerprint(&["a", "b"]));
        assert_eq!(fingerprint(&[]).len(), 64);
    }
}
