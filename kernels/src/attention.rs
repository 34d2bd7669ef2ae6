//! Self-attention over texts packed back to back, without padding: each (text, head) pair
//! attends over its own tokens only, so a batch of uneven texts costs what its tokens cost.
//! This equals BERT's masked attention, where a padded key gets a weight of exactly zero.

use crate::gemm;
use crate::math::{self, simd_fn};
use crate::SharedOut;
use rayon::prelude::*;

/// `qkv: [tokens, 3·hidden]` (query, key, value of each token side by side) →
/// `context: [tokens, hidden]`, the heads' outputs side by side. `texts` holds the first
/// token and the token count of each text.
pub fn self_attention(
    qkv: &[f32],
    texts: &[(usize, usize)],
    hidden: usize,
    heads: usize,
    context: &mut [f32],
) {
    let head_dim = hidden / heads;
    // The length first: no other use of `context` after the shared pointer is taken.
    let context_len = context.len();
    let out = SharedOut::new(context);
    (0..texts.len() * heads).into_par_iter().for_each(|task| {
        let (start, len) = texts[task / heads];
        let column = (task % heads) * head_dim;
        let result = attend(qkv, start, len, column, head_dim, hidden);
        for (t, row) in result.chunks_exact(head_dim).enumerate() {
            let offset = (start + t) * hidden + column;
            assert!(offset + head_dim <= context_len);
            // SAFETY: in bounds (checked above); each task writes its own text's rows in
            // its own head's columns, so no two tasks write the same element.
            unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), out.get().add(offset), head_dim) };
        }
    });
}

/// One head of one text, `[len, head_dim]`: `softmax(q·kᵀ/√head_dim)·v` as two matrix
/// products on the dense layers' micro-kernel, the softmax between them.
fn attend(
    qkv: &[f32],
    start: usize,
    len: usize,
    column: usize,
    head_dim: usize,
    hidden: usize,
) -> Vec<f32> {
    let stride = 3 * hidden;
    let rows = |part: usize| {
        (0..len).map(move |t| {
            let offset = (start + t) * stride + part * hidden + column;
            &qkv[offset..offset + head_dim]
        })
    };
    let scale = 1.0 / (head_dim as f32).sqrt();
    let mut queries = Vec::with_capacity(len * head_dim);
    for query in rows(0) {
        queries.extend(query.iter().map(|q| q * scale));
    }
    // kᵀ (`[head_dim, len]`) in panels: key `s` is column `s`.
    let mut packed = vec![0.0; gemm::packed_len(head_dim, len)];
    for (s, key) in rows(1).enumerate() {
        let panel = &mut packed[(s / gemm::PANEL) * head_dim * gemm::PANEL..];
        for (j, value) in key.iter().enumerate() {
            panel[j * gemm::PANEL + s % gemm::PANEL] = *value;
        }
    }
    let mut scores = vec![0.0; len * len];
    gemm::product(&queries, len, head_dim, &packed, len, &mut scores, len);
    softmax_rows(&mut scores, len);
    // v (`[len, head_dim]`) in panels: value `s` is row `s`.
    packed.clear();
    packed.resize(gemm::packed_len(len, head_dim), 0.0);
    for (s, value) in rows(2).enumerate() {
        for (p, chunk) in value.chunks(gemm::PANEL).enumerate() {
            let offset = p * len * gemm::PANEL + s * gemm::PANEL;
            packed[offset..offset + chunk.len()].copy_from_slice(chunk);
        }
    }
    let mut result = vec![0.0; len * head_dim];
    gemm::product(&scores, len, len, &packed, head_dim, &mut result, head_dim);
    result
}

simd_fn! {
    /// Softmax of every row of width `width`.
    pub fn softmax_rows(scores: &mut [f32], width: usize) {
        for row in scores.chunks_exact_mut(width) {
            math::softmax_row(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Padded, masked attention computed the textbook way, in f64.
    fn reference(qkv: &[f32], start: usize, len: usize, hidden: usize, heads: usize) -> Vec<f64> {
        let head_dim = hidden / heads;
        let value = |t: usize, part: usize, i: usize| {
            f64::from(qkv[(start + t) * 3 * hidden + part * hidden + i])
        };
        let mut out = vec![0.0; len * hidden];
        for h in 0..heads {
            for t in 0..len {
                let scores: Vec<f64> = (0..len)
                    .map(|s| {
                        (0..head_dim)
                            .map(|j| value(t, 0, h * head_dim + j) * value(s, 1, h * head_dim + j))
                            .sum::<f64>()
                            / (head_dim as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                for (s, score) in scores.iter().enumerate() {
                    let weight = (score - max).exp() / total;
                    for j in 0..head_dim {
                        out[t * hidden + h * head_dim + j] +=
                            weight * value(s, 2, h * head_dim + j);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn each_text_attends_over_its_own_tokens_only() {
        let (hidden, heads) = (24, 3);
        let texts = [(0usize, 5usize), (5, 1), (6, 9)];
        let tokens = 15;
        let qkv: Vec<f32> = (0..tokens * 3 * hidden)
            .map(|i| ((i * 7919 % 997) as f32 / 997.0 - 0.5) * 3.0)
            .collect();
        let mut context = vec![f32::NAN; tokens * hidden];
        self_attention(&qkv, &texts, hidden, heads, &mut context);
        for &(start, len) in &texts {
            let want = reference(&qkv, start, len, hidden, heads);
            let got = &context[start * hidden..(start + len) * hidden];
            for (g, w) in got.iter().zip(&want) {
                assert!((f64::from(*g) - w).abs() < 1e-5, "{g} vs {w}");
            }
        }
    }
}
