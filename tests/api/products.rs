use crate::helpers::{error_code, product_body, spawn_app};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[actix_web::test]
async fn a_created_product_can_be_read_back_by_id() {
    let app = spawn_app().await;
    let created = app.create_product(&product_body("JK-001")).await;
    assert_eq!(created["price"]["formatted"], "₩89,000");
    assert_eq!(created["in_stock"], true);
    assert_eq!(
        created["embedded"], true,
        "a created product is embedded at once"
    );

    let id = created["id"].as_str().unwrap();
    let response = app.get(&format!("/api/products/{id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let fetched: Value = response.json().await.unwrap();
    assert_eq!(fetched["sku"], "JK-001");
    assert_eq!(fetched["category"], "fashion/outerwear");
    assert_eq!(fetched["price"]["amount_minor"], 89000);
    assert_eq!(fetched["attributes"]["colors"], json!(["black", "navy"]));
}

#[actix_web::test]
async fn catalog_writes_need_the_admin_token() {
    let app = spawn_app().await;
    let without = app
        .client
        .post(app.url("/api/products"))
        .json(&product_body("A-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(without, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );

    let wrong = app
        .client
        .post(app.url("/api/products"))
        .bearer_auth("not-the-token")
        .json(&product_body("A-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(wrong, StatusCode::FORBIDDEN).await, "forbidden");
    assert_eq!(app.product_count().await, 0);
}

#[actix_web::test]
async fn a_duplicate_sku_is_a_409_and_the_first_product_is_kept() {
    let app = spawn_app().await;
    app.create_product(&product_body("DUP-1")).await;
    let mut second = product_body("DUP-1");
    second["title"] = json!("another title");
    let response = app.post_product(&second).await;
    assert_eq!(error_code(response, StatusCode::CONFLICT).await, "conflict");
    assert_eq!(app.product_count().await, 1);
}

#[actix_web::test]
async fn bad_product_bodies_get_clear_4xx_errors_and_nothing_is_written() {
    let app = spawn_app().await;
    let send_raw = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/api/products"))
            .bearer_auth(&app.admin_token)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };

    let malformed = send_raw("{\"sku\": \"X\", ", "application/json")
        .await
        .unwrap();
    assert_eq!(
        error_code(malformed, StatusCode::BAD_REQUEST).await,
        "malformed_json"
    );

    let not_json = send_raw("sku=X", "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(
        error_code(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await,
        "unsupported_media_type"
    );

    let mut wrong_type = product_body("T-1");
    wrong_type["price"]["amount_minor"] = json!("lots");
    let response = app.post_product(&wrong_type).await;
    assert_eq!(
        error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await,
        "invalid_body"
    );

    let mut unknown_field = product_body("T-2");
    unknown_field["colour"] = json!("red");
    let response = app.post_product(&unknown_field).await;
    assert_eq!(
        error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await,
        "invalid_body"
    );

    let mut unknown_currency = product_body("T-3");
    unknown_currency["price"]["currency"] = json!("XYZ");
    let response = app.post_product(&unknown_currency).await;
    assert_eq!(
        error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await,
        "invalid_body"
    );

    let mut negative = product_body("T-4");
    negative["price"]["amount_minor"] = json!(-100);
    negative["stock"] = json!(-1);
    negative["title"] = json!("  ");
    let response = app.post_product(&negative).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "validation_failed");
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["title", "price", "stock"]);

    let mut huge = product_body("T-5");
    huge["description"] = json!("x".repeat(300 * 1024));
    let response = app.post_product(&huge).await;
    assert_eq!(
        error_code(response, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );

    let mut too_long = product_body("T-6");
    too_long["description"] = json!("y".repeat(20_000));
    let response = app.post_product(&too_long).await;
    assert_eq!(
        error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await,
        "validation_failed"
    );

    assert_eq!(app.product_count().await, 0);
}

#[actix_web::test]
async fn unknown_and_malformed_ids_are_404_and_400() {
    let app = spawn_app().await;
    let missing = app
        .get("/api/products/0190a5d2-0000-7000-8000-000000000000")
        .await;
    assert_eq!(
        error_code(missing, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    let malformed = app.get("/api/products/not-a-uuid").await;
    assert_eq!(
        error_code(malformed, StatusCode::BAD_REQUEST).await,
        "invalid_path"
    );
    let no_route = app.get("/api/nothing-here").await;
    assert_eq!(
        error_code(no_route, StatusCode::NOT_FOUND).await,
        "not_found"
    );
}

async fn list_skus(app: &crate::helpers::TestApp, query: &str) -> Vec<String> {
    let response = app.get(&format!("/api/products?{query}")).await;
    assert_eq!(response.status(), StatusCode::OK, "GET ?{query}");
    let page: Value = response.json().await.unwrap();
    let mut skus: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap().to_string())
        .collect();
    skus.sort();
    skus
}

#[actix_web::test]
async fn listing_filters_by_category_price_text_brand_and_stock() {
    let app = spawn_app().await;
    let products = [
        (
            "P-1",
            "Waterproof Hiking Jacket",
            "outdoor/jackets",
            "Northway",
            129_000,
            5,
        ),
        (
            "P-2",
            "경량 구스다운 패딩",
            "fashion/outerwear",
            "한결",
            89_000,
            0,
        ),
        (
            "P-3",
            "Trail Running Shoes",
            "shoes/running",
            "Northway",
            99_000,
            3,
        ),
        (
            "P-4",
            "Camping Chair 100%_cotton",
            "outdoor/camping",
            "Campia",
            45_000,
            20,
        ),
        (
            "P-5",
            "Outdoor Rain Poncho",
            "outdoorsy",
            "Campia",
            15_000,
            1,
        ),
    ];
    for (sku, title, category, brand, price, stock) in products {
        let mut body = product_body(sku);
        body["title"] = json!(title);
        body["description"] = json!("");
        body["category"] = json!(category);
        body["brand"] = json!(brand);
        body["price"]["amount_minor"] = json!(price);
        body["stock"] = json!(stock);
        app.create_product(&body).await;
    }
    // A category matches itself and what is below it, never a mere prefix ("outdoorsy").
    assert_eq!(list_skus(&app, "category=outdoor").await, ["P-1", "P-4"]);
    assert_eq!(list_skus(&app, "category=Outdoor/Jackets").await, ["P-1"]);
    assert_eq!(
        list_skus(&app, "max_price=99000").await,
        ["P-2", "P-3", "P-4", "P-5"]
    );
    assert_eq!(
        list_skus(&app, "min_price=50000&max_price=100000").await,
        ["P-2", "P-3"]
    );
    assert_eq!(list_skus(&app, "q=waterproof").await, ["P-1"]);
    assert_eq!(list_skus(&app, "q=%ED%8C%A8%EB%94%A9").await, ["P-2"]); // "패딩"
    assert_eq!(list_skus(&app, "q=100%25_").await, ["P-4"]); // LIKE wildcards are literal
    assert_eq!(list_skus(&app, "q=50%25").await, Vec::<String>::new());
    assert_eq!(list_skus(&app, "brand=northway").await, ["P-1", "P-3"]);
    assert_eq!(list_skus(&app, "in_stock=false").await, ["P-2"]);
    assert_eq!(
        list_skus(&app, "in_stock=true&brand=Northway&max_price=100000").await,
        ["P-3"]
    );
}

#[actix_web::test]
async fn pagination_visits_every_product_exactly_once() {
    let app = spawn_app().await;
    for i in 0..25 {
        app.create_product(&product_body(&format!("PG-{i:02}")))
            .await;
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            Some(after) => format!("/api/products?limit=10&after={after}"),
            None => "/api/products?limit=10".to_string(),
        };
        let page: Value = app.get(&path).await.json().await.unwrap();
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["sku"].as_str().unwrap().to_string());
        }
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("PG-{i:02}")).collect();
    assert_eq!(seen, expected);
}

#[actix_web::test]
async fn invalid_listing_queries_are_400() {
    let app = spawn_app().await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "min_price=-1",
        "min_price=10&max_price=5",
        "in_stock=maybe",
        "after=nope",
        "colour=red",
    ] {
        let response = app.get(&format!("/api/products?{query}")).await;
        let code = error_code(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(code, "invalid_query", "query {query}");
    }
}

#[actix_web::test]
async fn products_can_be_replaced_patched_and_deleted() {
    let app = spawn_app().await;
    let created = app.create_product(&product_body("UPD-1")).await;
    let id = created["id"].as_str().unwrap();
    let path = app.url(&format!("/api/products/{id}"));

    let mut replacement = product_body("UPD-1");
    replacement["title"] = json!("Replaced title");
    replacement["price"] = json!({ "amount_minor": 1999, "currency": "USD" });
    let response = app
        .client
        .put(&path)
        .bearer_auth(&app.admin_token)
        .json(&replacement)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let replaced: Value = response.json().await.unwrap();
    assert_eq!(replaced["title"], "Replaced title");
    assert_eq!(replaced["embedded"], true, "a new title is embedded again");
    assert_eq!(replaced["price"]["formatted"], "$19.99");
    assert_eq!(replaced["created_at"], created["created_at"]);

    let response = app
        .client
        .patch(&path)
        .bearer_auth(&app.admin_token)
        .json(&json!({ "stock": 0, "brand": null }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["stock"], 0);
    assert_eq!(patched["in_stock"], false);
    assert_eq!(patched["brand"], Value::Null);
    assert_eq!(patched["title"], "Replaced title");
    assert_eq!(patched["embedded"], true);

    let response = app
        .client
        .patch(&path)
        .bearer_auth(&app.admin_token)
        .json(&json!({ "stock": -5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await,
        "validation_failed"
    );
    let unchanged: Value = app
        .get(&format!("/api/products/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["stock"], 0);

    let response = app
        .client
        .delete(&path)
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let gone = app.get(&format!("/api/products/{id}")).await;
    assert_eq!(error_code(gone, StatusCode::NOT_FOUND).await, "not_found");
    let again = app
        .client
        .delete(&path)
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(again, StatusCode::NOT_FOUND).await, "not_found");
}

#[actix_web::test]
async fn changing_a_sku_to_one_that_exists_is_a_409() {
    let app = spawn_app().await;
    app.create_product(&product_body("S-1")).await;
    let second = app.create_product(&product_body("S-2")).await;
    let response = app
        .client
        .patch(app.url(&format!("/api/products/{}", second["id"].as_str().unwrap())))
        .bearer_auth(&app.admin_token)
        .json(&json!({ "sku": "S-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response, StatusCode::CONFLICT).await, "conflict");
}
