//! The chat socket: refusals at the upgrade, every kind of bad frame answered with an error
//! frame while the session lives on, resume with history, and (with the pipeline) acks,
//! replies, flooding and many concurrent sessions.

use crate::chat_support::*;
use crate::helpers::{spawn_app, TestApp};
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
    let app = spawn_app().await;
    assert_eq!(refused_status(app.try_connect("", None).await), 401);
    assert_eq!(refused_status(app.try_connect("garbage", None).await), 401);
    let shop = app.admin_token.clone();
    assert_eq!(refused_status(app.try_connect(&shop, None).await), 403);

    let alices = app.create_conversation("alice", None).await;
    let bob = app.member_token("bob");
    assert_eq!(
        refused_status(app.try_connect(&bob, Some(alices)).await),
        403
    );
    assert_eq!(
        refused_status(app.try_connect(&bob, Some(Uuid::new_v4())).await),
        404
    );
}

#[actix_web::test]
async fn bad_frames_get_error_frames_and_the_session_lives_on() {
    let app = spawn_app().await;
    let mut socket = app.connect("alice").await;
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
    let app = spawn_app().await;
    let mut bystander = app.connect("bob").await;
    let mut socket = app.connect("alice").await;
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
    let mut again = app.connect("alice").await;
    assert_alive(&mut again).await;
}

#[actix_web::test]
async fn resume_sends_the_history_and_refuses_anothers_conversation() {
    let app = spawn_app().await;
    let id = app.create_conversation("alice", Some("패딩")).await;
    let conversation = store::find_conversation(&app.db, id)
        .await
        .unwrap()
        .unwrap();
    for (role, text) in [
        (Role::User, "패딩 보여줘"),
        (Role::Assistant, "이 패딩 어때요?"),
    ] {
        store::insert_message(&app.db, &conversation, role, text, MessageExtras::default())
            .await
            .unwrap();
    }

    // On connect, from the query.
    let mut socket = app
        .try_connect(&app.member_token("alice"), Some(id))
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
    let mut socket = app.connect("alice").await;
    send_json(&mut socket, json!({"type":"resume","conversation_id":id})).await;
    let history = expect_frame(&mut socket, "history").await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 2);

    let mut intruder = app.connect("mallory").await;
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
    let app = spawn_app().await;
    let gauge = || async { app.metric("ws_sessions_active").await.unwrap() };
    let mut a = app.connect("a").await;
    let mut b = app.connect("b").await;
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

#[actix_web::test]
async fn a_message_is_acked_then_answered_with_real_products_and_stored() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let mut socket = app.connect("alice").await;
    send_json(
        &mut socket,
        json!({"type":"message","text":"20만원 이하 패딩 추천해 주세요","client_id":"k1"}),
    )
    .await;
    let ack = expect_frame(&mut socket, "ack").await;
    assert_eq!(ack["client_id"], "k1");
    let conversation_id = ack["conversation_id"].as_str().unwrap().to_string();
    expect_frame(&mut socket, "typing").await;
    let reply = expect_frame(&mut socket, "reply").await;
    assert_eq!(reply["client_id"], "k1");
    assert_eq!(reply["in_reply_to"], ack["message_id"]);
    let products = reply["products"].as_array().unwrap();
    assert!(!products.is_empty(), "{reply}");
    for product in products {
        assert!(product["price_display"].as_str().unwrap().starts_with('₩'));
        assert!(product["stock"].as_i64().unwrap() >= 0);
        assert!(!product["explanation"].as_str().unwrap().is_empty());
    }
    let first_title = products[0]["title"].as_str().unwrap();
    assert!(
        reply["text"].as_str().unwrap().contains(first_title),
        "the reply names the recommended products: {reply}"
    );
    assert!(reply["intent"]["intent"]["price_range"]["max_minor"].as_i64() == Some(200_000));

    // The next message goes to the same conversation, in English, and keeps the price limit.
    send_json(
        &mut socket,
        json!({"type":"message","text":"Show me something in black","client_id":"e1"}),
    )
    .await;
    let ack = expect_frame(&mut socket, "ack").await;
    assert_eq!(ack["conversation_id"], conversation_id.as_str());
    expect_frame(&mut socket, "typing").await;
    let reply = expect_frame(&mut socket, "reply").await;
    assert_eq!(
        reply["intent"]["intent"]["price_range"]["max_minor"].as_i64(),
        Some(200_000),
        "constraints persist across turns: {reply}"
    );

    // Stored: four messages, the user ones with embedding and intent, the replies with products.
    use sea_orm::{ConnectionTrait, Statement};
    let rows = app
        .db
        .query_all_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "SELECT role, embedding IS NOT NULL AS embedded, intent IS NOT NULL AS analysed, \
             products IS NOT NULL AS with_products FROM conversation_messages \
             WHERE conversation_id = $1::uuid ORDER BY created_at",
            [conversation_id.clone().into()],
        ))
        .await
        .unwrap();
    let summary: Vec<(String, bool, bool, bool)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "role").unwrap(),
                r.try_get("", "embedded").unwrap(),
                r.try_get("", "analysed").unwrap(),
                r.try_get("", "with_products").unwrap(),
            )
        })
        .collect();
    let user = ("user".to_string(), true, true, false);
    let assistant = ("assistant".to_string(), false, false, true);
    assert_eq!(summary, [user.clone(), assistant.clone(), user, assistant]);
    let events = app
        .db
        .query_one_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "SELECT count(*) AS n FROM outbox WHERE payload->'payload'->>'conversation_id' = $1",
            [conversation_id.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(events.try_get::<i64>("", "n").unwrap(), 4);
}

