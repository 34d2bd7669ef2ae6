//! `JsonObject<T>`: a required JSON object body. `web::Json<T>` would read a JSON array as a
//! struct's fields in order (`["text"]` as `{"text": "text"}`), accepting bodies the OpenAPI
//! document calls invalid; this refuses them with 422 `invalid_body` like any mistyped body.
//!
//! `OptionalJson<T>`: a JSON object body that may be left out. actix's `Option<web::Json<T>>`
//! turns a malformed or mistyped body into `None` too, so `{"title": 5}` would silently mean "no
//! title"; this extractor answers such a body with the same 400/413/415/422 as `web::Json`. It
//! also refuses a JSON array, which serde would read as a struct's fields in order (`[]` is a
//! struct whose fields all have defaults).

use crate::http::error::error_response;
use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// `None` when the request has no body; otherwise the body, parsed like `web::Json<T>`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T> OptionalJson<T> {
    pub fn into_inner(self) -> Option<T> {
        self.0
    }
}

/// Whether the request announces a body (a non-zero length, or chunks).
fn has_body(req: &HttpRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|length| length > 0)
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !has_body(req) {
            return Box::pin(async { Ok(OptionalJson(None)) });
        }
        let body = JsonObject::<T>::from_request(req, payload);
        Box::pin(async move { Ok(OptionalJson(Some(body.await?.0))) })
    }
}

/// A required JSON object body, parsed into `T` (see the module's documentation).
#[derive(Debug)]
pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // `web::Json` reads the body: the app's size limit, content-type check and error bodies.
        let body = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let value = body.await?.into_inner();
            let parsed = if value.is_object() {
                serde_json::from_value(value).map_err(|e| e.to_string())
            } else {
                Err("expected a JSON object".to_string())
            };
            parsed.map(JsonObject).map_err(|reason| {
                let response = error_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    format!("request body does not match the schema: {reason}"),
                    vec![],
                );
                InternalError::from_response(reason, response).into()
            })
        })
    }
}
