//! Dialogue as feedback (issue 17, part 3): a product the shopper turns down in the chat
//! ("첫 번째 거 말고", "그거 말고", "not that one") is not shown again in that conversation and
//! ranks below the rest in the member's later REST lists; "너무 비싸요"/"too expensive" moves
//! the price ceiling below every price the previous reply showed.

use crate::helpers::{product_body, TestApp};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};
use uuid::Uuid;

/// Eight cotton T-shirts alike but for colour and brand (one brand each, so MMR does not
/// treat two as near-copies), all ₩19,000.
async fn tshirts(app: &TestApp) {
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
        body["title"] = format!("코튼 반팔 티셔츠 {sku}").into();
        body["description"] = "부드러운 면 반팔 티셔츠".into();
        body["category"] = "fashion/tops".into();
        body["brand"] = brand.into();
        body["price"]["amount_minor"] = 19_000.into();
        body["stock"] = 50.into();
        body["attributes"] = json!({ "colors": [color] });
        app.create_product(&body).await;
    }
}

/// Padded jackets from ₩39,000 to ₩189,000.
async fn jackets(app: &TestApp) {
    for (n, price) in [39_000, 59_000, 79_000, 119_000, 139_000, 159_000, 189_000]
        .into_iter()
        .enumerate()
    {
        let mut body = product_body(&format!("PAD-{n}"));
        body["title"] = format!("겨울 롱패딩 {n}").into();
        body["brand"] = format!("Brand {n}").into();
        body["price"]["amount_minor"] = price.into();
        app.create_product(&body).await;
    }
}

/// Sends `text` in conversation `id` and answers the reply (its products and intent).
async fn say(app: &TestApp, member: &str, id: Uuid, text: &str) -> Value {
    let response = app
        .post_as(
            &app.member_token(member),
            &format!("/api/conversations/{id}/messages"),
            &json!({ "text": text }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["reply"].clone()
}

fn ids(reply: &Value) -> Vec<String> {
    reply["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

fn prices(reply: &Value) -> Vec<i64> {
    reply["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["price_minor"].as_i64().unwrap())
        .collect()
}

#[actix_web::test]
async fn a_rejected_product_is_not_shown_again_and_ranks_last_in_later_lists() {
    let app = TestApp::builder()
        .settings(|s| s.chat.recommendation_limit = 3)
        .spawn()
        .await;
    tshirts(&app).await;
    let member = "mina";
    let id = app.create_conversation(member, None).await;

    let first = say(&app, member, id, "반팔 티셔츠 추천해줘").await;
    let shown = ids(&first);
    assert_eq!(shown.len(), 3, "{first:#}");

    // Only the first one is turned down.
    let second = say(&app, member, id, "첫 번째 거 말고").await;
    let second_ids = ids(&second);
    assert!(!second_ids.contains(&shown[0]), "{second:#}");
    assert!(!second_ids.is_empty());

    // Everything the second reply showed, in English; the first stays out too.
    let third = say(&app, member, id, "not that one, something else").await;
    let third_ids = ids(&third);
    assert!(!third_ids.is_empty(), "{third:#}");
    let mut rejected = vec![shown[0].clone()];
    rejected.extend(second_ids.iter().cloned());
    for product in &rejected {
        assert!(!third_ids.contains(product), "{product} again: {third:#}");
    }

    // The member's REST list: every shirt, the rejected ones below all the others, each
    // with a fresh penalty taken from its total.
    let response = app
        .get_as(
            &app.member_token(member),
            &format!("/api/recommendations/{member}?limit=8"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let items = body["items"].as_array().unwrap();
    let is_rejected = |item: &Value| rejected.contains(&item["id"].as_str().unwrap().to_string());
    let first_rejected = items.iter().position(is_rejected).expect("rejected listed");
    assert!(
        items[first_rejected..].iter().all(is_rejected),
        "a rejected shirt above another: {items:#?}"
    );
    assert_eq!(
        items.iter().filter(|i| is_rejected(i)).count(),
        rejected.len()
    );
    for item in items {
        let penalty = item["score"]["rejected"].as_f64().unwrap();
        if is_rejected(item) {
            assert!(penalty > 0.99, "{item:#}");
        } else {
            assert_eq!(penalty, 0.0, "{item:#}");
        }
    }

    // A rejection is no vote: nothing rejected reached the member's trending or popularity,
    // and the rows are `reject` interactions of this member.
    let rows = app
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!("SELECT kind FROM interactions WHERE member_id = '{member}'"),
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), rejected.len());
    for row in rows {
        assert_eq!(row.try_get::<String>("", "kind").unwrap(), "reject");
    }
}

#[actix_web::test]
async fn too_expensive_lowers_the_ceiling_below_every_shown_price_in_korean_and_english() {
    let app = TestApp::builder()
        .settings(|s| s.chat.recommendation_limit = 2)
        .spawn()
        .await;
    jackets(&app).await;
    for (member, opening, complaint) in [
        ("jiwoo", "10만원 이상 롱패딩 추천해줘", "너무 비싸요"),
        (
            "sam",
            "padded coat over 100000 won",
            "too expensive, something cheaper",
        ),
    ] {
        let id = app.create_conversation(member, None).await;
        let first = say(&app, member, id, opening).await;
        let shown = prices(&first);
        assert!(!shown.is_empty(), "{first:#}");
        assert!(shown.iter().all(|p| *p >= 100_000), "{first:#}");
        let cheapest = *shown.iter().min().unwrap();

        let second = say(&app, member, id, complaint).await;
        let ceiling = second["intent"]["intent"]["price_range"]["max_minor"]
            .as_i64()
            .unwrap_or_else(|| panic!("no ceiling: {second:#}"));
        assert!(ceiling < cheapest, "{ceiling} ≥ {cheapest}: {second:#}");
        let next = prices(&second);
        assert!(!next.is_empty(), "{second:#}");
        assert!(
            next.iter().all(|p| *p <= ceiling),
            "{member}: {next:?} above {ceiling}"
        );
        for product in second["products"].as_array().unwrap() {
            assert_eq!(product["outside_request"], json!([]), "{product:#}");
        }
    }
}