#[actix_web::test]
async fn a_message_to_anothers_conversation_is_refused_and_the_session_lives_on() {
    let app = spawn_app().await;
    let alices = app.create_conversation("alice", None).await;
    let mut socket = app.connect("mallory").await;
    send_json(
        &mut socket,
        json!({"type":"message","text":"hello","conversation_id":alices,"client_id":"m1"}),
    )
    .await;
    let error = expect_frame(&mut socket, "error").await;
    assert_eq!(error["code"], "forbidden");
    assert_eq!(error["client_id"], "m1");
    assert_alive(&mut socket).await;
}

#[actix_web::test]
async fn a_flood_is_answered_with_overloaded_and_every_accepted_message_is_answered() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let mut socket = app.connect("flooder").await;
    const SENT: usize = 40;
    for n in 0..SENT {
        send_json(
            &mut socket,
            json!({"type":"message","text":format!("패딩 {n}"),"client_id":n.to_string()}),
        )
        .await;
    }
    let (mut replies, mut overloaded, mut acks) = (0, 0, 0);
    while replies + overloaded < SENT {
        let frame = next_frame(&mut socket).await;
        match frame["type"].as_str().unwrap() {
            "ack" => acks += 1,
            "typing" => {}
            "reply" => replies += 1,
            "error" if frame["code"] == "overloaded" => overloaded += 1,
            _ => panic!("unexpected frame {frame}"),
        }
    }
    assert!(overloaded > 0, "a flood of {SENT} must hit the queue bound");
    assert!(
        replies >= 8,
        "at least the queue's worth is answered ({replies})"
    );
    assert_eq!(acks, replies);
    assert_alive(&mut socket).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"chat_frames_rejected_total{code="overloaded"}"#));
}

