//! The product catalog: domain types, validation and storage.

pub mod attributes;
pub mod draft;
pub mod embedding;
pub mod interaction;
pub mod money;
pub mod store;

pub use draft::{ProductDraft, ValidProduct, KNOWN_CATEGORIES};
pub use interaction::InteractionKind;
pub use money::{Currency, MoneyError};
