//! What a shopper says in the chat reaches their preference profile (conv-msg-created →
//! preference-analysis → the analyser → the profile), and is searchable (es-sync).

use crate::event_support::processed;
use crate::helpers::spawn_app;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[actix_web::test]
async fn chat_messages_shape_the_profile_and_become_searchable() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let token = app.member_token("eun");
    let id = app.create_conversation("eun", None).await;
    for text in ["방수 등산화 10만원 이하로 추천해줘", "검정색이면 좋겠어요"]
    {
        let response = app
            .post_as(
                &token,
                &format!("/api/conversations/{id}/messages"),
                &json!({ "text": text }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    // Two user messages and two replies went through the outbox; the group reads all four.
    app.drain_events().await;
    assert!(
        processed(&app.db, "preference-analysis").await >= 4,
        "the preference group applied the messages"
    );
    let profile: Value = app
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

    // The same messages are searchable by their author (es-sync indexed them during the
    // drain; the refresh makes them visible now rather than on the server's interval).
    app.refresh_search().await;
    let response = app.get_as(&token, "/api/search/messages?q=등산화").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "user" && m["conversation_id"] == id.to_string()),
        "the chat message is searchable"
    );
}
