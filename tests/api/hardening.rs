//! Rate limits (per member, per IP, the shop exempt) and CORS.

use crate::helpers::{error_code, spawn_app_with, test_settings};
use convrec::identity::MemberTokens;
use reqwest::StatusCode;
use secrecy::SecretString;

#[actix_web::test]
async fn members_over_their_limit_get_429_with_retry_after_and_others_are_unaffected() {
    let mut settings = test_settings();
    settings.security.member_token_secret = SecretString::from("limit-secret");
    settings.rate_limit.per_member_burst = 3;
    settings.rate_limit.per_member_per_minute = 6;
    let tokens = MemberTokens::new(&settings.security);
    let app = spawn_app_with(settings).await;
    let search = |token: String| {
        app.client
            .get(app.url("/api/search/messages?q=padding"))
            .bearer_auth(token)
            .send()
    };
    let alice = tokens.issue("alice").unwrap();
    for _ in 0..3 {
        assert_ne!(
            search(alice.clone()).await.unwrap().status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    let limited = search(alice.clone()).await.unwrap();
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    assert_eq!(
        error_code(limited, StatusCode::TOO_MANY_REQUESTS).await,
        "rate_limited"
    );
    // Bob has his own allowance; the shop's service token is exempt.
    let bob = tokens.issue("bob").unwrap();
    assert_ne!(
        search(bob).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    for _ in 0..10 {
        let shop = search(app.admin_token.clone()).await.unwrap();
        assert_ne!(shop.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    // Unlimited routes stay open.
    for _ in 0..10 {
        assert_eq!(app.get("/api/products").await.status(), StatusCode::OK);
    }
}

#[actix_web::test]
async fn one_ip_over_its_limit_gets_429_even_without_a_token() {
    let mut settings = test_settings();
    settings.rate_limit.per_ip_burst = 5;
    settings.rate_limit.per_ip_per_minute = 5;
    let app = spawn_app_with(settings).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(app.get("/api/search/products?q=").await.status());
    }
    assert!(
        statuses[..5].iter().all(|s| *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
    assert!(
        statuses[5..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

#[actix_web::test]
async fn cors_allows_only_the_configured_origins() {
    let mut settings = test_settings();
    settings.server.cors_allowed_origins = "https://shop.example, https://m.shop.example".into();
    let app = spawn_app_with(settings).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/products"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
    };
    let allowed = preflight("https://m.shop.example").await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://m.shop.example"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let simple = app
        .client
        .get(app.url("/api/products"))
        .header("Origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
}
