//! Loads Hugging Face BERT weights (`model.safetensors`) into [`BertModel`].
//!
//! Name mapping, written once here (HF name → ours), `{i}` the layer index; an optional
//! `bert.` prefix is accepted, and `LayerNorm.gamma/beta` as older checkpoints spell it:
//!
//! | Hugging Face | ours |
//! | --- | --- |
//! | `embeddings.word_embeddings.weight` `[vocab, h]` | `embeddings.word` |
//! | `embeddings.position_embeddings.weight` `[pos, h]` | `embeddings.position` |
//! | `embeddings.token_type_embeddings.weight` `[types, h]` | `embeddings.token_type` |
//! | `embeddings.LayerNorm.{weight,bias}` | `embeddings.norm.{gamma,beta}` |
//! | `encoder.layer.{i}.attention.self.{query,key,value}.{weight,bias}` | `layers[i].qkv`, fused |
//! | `encoder.layer.{i}.attention.output.dense.*` | `layers[i].attention_out` |
//! | `encoder.layer.{i}.attention.output.LayerNorm.*` | `layers[i].attention_norm` |
//! | `encoder.layer.{i}.intermediate.dense.*` | `layers[i].intermediate` |
//! | `encoder.layer.{i}.output.dense.*` | `layers[i].output` |
//! | `encoder.layer.{i}.output.LayerNorm.*` | `layers[i].output_norm` |
//!
//! PyTorch stores linear weights as `[out, in]`; ours are `[in, out]`, so they are
//! transposed on load. The pooler and `position_ids` are not used by sentence embeddings.
//!
//! [`read_weights`] reads and checks them into plain memory ([`HostWeights`]); the burn
//! model ([`load_weights`]) and the native CPU encoder (`crate::ml::native`) are built
//! from that, so the mapping above exists once.

use super::model::{BertModel, Dense, Norm};
use crate::ml::files::BertConfig;
use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a safetensors file: {source}")]
    Format {
        path: String,
        #[source]
        source: safetensors::SafeTensorError,
    },
    #[error("weight {0} is missing")]
    Missing(String),
    #[error("weight {name} has shape {actual:?}, expected {expected:?}")]
    Shape {
        name: String,
        actual: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("weight {name} has dtype {dtype:?}; only F32 is supported")]
    Dtype { name: String, dtype: Dtype },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

struct Reader<'a> {
    tensors: SafeTensors<'a>,
    prefix: &'static str,
}

