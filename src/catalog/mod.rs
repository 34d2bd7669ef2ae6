//! The product catalog: domain types, validation and storage.

pub mod draft;
pub mod embedding;
pub mod money;
pub mod store;

pub use draft::{FieldError, ProductDraft, ValidProduct, KNOWN_CATEGORIES};
pub use money::{Currency, MoneyError};
