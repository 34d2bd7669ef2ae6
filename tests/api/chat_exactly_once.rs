//! A chat turn is answered exactly once (issue 19, part 2): a retry with the client's message
//! id gets the stored message and reply instead of a duplicate, over REST and the socket; a
//! message whose instance died mid-turn is answered once by the recovery sweeper.

use crate::chat_support::{expect_frame, send_json};
use crate::helpers::{error_code, spawn_app, wait_until, TestApp};
use convrec::chat::store::{self, MessageExtras, Role};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

async fn post_message(
    app: &TestApp,
    member: &str,
    conversation: Uuid,
    body: Value,
) -> reqwest::Response {
    app.post_as(
        &app.member_token(member),
        &format!("/api/conversations/{conversation}/messages"),
        &body,
    )
    .await
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.scalar(sql).await
}

#[actix_web::test]
async fn a_rest_retry_with_the_client_id_returns_the_stored_turn_and_stores_nothing() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let conversation = app.create_conversation("retrier", None).await;
    let body = json!({"text": "20만원 이하 패딩 추천해 주세요", "client_id": "turn-1"});

    let first = post_message(&app, "retrier", conversation, body.clone()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["message"]["client_id"], "turn-1");
    assert_eq!(
        first["reply"]["message"]["in_reply_to"],
        first["message"]["id"]
    );

    let again = post_message(&app, "retrier", conversation, body.clone()).await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "a retry is not a new message"
    );
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["message"]["id"], first["message"]["id"]);
    assert_eq!(
        again["reply"]["message"]["id"],
        first["reply"]["message"]["id"]
    );
    assert_eq!(
        again["reply"]["message"]["text"],
        first["reply"]["message"]["text"]
    );
    assert_eq!(again["reply"]["products"], first["reply"]["products"]);
    let where_ = format!("conversation_id = '{conversation}'");
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) FROM conversation_messages WHERE {where_}")
        )
        .await,
        2
    );
    // One event per stored message, none for the retry.
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT count(*) FROM outbox WHERE payload->'payload'->>'conversation_id' = '{conversation}'"
            )
        )
        .await,
        2
    );

    // The same id with another text is refused; in another conversation too.
    let reused = post_message(
        &app,
        "retrier",
        conversation,
        json!({"text": "다른 말", "client_id": "turn-1"}),
    )
    .await;
    assert_eq!(
        error_code(reused, StatusCode::CONFLICT).await,
        "client_id_reused"
    );
    let other = app.create_conversation("retrier", None).await;
    let elsewhere = post_message(&app, "retrier", other, body.clone()).await;
    assert_eq!(
        error_code(elsewhere, StatusCode::CONFLICT).await,
        "client_id_reused"
    );
    // Another member may use the same id: ids are per member.
    let theirs = app.create_conversation("someone-else", None).await;
    let response = post_message(&app, "someone-else", theirs, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // Too long an id is bad input.
    let long = post_message(
        &app,
        "retrier",
        conversation,
        json!({"text": "패딩", "client_id": "x".repeat(65)}),
    )
    .await;
    assert_eq!(
        error_code(long, StatusCode::BAD_REQUEST).await,
        "invalid_parameter"
    );
    // A NUL (found by schemathesis: it reached the database) or other control character too.
    let nul = post_message(
        &app,
        "retrier",
        conversation,
        json!({"text": "패딩", "client_id": "a\u{0}b"}),
    )
    .await;
    assert_eq!(
        error_code(nul, StatusCode::BAD_REQUEST).await,
        "invalid_parameter"
    );
}

/// Stores a user message as an instance that died right after the ack would have left it:
/// stored, claimed long ago, no reply.
async fn orphan_message(
    app: &TestApp,
    member: &str,
    text: &str,
    client_id: Option<&str>,
) -> (Uuid, Uuid) {
    let conversation_id = app.create_conversation(member, None).await;
    let conversation = store::find_conversation(&app.db, conversation_id)
        .await
        .unwrap()
        .unwrap();
    let message = store::insert_message(
        &app.db,
        &conversation,
        Role::User,
        text,
        MessageExtras {
            client_id: client_id.map(str::to_string),
            ..MessageExtras::default()
        },
    )
    .await
    .unwrap()
    .into_message();
    app.scalar(&format!(
        "WITH aged AS (UPDATE conversation_messages \
         SET answer_claimed_at = now() - interval '10 minutes' WHERE id = '{}' RETURNING 1) \
         SELECT count(*) FROM aged",
        message.id
    ))
    .await;
    (conversation_id, message.id)
}

