//! The embedding API against the real model and the real Redis: `/embed`, `/batch-embed`,
//! `/similarity`, `/stats`, the cache, batching, overload and a Redis outage.

use crate::helpers::{error_code, TestApp, TestAppBuilder};
use convrec::ml::cosine;
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The model's vectors: all-MiniLM-L6-v2.
const DIMENSION: usize = 384;

/// Settings for an embedding test. A busy test machine can stall Redis past the production
/// deadline (50 ms), and the cache tests need it to answer. The event backbone plays no part
/// here and is left off.
fn embedding_app() -> TestAppBuilder {
    TestApp::builder().settings(|settings| {
        settings.embedding.cache_timeout_ms = 2_000;
        settings.events.enabled = false;
    })
}

async fn spawn_embedding_app() -> TestApp {
    embedding_app().spawn().await
}

async fn post(app: &TestApp, path: &str, body: &Value) -> Response {
    app.client
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .expect("request sent")
}

async fn post_raw(app: &TestApp, path: &str, body: String) -> Response {
    app.client
        .post(app.url(path))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request sent")
}

/// `POST /embed` that must succeed; returns the body.
async fn embed(app: &TestApp, text: &str) -> Value {
    let response = post(app, "/embed", &json!({ "text": text })).await;
    assert_eq!(response.status(), StatusCode::OK, "embedding {text:?}");
    response.json().await.unwrap()
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .expect("an array of numbers")
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

async fn similarity(app: &TestApp, a: &[f32], b: &[f32]) -> f32 {
    let response = post(app, "/similarity", &json!({ "vector1": a, "vector2": b })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["similarity"].as_f64().unwrap() as f32
}

async fn stats(app: &TestApp) -> Value {
    let response = app.get("/stats").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The value of a Prometheus sample, 0 if absent.
fn sample(metrics: &str, series: &str) -> f64 {
    crate::helpers::sample(metrics, series).unwrap_or(0.0)
}

#[actix_web::test]
async fn embed_returns_a_384_dimensional_unit_vector() {
    let app = spawn_embedding_app().await;
    let body = embed(&app, "waterproof hiking jacket").await;
    let vector = floats(&body["vector"]);
    assert_eq!(vector.len(), DIMENSION);
    assert_eq!(body["dimension"], DIMENSION);
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    assert_eq!(body["cached"], false);
    assert!(body["processing_time_ms"].as_f64().unwrap() > 0.0);
}

#[actix_web::test]
async fn the_same_text_twice_is_served_from_the_cache_the_second_time() {
    let app = spawn_embedding_app().await;
    let prefix = app.settings.redis.key_prefix.clone();
    let redis_url = app.settings.redis.url.expose_secret().to_string();
    let text = "겨울 패딩 10만원 이하로 추천해줘";

    let first = embed(&app, text).await;
    let second = embed(&app, text).await;
    assert_eq!(first["cached"], false);
    assert_eq!(second["cached"], true);
    assert_eq!(first["vector"], second["vector"]);

    // The stored entry: `{prefix}embed:{sha256(model_id \0 text)}`, little-endian f32, TTL.
    let model_id = stats(&app).await["model"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let digest = Sha256::digest(format!("{model_id}\0{text}").as_bytes());
    let key = format!("{prefix}embed:{}", hex::encode(digest));
    let mut conn = redis::Client::open(redis_url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let bytes: Vec<u8> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(bytes.len(), DIMENSION * 4);
    let stored: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(stored, floats(&first["vector"]));
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=3600).contains(&ttl), "ttl {ttl}");
    let (hits, misses): (u64, u64) = redis::pipe()
        .cmd("GET")
        .arg(format!("{prefix}stats:hits"))
        .cmd("GET")
        .arg(format!("{prefix}stats:misses"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((hits, misses), (1, 1));
}

#[actix_web::test]
async fn batch_embed_keeps_the_input_order_and_matches_single_embeds() {
    let app = spawn_embedding_app().await;
    let texts = [
        "waterproof hiking jacket",
        "chocolate cookies",
        "가볍고 따뜻한 겨울 패딩",
        "a much longer description of a pair of trail running shoes with a grippy sole",
        "waterproof hiking jacket",
    ];
    let response = post(&app, "/batch-embed", &json!({ "texts": texts })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["batch_size"], texts.len());
    assert_eq!(body["dimension"], DIMENSION);
    assert_eq!(body["cached_count"], 0);
    let vectors: Vec<Vec<f32>> = body["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    assert_eq!(vectors.len(), texts.len());
    assert_eq!(
        vectors[0], vectors[4],
        "a repeated text gets the same vector"
    );

    for text in texts {
        let single = embed(&app, text).await;
        assert_eq!(single["cached"], true, "the batch cached {text:?}");
    }
    // Against vectors computed alone (fresh app, fresh cache): padding must not matter.
    let fresh = spawn_embedding_app().await;
    for (text, batched) in texts.iter().zip(&vectors) {
        let single = floats(&embed(&fresh, text).await["vector"]);
        let similarity = cosine(&single, batched);
        assert!(similarity > 0.99999, "{text:?}: cosine {similarity}");
    }

    let again = post(&app, "/batch-embed", &json!({ "texts": texts })).await;
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["cached_count"], texts.len());
}

#[actix_web::test]
async fn similarity_ranks_a_paraphrase_above_an_unrelated_text() {
    let app = spawn_embedding_app().await;
    let jacket = floats(&embed(&app, "waterproof hiking jacket").await["vector"]);
    let rain = floats(&embed(&app, "rain jacket for trekking").await["vector"]);
    let cookies = floats(&embed(&app, "chocolate cookies").await["vector"]);

    let itself = similarity(&app, &jacket, &jacket).await;
    assert!((itself - 1.0).abs() < 1e-5, "self-similarity {itself}");
    let paraphrase = similarity(&app, &jacket, &rain).await;
    let unrelated = similarity(&app, &jacket, &cookies).await;
    assert!(
        paraphrase > unrelated + 0.2,
        "paraphrase {paraphrase}, unrelated {unrelated}"
    );
    assert!((paraphrase - cosine(&jacket, &rain)).abs() < 1e-6);
}

#[actix_web::test]
async fn every_bad_input_is_a_4xx_with_the_json_error_shape() {
    let app = spawn_embedding_app().await;
    let max_chars = app.settings.embedding.max_text_chars;
    let unit = vec![0.05f32; DIMENSION];
    // Finite in JSON, infinite as an f32.
    let overflowing = format!("[1e39{}]", ",0.05".repeat(DIMENSION - 1));
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "/embed",
            json!({ "text": "" }).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_text",
        ),
        (
            "/embed",
            json!({ "text": " \n\t " }).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_text",
        ),
        (
            "/embed",
            json!({ "text": "가".repeat(max_chars + 1) }).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_text",
        ),
        (
            "/embed",
            json!({ "txt": "socks" }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "/embed",
            json!({ "text": 42 }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "/embed",
            "{\"text\": ".to_string(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "/embed",
            json!({ "text": "x".repeat(300_000) }).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "/batch-embed",
            json!({ "texts": [] }).to_string(),
            StatusCode::BAD_REQUEST,
            "no_texts",
        ),
        (
            "/batch-embed",
            json!({ "texts": vec!["socks"; 101] }).to_string(),
            StatusCode::BAD_REQUEST,
            "too_many_texts",
        ),
        (
            "/batch-embed",
            json!({ "texts": ["socks", "  "] }).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_text",
        ),
        (
            "/similarity",
            json!({ "vector1": [0.1, 0.2], "vector2": [0.1, 0.2] }).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_vector",
        ),
        (
            "/similarity",
            json!({ "vector1": unit, "vector2": &unit[1..] }).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_vector",
        ),
        (
            "/similarity",
            format!(
                r#"{{"vector1": {overflowing}, "vector2": {}}}"#,
                json!(unit)
            ),
            StatusCode::BAD_REQUEST,
            "invalid_vector",
        ),
        (
            // Beyond f64: serde_json refuses the number itself.
            "/similarity",
            format!(r#"{{"vector1": [1e999], "vector2": {}}}"#, json!(unit)),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "/similarity",
            json!({ "vector1": unit, "vector2": null }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ];
    for (path, body, status, code) in cases {
        let shown: String = body.chars().take(80).collect();
        let response = post_raw(&app, path, body).await;
        assert_eq!(response.status(), status, "{path} {shown}");
        assert_eq!(error_code(response, status).await, code, "{path} {shown}");
    }
}

#[actix_web::test]
async fn an_overloaded_service_answers_429_with_retry_after() {
    let app = embedding_app()
        .settings(|settings| {
            settings.embedding.workers = 1;
            settings.embedding.max_batch_size = 1;
            settings.embedding.queue_capacity = 1;
            settings.embedding.max_wait_ms = 0;
        })
        .spawn()
        .await;
    let long = "a long and winding description of a waterproof hiking jacket ".repeat(8);
    let requests = (0..24).map(|i| {
        let app = &app;
        let body = json!({ "text": format!("{i} {long}") });
        async move { post(app, "/embed", &body).await }
    });
    let responses = futures::future::join_all(requests).await;
    let mut overloaded = 0;
    for response in responses {
        match response.status() {
            StatusCode::OK => {}
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(response.headers()["retry-after"], "1");
                assert_eq!(
                    error_code(response, StatusCode::TOO_MANY_REQUESTS).await,
                    "overloaded"
                );
                overloaded += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        overloaded > 0,
        "24 concurrent requests overflow a queue of 1"
    );
    let text = app.metrics_text().await;
    assert_eq!(
        sample(
            &text,
            r#"embedding_requests_total{endpoint="embed",outcome="overloaded"}"#
        ),
        f64::from(overloaded)
    );
}

#[actix_web::test]
async fn embedding_goes_on_uncached_while_redis_is_down() {
    let app = embedding_app()
        .settings(|settings| {
            // Nothing listens on port 1.
            settings.redis.url = SecretString::from("redis://127.0.0.1:1".to_string());
            settings.redis.connect_timeout_ms = 200;
            settings.embedding.cache_timeout_ms = 50;
        })
        .spawn()
        .await;
    for _ in 0..2 {
        let body = embed(&app, "wool socks").await;
        assert_eq!(body["cached"], false);
        assert_eq!(floats(&body["vector"]).len(), DIMENSION);
    }
    let batch = post(&app, "/batch-embed", &json!({ "texts": ["a", "b"] })).await;
    assert_eq!(batch.status(), StatusCode::OK);
    let text = app.metrics_text().await;
    assert!(
        sample(&text, r#"cache_errors_total{operation="get"}"#) >= 1.0,
        "{text}"
    );
    let stats = stats(&app).await;
    assert_eq!(stats["cache"]["scope"], "instance");
    assert_eq!(stats["cache"]["hits"], 0);
}

#[actix_web::test]
async fn concurrent_requests_are_batched() {
    let app = embedding_app()
        .settings(|settings| settings.embedding.max_wait_ms = 20)
        .spawn()
        .await;
    let requests = (0..32).map(|i| {
        let app = &app;
        async move { embed(app, &format!("product number {i} for the batching test")).await }
    });
    futures::future::join_all(requests).await;

    let stats = stats(&app).await;
    let batching = &stats["batching"];
    assert_eq!(batching["texts"], 32);
    assert!(batching["largest_batch"].as_u64().unwrap() > 1, "{stats}");
    assert!(batching["batches"].as_u64().unwrap() < 32, "{stats}");
    assert_eq!(stats["requests_served"], 32);
    assert_eq!(stats["queue_depth"], 0);
    let text = app.metrics_text().await;
    assert_eq!(sample(&text, "embedding_batch_size_sum"), 32.0);
    assert!(sample(&text, "embedding_batch_size_count") < 32.0);
}

#[actix_web::test]
async fn stats_report_the_model_the_batching_and_the_cache() {
    let app = spawn_embedding_app().await;
    embed(&app, "trail running shoes").await;
    embed(&app, "trail running shoes").await;
    let stats = stats(&app).await;
    assert_eq!(stats["model"]["dimension"], DIMENSION);
    assert!(stats["model"]["id"].as_str().unwrap().contains('@'));
    assert_eq!(stats["workers"], 2);
    assert_eq!(stats["batching"]["max_batch_size"], 32);
    assert_eq!(stats["batching"]["max_batch_tokens"], 8192);
    assert_eq!(stats["batching"]["max_wait_ms"], 5);
    assert_eq!(stats["cache"]["scope"], "redis");
    assert_eq!(stats["cache"]["hits"], 1);
    assert_eq!(stats["cache"]["misses"], 1);
    assert_eq!(stats["cache"]["hit_rate"], 0.5);
    assert_eq!(stats["requests_served"], 2);
    assert_eq!(stats["queue_depth"], 0);

    let text = app.metrics_text().await;
    assert_eq!(
        sample(
            &text,
            r#"embedding_requests_total{endpoint="embed",outcome="ok"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(&text, r#"embedding_response_time_count{endpoint="embed"}"#),
        2.0
    );
    assert_eq!(sample(&text, "cache_hit_rate"), 0.5);
}

#[actix_web::test]
async fn the_service_refuses_to_start_without_its_model_and_names_the_path() {
    let err = TestApp::builder()
        .settings(|settings| settings.model.dir = "/no/such/model/dir".into())
        .try_spawn()
        .await
        .err()
        .expect("start-up fails");
    assert!(err.to_string().contains("/no/such/model/dir"), "{err}");
}
