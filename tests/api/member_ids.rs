//! One member-id rule everywhere (`convrec::identity::MemberId`): 1 to 128 bytes of UTF-8.
//! A Korean id of 50 syllables (150 bytes) is one no member token can carry, so the shop
//! cannot report events for it either; one of 42 syllables (126 bytes) works end to end.

use crate::helpers::{error_code, spawn_app};
use convrec::identity::{MemberId, MemberTokens};
use reqwest::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn a_member_id_no_token_can_carry_is_refused_by_every_route() {
    let app = spawn_app().await;
    let product = app
        .create_product(&crate::helpers::product_body("MID-1"))
        .await;
    let product_id = product["id"].as_str().unwrap().to_string();
    let too_long = "가".repeat(50);
    let fits = "가".repeat(42);

    // Tokens refuse it.
    let mut security = convrec::config::Settings::load(None).unwrap().security;
    security.member_token_secret = secrecy::SecretString::from("member-id-test-secret");
    let tokens = MemberTokens::new(&security);
    assert!(tokens.issue(&too_long).is_err());
    assert!(MemberId::parse(too_long.clone()).is_err());

    // So does POST /api/events (it used to count characters and accept it).
    let post = |member: &str| {
        app.client
            .post(app.url("/api/events"))
            .bearer_auth(&app.admin_token)
            .json(&json!({"type": "view", "member_id": member, "product_id": product_id}))
            .send()
    };
    let refused = post(&too_long).await.unwrap();
    assert_eq!(
        error_code(refused, StatusCode::UNPROCESSABLE_ENTITY).await,
        "validation_failed"
    );
    // And the member routes, before any lookup.
    for path in [
        format!("/api/recommendations/{too_long}"),
        format!("/api/members/{too_long}/preferences"),
        format!("/api/conversations?member_id={too_long}"),
    ] {
        let response = app
            .client
            .get(app.url(&path))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    }

    // The longest Korean id that fits is accepted by the same routes.
    assert_eq!(post(&fits).await.unwrap().status(), StatusCode::ACCEPTED);
    let response = app
        .client
        .get(app.url(&format!("/api/members/{fits}/preferences")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
