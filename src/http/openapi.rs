//! The API contract, generated from the handlers' `#[utoipa::path]` annotations and the
//! request/response types' `ToSchema` derives: `GET /openapi.json` (OpenAPI 3.1), a Swagger UI
//! at `/docs/` (assets compiled in from crates.io, no CDN) and `GET /ws-protocol.schema.json`
//! (JSON Schema of the chat socket's frames, generated from `chat::protocol`).

use crate::chat::protocol::{ClientFrame, ServerFrame};
use crate::http::error::ErrorBody;
use crate::http::{
    conversations, demo, embeddings, events, health, metrics, products, rate_limit,
    recommendations, search, trending, ws,
};
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    Content, Header, ObjectBuilder, OpenApi as OpenApiDoc, Ref, RefOr, Response, ResponseBuilder,
    Schema, Type,
};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// Where the document is served; Swagger UI loads it from here.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// Swagger UI renders with inline styles and `data:` images, so /docs gets a policy of its own,
/// looser than the chat page's only in `style-src 'unsafe-inline'`; scripts stay same-origin.
pub const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "convrec",
        description = "Conversational hybrid product recommendation service. Every error is \
            `{\"error\": {\"code\", \"message\", \"details\"?}}` (`ErrorBody`); `code` is stable. \
            Two bearer tokens exist: a member token (JWT, `member_token`) and the shop's service \
            token (`service_token`); both travel as `Authorization: Bearer <token>`. The chat \
            socket's frames are in docs/chat-protocol.md and `/ws-protocol.schema.json`."
    ),
    paths(
        health::liveness,
        health::readiness,
        metrics::render,
        products::list_products,
        products::create_product,
        products::get_product,
        products::replace_product,
        products::patch_product,
        products::delete_product,
        embeddings::embed,
        embeddings::batch_embed,
        embeddings::similarity,
        embeddings::stats,
        events::post_event,
        trending::trending,
        trending::popular,
        demo::issue_demo_token,
        search::messages,
        search::products,
        recommendations::recommendations,
        recommendations::similar,
        recommendations::preferences,
        conversations::create_conversation,
        conversations::list_conversations,
        conversations::list_messages,
        conversations::post_message,
        ws::open_socket,
        ws_protocol_schema,
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes, &SharedResponses),
    tags(
        (name = "products", description = "The catalog; writes need the service token"),
        (name = "embeddings", description = "The text encoder (the seed's ML service API)"),
        (name = "events", description = "Shop events feeding the recommender"),
        (name = "analytics", description = "Trending and popular products"),
        (name = "search", description = "Product and chat-message search"),
        (name = "recommendations", description = "Personalised and similar products"),
        (name = "conversations", description = "The chat over REST"),
        (name = "chat", description = "The chat WebSocket"),
        (name = "auth", description = "Member tokens for development"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "member_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A member token (HS256 JWT) the shop issues for its logged-in member; \
                         grants that member's own data only.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "service_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The shop's service token (`security.admin_token`, an opaque string): \
                         catalog writes and any member's data.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "member_token_query",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "A member token in the query string: only on /ws, where browsers cannot set \
                 headers.",
            ))),
        );
    }
}

/// Responses that come from the extractors and middleware rather than from a handler, added
/// to every operation they apply to so each handler's annotation lists only its own.
struct SharedResponses;

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
}

fn add_missing(responses: &mut utoipa::openapi::Responses, status: &str, response: Response) {
    responses
        .responses
        .entry(status.to_string())
        .or_insert(RefOr::T(response));
}

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        use utoipa::openapi::path::ParameterIn;
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let parameters = operation.parameters.as_deref().unwrap_or_default();
                let has_query = parameters
                    .iter()
                    .any(|p| p.parameter_in == ParameterIn::Query);
                let has_path = parameters
                    .iter()
                    .any(|p| p.parameter_in == ParameterIn::Path);
                let has_body = operation.request_body.is_some();
                let responses = &mut operation.responses;
                if has_body || has_query || has_path {
                    add_missing(
                        responses,
                        "400",
                        error_response(
                            "`malformed_json`, `invalid_query` or `invalid_path`: the request \
                             could not be read",
                        ),
                    );
                }
                if has_body {
                    add_missing(
                        responses,
                        "413",
                        error_response("`payload_too_large`: over `server.max_body_bytes`"),
                    );
                    add_missing(
                        responses,
                        "415",
                        error_response(
                            "`unsupported_media_type`: the body is not `application/json`",
                        ),
                    );
                    add_missing(
                        responses,
                        "422",
                        error_response("`invalid_body`: the JSON does not match the schema"),
                    );
                }
                if rate_limit::is_limited(path) {
                    let mut limited = error_response(
                        "`rate_limited` (per member and per client IP; the service token is \
                         exempt), or the service is overloaded; see `Retry-After`",
                    );
                    limited.headers.insert(
                        "Retry-After".to_string(),
                        Header::new(ObjectBuilder::new().schema_type(Type::Integer)),
                    );
                    add_missing(responses, "429", limited);
                }
                add_missing(
                    responses,
                    "500",
                    error_response("`internal`: an unexpected failure (logged)"),
                );
            }
        }
    }
}

