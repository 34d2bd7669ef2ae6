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

use super::model::{BertModel, Dense, Norm};
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

    fn matrix<B: Backend>(
        &self,
        name: &str,
        shape: [usize; 2],
        device: &B::Device,
    ) -> Result<Tensor<B, 2>, WeightsError> {
        let values = self.floats(name, &shape)?;
        Ok(Tensor::from_data(TensorData::new(values, shape), device))
    }

    fn vector<B: Backend>(
        &self,
        name: &str,
        len: usize,
        device: &B::Device,
    ) -> Result<Tensor<B, 1>, WeightsError> {
        let values = self.floats(name, &[len])?;
        Ok(Tensor::from_data(TensorData::new(values, [len]), device))
    }

    /// A PyTorch linear layer (`[out, in]` weight) as our `[in, out]` [`Dense`].
    fn dense<B: Backend>(
        &self,
        name: &str,
        d_in: usize,
        d_out: usize,
        device: &B::Device,
    ) -> Result<(Tensor<B, 2>, Tensor<B, 1>), WeightsError> {
        let weight = self
            .matrix::<B>(&format!("{name}.weight"), [d_out, d_in], device)?
            .transpose();
        let bias = self.vector::<B>(&format!("{name}.bias"), d_out, device)?;
        Ok((weight, bias))
    }

    fn set_dense<B: Backend>(
        &self,
        target: &mut Dense<B>,
        name: &str,
        device: &B::Device,
    ) -> Result<(), WeightsError> {
        let [d_in, d_out] = target.weight.dims();
        let (weight, bias) = self.dense(name, d_in, d_out, device)?;
        target.weight = Param::from_tensor(weight);
        target.bias = Param::from_tensor(bias);
        Ok(())
    }

    fn set_norm<B: Backend>(
        &self,
        target: &mut Norm<B>,
        name: &str,
        device: &B::Device,
    ) -> Result<(), WeightsError> {
        let [d] = target.gamma.dims();
        target.gamma = Param::from_tensor(self.vector(&format!("{name}.weight"), d, device)?);
        target.beta = Param::from_tensor(self.vector(&format!("{name}.bias"), d, device)?);
        Ok(())
    }
}

/// Fills every weight of `model` from the safetensors file at `path`.
pub fn load_weights<B: Backend>(
    mut model: BertModel<B>,
    path: &Path,
    device: &B::Device,
) -> Result<BertModel<B>, WeightsError> {
    let display = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| WeightsError::Read {
        path: display.clone(),
        source,
    })?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|source| WeightsError::Format {
        path: display,
        source,
    })?;
    let prefix = if tensors.names().iter().any(|n| n.starts_with("bert.")) {
        "bert."
    } else {
        ""
    };
    let reader = Reader { tensors, prefix };

    let e = &mut model.embeddings;
    let [vocab, hidden] = e.word.dims();
    let positions = e.position.dims()[0];
    let types = e.token_type.dims()[0];
    e.word = Param::from_tensor(reader.matrix(
        "embeddings.word_embeddings.weight",
        [vocab, hidden],
        device,
    )?);
    e.position = Param::from_tensor(reader.matrix(
        "embeddings.position_embeddings.weight",
        [positions, hidden],
        device,
    )?);
    e.token_type = Param::from_tensor(reader.matrix(
        "embeddings.token_type_embeddings.weight",
        [types, hidden],
        device,
    )?);
    reader.set_norm(&mut e.norm, "embeddings.LayerNorm", device)?;

    for (i, layer) in model.layers.iter_mut().enumerate() {
        let base = format!("encoder.layer.{i}");
        let attention = format!("{base}.attention.self");
        let (q_w, q_b) =
            reader.dense::<B>(&format!("{attention}.query"), hidden, hidden, device)?;
        let (k_w, k_b) = reader.dense::<B>(&format!("{attention}.key"), hidden, hidden, device)?;
        let (v_w, v_b) =
            reader.dense::<B>(&format!("{attention}.value"), hidden, hidden, device)?;
        layer.qkv.weight = Param::from_tensor(Tensor::cat(vec![q_w, k_w, v_w], 1));
        layer.qkv.bias = Param::from_tensor(Tensor::cat(vec![q_b, k_b, v_b], 0));
        reader.set_dense(
            &mut layer.attention_out,
            &format!("{base}.attention.output.dense"),
            device,
        )?;
        reader.set_norm(
            &mut layer.attention_norm,
            &format!("{base}.attention.output.LayerNorm"),
            device,
        )?;
        reader.set_dense(
            &mut layer.intermediate,
            &format!("{base}.intermediate.dense"),
            device,
        )?;
        reader.set_dense(&mut layer.output, &format!("{base}.output.dense"), device)?;
        reader.set_norm(
            &mut layer.output_norm,
            &format!("{base}.output.LayerNorm"),
            device,
        )?;
    }
    Ok(model)
}
