//! The learned profile shapes ranking (issue 17, part 2): what a member told the chat in one
//! conversation boosts those products in their REST recommendations and in a new
//! conversation, with a reason in the request's language; what the current message asks
//! for wins over the profile.

use crate::helpers::{product_body, TestApp};
use convrec::intent::ShoppingIntent;
use convrec::recommend::profile::PreferenceProfile;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement, Value as DbValue};
use serde_json::{json, Value};

/// Eight identical cotton T-shirts (same title, description, price and stock) that differ
/// only in colour and brand, so nothing but the profile (or the request) can order them.
async fn tshirts(app: &TestApp) {
    // Each of its own brand: without embeddings MMR counts the same brand in the same
    // category as a near-copy, which would separate the two red ones.
    let shirts = [
        ("TEE-RED-1", "red", "Tidewear"),
        ("TEE-RED-2", "red", "Haru"),
        ("TEE-BLUE-1", "blue", "Sora"),
        ("TEE-BLUE-2", "blue", "Mint Lane"),
        ("TEE-WHITE-1", "white", "Basic Co"),
        ("TEE-WHITE-2", "white", "Kumo"),
        ("TEE-GREY-1", "grey", "Dawn"),
        ("TEE-BLACK-1", "black", "Onyx"),
    ];
    for (sku, color, brand) in shirts {
        let mut body = product_body(sku);
        body["title"] = "코튼 반팔 티셔츠".into();
        body["description"] = "부드러운 면 반팔 티셔츠".into();
        body["category"] = "fashion/tops".into();
        body["brand"] = brand.into();
        body["price"]["amount_minor"] = 19_000.into();
        body["stock"] = 50.into();
        body["attributes"] = json!({ "colors": [color] });
        app.create_product(&body).await;
    }
}

/// The SKU's colour, from the SKU the catalog above gave it.
fn color(item: &Value) -> String {
    item["sku"]
        .as_str()
        .unwrap()
        .split('-')
        .nth(1)
        .unwrap()
        .to_lowercase()
}

