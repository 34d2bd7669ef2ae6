//! A local HTTP server that speaks the OpenAI chat-completions protocol, for the LLM tests:
//! the only external service the tests fake.

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the fake model answers the next requests.
#[derive(Debug, Clone)]
pub(crate) enum Behaviour {
    /// 200 with this assistant message content.
    Answer(String),
    /// Waits, then answers.
    Slow(Duration, String),
    /// This HTTP status with an OpenAI-style error body.
    Status(u16),
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    hits: AtomicUsize,
    requests: Mutex<Vec<Value>>,
}

pub(crate) struct FakeLlm {
    pub(crate) base_url: String,
    shared: Arc<Shared>,
}

impl FakeLlm {
    pub(crate) async fn start(behaviour: Behaviour) -> Self {
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(behaviour),
            hits: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::JsonConfig::default().limit(1 << 20))
                .route("/v1/chat/completions", web::post().to(completions))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("the fake LLM binds");
        let port = server.addrs()[0].port();
        actix_web::rt::spawn(server.run());
        Self {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            shared,
        }
    }

    pub(crate) fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// Requests received so far.
    pub(crate) fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    pub(crate) fn last_request(&self) -> Option<Value> {
        self.shared.requests.lock().unwrap().last().cloned()
    }
}

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000u32,
        "model": "fake-model",
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content },
            "finish_reason": "stop"
        }]
    })
}

async fn completions(shared: web::Data<Shared>, body: web::Json<Value>) -> HttpResponse {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    shared.requests.lock().unwrap().push(body.into_inner());
    let behaviour = shared.behaviour.lock().unwrap().clone();
    match behaviour {
        Behaviour::Answer(content) => HttpResponse::Ok().json(completion(&content)),
        Behaviour::Slow(delay, content) => {
            actix_web::rt::time::sleep(delay).await;
            HttpResponse::Ok().json(completion(&content))
        }
        Behaviour::Status(status) => HttpResponse::build(
            actix_web::http::StatusCode::from_u16(status).expect("valid status"),
        )
        .json(json!({"error": {"message": "fake failure", "type": "server_error", "param": null, "code": null}})),
    }
}
