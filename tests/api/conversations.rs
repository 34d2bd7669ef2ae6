//! Member identity on the conversation API (401/403/404, demo tokens) and the conversation
//! REST endpoints. Sending a message runs the pipeline, tested in `chat_ws`.

use crate::helpers::{error_code, spawn_app, TestApp};
use convrec::chat::store::{self, MessageExtras, Role};
use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use uuid::Uuid;

#[actix_web::test]
async fn a_missing_garbage_or_expired_token_is_401() {
    let app = spawn_app().await;
    let secret = app
        .settings
        .security
        .member_token_secret
        .expose_secret()
        .to_string();

    let missing = app.get("/api/conversations").await;
    assert_eq!(
        error_code(missing, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );

    let garbage = app.get_as("not.a.token", "/api/conversations").await;
    assert_eq!(
        error_code(garbage, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );

    let now = chrono::Utc::now().timestamp() as u64;
    let expired = encode(
        &Header::default(),
        &json!({ "sub": "alice", "exp": now - 60, "iat": now - 3600 }),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let response = app.get_as(&expired, "/api/conversations").await;
    assert_eq!(
        error_code(response, StatusCode::UNAUTHORIZED).await,
        "token_expired"
    );

    let other_secret = encode(
        &Header::default(),
        &json!({ "sub": "alice", "exp": now + 600 }),
        &EncodingKey::from_secret(b"someone else's secret"),
    )
    .unwrap();
    let response = app.get_as(&other_secret, "/api/conversations").await;
    assert_eq!(
        error_code(response, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );
}

#[actix_web::test]
async fn another_members_conversation_is_403_and_an_unknown_one_404() {
    let app = spawn_app().await;
    let alices = app.create_conversation("alice", Some("패딩")).await;
    let bob = app.member_token("bob");

    let response = app
        .get_as(&bob, &format!("/api/conversations/{alices}/messages"))
        .await;
    assert_eq!(
        error_code(response, StatusCode::FORBIDDEN).await,
        "forbidden"
    );

    let response = app
        .post_as(
            &bob,
            &format!("/api/conversations/{alices}/messages"),
            &json!({ "text": "hi" }),
        )
        .await;
    assert_eq!(
        error_code(response, StatusCode::FORBIDDEN).await,
        "forbidden"
    );

    let response = app.get_as(&bob, "/api/conversations?member_id=alice").await;
    assert_eq!(
        error_code(response, StatusCode::FORBIDDEN).await,
        "forbidden"
    );

    let unknown = Uuid::new_v4();
    let response = app
        .get_as(&bob, &format!("/api/conversations/{unknown}/messages"))
        .await;
    assert_eq!(
        error_code(response, StatusCode::NOT_FOUND).await,
        "not_found"
    );

    let response = app
        .get_as(&bob, "/api/conversations/not-a-uuid/messages")
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // The shop reads any member's conversation but does not write in it.
    let shop = app.admin_token.clone();
    let response = app
        .get_as(&shop, &format!("/api/conversations/{alices}/messages"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.post_as(&shop, "/api/conversations", &json!({})).await;
    assert_eq!(
        error_code(response, StatusCode::FORBIDDEN).await,
        "forbidden"
    );
}

#[actix_web::test]
async fn demo_tokens_are_off_by_default() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/demo/token"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response, StatusCode::NOT_FOUND).await,
        "not_found"
    );
}

#[actix_web::test]
async fn demo_tokens_when_configured_work_on_the_conversation_api() {
    let app = TestApp::builder()
        .settings(|settings| settings.security.demo_tokens = true)
        .spawn()
        .await;
    let response = app
        .client
        .post(app.url("/api/demo/token"))
        .json(&json!({ "member_id": "demo-kim" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["member_id"], "demo-kim");
    let token = body["token"].as_str().unwrap();
    let response = app.get_as(token, "/api/conversations").await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[actix_web::test]
async fn conversations_list_newest_first_in_keyset_pages() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for title in ["first", "second", "third"] {
        created.push(app.create_conversation("alice", Some(title)).await);
    }
    app.create_conversation("bob", Some("not alice's")).await;
    let alice = app.member_token("alice");

    let page: Value = app
        .get_as(&alice, "/api/conversations?limit=2")
        .await
        .json()
        .await
        .unwrap();
    let titles: Vec<&str> = page["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["third", "second"]);
    let cursor = page["next_cursor"].as_str().expect("a second page");

    let page: Value = app
        .get_as(
            &alice,
            &format!("/api/conversations?limit=2&cursor={cursor}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(page["conversations"][0]["title"], "first");
    assert_eq!(page["conversations"][0]["id"], created[0].to_string());
    assert!(page["next_cursor"].is_null());

    // The shop names the member.
    let shop = app.admin_token.clone();
    let page: Value = app
        .get_as(&shop, "/api/conversations?member_id=bob")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["conversations"].as_array().unwrap().len(), 1);
    let response = app.get_as(&shop, "/api/conversations").await;
    assert_eq!(
        error_code(response, StatusCode::BAD_REQUEST).await,
        "invalid_parameter"
    );

    for bad in ["?limit=0", "?limit=100000", "?cursor=garbage"] {
        let response = app
            .get_as(&alice, &format!("/api/conversations{bad}"))
            .await;
        assert_eq!(
            error_code(response, StatusCode::BAD_REQUEST).await,
            "invalid_parameter",
            "{bad}"
        );
    }
}

#[actix_web::test]
async fn messages_page_backwards_oldest_first_within_a_page() {
    let app = spawn_app().await;
    let id = app.create_conversation("alice", None).await;
    let conversation = store::find_conversation(&app.db, id)
        .await
        .unwrap()
        .unwrap();
    for n in 0..5 {
        let role = if n % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        };
        store::insert_message(
            &app.db,
            &conversation,
            role,
            &format!("message {n}"),
            MessageExtras::default(),
        )
        .await
        .unwrap();
    }
    let alice = app.member_token("alice");
    let texts = |page: &Value| -> Vec<String> {
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect()
    };
    let page: Value = app
        .get_as(&alice, &format!("/api/conversations/{id}/messages?limit=2"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(texts(&page), ["message 3", "message 4"]);
    assert_eq!(page["messages"][1]["role"], "user");
    let before = page["next_before"].as_str().unwrap();
    let page: Value = app
        .get_as(
            &alice,
            &format!("/api/conversations/{id}/messages?limit=2&before={before}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(texts(&page), ["message 1", "message 2"]);
    let before = page["next_before"].as_str().unwrap();
    let page: Value = app
        .get_as(
            &alice,
            &format!("/api/conversations/{id}/messages?limit=2&before={before}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(texts(&page), ["message 0"]);
    assert!(page["next_before"].is_null());

    // A cursor from another conversation is refused, not silently ignored.
    let other = app.create_conversation("alice", None).await;
    let response = app
        .get_as(
            &alice,
            &format!("/api/conversations/{other}/messages?before={before}"),
        )
        .await;
    assert_eq!(
        error_code(response, StatusCode::BAD_REQUEST).await,
        "invalid_parameter"
    );
}

#[actix_web::test]
async fn a_stored_message_and_its_event_are_written_together() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    let id = app.create_conversation("carol", None).await;
    let conversation = store::find_conversation(&app.db, id)
        .await
        .unwrap()
        .unwrap();
    let message = store::insert_message(
        &app.db,
        &conversation,
        Role::User,
        "겨울 패딩 추천해 주세요",
        MessageExtras::default(),
    )
    .await
    .unwrap()
    .into_message();
    let row = app
        .db
        .query_one_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "SELECT payload::text AS payload FROM outbox WHERE payload->'payload'->>'message_id' = $1",
            [message.id.to_string().into()],
        ))
        .await
        .unwrap()
        .expect("an outbox row for the message");
    let payload: String = row.try_get("", "payload").unwrap();
    let payload: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload["payload"]["conversation_id"], id.to_string());
    assert_eq!(payload["payload"]["role"], "user");
    assert_eq!(payload["payload"]["text"], "겨울 패딩 추천해 주세요");
}

#[actix_web::test]
async fn posting_a_message_runs_the_pipeline_and_returns_both_messages() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let id = app.create_conversation("dana", None).await;
    let response = app
        .post_as(
            &app.member_token("dana"),
            &format!("/api/conversations/{id}/messages"),
            &json!({ "text": "hiking boots please" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"]["role"], "user");
    assert_eq!(body["message"]["text"], "hiking boots please");
    assert_eq!(body["reply"]["message"]["role"], "assistant");
    let products = body["reply"]["products"].as_array().unwrap();
    assert!(!products.is_empty(), "{body}");
    assert!(products
        .iter()
        .any(|p| p["title"].as_str().unwrap().contains("Boots")));

    let page: Value = app
        .get_as(
            &app.member_token("dana"),
            &format!("/api/conversations/{id}/messages"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    let ids = |products: &Value| -> Vec<String> {
        products
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&page["messages"][1]["products"]),
        ids(&body["reply"]["products"])
    );

    for (text, code) in [("", "invalid_message"), ("   ", "invalid_message")] {
        let response = app
            .post_as(
                &app.member_token("dana"),
                &format!("/api/conversations/{id}/messages"),
                &json!({ "text": text }),
            )
            .await;
        assert_eq!(error_code(response, StatusCode::BAD_REQUEST).await, code);
    }
}
