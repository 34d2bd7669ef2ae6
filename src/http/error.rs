//! The JSON error body every endpoint uses, and the extractor error handlers that turn
//! malformed requests into it (instead of actix's plain-text defaults).

use actix_web::error::{InternalError, JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use crate::catalog::FieldError;

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
