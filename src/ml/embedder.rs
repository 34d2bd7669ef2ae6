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

    /// What the model wants written before a text of each kind; callers apply it
    /// ([`TextPrompts::apply`]) before embedding. None for models trained without
    /// (all-MiniLM-L6-v2).
    fn prompts(&self) -> &TextPrompts {
        &NO_PROMPTS
    }
}

/// What a text is to an asymmetric retrieval model: a search, or something searched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A shopper's message or search.
    Query,
    /// A product's text, or anything else stored to be found.
    Passage,
}

/// Text a model was trained to see before queries and passages (multilingual-e5:
/// `query: ` and `passage: `). The prompt becomes part of the embedded text, so it is part
/// of the cache key too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextPrompts {
    query: String,
    passage: String,
}

static NO_PROMPTS: TextPrompts = TextPrompts {
    query: String::new(),
    passage: String::new(),
};

impl TextPrompts {
    pub fn new(query: &str, passage: &str) -> Self {
        Self {
            query: query.to_string(),
            passage: passage.to_string(),
        }
    }

    pub fn prefix(&self, kind: TextKind) -> &str {
        match kind {
            TextKind::Query => &self.query,
            TextKind::Passage => &self.passage,
        }
    }

    /// `text` as the model should see it.
    pub fn apply(&self, kind: TextKind, text: &str) -> String {
        format!("{}{text}", self.prefix(kind))
    }
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
    fn prompts_prefix_each_kind_and_none_leaves_text_alone() {
        let e5 = TextPrompts::new("query: ", "passage: ");
        assert_eq!(e5.apply(TextKind::Query, "패딩"), "query: 패딩");
        assert_eq!(e5.apply(TextKind::Passage, "패딩"), "passage: 패딩");
        assert_eq!(
            TextPrompts::default().apply(TextKind::Query, "패딩"),
            "패딩"
        );
    }

    #[test]
    fn cosine_of_parallel_orthogonal_and_zero_vectors() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }
}
