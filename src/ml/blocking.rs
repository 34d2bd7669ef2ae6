//! Calling an [`Embedder`] from async code without an actor system (command-line tools):
//! each call runs on tokio's blocking pool.

use super::{EmbedError, Embedder};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct BlockingEmbedder(Arc<Mutex<Box<dyn Embedder>>>);

impl BlockingEmbedder {
    pub fn new(embedder: Box<dyn Embedder>) -> Self {
        Self(Arc::new(Mutex::new(embedder)))
    }

    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let inner = self.0.clone();
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
