//! The BERT encoder on convrec's own CPU kernels: the same computation as
//! `crate::ml::bert::model`, with the texts of a batch packed back to back instead of
//! padded, every dense layer through [`PackedLinear`], GELU fused into the layer that
//! feeds it, and residual + layer norm in one pass.

use crate::ml::bert::weights::{HostNorm, HostWeights};
use crate::ml::files::BertConfig;
use convrec_kernels::attention::self_attention;
use convrec_kernels::gemm::{Activation, PackedLinear};
use convrec_kernels::math;
use rayon::prelude::*;

/// Rows per task in the row-wise passes (norms): enough work to be worth a thread.
const ROWS_PER_TASK: usize = 64;

struct NativeLayer {
    qkv: PackedLinear,
    attention_out: PackedLinear,
    attention_norm: HostNorm,
    intermediate: PackedLinear,
    output: PackedLinear,
    output_norm: HostNorm,
}

/// A BERT encoder with mean pooling and L2 normalisation, ready to run on the CPU.
pub struct NativeBert {
    hidden: usize,
    heads: usize,
    epsilon: f32,
    vocab: usize,
    max_positions: usize,
    word: Vec<f32>,
    position: Vec<f32>,
    /// Row 0 of the token-type table: every input is a single segment.
    token_type: Vec<f32>,
    embedding_norm: HostNorm,
    layers: Vec<NativeLayer>,
}

impl NativeBert {
    pub fn new(weights: HostWeights, config: &BertConfig) -> Self {
        let hidden = config.hidden_size;
        let pack = |d: &crate::ml::bert::weights::HostDense| {
            PackedLinear::new(&d.weight, d.d_in, d.d_out, &d.bias)
        };
        let layers = weights
            .layers
            .iter()
            .map(|layer| NativeLayer {
                qkv: pack(&layer.qkv),
                attention_out: pack(&layer.attention_out),
                attention_norm: layer.attention_norm.clone(),
                intermediate: pack(&layer.intermediate),
                output: pack(&layer.output),
                output_norm: layer.output_norm.clone(),
            })
            .collect();
        Self {
            hidden,
            heads: config.num_attention_heads,
            epsilon: config.layer_norm_eps as f32,
            vocab: config.vocab_size,
            max_positions: config.max_position_embeddings,
            token_type: weights.token_type[..hidden].to_vec(),
            word: weights.word,
            position: weights.position,
            embedding_norm: weights.embedding_norm,
            layers,
        }
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Token ids of each text (special tokens included, already truncated) → one
    /// L2-normalised mean of its token states per text. An empty id list gives zeros.
    pub fn embed(&self, texts: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, String> {
        let h = self.hidden;
        let mut spans = Vec::with_capacity(texts.len());
        let mut total = 0;
        for ids in texts {
            if ids.len() > self.max_positions {
                return Err(format!(
                    "{} tokens, more than the model's {} positions",
                    ids.len(),
                    self.max_positions
                ));
            }
            if let Some(bad) = ids.iter().find(|id| **id as usize >= self.vocab) {
                return Err(format!("token id {bad} is outside the vocabulary"));
            }
            spans.push((total, ids.len()));
            total += ids.len();
        }
        let mut states = vec![0.0f32; total * h];
        for (&(start, _), ids) in spans.iter().zip(texts) {
            for (t, id) in ids.iter().enumerate() {
                let row = &mut states[(start + t) * h..(start + t + 1) * h];
                let word = &self.word[*id as usize * h..(*id as usize + 1) * h];
                let position = &self.position[t * h..(t + 1) * h];
                for (((out, w), p), k) in
                    row.iter_mut().zip(word).zip(position).zip(&self.token_type)
                {
                    *out = w + p + k;
                }
            }
        }
        let norm = &self.embedding_norm;
        states
            .par_chunks_mut(h * ROWS_PER_TASK)
            .for_each(|rows| math::norm(rows, &norm.gamma, &norm.beta, self.epsilon));

        let inner = self.layers.first().map_or(0, |l| l.intermediate.d_out());
        let mut qkv = vec![0.0f32; total * 3 * h];
        let mut context = vec![0.0f32; total * h];
        let mut attended = vec![0.0f32; total * h];
        let mut intermediate = vec![0.0f32; total * inner];
        for layer in &self.layers {
            layer
                .qkv
                .forward(&states, total, &mut qkv, Activation::Identity);
            self_attention(&qkv, &spans, h, self.heads, &mut context);
            layer
                .attention_out
                .forward(&context, total, &mut attended, Activation::Identity);
            self.add_and_norm(&mut attended, &states, &layer.attention_norm);
            layer
                .intermediate
                .forward(&attended, total, &mut intermediate, Activation::Gelu);
            layer
                .output
                .forward(&intermediate, total, &mut states, Activation::Identity);
            self.add_and_norm(&mut states, &attended, &layer.output_norm);
        }
        Ok(spans
            .iter()
            .map(|&(start, len)| pool(&states[start * h..(start + len) * h], h))
            .collect())
    }

    /// `rows = LayerNorm(rows + residual)`, row blocks in parallel.
    fn add_and_norm(&self, rows: &mut [f32], residual: &[f32], norm: &HostNorm) {
        let block = self.hidden * ROWS_PER_TASK;
        rows.par_chunks_mut(block)
            .zip(residual.par_chunks(block))
            .for_each(|(rows, residual)| {
                math::add_and_norm(rows, residual, &norm.gamma, &norm.beta, self.epsilon)
            });
    }
}

/// Mean of a text's token states, scaled to unit length (zeros stay zeros).
fn pool(states: &[f32], hidden: usize) -> Vec<f32> {
    let mut sum = vec![0.0f32; hidden];
    let tokens = states.len() / hidden;
    for row in states.chunks_exact(hidden) {
        for (s, v) in sum.iter_mut().zip(row) {
            *s += v;
        }
    }
    let count = tokens.max(1) as f32;
    for s in sum.iter_mut() {
        *s /= count;
    }
    let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    for s in sum.iter_mut() {
        *s /= norm;
    }
    sum
}
