//! The chat socket's JSON frames (docs/chat-protocol.md). Every frame is an object with a
//! `type`; unknown types and malformed frames are answered with an `error` frame.

use crate::chat::store::StoredMessage;
use crate::intent::AnalyzedIntent;
use crate::recommend::RecommendedProduct;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest `client_id` echoed back (it is the client's own correlation id).
pub const MAX_CLIENT_ID_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientFrame {
    /// A shopper's message; without `conversation_id` it goes to the session's current
    /// conversation (a new one when there is none).
    Message {
        text: String,
        #[serde(default)]
        conversation_id: Option<Uuid>,
        #[serde(default)]
        client_id: Option<String>,
    },
    /// Switch to an existing conversation and receive its history.
    Resume {
        conversation_id: Uuid,
    },
    Ping,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerFrame {
    /// The message is stored; the reply follows.
    Ack {
        client_id: Option<String>,
        message_id: Uuid,
        conversation_id: Uuid,
    },
    /// The assistant is working on the reply.
    Typing {
        conversation_id: Uuid,
    },
    Reply {
        conversation_id: Uuid,
        message_id: Uuid,
        /// The user message this answers.
        in_reply_to: Uuid,
        client_id: Option<String>,
        text: String,
        products: Vec<RecommendedProduct>,
        /// Boxed: the largest variant by far.
        intent: Box<AnalyzedIntent>,
    },
    /// A conversation's latest messages, oldest first.
    History {
        conversation_id: Uuid,
        messages: Vec<StoredMessage>,
        /// Whether older messages exist (page them with the REST API).
        has_more: bool,
    },
    Error {
        code: &'static str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    Pong,
}

impl ServerFrame {
    pub fn error(
        code: &'static str,
        message: impl Into<String>,
        client_id: Option<String>,
    ) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            client_id,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("frames serialise")
    }
}

/// Why `id` cannot be a message's client id: at most [`MAX_CLIENT_ID_LEN`] bytes, no control
/// characters (it is stored, and PostgreSQL text cannot hold NUL). The socket and REST both
/// check it here.
pub fn check_client_id(id: &str) -> Result<(), String> {
    if id.len() > MAX_CLIENT_ID_LEN {
        return Err(format!(
            "client_id is longer than {MAX_CLIENT_ID_LEN} bytes"
        ));
    }
    if id.chars().any(char::is_control) {
        return Err("client_id contains control characters".into());
    }
    Ok(())
}

/// Why a text frame is not a valid client frame: `unknown_type` for a well-formed frame of a
/// type we do not know, `invalid_frame` otherwise.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, (&'static str, String)> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ("invalid_frame", format!("the frame is not JSON: {e}")))?;
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or((
            "invalid_frame",
            "the frame has no string `type`".to_string(),
        ))?;
    if !matches!(kind.as_str(), "message" | "resume" | "ping") {
        return Err((
            "unknown_type",
            format!("unknown frame type `{kind}` (expected message, resume or ping)"),
        ));
    }
    let frame: ClientFrame = serde_json::from_value(value)
        .map_err(|e| ("invalid_frame", format!("invalid `{kind}` frame: {e}")))?;
    if let ClientFrame::Message {
        client_id: Some(id),
        ..
    } = &frame
    {
        if let Err(why) = check_client_id(id) {
            return Err(("invalid_frame", why));
        }
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_by_type() {
        assert_eq!(
            parse_client_frame(r#"{"type":"ping"}"#).unwrap(),
            ClientFrame::Ping
        );
        let frame =
            parse_client_frame(r#"{"type":"message","text":"패딩","client_id":"c1"}"#).unwrap();
        assert_eq!(
            frame,
            ClientFrame::Message {
                text: "패딩".into(),
                conversation_id: None,
                client_id: Some("c1".into())
            }
        );
    }

    #[test]
    fn client_ids_are_bounded_and_printable() {
        assert!(check_client_id("c-1").is_ok());
        assert!(check_client_id(&"x".repeat(MAX_CLIENT_ID_LEN + 1)).is_err());
        assert!(check_client_id("a\u{0}b").is_err());
        let frame = r#"{"type":"message","text":"패딩","client_id":"a\u0000b"}"#;
        assert_eq!(parse_client_frame(frame).unwrap_err().0, "invalid_frame");
    }

    #[test]
    fn bad_frames_get_precise_codes() {
        assert_eq!(
            parse_client_frame("{not json").unwrap_err().0,
            "invalid_frame"
        );
        assert_eq!(
            parse_client_frame(r#"{"text":"x"}"#).unwrap_err().0,
            "invalid_frame"
        );
        assert_eq!(
            parse_client_frame(r#"{"type":"dance"}"#).unwrap_err().0,
            "unknown_type"
        );
        assert_eq!(
            parse_client_frame(r#"{"type":"message"}"#).unwrap_err().0,
            "invalid_frame"
        );
        assert_eq!(
            parse_client_frame(r#"{"type":"resume","conversation_id":"nope"}"#)
                .unwrap_err()
                .0,
            "invalid_frame"
        );
    }

    #[test]
    fn server_frames_carry_their_type() {
        let json = ServerFrame::error("overloaded", "slow down", Some("c9".into())).to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["type"], "error");
        assert_eq!(value["code"], "overloaded");
        assert_eq!(value["client_id"], "c9");
        assert_eq!(ServerFrame::Pong.to_json(), r#"{"type":"pong"}"#);
    }
}
