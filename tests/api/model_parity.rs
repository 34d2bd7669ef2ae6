//! Both encoders (burn on its CPU backend, and the native CPU kernels) against
//! sentence-transformers: the 64 reference texts in
//! ../shared/reference/minilm_reference.json must give identical token ids and embeddings
//! with cosine > 0.99999.

use convrec::config::Settings;
use convrec::ml::bert::{BertEmbedder, CpuBackend};
use convrec::ml::native::NativeEmbedder;
use convrec::ml::{cosine, Embedder};
use serde_json::Value;
use std::path::PathBuf;

fn reference() -> Option<Value> {
    let path = std::env::var_os("CONVREC_SHARED_DATA")
        .map(|d| PathBuf::from(d).join("../reference/minilm_reference.json"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/reference/minilm_reference.json")
        });
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).expect("reference is JSON"))
}

fn model_dir() -> PathBuf {
    Settings::load(None).unwrap().model.dir
}

const LOADS: &str = "model loads; run through scripts/test.sh so CONVREC__MODEL__DIR is set";

fn burn_encoder() -> BertEmbedder<CpuBackend> {
    BertEmbedder::load(&model_dir(), Default::default()).expect(LOADS)
}

fn native_encoder() -> NativeEmbedder {
    NativeEmbedder::load(&model_dir()).expect(LOADS)
}

#[test]
fn burn_encoder_matches_sentence_transformers() {
    let encoder = burn_encoder();
    check_reference(&encoder, |text| encoder.tokenizer().ids(text).unwrap());
}

#[test]
fn native_encoder_matches_sentence_transformers() {
    let encoder = native_encoder();
    check_reference(&encoder, |text| encoder.tokenizer().ids(text).unwrap());
}

fn check_reference(encoder: &dyn Embedder, token_ids: impl Fn(&str) -> Vec<u32>) {
    let Some(reference) = reference() else {
        panic!("../shared/reference/minilm_reference.json is missing");
    };
    let entries = reference["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 64);
    let texts: Vec<String> = entries
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();

    for (entry, text) in entries.iter().zip(&texts) {
        let expected: Vec<u32> = entry["token_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_u64().unwrap() as u32)
            .collect();
        let actual = token_ids(text);
        assert_eq!(
            actual, expected,
            "token ids of entry {}: {text:?}",
            entry["index"]
        );
    }

    // Batched as sentence-transformers did (32), so padding is exercised too.
    let mut worst = f32::MAX;
    for (chunk_entries, chunk_texts) in entries.chunks(32).zip(texts.chunks(32)) {
        let vectors = encoder.embed_batch(chunk_texts).unwrap();
        for (entry, vector) in chunk_entries.iter().zip(&vectors) {
            let expected: Vec<f32> = entry["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(vector.len(), 384);
            let similarity = cosine(vector, &expected);
            worst = worst.min(similarity);
            assert!(
                similarity > 0.99999,
                "entry {} ({:?}): cosine {similarity}",
                entry["index"],
                entry["category"]
            );
        }
    }
    eprintln!("worst cosine against sentence-transformers: {worst:.7}");
}

#[test]
fn a_text_embeds_the_same_alone_and_in_a_batch() {
    same_alone_and_in_a_batch(&burn_encoder());
    same_alone_and_in_a_batch(&native_encoder());
}

/// Texts of very different lengths (one cut at the 256-token limit, one empty) in one
/// batch: the native encoder packs them unpadded, burn pads and masks; they must agree.
#[test]
fn native_and_burn_agree_on_uneven_batches() {
    let (native, burn) = (native_encoder(), burn_encoder());
    let texts: Vec<String> = vec![
        "wool socks".into(),
        "waterproof hiking boots with a grippy sole ".repeat(40),
        String::new(),
        "10만원 이하 따뜻한 패딩 추천해줘".into(),
        "🧦🥾".into(),
        "a light rain jacket for spring walks in the city".into(),
    ];
    let a = native.embed_batch(&texts).unwrap();
    let b = burn.embed_batch(&texts).unwrap();
    assert_eq!(a.len(), texts.len());
    for ((x, y), text) in a.iter().zip(&b).zip(&texts) {
        let similarity = cosine(x, y);
        assert!(similarity > 0.99999, "{text:.40?}: cosine {similarity}");
    }
    assert!(native.embed_batch(&[]).unwrap().is_empty());
}

fn same_alone_and_in_a_batch(encoder: &dyn Embedder) {
    let short = "wool socks".to_string();
    let long =
        "a much longer description of a waterproof hiking jacket with many words".to_string();
    let alone = encoder.embed_batch(std::slice::from_ref(&short)).unwrap();
    let batched = encoder.embed_batch(&[long, short]).unwrap();
    assert!(cosine(&alone[0], &batched[1]) > 0.99999);
    let norm: f32 = alone[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
}

#[test]
fn a_missing_model_directory_is_an_error_naming_the_path() {
    let missing = std::path::Path::new("/no/model/here");
    let err = BertEmbedder::<CpuBackend>::load(missing, Default::default())
        .err()
        .expect("loading fails");
    assert!(err.to_string().contains("/no/model/here"), "{err}");
    let err = NativeEmbedder::load(missing).err().expect("loading fails");
    assert!(err.to_string().contains("/no/model/here"), "{err}");
}
