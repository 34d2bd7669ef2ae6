//! Tokenisation with the model's own `tokenizer.json`, truncated to the model's maximum
//! sequence length and padded to the longest text of each batch.

use crate::ml::EmbedError;
use std::path::Path;
use tokenizers::{Tokenizer, TruncationParams};

/// Token ids and attention mask of a batch, row-major `[batch, seq]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    pub ids: Vec<i64>,
    pub mask: Vec<f32>,
    pub batch: usize,
    pub seq: usize,
}

pub struct TextTokenizer {
    inner: Tokenizer,
    max_len: usize,
}

impl TextTokenizer {
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self, String> {
        let mut inner = Tokenizer::from_file(path).map_err(|e| e.to_string())?;
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| e.to_string())?;
        // Padding is done per batch below, to the batch's longest text only.
        inner.with_padding(None);
        Ok(Self { inner, max_len })
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    fn encode(&self, texts: &[String]) -> Result<Vec<tokenizers::Encoding>, EmbedError> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        self.inner
            .encode_batch(inputs, true)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))
    }

    /// Token ids of one text, special tokens included (for tests and diagnostics).
    pub fn ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        Ok(self
            .encode(&[text.to_string()])?
            .remove(0)
            .get_ids()
            .to_vec())
    }

    /// Token ids of each text, special tokens included, truncated, unpadded.
    pub fn encode_ids(&self, texts: &[String]) -> Result<Vec<Vec<u32>>, EmbedError> {
        Ok(self
            .encode(texts)?
            .iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    pub fn token_counts(&self, texts: &[String]) -> Result<Vec<usize>, EmbedError> {
        Ok(self
            .encode(texts)?
            .iter()
            .map(|e| e.get_ids().len())
            .collect())
    }

    pub fn encode_batch(&self, texts: &[String]) -> Result<TokenBatch, EmbedError> {
        let encodings = self.encode(texts)?;
        let seq = encodings
            .iter()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0)
            .max(1);
        let batch = encodings.len();
        let mut ids = vec![0i64; batch * seq];
        let mut mask = vec![0f32; batch * seq];
        for (row, encoding) in encodings.iter().enumerate() {
            for (col, id) in encoding.get_ids().iter().enumerate() {
                ids[row * seq + col] = i64::from(*id);
                mask[row * seq + col] = 1.0;
            }
        }
        Ok(TokenBatch {
            ids,
            mask,
            batch,
            seq,
        })
    }
}