#[actix_web::test]
async fn a_message_left_unanswered_by_a_crash_is_answered_once_by_the_sweeper() {
    let app = TestApp::builder()
        .settings(|s| {
            s.chat.recovery_interval_secs = 1;
            s.chat.unanswered_after_secs = 30;
        })
        .spawn()
        .await;
    app.seed_catalog().await;
    let (conversation, message) =
        orphan_message(&app, "crashed", "따뜻한 패딩 추천해 주세요", None).await;
    // A message being answered right now (claimed just now) is left to its turn.
    let (_, fresh) = {
        let id = app.create_conversation("busy", None).await;
        let c = store::find_conversation(&app.db, id)
            .await
            .unwrap()
            .unwrap();
        let m = store::insert_message(&app.db, &c, Role::User, "운동화", MessageExtras::default())
            .await
            .unwrap()
            .into_message();
        (id, m.id)
    };
    // And one whose failure the shopper was told about is left to the shopper's retry.
    let (_, told) = orphan_message(&app, "told", "가방 추천", None).await;
    store::mark_answer_failed(&app.db, told, "unavailable")
        .await
        .unwrap();

    let replies_to =
        |id: Uuid| format!("SELECT count(*) FROM conversation_messages WHERE reply_to = '{id}'");
    let answered = wait_until(Duration::from_secs(60), || async {
        app.scalar(&replies_to(message)).await == 1
    })
    .await;
    assert!(answered, "the sweeper answered the orphaned message");
    // A few more sweeps: still exactly one reply, and the others untouched.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.scalar(&replies_to(message)).await, 1);
    assert_eq!(app.scalar(&replies_to(fresh)).await, 0);
    assert_eq!(app.scalar(&replies_to(told)).await, 0);
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM conversation_messages WHERE id = '{message}' AND answered_at IS NOT NULL"
        ))
        .await,
        1
    );
    // The reply is in the conversation's history, after the message, with products.
    let page: Value = app
        .get_as(
            &app.member_token("crashed"),
            &format!("/api/conversations/{conversation}/messages"),
        )
        .await
        .json()
        .await
        .unwrap();
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{page}");
    let reply = &messages[1];
    assert_eq!(reply["role"], "assistant", "{page}");
    assert_eq!(reply["in_reply_to"], message.to_string());
    assert!(!reply["products"].as_array().unwrap().is_empty(), "{reply}");
    assert!(
        app.metric("chat_recovered_total{outcome=\"answered\"}")
            .await
            >= Some(1.0)
    );
}

#[actix_web::test]
async fn a_retry_of_a_message_left_unanswered_answers_it_over_rest_and_the_socket() {
    // The sweeper waits long here: the retries answer.
    let app = TestApp::builder()
        .settings(|s| s.chat.unanswered_after_secs = 3600)
        .spawn()
        .await;
    app.seed_catalog().await;
    let text = "20만원 이하 패딩 추천해 주세요";
    let (conversation, message) = orphan_message(&app, "resumer", text, Some("lost-1")).await;
    let response = post_message(
        &app,
        "resumer",
        conversation,
        json!({"text": text, "client_id": "lost-1"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let turn: Value = response.json().await.unwrap();
    assert_eq!(turn["message"]["id"], message.to_string());
    assert_eq!(turn["reply"]["message"]["in_reply_to"], message.to_string());
    assert!(!turn["reply"]["products"].as_array().unwrap().is_empty());

    // Over the socket, without naming the conversation: acked with the stored message,
    // answered once.
    let (_, orphan) =
        orphan_message(&app, "resumer", "Show me black sneakers", Some("lost-2")).await;
    let mut socket = app.connect("resumer").await;
    for round in 0..2 {
        send_json(
            &mut socket,
            json!({"type": "message", "text": "Show me black sneakers", "client_id": "lost-2"}),
        )
        .await;
        let ack = expect_frame(&mut socket, "ack").await;
        assert_eq!(ack["message_id"], orphan.to_string(), "round {round}");
        expect_frame(&mut socket, "typing").await;
        let reply = expect_frame(&mut socket, "reply").await;
        assert_eq!(reply["in_reply_to"], orphan.to_string());
        assert_eq!(reply["client_id"], "lost-2");
    }
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM conversation_messages WHERE reply_to = '{orphan}'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM conversation_messages WHERE member_id = 'resumer' AND role = 'user'"
        )
        .await,
        2,
        "no retry stored a message"
    );
}
