//! Embeddings: the sentence-transformer model files and (later) the burn encoder.

pub mod files;

pub use files::{ModelFiles, ModelFilesError};
