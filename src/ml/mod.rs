//! Embeddings: the sentence-transformer model files, the burn encoder and the narrow
//! `Embedder` trait the rest of the service uses; dense linear algebra for model training
//! (`dense`).

pub mod bert;
pub mod blocking;
pub mod dense;
pub mod embedder;
pub mod files;
pub mod native;

pub use embedder::{cosine, EmbedError, Embedder, TextKind, TextPrompts};
pub use files::{ModelFiles, ModelFilesError};

use crate::config::{EncoderKind, ModelSettings};

/// Loads the encoder `settings.encoder` names: `auto` is burn on CUDA in a `cuda` build and
/// the native CPU encoder otherwise; `burn` is burn on the build's device (CUDA, or
/// [`bert::CpuBackend`]).
pub fn load_embedder(settings: &ModelSettings) -> Result<Box<dyn Embedder>, bert::LoadError> {
    let dir = settings.dir.as_path();
    let use_burn = match settings.encoder {
        EncoderKind::Auto => cfg!(feature = "cuda"),
        EncoderKind::Burn => true,
        EncoderKind::Native => false,
    };
    if !use_burn {
        return Ok(Box::new(native::NativeEmbedder::load(dir)?));
    }
    #[cfg(feature = "cuda")]
    {
        let device = burn_cuda::CudaDevice::default();
        Ok(Box::new(bert::BertEmbedder::<burn_cuda::Cuda<f32>>::load(
            dir, device,
        )?))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok(Box::new(bert::BertEmbedder::<bert::CpuBackend>::load(
            dir,
            Default::default(),
        )?))
    }
}
