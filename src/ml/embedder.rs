//! The narrow interface between serving (actors, batcher, HTTP) and a sentence encoder.

/// Errors an encoder can report for a batch.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("tokenization failed: {0}")]
    Tokenize(String),
    #[error("inference failed: {0}")]
    Inference(String),
}

/// A sentence encoder: texts in, L2-normalised vectors out (one per text, same order).
///
/// Inference is CPU- (or GPU-) bound and blocking, so callers run it on dedicated threads
/// (the `EmbeddingActor` pool), never on the async workers. An implementation need not be
/// `Sync`: each pool worker owns its own copy (see [`Embedder::clone_boxed`]).
pub trait Embedder: Send + 'static {
    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;

    /// Length of every vector (384 for all-MiniLM-L6-v2).
    fn dimension(&self) -> usize;

    /// Names the model and its weights; part of every cache key, so a model change never
    /// serves stale vectors.
    fn model_id(&self) -> &str;

    /// Texts longer than this many tokens are truncated.
    fn max_tokens(&self) -> usize;

    /// Number of tokens (including special tokens, after truncation) of each text; used to
    /// budget batches.
    fn token_counts(&self, texts: &[String]) -> Result<Vec<usize>, EmbedError>;

    /// A copy for another worker thread (weights are shared or cloned, not reloaded).
    fn clone_boxed(&self) -> Box<dyn Embedder>;
}

/// Cosine similarity of two equally long vectors; 0 when either is all zeros.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        dot += f64::from(*x) * f64::from(*y);
        na += f64::from(*x) * f64::from(*x);
        nb += f64::from(*y) * f64::from(*y);
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot / (na.sqrt() * nb.sqrt())) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_orthogonal_and_zero_vectors() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }
}
