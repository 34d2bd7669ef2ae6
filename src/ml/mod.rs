//! Embeddings: the sentence-transformer model files, the burn encoder and the narrow
//! `Embedder` trait the rest of the service uses.

pub mod bert;
pub mod blocking;
pub mod embedder;
pub mod files;
pub mod native;

pub use embedder::{cosine, EmbedError, Embedder, TextKind, TextPrompts};
pub use files::{ModelFiles, ModelFilesError};
