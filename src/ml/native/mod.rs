//! convrec's own CPU inference for the BERT sentence encoder: the model of
//! `crate::ml::bert`, with the same weights and tokenizer, on kernels written for this
//! shape of work (the `convrec-kernels` crate: packed-weight matrix products, vectorised
//! maths, attention over unpadded texts; docs/benchmarks.md says why and how much faster
//! than burn's CPU backends), put together in `encoder`.
//!
//! burn (`crate::ml::bert`) stays the encoder for GPUs and the reference both are
//! tested against (`model.encoder` chooses).

pub mod encoder;

use crate::ml::bert::tokenize::TextTokenizer;
use crate::ml::bert::{open_model, LoadError};
use crate::ml::{EmbedError, Embedder, TextPrompts};
use encoder::NativeBert;
use std::path::Path;
use std::sync::Arc;

pub use convrec_kernels::has_avx512;

/// The native encoder as an [`Embedder`]. Clones share the weights; each call runs its
/// matrix products on rayon's threads.
#[derive(Clone)]
pub struct NativeEmbedder {
    model: Arc<NativeBert>,
    tokenizer: Arc<TextTokenizer>,
    model_id: Arc<str>,
    prompts: Arc<TextPrompts>,
}

impl NativeEmbedder {
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        let opened = open_model(dir)?;
        let model = NativeBert::new(opened.weights, &opened.files.config);
        tracing::info!(
            avx512 = has_avx512(),
            threads = rayon::current_num_threads(),
            "native CPU encoder ready"
        );
        Ok(Self {
            model: Arc::new(model),
            tokenizer: Arc::new(opened.tokenizer),
            model_id: opened.model_id.into(),
            prompts: Arc::new(opened.files.prompts),
        })
    }

    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }
}

impl Embedder for NativeEmbedder {
    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ids = self.tokenizer.encode_ids(texts)?;
        self.model.embed(&ids).map_err(EmbedError::Inference)
    }

    fn dimension(&self) -> usize {
        self.model.hidden()
    }

    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn max_tokens(&self) -> usize {
        self.tokenizer.max_len()
    }

    fn token_counts(&self, texts: &[String]) -> Result<Vec<usize>, EmbedError> {
        self.tokenizer.token_counts(texts)
    }

    fn clone_boxed(&self) -> Box<dyn Embedder> {
        Box::new(self.clone())
    }

    fn prompts(&self) -> &TextPrompts {
        &self.prompts
    }
}