/// The document, built once.
pub fn document() -> &'static OpenApiDoc {
    static DOCUMENT: OnceLock<OpenApiDoc> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::openapi)
}

/// A JSON Schema (2020-12) of the chat socket's frames, from the Rust frame types:
/// `$defs/ClientFrame` (what a client sends) and `$defs/ServerFrame` (what the server sends).
pub fn chat_protocol_schema() -> Value {
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    ClientFrame::schemas(&mut schemas);
    ServerFrame::schemas(&mut schemas);
    schemas.push((ClientFrame::name().into_owned(), ClientFrame::schema()));
    schemas.push((ServerFrame::name().into_owned(), ServerFrame::schema()));
    let defs: serde_json::Map<String, Value> = schemas
        .into_iter()
        .map(|(name, schema)| {
            (
                name,
                serde_json::to_value(schema).expect("schemas serialise"),
            )
        })
        .collect();
    let mut schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "convrec chat WebSocket frames",
        "description": "Text frames of GET /ws (docs/chat-protocol.md), generated from \
            src/chat/protocol.rs. A frame is a ClientFrame (client to server) or a ServerFrame \
            (server to client).",
        "oneOf": [
            {"$ref": "#/$defs/ClientFrame"},
            {"$ref": "#/$defs/ServerFrame"}
        ],
        "$defs": defs,
    });
    rewrite_refs(&mut schema);
    schema
}

/// OpenAPI's `#/components/schemas/X` references become JSON Schema's `#/$defs/X`.
fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get_mut("$ref") {
                if let Some(name) = target.strip_prefix("#/components/schemas/") {
                    *target = format!("#/$defs/{name}");
                }
            }
            map.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Literal paths: tests/api/openapi.rs reads the routes out of this source.
    cfg.route("/openapi.json", web::get().to(openapi_json))
        .route(
            "/ws-protocol.schema.json",
            web::get().to(ws_protocol_schema),
        )
        .route("/docs", web::get().to(docs_redirect))
        .route("/docs/{file:.*}", web::get().to(docs_file));
}

async fn openapi_json() -> HttpResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let body = JSON.get_or_init(|| document().to_json().expect("the document serialises"));
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.as_str())
}

/// The JSON Schema of the chat socket's frames.
#[utoipa::path(
    get,
    path = "/ws-protocol.schema.json",
    tag = "chat",
    responses((status = 200, description = "A JSON Schema (2020-12) document",
               content_type = "application/schema+json", body = Object))
)]
async fn ws_protocol_schema() -> HttpResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let body = JSON.get_or_init(|| {
        serde_json::to_string_pretty(&chat_protocol_schema()).expect("the schema serialises")
    });
    HttpResponse::Ok()
        .content_type("application/schema+json")
        .body(body.as_str())
}

/// Swagger UI's page loads its assets relatively, so it must be at `/docs/`.
async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

async fn docs_file(file: web::Path<String>) -> HttpResponse {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    let config = CONFIG
        .get_or_init(|| Arc::new(utoipa_swagger_ui::Config::from(OPENAPI_PATH)))
        .clone();
    match utoipa_swagger_ui::serve(&file, config) {
        Ok(Some(asset)) => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                DOCS_CONTENT_SECURITY_POLICY,
            ))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .body(asset.bytes.into_owned()),
        Ok(None) => crate::http::error::error_response(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            format!("no documentation file {file}"),
            vec![],
        ),
        Err(error) => {
            tracing::error!(%error, "serving Swagger UI failed");
            crate::http::error::error_response(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
                vec![],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/chat-protocol.schema.json is this schema, written out; regenerate it with
    /// `CONVREC_WRITE_SCHEMA=1 cargo test --lib chat_protocol_schema`.
    #[test]
    fn the_committed_chat_protocol_schema_is_the_generated_one() {
        let generated = serde_json::to_string_pretty(&chat_protocol_schema()).unwrap() + "\n";
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/chat-protocol.schema.json"
        );
        if std::env::var_os("CONVREC_WRITE_SCHEMA").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "{path} is stale: regenerate it with \
             `CONVREC_WRITE_SCHEMA=1 cargo test --lib chat_protocol_schema`"
        );
    }

    #[test]
    fn every_error_response_uses_the_error_body() {
        let json = serde_json::to_value(document()).unwrap();
        for (path, item) in json["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema = &response["content"]["application/json"]["schema"];
                        let refers = schema["$ref"].as_str().unwrap_or_default();
                        assert!(
                            refers.ends_with("/ErrorBody") || path == "/readyz",
                            "{method} {path} {status}: {response}"
                        );
                    }
                }
            }
        }
    }
}
