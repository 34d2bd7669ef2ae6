//! `POST /api/demo/token`: development only (`security.demo_tokens`), hands a member token to
//! anyone so the chat page works without a shop in front. Off by default: then a 404, as if
//! the route did not exist.

use crate::http::error::{error_response, ErrorBody};
use crate::http::optional_json::OptionalJson;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/demo/token", web::post().to(issue_demo_token));
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemoTokenRequest {
    /// Keep the same member across visits; a new one when absent.
    #[serde(default)]
    pub member_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DemoTokenResponse {
    pub member_id: String,
    /// A member token: send it as `Authorization: Bearer <token>` (or `?token=` on /ws).
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// Issues a member token to anyone (development only: `security.demo_tokens`).
#[utoipa::path(
    post,
    path = "/api/demo/token",
    tag = "auth",
    request_body(content = Option<DemoTokenRequest>, description = "Optional: `member_id` to keep"),
    responses(
        (status = 200, description = "A member token", body = DemoTokenResponse),
        (status = 404, description = "`not_found`: demo tokens are disabled (the default)", body = ErrorBody),
        (status = 422, description = "`invalid_member`: the member id is not acceptable", body = ErrorBody),
    )
)]
async fn issue_demo_token(
    state: web::Data<AppState>,
    body: OptionalJson<DemoTokenRequest>,
) -> HttpResponse {
    let security = &state.settings.security;
    if !security.demo_tokens {
        return error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route (demo tokens are disabled)",
            vec![],
        );
    }
    let member_id = body
        .into_inner()
        .and_then(|b| b.member_id)
        .unwrap_or_else(|| format!("demo-{}", uuid::Uuid::new_v4().simple()));
    match state.tokens.issue(&member_id) {
        Ok(token) => HttpResponse::Ok().json(DemoTokenResponse {
            member_id,
            token,
            expires_in: security.member_token_ttl_secs,
        }),
        Err(e) => error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_member",
            e.to_string(),
            vec![],
        ),
    }
}
