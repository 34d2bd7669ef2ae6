//! Who is calling: a shopper with a member token the shop signed (HS256 JWT, `sub` = member
//! id, `exp`), or the shop itself with its service token. Every member-scoped resource asks
//! [`Caller::may_access`] before it reads or writes.

use crate::config::SecuritySettings;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

/// Longest member id a token may carry (the `members.id` column is text; this keeps keys sane).
pub const MAX_MEMBER_ID_LEN: usize = 128;

#[derive(Debug, Serialize, Deserialize)]
pub struct MemberClaims {
    /// The shop's member id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    #[serde(default)]
    pub iat: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A shopper: may touch only their own data.
    Member(String),
    /// The shop's backend (service token): may read any member's data.
    Shop,
}

impl Caller {
    /// Whether this caller may read or write `member_id`'s data.
    pub fn may_access(&self, member_id: &str) -> bool {
        match self {
            Caller::Shop => true,
            Caller::Member(own) => own == member_id,
        }
    }

    /// The member id of a shopper; `None` for the shop.
    pub fn member_id(&self) -> Option<&str> {
        match self {
            Caller::Member(id) => Some(id),
            Caller::Shop => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("member tokens are disabled: no security.member_token_secret is configured")]
    Disabled,
    #[error("the member token has expired")]
    Expired,
    #[error("the member token is invalid: {0}")]
    Invalid(String),
}

/// Signs and verifies member tokens with `security.member_token_secret`.
#[derive(Clone)]
pub struct MemberTokens {
    secret: Option<Vec<u8>>,
    ttl_secs: u64,
}

impl MemberTokens {
    /// With `demo_tokens` on and no secret configured, a random per-process secret, so the demo
    /// page works out of the box (its tokens die with the process).
    pub fn new(settings: &SecuritySettings) -> Self {
        let configured = settings.member_token_secret.expose_secret();
        let secret = if !configured.is_empty() {
            Some(configured.as_bytes().to_vec())
        } else if settings.demo_tokens {
            tracing::warn!("demo tokens on without member_token_secret: using a random secret");
            Some(format!("{}{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4()).into_bytes())
        } else {
            None
        };
        Self {
            secret,
            ttl_secs: settings.member_token_ttl_secs.max(1),
        }
    }

    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }

    /// A token for `member_id` valid for the configured lifetime (what a shop would sign).
    pub fn issue(&self, member_id: &str) -> Result<String, TokenError> {
        self.issue_with_ttl(member_id, self.ttl_secs)
    }

    pub fn issue_with_ttl(&self, member_id: &str, ttl_secs: u64) -> Result<String, TokenError> {
        let secret = self.secret.as_ref().ok_or(TokenError::Disabled)?;
        validate_member_id(member_id)?;
        let now = now_secs();
        let claims = MemberClaims {
            sub: member_id.to_string(),
            exp: now + ttl_secs,
            iat: now,
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// The member id of a valid, unexpired token signed with our secret (HS256 only: a token
    /// naming another algorithm, `none` included, is refused).
    pub fn verify(&self, token: &str) -> Result<String, TokenError> {
        let secret = self.secret.as_ref().ok_or(TokenError::Disabled)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<MemberClaims>(
            token,
            &DecodingKey::from_secret(secret),
            &validation,
        )
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid(e.to_string()),
        })?;
        validate_member_id(&data.claims.sub)?;
        Ok(data.claims.sub)
    }
}

/// Why `member_id` cannot be a member's id (no token can carry it), for a 400; `None` if it can.
pub fn member_id_problem(member_id: &str) -> Option<String> {
    match validate_member_id(member_id) {
        Err(TokenError::Invalid(reason)) => Some(reason),
        _ => None,
    }
}

fn validate_member_id(member_id: &str) -> Result<(), TokenError> {
    if member_id.trim().is_empty() || member_id.len() > MAX_MEMBER_ID_LEN {
        return Err(TokenError::Invalid(format!(
            "the member id must be 1 to {MAX_MEMBER_ID_LEN} bytes"
        )));
    }
    if member_id.chars().any(char::is_control) {
        return Err(TokenError::Invalid(
            "the member id contains control characters".into(),
        ));
    }
    Ok(())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn tokens(secret: &str) -> MemberTokens {
        MemberTokens::new(&SecuritySettings {
            admin_token: SecretString::from(""),
            member_token_secret: SecretString::from(secret),
            member_token_ttl_secs: 60,
            demo_tokens: false,
        })
    }

    #[test]
    fn a_token_round_trips_to_its_member() {
        let t = tokens("s3cret");
        let token = t.issue("member-7").unwrap();
        assert_eq!(t.verify(&token).unwrap(), "member-7");
    }

    #[test]
    fn a_token_signed_with_another_secret_is_invalid() {
        let token = tokens("other").issue("member-7").unwrap();
        assert!(matches!(
            tokens("s3cret").verify(&token),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let t = tokens("s3cret");
        let secret = EncodingKey::from_secret(b"s3cret");
        let claims = MemberClaims {
            sub: "m".into(),
            exp: now_secs() - 10,
            iat: now_secs() - 100,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &secret).unwrap();
        assert_eq!(t.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        // {"alg":"none"} with a valid-looking body and no signature.
        let token = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJtIiwiZXhwIjo0MTAyNDQ0ODAwfQ.";
        assert!(matches!(
            tokens("s3cret").verify(token),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn without_a_secret_tokens_are_disabled() {
        assert_eq!(tokens("").verify("x.y.z"), Err(TokenError::Disabled));
        assert_eq!(tokens("").issue("m"), Err(TokenError::Disabled));
    }

    #[test]
    fn members_reach_only_their_own_data_and_the_shop_reaches_all() {
        let alice = Caller::Member("alice".into());
        assert!(alice.may_access("alice"));
        assert!(!alice.may_access("bob"));
        assert!(Caller::Shop.may_access("bob"));
    }
}
