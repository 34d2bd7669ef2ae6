//! What the chat tests share: a WebSocket client on a [`TestApp`] and its frames.

use crate::helpers::TestApp;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest a test waits for one frame (a reply runs the whole pipeline on a shared CPU).
pub(crate) const FRAME_TIMEOUT: Duration = Duration::from_secs(60);

impl TestApp {
    fn ws_url(&self, token: &str, conversation: Option<Uuid>) -> String {
        let base = self.address.replacen("http://", "ws://", 1);
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

    /// Opens a socket as `member`.
    pub(crate) async fn connect(&self, member: &str) -> Socket {
        self.try_connect(&self.member_token(member), None)
            .await
            .expect("the socket opens")
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