/// Sends one message in a new conversation of `member` and returns the reply's products.
async fn say(app: &TestApp, member: &str, text: &str) -> Vec<Value> {
    let id = app.create_conversation(member, None).await;
    let response = app
        .post_as(
            &app.member_token(member),
            &format!("/api/conversations/{id}/messages"),
            &json!({ "text": text }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["reply"]["products"].as_array().unwrap().clone()
}

async fn recommendations(app: &TestApp, member: &str, query: &str) -> Vec<Value> {
    let response = app
        .get_as(
            &app.member_token(member),
            &format!("/api/recommendations/{member}?{query}"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

fn reasons(item: &Value) -> Vec<&str> {
    item["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect()
}

/// Red products in `boosted` scored exactly `profile_weight` × their profile boost above
/// the same products in `plain` (the same request of a member without a profile), rank no
/// lower, and give `reason`; the others are unchanged.
fn assert_boosted_red(boosted: &[Value], plain: &[Value], reason: &str) {
    let position = |list: &[Value], sku: &Value| list.iter().position(|i| i["sku"] == *sku);
    for (rank, item) in boosted.iter().enumerate() {
        let Some(control) = position(plain, &item["sku"]).map(|i| &plain[i]) else {
            continue;
        };
        let total = |i: &Value| i["score"]["total"].as_f64().unwrap();
        let profile = item["score"]["profile"].as_f64().unwrap();
        let lift = total(item) - total(control);
        if color(item) == "red" {
            assert!(profile > 0.0, "{item:#}");
            assert!(
                (lift - PROFILE_WEIGHT * profile).abs() < 1e-4,
                "{item:#} {control:#}"
            );
            assert!(
                rank <= position(plain, &item["sku"]).unwrap(),
                "{boosted:#?}"
            );
            assert!(reasons(item).contains(&reason), "{item:#}");
        } else {
            assert_eq!(profile, 0.0, "{item:#}");
            assert!(lift.abs() < 1e-4, "{item:#} {control:#}");
        }
    }
    assert!(boosted.iter().any(|i| color(i) == "red"), "{boosted:#?}");
}

/// The default `recommender.profile_weight`.
const PROFILE_WEIGHT: f64 = 0.3;

#[actix_web::test]
async fn a_colour_said_in_the_chat_is_boosted_in_rest_and_in_a_new_conversation() {
    // Every shirt on a chat card, so a boosted one can be compared wherever it ranks.
    let app = TestApp::builder()
        .settings(|s| s.chat.recommendation_limit = 8)
        .spawn()
        .await;
    tshirts(&app).await;

    // Before anything was said: no profile, no boost.
    let before = recommendations(&app, "hana", "limit=8").await;
    assert!(
        before.iter().all(|i| i["score"]["profile"] == 0.0),
        "{before:#?}"
    );

    // One conversation: the shopper says they like red; the preference group learns it.
    say(&app, "hana", "빨간색 좋아해요").await;
    app.drain_events().await;
    let profile: Value = app
        .get_as(&app.member_token("hana"), "/api/members/hana/preferences")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["profile"]["colors"][0], "red", "{profile}");

    // REST, no words (English): the two red shirts first, saying why.
    let items = recommendations(&app, "hana", "limit=8").await;
    assert_eq!(items.len(), 8);
    assert_eq!(
        [color(&items[0]), color(&items[1])],
        ["red", "red"],
        "{items:#?}"
    );
    assert!(items[0]["score"]["profile"].as_f64().unwrap() > 0.0);
    assert!(items[2..].iter().all(|i| i["score"]["profile"] == 0.0));
    assert!(
        reasons(&items[0]).contains(&"in red, which you like"),
        "{:#}",
        items[0]
    );
    // With words the content signal also orders the list; the profile then adds
    // `profile_weight` × its boost to the liked products and nothing to the others, so
    // against a member who said nothing they rank no lower and say why, in Korean.
    let boosted = recommendations(&app, "hana", "q=반팔 티셔츠&limit=8").await;
    let plain = recommendations(&app, "nobody", "q=반팔 티셔츠&limit=8").await;
    assert_boosted_red(&boosted, &plain, "좋아하시는 빨간색이에요");

    // A new conversation that says nothing about colour: the same, in the chat's cards.
    let boosted = say(&app, "hana", "반팔 티셔츠 추천해줘").await;
    let plain = say(&app, "nobody", "반팔 티셔츠 추천해줘").await;
    assert_eq!(boosted.len(), 8);
    assert_boosted_red(&boosted, &plain, "좋아하시는 빨간색이에요");

    // The current message wins: asking for blue does not boost red…
    let products = say(&app, "hana", "파란색 반팔 티셔츠 추천해줘").await;
    assert_eq!(color(&products[0]), "blue", "{products:#?}");
    for product in &products {
        assert_eq!(product["score"]["profile"], 0.0, "{product:#}");
        assert!(!reasons(product).contains(&"좋아하시는 빨간색이에요"));
    }
    // …and ruling red out leaves no red at all.
    let products = say(&app, "hana", "빨간색 말고 반팔 티셔츠 추천해줘").await;
    assert!(!products.is_empty());
    assert!(products.iter().all(|p| color(p) != "red"), "{products:#?}");
}

/// Writes `profile` for `member` the way the preference group stores it.
async fn store_profile(app: &TestApp, member: &str, profile: &PreferenceProfile) {
    let backend = app.db.get_database_backend();
    for (sql, values) in [
        (
            "INSERT INTO members (id) VALUES ($1) ON CONFLICT DO NOTHING",
            vec![DbValue::from(member)],
        ),
        (
            "INSERT INTO user_preferences (member_id, profile, version) VALUES ($1, $2, 1) \
             ON CONFLICT (member_id) DO UPDATE SET profile = $2, version = user_preferences.version + 1",
            vec![
                DbValue::from(member),
                DbValue::from(serde_json::to_value(profile).unwrap()),
            ],
        ),
    ] {
        app.db
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .unwrap();
    }
}

#[actix_web::test]
async fn a_liked_brand_stored_by_the_preference_group_is_boosted() {
    let app = TestApp::builder().spawn().await;
    tshirts(&app).await;
    // A member who often said they like Kumo, at a usual ₩19,000.
    let mut profile = PreferenceProfile::default();
    let said = ShoppingIntent {
        brands: vec!["Kumo".into()],
        ..ShoppingIntent::empty()
    };
    for _ in 0..5 {
        profile.merge_message("Kumo 좋아해요", Some(&said), chrono::Utc::now());
    }
    store_profile(&app, "jun", &profile).await;

    let items = recommendations(&app, "jun", "limit=8").await;
    assert_eq!(items[0]["sku"], "TEE-WHITE-2", "{items:#?}");
    assert!(
        reasons(&items[0]).contains(&"from Kumo, which you like"),
        "{:#}",
        items[0]
    );
    let items = recommendations(&app, "jun", "q=티셔츠&limit=8").await;
    assert_eq!(items[0]["sku"], "TEE-WHITE-2", "{items:#?}");
    assert!(reasons(&items[0]).contains(&"좋아하시는 Kumo 제품이에요"));
}