#[actix_web::test]
async fn two_hundred_concurrent_sessions_each_get_their_reply() {
    let app = TestApp::builder()
        .settings(|settings| settings.database.max_connections = 20)
        .spawn()
        .await;
    app.seed_catalog().await;
    const SESSIONS: usize = 200;
    let texts = [
        "따뜻한 패딩 추천해 주세요",
        "10만원 이하 패딩",
        "waterproof hiking boots",
        "검정색 등산화 있나요?",
        "a warm jacket under $100",
        "흰색 티셔츠",
        "navy down coat",
        "가벼운 겨울 외투",
    ];
    let mut sockets = Vec::with_capacity(SESSIONS);
    for n in 0..SESSIONS {
        sockets.push(app.connect(&format!("member-{n}")).await);
    }
    let started = std::time::Instant::now();
    let turns = sockets
        .into_iter()
        .enumerate()
        .map(|(n, mut socket)| async move {
            send_json(
                &mut socket,
                json!({"type":"message","text":texts[n % texts.len()],"client_id":n.to_string()}),
            )
            .await;
            let ack = expect_frame(&mut socket, "ack").await;
            assert_eq!(ack["client_id"], n.to_string());
            expect_frame(&mut socket, "typing").await;
            let reply = expect_frame(&mut socket, "reply").await;
            assert_eq!(reply["client_id"], n.to_string());
            assert!(!reply["products"].as_array().unwrap().is_empty());
            socket
        });
    let mut sockets = futures::future::join_all(turns).await;
    println!(
        "{SESSIONS} concurrent sessions answered in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    for socket in sockets.iter_mut().step_by(20) {
        assert_alive(socket).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Message→ack and message→reply latency at 1 and 100 concurrent sessions, local analyser:
/// `cargo test --test api chat_latency -- --ignored --nocapture`.
#[actix_web::test]
#[ignore = "a benchmark: run explicitly"]
async fn chat_latency() {
    let app = TestApp::builder()
        .settings(|settings| {
            settings.database.max_connections = 20;
            settings.rate_limit.enabled = false;
        })
        .spawn()
        .await;
    app.seed_catalog().await;
    const TURNS: usize = 10;
    let texts = [
        "따뜻한 패딩 추천해 주세요",
        "10만원 이하로 보여줘",
        "waterproof hiking boots",
        "검정색으로",
        "something cheaper please",
    ];
    for sessions in [1usize, 100] {
        let mut sockets = Vec::new();
        for n in 0..sessions {
            sockets.push(app.connect(&format!("bench-{sessions}-{n}")).await);
        }
        let runs = sockets
            .into_iter()
            .enumerate()
            .map(|(n, mut socket)| async move {
                let mut samples = Vec::new();
                for turn in 0..TURNS {
                    let text = format!("{} {}", texts[(n + turn) % texts.len()], n);
                    let sent = std::time::Instant::now();
                    send_json(&mut socket, json!({"type":"message","text":text})).await;
                    expect_frame(&mut socket, "ack").await;
                    let ack = sent.elapsed().as_secs_f64() * 1000.0;
                    expect_frame(&mut socket, "typing").await;
                    expect_frame(&mut socket, "reply").await;
                    samples.push((ack, sent.elapsed().as_secs_f64() * 1000.0));
                }
                samples
            });
        let samples: Vec<(f64, f64)> = futures::future::join_all(runs)
            .await
            .into_iter()
            .flatten()
            .collect();
        let mut acks: Vec<f64> = samples.iter().map(|s| s.0).collect();
        let mut replies: Vec<f64> = samples.iter().map(|s| s.1).collect();
        acks.sort_by(f64::total_cmp);
        replies.sort_by(f64::total_cmp);
        println!(
            "sessions={sessions} turns={} ack p50={:.1}ms p95={:.1}ms reply p50={:.1}ms p95={:.1}ms",
            samples.len(),
            percentile(&acks, 0.5),
            percentile(&acks, 0.95),
            percentile(&replies, 0.5),
            percentile(&replies, 0.95)
        );
    }
}

/// A socket ends with its token: a `token_expired` frame, then close code 4001 (documented in
/// docs/chat-protocol.md), and a reconnect with the expired token is refused.
#[actix_web::test]
async fn a_socket_is_closed_when_its_token_expires() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let app = spawn_app().await;
    let token = app.state.tokens.issue_with_ttl("brief", 2).unwrap();
    let mut socket = app
        .try_connect(&token, None)
        .await
        .expect("the socket opens");
    assert_alive(&mut socket).await;
    let frame = expect_frame(&mut socket, "error").await;
    assert_eq!(frame["code"], "token_expired", "{frame}");
    let closed = loop {
        match tokio::time::timeout(FRAME_TIMEOUT, socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected the close frame, got {other:?}"),
        }
    };
    assert_eq!(
        closed.map(|f| f.code),
        Some(CloseCode::from(
            convrec::actors::chat_session::TOKEN_EXPIRED_CLOSE_CODE
        ))
    );
    assert!(
        app.try_connect(&token, None).await.is_err(),
        "expired: refused"
    );
}
