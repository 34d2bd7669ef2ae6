//! Bad input the OpenAPI fuzzer (openapi_fuzz.rs) found answered with a 500 or silently
//! accepted, each pinned down as a clear 4xx JSON error.

use crate::helpers::{error_code, product_body, spawn_app, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn nul_characters_in_product_attributes_and_filters_are_refused() {
    let app = spawn_app().await;
    let mut body = product_body("NUL-1");
    body["attributes"] = json!({"tags": [{"a\u{0}b": "x"}]});
    let response = app.post_product(&body).await;
    assert_eq!(
        error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await,
        "validation_failed"
    );
    body["attributes"] = json!({"material": "wool\u{0}"});
    let response = app.post_product(&body).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A number jsonb would keep but could not hand back: the product would be unreadable.
    body["attributes"] = json!({"weight": {"g": 1.7976931348623157e308}});
    let response = app.post_product(&body).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.product_count().await, 0, "nothing was written");

    for filter in ["q", "category", "brand"] {
        let response = app.get(&format!("/api/products?{filter}=a%00b")).await;
        assert_eq!(
            error_code(response, StatusCode::BAD_REQUEST).await,
            "invalid_query",
            "{filter}"
        );
    }
}

#[actix_web::test]
async fn a_replace_of_a_product_deleted_meanwhile_is_404() {
    let app = spawn_app().await;
    let created = app.create_product(&product_body("GONE-1")).await;
    let id = created["id"].as_str().unwrap();
    let delete = app
        .client
        .delete(app.url(&format!("/api/products/{id}")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    // The store's read-then-update sees no row either way; both orders end in 404.
    let put = app
        .client
        .put(app.url(&format!("/api/products/{id}")))
        .bearer_auth(&app.admin_token)
        .json(&product_body("GONE-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(put, StatusCode::NOT_FOUND).await, "not_found");
}

#[actix_web::test]
async fn optional_bodies_must_be_objects_of_the_right_shape_when_present() {
    let app = TestApp::builder()
        .settings(|settings| settings.security.demo_tokens = true)
        .spawn()
        .await;
    let member = app.member_token("alice");

    // No body at all is fine: a new demo member, an untitled conversation.
    let demo = app
        .client
        .post(app.url("/api/demo/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(demo.status(), StatusCode::OK);
    let untitled = app
        .client
        .post(app.url("/api/conversations"))
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(untitled.status(), StatusCode::CREATED);

    for (path, body) in [
        ("/api/demo/token", "[]"),
        ("/api/demo/token", r#"{"member_id": 5}"#),
        ("/api/conversations", "[]"),
        ("/api/conversations", r#"{"title": 5}"#),
        ("/api/conversations", r#"{"title": null, "extra": 1}"#),
    ] {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(&member)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await,
            "invalid_body",
            "{path} {body}"
        );
    }
    let malformed = app
        .client
        .post(app.url("/api/conversations"))
        .bearer_auth(&member)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(malformed, StatusCode::BAD_REQUEST).await,
        "malformed_json"
    );
}

#[actix_web::test]
async fn member_ids_no_token_can_carry_are_400_not_a_database_error() {
    let app = spawn_app().await;
    for path in [
        "/api/recommendations/a%00b",
        "/api/members/a%00b/preferences",
        "/api/conversations?member_id=a%00b",
        "/api/recommendations/alice?category=a%00b",
    ] {
        let response = app.get_as(&app.admin_token, path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    let event = app
        .client
        .post(app.url("/api/events"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"type": "view", "member_id": "a\u{0}b",
                      "product_id": uuid::Uuid::new_v4()}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(event, StatusCode::UNPROCESSABLE_ENTITY).await,
        "validation_failed"
    );
}

/// Schemathesis (ST201): `["text"]` was read as `{"text": "text"}` by serde and embedded.
/// Every JSON body is an object; an array is 422 `invalid_body` on each body-taking route.
#[actix_web::test]
async fn a_json_array_is_not_read_as_an_object_body() {
    let app = spawn_app().await;
    for (path, body) in [
        ("/embed", json!(["a text"])),
        ("/batch-embed", json!([["a", "b"]])),
        ("/similarity", json!([[1.0], [1.0]])),
        ("/api/products", json!(["sku", "title"])),
        ("/api/events", json!(["view", "m", "p"])),
    ] {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(&app.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await,
            "invalid_body",
            "{path}"
        );
    }
}
