//! The chat answers in the shopper's language, and when nothing fits it says which constraint
//! emptied the list and still shows the nearest products, marked as outside the request
//! (issue 21). Runs the real pipeline (local analyser, template reply) on the seeded catalog.

use crate::helpers::{spawn_app, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

impl TestApp {
    /// Sends one message over the REST chat API and returns the reply (`message`, `products`).
    async fn say(&self, member: &str, text: &str) -> Value {
        let id = self.create_conversation(member, None).await;
        let response = self
            .post_as(
                &self.member_token(member),
                &format!("/api/conversations/{id}/messages"),
                &json!({ "text": text }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["reply"].clone()
    }
}

fn has_hangul(text: &str) -> bool {
    text.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
}

#[actix_web::test]
async fn a_korean_message_gets_cards_explained_in_korean() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let reply = app.say("mina", "10만원 이하 패딩 추천해줘").await;
    let products = reply["products"].as_array().unwrap();
    assert!(!products.is_empty(), "{reply:#}");
    for product in products {
        assert!(
            product["price_minor"].as_i64().unwrap() <= 100_000,
            "{product:#}"
        );
        assert_eq!(product["outside_request"], json!([]), "{product:#}");
        let explanation = product["explanation"].as_str().unwrap();
        assert!(has_hangul(explanation), "{explanation}");
        for english in ["under ₩", "close to", "matches", "popular", "a pick from"] {
            assert!(!explanation.contains(english), "{explanation}");
        }
        assert!(
            product["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|reason| reason == "₩100,000 이하예요"),
            "{product:#}"
        );
    }
    assert!(has_hangul(reply["message"]["text"].as_str().unwrap()));

    // The same shop in English stays English.
    let english = app.say("mina", "padded jacket under 100,000 won").await;
    for product in english["products"].as_array().unwrap() {
        let explanation = product["explanation"].as_str().unwrap();
        assert!(!has_hangul(explanation), "{explanation}");
    }
}

#[actix_web::test]
async fn when_the_price_empties_the_list_the_nearest_products_are_shown_outside_the_request() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    // The seeded hiking boots cost ₩129,000 and ₩189,000.
    let reply = app.say("jun", "5만원 이하 등산화 있어?").await;
    let text = reply["message"]["text"].as_str().unwrap();
    assert!(text.contains("가격 조건"), "names the constraint: {text}");
    assert!(text.contains("요청하신 조건 밖"), "{text}");
    assert!(
        text.contains("Waterproof Hiking Boots — ₩129,000"),
        "{text}"
    );
    let products = reply["products"].as_array().unwrap();
    let prices: Vec<i64> = products
        .iter()
        .map(|p| p["price_minor"].as_i64().unwrap())
        .collect();
    assert_eq!(prices, [129_000, 189_000], "the cheapest of the kind first");
    for product in products {
        assert_eq!(product["category"], "shoes/hiking", "{product:#}");
        assert_eq!(product["outside_request"], json!(["price"]), "{product:#}");
    }
    assert!(
        products[0]["explanation"]
            .as_str()
            .unwrap()
            .starts_with("요청하신 ₩50,000보다 비싸요 — ₩129,000"),
        "{:#}",
        products[0]
    );

    let english = app.say("jun", "hiking boots under $30").await;
    let text = english["message"]["text"].as_str().unwrap();
    assert!(text.contains("the price limit emptied the list"), "{text}");
    let first = &english["products"][0];
    assert_eq!(first["outside_request"], json!(["price"]), "{english:#}");
    assert!(
        first["explanation"]
            .as_str()
            .unwrap()
            .starts_with("Above your ₩42,000 limit (₩129,000)"),
        "{first:#}"
    );
}

#[actix_web::test]
async fn a_price_in_a_rest_query_filters_and_its_language_explains() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let token = app.member_token("sora");
    let list: Value = app
        .get_as(&token, "/api/recommendations/sora?q=2만원 이하 반팔 티셔츠")
        .await
        .json()
        .await
        .unwrap();
    let items = list["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{list:#}");
    for item in items {
        assert!(item["price_minor"].as_i64().unwrap() <= 20_000, "{item:#}");
        assert!(
            has_hangul(item["explanation"].as_str().unwrap()),
            "{item:#}"
        );
    }
}

/// The issue's examples on the demo catalog (embedded with the configured model); prints what
/// each message now yields. A measurement, not an assertion:
/// `cargo test --test api issue_21_examples -- --ignored --nocapture`.
#[actix_web::test]
#[ignore]
async fn issue_21_examples_on_the_demo_catalog() {
    let app = spawn_app().await;
    app.import_demo_catalog().await;
    app.embed_catalog().await;
    for message in [
        "만원 이하 간식",
        "다이어트 도시락 만오천원 이하",
        "I want a rain jacket, budget 100k won max",
        "선물용 향수 7만원대",
        "5만원 이하로 러닝화 있어?",
        "겨울 패딩 10만원 이하로 추천해줘",
    ] {
        let reply = app.say("issue21", message).await;
        println!(
            "\n## {message}\n{}",
            reply["message"]["text"].as_str().unwrap()
        );
        for product in reply["products"].as_array().unwrap() {
            println!(
                "- {} | {} | outside {} | {}",
                product["title"].as_str().unwrap(),
                product["price_display"].as_str().unwrap_or("-"),
                product["outside_request"],
                product["explanation"].as_str().unwrap()
            );
        }
    }
}

/// Refusals of a message follow its language too, over REST and over the socket; the error
/// code stays the same machine-readable English word.
#[actix_web::test]
async fn a_refused_message_is_told_why_in_its_own_language() {
    use crate::chat_support::{expect_frame, send_json};
    let app = crate::helpers::TestApp::builder()
        .settings(|settings| settings.chat.max_message_chars = 10)
        .spawn()
        .await;
    let id = app.create_conversation("polyglot", None).await;
    let token = app.member_token("polyglot");
    let path = format!("/api/conversations/{id}/messages");
    let korean = app
        .post_as(
            &token,
            &path,
            &json!({ "text": "방수 자켓 추천해 주세요 부탁해요" }),
        )
        .await;
    assert_eq!(korean.status(), StatusCode::BAD_REQUEST);
    let body: Value = korean.json().await.unwrap();
    assert_eq!(body["error"]["code"], "message_too_long", "{body}");
    assert!(
        has_hangul(body["error"]["message"].as_str().unwrap()),
        "{body}"
    );
    let english = app
        .post_as(
            &token,
            &path,
            &json!({ "text": "a waterproof jacket please" }),
        )
        .await;
    let body: Value = english.json().await.unwrap();
    assert_eq!(body["error"]["code"], "message_too_long", "{body}");
    assert!(
        !has_hangul(body["error"]["message"].as_str().unwrap()),
        "{body}"
    );

    let mut socket = app.connect("polyglot").await;
    send_json(
        &mut socket,
        json!({"type": "message", "text": "방수 자켓 추천해 주세요 부탁해요", "client_id": "k"}),
    )
    .await;
    let frame = expect_frame(&mut socket, "error").await;
    assert_eq!(frame["code"], "message_too_long", "{frame}");
    assert!(has_hangul(frame["message"].as_str().unwrap()), "{frame}");
    send_json(
        &mut socket,
        json!({"type": "message", "text": "a waterproof jacket please", "client_id": "e"}),
    )
    .await;
    let frame = expect_frame(&mut socket, "error").await;
    assert!(!has_hangul(frame["message"].as_str().unwrap()), "{frame}");
}
