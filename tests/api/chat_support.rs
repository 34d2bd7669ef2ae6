//! What the chat tests share: an app with member tokens, a WebSocket client and its frames.

use crate::helpers::{spawn_app_with, test_settings, TestApp};
use convrec::config::Settings;
use convrec::identity::MemberTokens;
use futures::{SinkExt, StreamExt};
use secrecy::SecretString;
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest a test waits for one frame (a reply runs the whole pipeline on a shared CPU).
pub(crate) const FRAME_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct ChatApp {
    pub(crate) app: TestApp,
    pub(crate) tokens: MemberTokens,
}

/// Test settings with a member-token secret.
pub(crate) fn chat_settings() -> Settings {
    let mut settings = test_settings();
    settings.security.member_token_secret =
        SecretString::from(format!("member-secret-{}", Uuid::new_v4()));
    settings
}

pub(crate) async fn spawn_chat_app_with(settings: Settings) -> ChatApp {
    let tokens = MemberTokens::new(&settings.security);
    ChatApp {
        app: spawn_app_with(settings).await,
        tokens,
    }
}

pub(crate) async fn spawn_chat_app() -> ChatApp {
    spawn_chat_app_with(chat_settings()).await
}

impl ChatApp {
    pub(crate) fn token(&self, member: &str) -> String {
        self.tokens.issue(member).expect("tokens are enabled")
    }

    fn ws_url(&self, token: &str, conversation: Option<Uuid>) -> String {
        let base = self.app.address.replacen("http://", "ws://", 1);
        match conversation {
            None => format!("{base}/ws?token={token}"),
            Some(id) => format!("{base}/ws?token={token}&conversation={id}"),
        }
    }

    /// Opens a socket; the error carries the HTTP status of a refused upgrade.
    pub(crate) async fn try_connect(
        &self,
        token: &str,
        conversation: Option<Uuid>,
    ) -> Result<Socket, tungstenite::Error> {
        tokio_tungstenite::connect_async(self.ws_url(token, conversation))
            .await
            .map(|(socket, _)| socket)
    }

    pub(crate) async fn connect(&self, member: &str) -> Socket {
        self.try_connect(&self.token(member), None)
            .await
            .expect("the socket opens")
    }

    /// Creates a conversation for `member` over REST and returns its id.
    pub(crate) async fn create_conversation(&self, member: &str, title: Option<&str>) -> Uuid {
        let response = self
            .app
            .client
            .post(self.app.url("/api/conversations"))
            .bearer_auth(self.token(member))
            .json(&serde_json::json!({ "title": title }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }
}

pub(crate) async fn send_json(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .expect("frame sent");
}

/// The next JSON frame from the server (pings and pongs of the transport are skipped).
pub(crate) async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(FRAME_TIMEOUT, socket.next())
            .await
            .expect("a frame within the timeout")
            .expect("the socket is open")
            .expect("a valid frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("frames are JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The next frame, asserting its type.
pub(crate) async fn expect_frame(socket: &mut Socket, kind: &str) -> Value {
    let frame = next_frame(socket).await;
    assert_eq!(frame["type"], kind, "expected a {kind} frame, got {frame}");
    frame
}

/// Sends a ping frame and expects the pong: the session is alive.
pub(crate) async fn assert_alive(socket: &mut Socket) {
    send_json(socket, serde_json::json!({ "type": "ping" })).await;
    expect_frame(socket, "pong").await;
}

/// A small catalog the chat can recommend from (Korean and English titles), in the
/// categories the local intent analyser knows.
pub(crate) async fn seed_catalog(app: &TestApp) {
    let products = [
        (
            "PAD-1",
            "경량 패딩 자켓",
            "fashion/outerwear",
            89_000,
            "black",
        ),
        (
            "PAD-2",
            "롱 구스다운 패딩 코트",
            "fashion/outerwear",
            159_000,
            "navy",
        ),
        ("PAD-3", "숏 패딩 점퍼", "fashion/outerwear", 69_000, "red"),
        (
            "BOOT-1",
            "Waterproof Hiking Boots",
            "shoes/hiking",
            129_000,
            "brown",
        ),
        (
            "BOOT-2",
            "Gore-Tex Trail Hiking Boots",
            "shoes/hiking",
            189_000,
            "black",
        ),
        (
            "JKT-1",
            "Windproof Hiking Jacket",
            "outdoor/jackets",
            99_000,
            "green",
        ),
        ("TEE-1", "코튼 반팔 티셔츠", "fashion/tops", 19_000, "white"),
    ];
    for (sku, title, category, price, color) in products {
        let mut body = crate::helpers::product_body(sku);
        body["title"] = title.into();
        body["category"] = category.into();
        body["description"] = format!("{title} ({color})").into();
        body["price"]["amount_minor"] = price.into();
        body["attributes"]["colors"] = serde_json::json!([color]);
        app.create_product(&body).await;
    }
}
