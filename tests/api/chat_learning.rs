//! What a shopper says in the chat reaches their preference profile (conv-msg-created →
//! preference-analysis → the analyser → the profile), and is searchable (es-sync).

use crate::chat_support::{seed_catalog, spawn_chat_app};
use crate::event_support::{processed, wait_until};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

#[actix_web::test]
async fn chat_messages_shape_the_profile_and_become_searchable() {
    let chat = spawn_chat_app().await;
    seed_catalog(&chat.app).await;
    let token = chat.token("eun");
    let id = chat.create_conversation("eun", None).await;
    for text in ["방수 등산화 10만원 이하로 추천해줘", "검정색이면 좋겠어요"]
    {
        let response = chat
            .app
            .client
            .post(chat.app.url(&format!("/api/conversations/{id}/messages")))
            .bearer_auth(&token)
            .json(&json!({ "text": text }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    // Two user messages and two replies went through the outbox; the group reads all four.
    assert!(
        wait_until(Duration::from_secs(90), || async {
            processed(&chat.app.db, "preference-analysis").await >= 4
        })
        .await,
        "the preference group applied the messages"
    );
    let profile: Value = chat
        .get_as(&token, "/api/members/eun/preferences")
        .await
        .json()
        .await
        .unwrap();
    let profile = &profile["profile"];
    assert!(
        profile["categories"]
            .as_object()
            .unwrap()
            .keys()
            .any(|c| c.starts_with("shoes/hiking")),
        "{profile}"
    );
    assert!(
        profile["keywords"]
            .as_object()
            .unwrap()
            .contains_key("waterproof"),
        "{profile}"
    );
    assert_eq!(profile["price_max_minor"], 100_000, "{profile}");
    assert_eq!(profile["colors"][0], "black", "{profile}");

    // The same messages are searchable by their author.
    assert!(
        wait_until(Duration::from_secs(90), || async {
            let response = chat.get_as(&token, "/api/search/messages?q=등산화").await;
            if response.status() != StatusCode::OK {
                return false;
            }
            let body: Value = response.json().await.unwrap();
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["role"] == "user" && m["conversation_id"] == id.to_string())
        })
        .await,
        "the chat message is searchable"
    );
}
