//! Authentication over HTTP: the shop's service token (catalog writes, any member's data) and
//! member tokens (`Authorization: Bearer <token>`), turned into a [`Caller`].

use crate::config::SecuritySettings;
use crate::errors::{ErrorKind, PublicError};
use crate::http::error::respond_by_kind;
use crate::http::AppState;
use crate::identity::{Caller, MemberTokens, TokenError};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use secrecy::ExposeSecret;
use std::future::{ready, Ready};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    MissingToken,
    #[error("the token does not grant this")]
    Forbidden,
    #[error("catalog writes are disabled: no admin token is configured")]
    Disabled,
    #[error("the bearer token has expired")]
    Expired,
    #[error("the bearer token is neither the shop's service token nor a valid member token")]
    InvalidToken,
}

impl PublicError for AuthError {
    fn kind(&self) -> ErrorKind {
        match self {
            AuthError::MissingToken | AuthError::Expired | AuthError::InvalidToken => {
                ErrorKind::Unauthorized
            }
            AuthError::Forbidden | AuthError::Disabled => ErrorKind::Forbidden,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AuthError::MissingToken | AuthError::InvalidToken => "unauthorized",
            AuthError::Expired => "token_expired",
            AuthError::Forbidden | AuthError::Disabled => "forbidden",
        }
    }
}

respond_by_kind!(AuthError);

/// The token of an `Authorization: Bearer …` header, if any.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Compares in time independent of where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn require_admin(req: &HttpRequest, settings: &SecuritySettings) -> Result<(), AuthError> {
    let expected = settings.admin_token.expose_secret();
    let token = bearer_token(req).ok_or(AuthError::MissingToken)?;
    if expected.is_empty() {
        return Err(AuthError::Disabled);
    }
    if constant_time_eq(token.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(AuthError::Forbidden)
    }
}

fn is_service_token(token: &str, settings: &SecuritySettings) -> bool {
    let expected = settings.admin_token.expose_secret();
    !expected.is_empty() && constant_time_eq(token.as_bytes(), expected.as_bytes())
}

/// Who sent `token`: the shop (service token) or a member (a valid member token).
pub fn caller_from_token(
    token: &str,
    settings: &SecuritySettings,
    tokens: &MemberTokens,
) -> Result<Caller, AuthError> {
    if is_service_token(token, settings) {
        return Ok(Caller::Shop);
    }
    tokens
        .verify(token)
        .map(Caller::Member)
        .map_err(AuthError::from)
}

impl From<TokenError> for AuthError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Expired => Self::Expired,
            TokenError::Disabled | TokenError::Invalid(_) => Self::InvalidToken,
        }
    }
}

/// The caller of a request, from its bearer token.
pub fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Caller, AuthError> {
    let token = bearer_token(req).ok_or(AuthError::MissingToken)?;
    caller_from_token(token, &state.settings.security, &state.tokens)
}

/// Extractor: a handler taking `Caller` answers 401 unless the request is authenticated.
impl FromRequest for Caller {
    type Error = AuthError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req
            .app_data::<web::Data<AppState>>()
            .expect("AppState is registered on every app");
        ready(authenticate(req, state))
    }
}

/// 403 unless `caller` may touch `member_id`'s data.
pub fn require_access(caller: &Caller, member_id: &str) -> Result<(), AuthError> {
    if caller.may_access(member_id) {
        Ok(())
    } else {
        Err(AuthError::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_and_unequal_tokens_compare_correctly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
