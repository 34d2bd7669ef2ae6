//! Embeddings: the sentence-transformer model files, the burn encoder and the narrow
//! `Embedder` trait the rest of the service uses.

pub mod bert;
pub mod blocking;
pub mod embedder;
pub mod files;
// The CPU kernels need `unsafe` for SIMD intrinsics and for threads writing disjoint
// parts of one buffer; every block says why it is sound. Nowhere else in the crate.
#[allow(unsafe_code)]
pub mod native;

pub use embedder::{cosine, EmbedError, Embedder};
pub use files::{ModelFiles, ModelFilesError};
