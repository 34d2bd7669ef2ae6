//! sea-orm entities, one per table (schema in `migration/`).

pub mod conversation;
pub mod conversation_message;
pub mod interaction;
pub mod member;
pub mod outbox;
pub mod product;
pub mod user_preference;
