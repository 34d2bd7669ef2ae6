//! Who is calling: a shopper with a member token the shop signed (HS256 JWT, `sub` = member
//! id, `exp`), or the shop itself with its service token. Every member-scoped resource asks
//! [`Caller::may_access`] before it reads or writes.

use crate::config::SecuritySettings;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

/// A shop's member id, checked once wherever it enters (a token's `sub`, a path, a body):
/// 1 to [`MemberId::MAX_BYTES`] bytes of UTF-8 — bytes, not characters, so a Korean id holds at
/// most 42 syllables of 3 bytes — not blank, without control characters (PostgreSQL text
/// cannot hold NUL, and Redis keys and logs stay readable). No token can carry any other id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MemberId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberIdError {
    #[error("the member id must be 1 to {max} bytes of UTF-8 (a Korean syllable takes 3), not {bytes}", max = MemberId::MAX_BYTES)]
    Length { bytes: usize },
    #[error("the member id is blank")]
    Blank,
    #[error("the member id contains control characters")]
    ControlCharacters,
}

impl MemberId {
    pub const MAX_BYTES: usize = 128;

    pub fn parse(raw: impl Into<String>) -> Result<Self, MemberIdError> {
        let raw = raw.into();
        if raw.is_empty() || raw.len() > Self::MAX_BYTES {
            return Err(MemberIdError::Length { bytes: raw.len() });
        }
        if raw.trim().is_empty() {
            return Err(MemberIdError::Blank);
        }
        if raw.chars().any(char::is_control) {
            return Err(MemberIdError::ControlCharacters);
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::ops::Deref for MemberId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for MemberId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Display for MemberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

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
    Member(MemberId),
    /// The shop's backend (service token): may read any member's data.
    Shop,
}

impl Caller {
    /// Whether this caller may read or write `member_id`'s data.
    pub fn may_access(&self, member_id: &str) -> bool {
        match self {
            Caller::Shop => true,
            Caller::Member(own) => own.as_str() == member_id,
        }
    }

    /// The member id of a shopper; `None` for the shop.
    pub fn member_id(&self) -> Option<&str> {
        match self {
            Caller::Member(id) => Some(id.as_str()),
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
        let member_id = MemberId::parse(member_id).map_err(invalid)?;
        let now = now_secs();
        let claims = MemberClaims {
            sub: member_id.into_string(),
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
    pub fn verify(&self, token: &str) -> Result<MemberId, TokenError> {
        self.verify_until(token).map(|(member, _)| member)
    }

    /// [`Self::verify`], and when the token expires (unix seconds): a long-lived connection
    /// opened with it (the chat socket) must end then.
    pub fn verify_until(&self, token: &str) -> Result<(MemberId, u64), TokenError> {
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
        let expires = data.claims.exp;
        Ok((MemberId::parse(data.claims.sub).map_err(invalid)?, expires))
    }

    /// How long a token whose `exp` claim is `exp` stays valid: [`Self::verify`] accepts it
    /// through the whole second `exp` (no leeway), so until `exp + 1` exactly.
    pub fn time_left(exp: u64) -> std::time::Duration {
        let end = std::time::UNIX_EPOCH + std::time::Duration::from_secs(exp.saturating_add(1));
        end.duration_since(std::time::SystemTime::now())
            .unwrap_or_default()
    }
}

fn invalid(error: MemberIdError) -> TokenError {
    TokenError::Invalid(error.to_string())
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
    fn member_ids_are_bounded_in_bytes_so_every_valid_one_fits_a_token() {
        let korean_42 = "가".repeat(42);
        assert_eq!(
            MemberId::parse(korean_42.clone()).unwrap(),
            korean_42.as_str()
        );
        assert_eq!(
            MemberId::parse("가".repeat(50)),
            Err(MemberIdError::Length { bytes: 150 })
        );
        assert!(MemberId::parse("a".repeat(128)).is_ok());
        assert!(MemberId::parse("a".repeat(129)).is_err());
        assert_eq!(MemberId::parse(""), Err(MemberIdError::Length { bytes: 0 }));
        assert_eq!(MemberId::parse("  "), Err(MemberIdError::Blank));
        assert_eq!(
            MemberId::parse("m\0"),
            Err(MemberIdError::ControlCharacters)
        );
        // What parses, a token carries.
        let t = tokens("s3cret");
        let token = t.issue(&korean_42).unwrap();
        assert_eq!(t.verify(&token).unwrap(), korean_42.as_str());
        assert!(t.issue(&"가".repeat(50)).is_err());
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
        let alice = Caller::Member(MemberId::parse("alice").unwrap());
        assert!(alice.may_access("alice"));
        assert!(!alice.may_access("bob"));
        assert!(Caller::Shop.may_access("bob"));
    }
}
