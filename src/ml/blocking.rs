//! Calling an [`Embedder`] from async code without an actor system (command-line tools):
//! each call runs on tokio's blocking pool.

use super::{EmbedError, Embedder, TextKind, TextPrompts};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct BlockingEmbedder {
    inner: Arc<Mutex<Box<dyn Embedder>>>,
    prompts: Arc<TextPrompts>,
    model_id: Arc<str>,
}

impl BlockingEmbedder {
    pub fn new(embedder: Box<dyn Embedder>) -> Self {
        let prompts = Arc::new(embedder.prompts().clone());
        let model_id = embedder.model_id().into();
        Self {
            inner: Arc::new(Mutex::new(embedder)),
            prompts,
            model_id,
        }
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Texts of one kind, each with the model's prompt for it (see [`TextPrompts`]).
    pub async fn embed_as(
        &self,
        kind: TextKind,
        texts: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let texts = texts
            .iter()
            .map(|text| self.prompts.apply(kind, text))
            .collect();
        self.embed(texts).await
    }

    /// Texts exactly as given.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let embedder = inner.lock().map_err(|_| {
                EmbedError::Inference("encoder poisoned by an earlier panic".into())
            })?;
            embedder.embed_batch(&texts)
        })
        .await
        .map_err(|e| EmbedError::Inference(e.to_string()))?
    }
}
