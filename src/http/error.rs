//! The JSON error body every endpoint uses, and the extractor error handlers that turn
//! malformed requests into it (instead of actix's plain-text defaults).

use actix_web::error::{InternalError, JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use crate::errors::{ErrorKind, FieldError, PublicError};

/// `{"error": {"code": "...", "message": "...", "details": [...]}}`; `code` is stable and
/// meant for programs, `message` for people.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

pub fn error_response(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
    details: Vec<FieldError>,
) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody {
        error: ErrorDetail {
            code,
            message: message.into(),
            details,
        },
    })
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The one place an error becomes an HTTP answer: status by kind, the JSON body,
/// `Retry-After`, `WWW-Authenticate` for 401, and a log line (the cause of an internal error
/// is logged, never sent).
pub fn respond(error: &(impl PublicError + ?Sized)) -> HttpResponse {
    let kind = error.kind();
    let code = error.code();
    match kind {
        ErrorKind::Internal => tracing::error!(code, error = %error, "request failed"),
        ErrorKind::Unavailable | ErrorKind::Overloaded => {
            tracing::warn!(code, error = %error, "request refused")
        }
        _ => tracing::debug!(code, error = %error, "request rejected"),
    }
    let mut response = error_response(kind.status(), code, error.public_message(), error.details());
    let headers = response.headers_mut();
    if let Some(secs) = error.retry_after_secs() {
        headers.insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(secs),
        );
    }
    if kind == ErrorKind::Unauthorized {
        headers.insert(
            actix_web::http::header::WWW_AUTHENTICATE,
            actix_web::http::header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// `ResponseError` for error types that say their kind ([`PublicError`]): the handlers'
/// errors answer through [`respond`] and nothing else.
macro_rules! respond_by_kind {
    ($($error:ty),* $(,)?) => {
        $(
            impl actix_web::ResponseError for $error {
                fn status_code(&self) -> actix_web::http::StatusCode {
                    $crate::errors::PublicError::kind(self).status()
                }

                fn error_response(&self) -> actix_web::HttpResponse {
                    $crate::http::error::respond(self)
                }
            }
        )*
    };
}
pub(crate) use respond_by_kind;

pub fn json_error_handler(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let response = match &err {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
            vec![],
        ),
        JsonPayloadError::ContentType => error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "request body must be JSON (Content-Type: application/json)",
            vec![],
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("request body does not match the schema: {e}"),
            vec![],
        ),
        JsonPayloadError::Deserialize(e) => error_response(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("request body is not valid JSON: {e}"),
            vec![],
        ),
        other => error_response(
            StatusCode::BAD_REQUEST,
            "bad_request",
            other.to_string(),
            vec![],
        ),
    };
    InternalError::from_response(err, response).into()
}

pub fn query_error_handler(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let response = error_response(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        format!("invalid query string: {err}"),
        vec![],
    );
    InternalError::from_response(err, response).into()
}

pub fn path_error_handler(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    let response = error_response(
        StatusCode::BAD_REQUEST,
        "invalid_path",
        format!("invalid path parameter: {err}"),
        vec![],
    );
    InternalError::from_response(err, response).into()
}

/// Unmatched routes answer JSON too.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", req.method(), req.path()),
        vec![],
    )
}
