//! What kind of failure an error is, said once by the error itself; the HTTP layer
//! (`http::error::respond`) and the chat socket's `error` frames turn a kind into a status, a
//! stable code, `Retry-After` and a log line, so handlers never repeat that mapping.

/// The kinds a client can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or out of range (400).
    BadRequest,
    /// A well-formed body whose fields are wrong (422, with `details`).
    Invalid,
    /// No or a bad credential (401).
    Unauthorized,
    /// The credential does not grant this (403).
    Forbidden,
    NotFound,
    /// It exists already (409).
    Conflict,
    /// Busy now: retry shortly (429).
    Overloaded,
    /// A dependency did not answer (503).
    Unavailable,
    /// Our fault (500): the client sees only "internal error", the log has the cause.
    Internal,
}

/// An error a client may see.
pub trait PublicError: std::fmt::Display {
    fn kind(&self) -> ErrorKind;

    /// The stable code of the JSON error body and of the socket's `error` frame.
    fn code(&self) -> &'static str;

    /// What a client may read: the message, except for internal errors.
    fn public_message(&self) -> String {
        match self.kind() {
            ErrorKind::Internal => "internal error".into(),
            _ => self.to_string(),
        }
    }

    /// Which fields are wrong (for [`ErrorKind::Invalid`]).
    fn details(&self) -> Vec<FieldError> {
        Vec::new()
    }

    /// When to try again, for overloaded and unavailable answers.
    fn retry_after_secs(&self) -> Option<u32> {
        None
    }
}

/// One field of a request and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}
