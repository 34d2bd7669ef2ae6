//! A BERT encoder (the architecture of all-MiniLM-L6-v2 and other BERT-family
//! sentence-transformers), generic over the burn backend. Inference only: no dropout.

use crate::ml::files::BertConfig;
use burn::module::{Module, Param};
use burn::tensor::activation::gelu;
use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Int, Tensor};

/// A fully connected layer, `y = x·W + b`, with `W` stored as `[d_in, d_out]`.
#[derive(Module, Debug)]
pub struct Dense<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> Dense<B> {
    pub fn zeros(d_in: usize, d_out: usize, device: &B::Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::zeros([d_in, d_out], device)),
            bias: Param::from_tensor(Tensor::zeros([d_out], device)),
        }
    }

    /// `[batch, seq, d_in]` → `[batch, seq, d_out]`, as one 2-D matmul (cheaper than a
    /// broadcast 3-D one).
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, seq, d_in] = x.dims();
        let weight = self.weight.val();
        let d_out = weight.dims()[1];
        let y = x.reshape([batch * seq, d_in]).matmul(weight) + self.bias.val().reshape([1, d_out]);
        y.reshape([batch, seq, d_out])
    }
}

/// Layer normalisation over the last dimension.
#[derive(Module, Debug)]
pub struct Norm<B: Backend> {
    pub gamma: Param<Tensor<B, 1>>,
    pub beta: Param<Tensor<B, 1>>,
    pub epsilon: f64,
}

impl<B: Backend> Norm<B> {
    pub fn new(d: usize, epsilon: f64, device: &B::Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([d], device)),
            beta: Param::from_tensor(Tensor::zeros([d], device)),
            epsilon,
        }
    }

    /// `[batch, seq, d]` → same shape.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let d = x.dims()[2];
        let (var, mean) = x.clone().var_mean_bias(2);
        let normalised = (x - mean) / (var + self.epsilon).sqrt();
        normalised * self.gamma.val().reshape([1, 1, d]) + self.beta.val().reshape([1, 1, d])
    }
}

#[derive(Module, Debug)]
pub struct Embeddings<B: Backend> {
    pub word: Param<Tensor<B, 2>>,
    pub position: Param<Tensor<B, 2>>,
    pub token_type: Param<Tensor<B, 2>>,
    pub norm: Norm<B>,
}

impl<B: Backend> Embeddings<B> {
    /// `ids: [batch, seq]` → `[batch, seq, hidden]`. Single-segment input: token type 0.
    pub fn forward(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [batch, seq] = ids.dims();
        let hidden = self.word.dims()[1];
        let words = self
            .word
            .val()
            .select(0, ids.reshape([batch * seq]))
            .reshape([batch, seq, hidden]);
        let positions = self
            .position
            .val()
            .narrow(0, 0, seq)
            .reshape([1, seq, hidden]);
        let token_type = self
            .token_type
            .val()
            .narrow(0, 0, 1)
            .reshape([1, 1, hidden]);
        self.norm.forward(words + positions + token_type)
    }
}

#[derive(Module, Debug)]
pub struct Layer<B: Backend> {
    /// Query, key and value projections fused into one `[hidden, 3·hidden]` matmul.
    pub qkv: Dense<B>,
    pub attention_out: Dense<B>,
    pub attention_norm: Norm<B>,
    pub intermediate: Dense<B>,
    pub output: Dense<B>,
    pub output_norm: Norm<B>,
    pub heads: usize,
}

impl<B: Backend> Layer<B> {
    /// `x: [batch, seq, hidden]`, `mask_bias: [batch, 1, 1, seq]` (0 for tokens, a large
    /// negative number for padding) → `[batch, seq, hidden]`.
    pub fn forward(&self, x: Tensor<B, 3>, mask_bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let [batch, seq, hidden] = x.dims();
        let head_dim = hidden / self.heads;
        let qkv = self.qkv.forward(x.clone());
        let split = |index: usize| {
            qkv.clone()
                .narrow(2, index * hidden, hidden)
                .reshape([batch, seq, self.heads, head_dim])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        // softmax(q·kᵀ/√head_dim + mask)·v through the backend's attention op: one fused
        // kernel on flex, the same separate steps as before on ndarray.
        let options = AttentionModuleOptions {
            scale: Some(1.0 / (head_dim as f64).sqrt()),
            ..Default::default()
        };
        let context = attention(q, k, v, None, Some(mask_bias), options)
            .swap_dims(1, 2)
            .reshape([batch, seq, hidden]);
        let attended = self
            .attention_norm
            .forward(self.attention_out.forward(context) + x);
        let inner = gelu(self.intermediate.forward(attended.clone()));
        self.output_norm
            .forward(self.output.forward(inner) + attended)
    }
}

#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    pub embeddings: Embeddings<B>,
    pub layers: Vec<Layer<B>>,
}

/// Added to attention scores of padding tokens: far below any real score, yet finite so
/// a softmax over an all-padding row cannot produce NaN.
const MASKED_SCORE: f32 = -1.0e9;

impl<B: Backend> BertModel<B> {
    /// A model of `config`'s shape with placeholder weights; the loader fills them in.
    pub fn init(config: &BertConfig, device: &B::Device) -> Self {
        let h = config.hidden_size;
        let layer_norm_eps = config.layer_norm_eps;
        let zeros = |rows: usize| Param::from_tensor(Tensor::zeros([rows, h], device));
        Self {
            embeddings: Embeddings {
                word: zeros(config.vocab_size),
                position: zeros(config.max_position_embeddings),
                token_type: zeros(config.type_vocab_size),
                norm: Norm::new(h, layer_norm_eps, device),
            },
            layers: (0..config.num_hidden_layers)
                .map(|_| Layer {
                    qkv: Dense::zeros(h, 3 * h, device),
                    attention_out: Dense::zeros(h, h, device),
                    attention_norm: Norm::new(h, layer_norm_eps, device),
                    intermediate: Dense::zeros(h, config.intermediate_size, device),
                    output: Dense::zeros(config.intermediate_size, h, device),
                    output_norm: Norm::new(h, layer_norm_eps, device),
                    heads: config.num_attention_heads,
                })
                .collect(),
        }
    }

    /// `ids, mask: [batch, seq]` (mask 1 for tokens, 0 for padding) → token states
    /// `[batch, seq, hidden]`.
    pub fn forward(&self, ids: Tensor<B, 2, Int>, mask: Tensor<B, 2>) -> Tensor<B, 3> {
        let [batch, seq] = mask.dims();
        let mask_bias = ((mask.neg() + 1.0) * MASKED_SCORE).reshape([batch, 1, 1, seq]);
        let mut hidden = self.embeddings.forward(ids);
        for layer in &self.layers {
            hidden = layer.forward(hidden, mask_bias.clone());
        }
        hidden
    }
}
