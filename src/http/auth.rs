//! The shop's admin token for catalog writes (`Authorization: Bearer <token>`).

use crate::config::SecuritySettings;
use crate::http::error::error_response;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use secrecy::ExposeSecret;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    MissingToken,
    #[error("the token does not grant this")]
    Forbidden,
    #[error("catalog writes are disabled: no admin token is configured")]
    Disabled,
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            AuthError::MissingToken => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden | AuthError::Disabled => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            AuthError::MissingToken => "unauthorized",
            AuthError::Forbidden | AuthError::Disabled => "forbidden",
        };
        let mut response = error_response(self.status_code(), code, self.to_string(), vec![]);
        if matches!(self, AuthError::MissingToken) {
            response.headers_mut().insert(
                actix_web::http::header::WWW_AUTHENTICATE,
                actix_web::http::header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

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
