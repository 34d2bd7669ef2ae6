//! The chat socket: refusals at the upgrade, every kind of bad frame answered with an error
//! frame while the session lives on, resume with history, and (with the pipeline) acks,
//! replies, flooding and many concurrent sessions.

use crate::chat_support::*;
use convrec::chat::store::{self, MessageExtras, Role};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::{self, Message};
use uuid::Uuid;

fn refused_status(result: Result<Socket, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the upgrade should have been refused"),
    }
}

#[actix_web::test]
async fn the_upgrade_is_refused_without_a_member_token_or_for_anothers_conversation() {
    let chat = spawn_chat_app().await;
    assert_eq!(refused_status(chat.try_connect("", None).await), 401);
    assert_eq!(refused_status(chat.try_connect("garbage", None).await), 401);
    let shop = chat.app.admin_token.clone();
    assert_eq!(refused_status(chat.try_connect(&shop, None).await), 403);

    let alices = chat.create_conversation("alice", None).await;
    let bob = chat.token("bob");
    assert_eq!(
        refused_status(chat.try_connect(&bob, Some(alices)).await),
        403
    );
    assert_eq!(
        refused_status(chat.try_connect(&bob, Some(Uuid::new_v4())).await),
        404
    );
}

#[actix_web::test]
async fn bad_frames_get_error_frames_and_the_session_lives_on() {
    let chat = spawn_chat_app().await;
    let mut socket = chat.connect("alice").await;
    assert_alive(&mut socket).await;

    let cases = [
        (Message::Text("{not json".into()), "invalid_frame"),
        (Message::Text(r#"{"type":"dance"}"#.into()), "unknown_type"),
        (
            Message::Text(r#"{"type":"message"}"#.into()),
            "invalid_frame",
        ),
        (
            Message::Text(r#"{"type":"message","text":"hi","extra":1}"#.into()),
            "invalid_frame",
        ),
        (Message::Binary(vec![1u8, 2, 3].into()), "invalid_frame"),
        (
            Message::Text(json!({"type":"message","text":"   "}).to_string().into()),
            "invalid_message",
        ),
        (
            Message::Text(
                json!({"type":"message","text":"가".repeat(1001),"client_id":"long"})
                    .to_string()
                    .into(),
            ),
            "message_too_long",
        ),
    ];
    for (frame, code) in cases {
        socket.send(frame).await.unwrap();
        let error = expect_frame(&mut socket, "error").await;
        assert_eq!(error["code"], code, "{error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_alive(&mut socket).await;
    }
}

#[actix_web::test]
async fn an_oversized_frame_closes_only_that_socket() {
    let chat = spawn_chat_app().await;
    let mut bystander = chat.connect("bob").await;
    let mut socket = chat.connect("alice").await;
    let huge = json!({"type":"message","text":"x".repeat(20_000)}).to_string();
    socket.send(Message::Text(huge.into())).await.unwrap();
    let error = expect_frame(&mut socket, "error").await;
    assert_eq!(error["code"], "frame_too_large");
    let close = tokio::time::timeout(FRAME_TIMEOUT, socket.next())
        .await
        .unwrap();
    match close {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert_alive(&mut bystander).await;
    let mut again = chat.connect("alice").await;
    assert_alive(&mut again).await;
}

#[actix_web::test]
async fn resume_sends_the_history_and_refuses_anothers_conversation() {
    let chat = spawn_chat_app().await;
    let id = chat.create_conversation("alice", Some("패딩")).await;
    let conversation = store::find_conversation(&chat.app.db, id)
        .await
        .unwrap()
        .unwrap();
    for (role, text) in [
        (Role::User, "패딩 보여줘"),
        (Role::Assistant, "이 패딩 어때요?"),
    ] {
        store::insert_message(
            &chat.app.db,
            &conversation,
            role,
            text,
            MessageExtras::default(),
        )
        .await
        .unwrap();
    }

    // On connect, from the query.
    let mut socket = chat
        .try_connect(&chat.token("alice"), Some(id))
        .await
        .unwrap();
    let history = expect_frame(&mut socket, "history").await;
    assert_eq!(history["conversation_id"], id.to_string());
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["패딩 보여줘", "이 패딩 어때요?"]);
    assert_eq!(history["has_more"], false);

    // By frame.
    let mut socket = chat.connect("alice").await;
    send_json(&mut socket, json!({"type":"resume","conversation_id":id})).await;
    let history = expect_frame(&mut socket, "history").await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 2);

    let mut intruder = chat.connect("mallory").await;
    send_json(&mut intruder, json!({"type":"resume","conversation_id":id})).await;
    let error = expect_frame(&mut intruder, "error").await;
    assert_eq!(error["code"], "forbidden");
    send_json(
        &mut intruder,
        json!({"type":"resume","conversation_id":Uuid::new_v4()}),
    )
    .await;
    assert_eq!(
        expect_frame(&mut intruder, "error").await["code"],
        "not_found"
    );
    assert_alive(&mut intruder).await;
}

#[actix_web::test]
async fn the_session_gauge_follows_open_sockets() {
    let chat = spawn_chat_app().await;
    let gauge = || async {
        let text = chat.app.get("/metrics").await.text().await.unwrap();
        text.lines()
            .find(|l| l.starts_with("ws_sessions_active "))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(|v| v.parse::<f64>().unwrap())
            .unwrap()
    };
    let mut a = chat.connect("a").await;
    let mut b = chat.connect("b").await;
    assert_alive(&mut a).await;
    assert_alive(&mut b).await;
    assert_eq!(gauge().await, 2.0);
    a.close(None).await.unwrap();
    for _ in 0..50 {
        if gauge().await == 1.0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the gauge never went back to 1");
}