impl Reader<'_> {
    fn find(&self, name: &str) -> Result<safetensors::tensor::TensorView<'_>, WeightsError> {
        let full = format!("{}{name}", self.prefix);
        self.tensors
            .tensor(&full)
            .or_else(|_| {
                // Older checkpoints call LayerNorm's parameters gamma/beta.
                let old = full
                    .replace("LayerNorm.weight", "LayerNorm.gamma")
                    .replace("LayerNorm.bias", "LayerNorm.beta");
                self.tensors.tensor(&old)
            })
            .map_err(|_| WeightsError::Missing(full))
    }

    /// The tensor's values as f32, checked against the expected shape.
    fn floats(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>, WeightsError> {
        let view = self.find(name)?;
        if view.dtype() != Dtype::F32 {
            return Err(WeightsError::Dtype {
                name: name.to_string(),
                dtype: view.dtype(),
            });
        }
        if view.shape() != expected {
            return Err(WeightsError::Shape {
                name: name.to_string(),
                actual: view.shape().to_vec(),
                expected: expected.to_vec(),
            });
        }
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// A PyTorch linear layer (`[out, in]` weight) as our `[in, out]` [`HostDense`].
    fn dense(&self, name: &str, d_in: usize, d_out: usize) -> Result<HostDense, WeightsError> {
        let stored = self.floats(&format!("{name}.weight"), &[d_out, d_in])?;
        let bias = self.floats(&format!("{name}.bias"), &[d_out])?;
        Ok(HostDense::from_out_in(&stored, bias, d_in, d_out))
    }

    fn norm(&self, name: &str, d: usize) -> Result<HostNorm, WeightsError> {
        Ok(HostNorm {
            gamma: self.floats(&format!("{name}.weight"), &[d])?,
            beta: self.floats(&format!("{name}.bias"), &[d])?,
        })
    }
}

/// A dense layer's weights in memory: `weight` is `[d_in, d_out]` row-major (`y = x·W + b`).
#[derive(Debug, Clone)]
pub struct HostDense {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub d_in: usize,
    pub d_out: usize,
}

impl HostDense {
    /// From a PyTorch-shaped `[out, in]` weight (transposed here).
    pub fn from_out_in(stored: &[f32], bias: Vec<f32>, d_in: usize, d_out: usize) -> Self {
        let mut weight = vec![0.0; d_in * d_out];
        for (o, row) in stored.chunks_exact(d_in).enumerate() {
            for (i, value) in row.iter().enumerate() {
                weight[i * d_out + o] = *value;
            }
        }
        HostDense {
            weight,
            bias,
            d_in,
            d_out,
        }
    }

    /// Several layers on the same input as one: their columns side by side.
    pub fn side_by_side(parts: &[HostDense]) -> HostDense {
        let d_in = parts[0].d_in;
        let d_out: usize = parts.iter().map(|p| p.d_out).sum();
        let mut weight = Vec::with_capacity(d_in * d_out);
        for row in 0..d_in {
            for part in parts {
                weight.extend_from_slice(&part.weight[row * part.d_out..(row + 1) * part.d_out]);
            }
        }
        let bias = parts.iter().flat_map(|p| p.bias.iter().copied()).collect();
        HostDense {
            weight,
            bias,
            d_in,
            d_out,
        }
    }
}

#[derive(Debug, Clone)]
pub struct HostNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct HostLayer {
    /// Query, key and value side by side: `[hidden, 3·hidden]`.
    pub qkv: HostDense,
    pub attention_out: HostDense,
    pub attention_norm: HostNorm,
    pub intermediate: HostDense,
    pub output: HostDense,
    pub output_norm: HostNorm,
}

/// Every weight the encoder uses, read and checked, in plain memory: what both the burn
/// model and the native CPU encoder are built from.
#[derive(Debug, Clone)]
pub struct HostWeights {
    /// `[vocab, hidden]`.
    pub word: Vec<f32>,
    /// `[max_positions, hidden]`.
    pub position: Vec<f32>,
    /// `[types, hidden]`.
    pub token_type: Vec<f32>,
    pub embedding_norm: HostNorm,
    pub layers: Vec<HostLayer>,
}

/// Reads every weight of a model shaped like `config` from the safetensors file at `path`.
/// Returns the file's bytes too, so that the caller can name the weights by their content
/// without reading the file a second time.
pub fn read_weights(
    path: &Path,
    config: &BertConfig,
) -> Result<(HostWeights, Vec<u8>), WeightsError> {
    let bytes = std::fs::read(path).map_err(|source| WeightsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let weights = parse_weights(&bytes, path, config)?;
    Ok((weights, bytes))
}

fn parse_weights(
    bytes: &[u8],
    path: &Path,
    config: &BertConfig,
) -> Result<HostWeights, WeightsError> {
    let tensors = SafeTensors::deserialize(bytes).map_err(|source| WeightsError::Format {
        path: path.display().to_string(),
        source,
    })?;
    let prefix = if tensors.names().iter().any(|n| n.starts_with("bert.")) {
        "bert."
    } else {
        ""
    };
    let reader = Reader { tensors, prefix };
    let hidden = config.hidden_size;
    let inner = config.intermediate_size;
    let mut layers = Vec::with_capacity(config.num_hidden_layers);
    for i in 0..config.num_hidden_layers {
        let base = format!("encoder.layer.{i}");
        let attention = format!("{base}.attention.self");
        let projection = |name: &str| reader.dense(&format!("{attention}.{name}"), hidden, hidden);
        let qkv = HostDense::side_by_side(&[
            projection("query")?,
            projection("key")?,
            projection("value")?,
        ]);
        layers.push(HostLayer {
            qkv,
            attention_out: reader.dense(
                &format!("{base}.attention.output.dense"),
                hidden,
                hidden,
            )?,
            attention_norm: reader.norm(&format!("{base}.attention.output.LayerNorm"), hidden)?,
            intermediate: reader.dense(&format!("{base}.intermediate.dense"), hidden, inner)?,
            output: reader.dense(&format!("{base}.output.dense"), inner, hidden)?,
            output_norm: reader.norm(&format!("{base}.output.LayerNorm"), hidden)?,
        });
    }
    Ok(HostWeights {
        word: reader.floats(
            "embeddings.word_embeddings.weight",
            &[config.vocab_size, hidden],
        )?,
        position: reader.floats(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, hidden],
        )?,
        token_type: reader.floats(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, hidden],
        )?,
        embedding_norm: reader.norm("embeddings.LayerNorm", hidden)?,
        layers,
    })
}

fn matrix<B: Backend>(
    values: &[f32],
    shape: [usize; 2],
    device: &B::Device,
) -> Param<Tensor<B, 2>> {
    Param::from_tensor(Tensor::from_data(
        TensorData::new(values.to_vec(), shape),
        device,
    ))
}

fn vector<B: Backend>(values: &[f32], device: &B::Device) -> Param<Tensor<B, 1>> {
    Param::from_tensor(Tensor::from_data(
        TensorData::new(values.to_vec(), [values.len()]),
        device,
    ))
}

fn set_dense<B: Backend>(target: &mut Dense<B>, source: &HostDense, device: &B::Device) {
    target.weight = matrix(&source.weight, [source.d_in, source.d_out], device);
    target.bias = vector(&source.bias, device);
}

fn set_norm<B: Backend>(target: &mut Norm<B>, source: &HostNorm, device: &B::Device) {
    target.gamma = vector(&source.gamma, device);
    target.beta = vector(&source.beta, device);
}

/// Puts `weights` (read for the model's own config) into `model`.
pub fn load_weights<B: Backend>(
    mut model: BertModel<B>,
    weights: &HostWeights,
    device: &B::Device,
) -> BertModel<B> {
    let e = &mut model.embeddings;
    let hidden = e.word.dims()[1];
    let rows = |values: &[f32]| values.len() / hidden;
    e.word = matrix(&weights.word, [rows(&weights.word), hidden], device);
    e.position = matrix(&weights.position, [rows(&weights.position), hidden], device);
    e.token_type = matrix(
        &weights.token_type,
        [rows(&weights.token_type), hidden],
        device,
    );
    set_norm(&mut e.norm, &weights.embedding_norm, device);
    for (layer, source) in model.layers.iter_mut().zip(&weights.layers) {
        set_dense(&mut layer.qkv, &source.qkv, device);
        set_dense(&mut layer.attention_out, &source.attention_out, device);
        set_norm(&mut layer.attention_norm, &source.attention_norm, device);
        set_dense(&mut layer.intermediate, &source.intermediate, device);
        set_dense(&mut layer.output, &source.output, device);
        set_norm(&mut layer.output_norm, &source.output_norm, device);
    }
    model
}
