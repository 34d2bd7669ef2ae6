//! Search against the local Elasticsearch-compatible server: messages become searchable
//! through the `es-sync` group, Korean and English, members see only their own, products by
//! text and meaning, and a stopped server answers 503 and catches up after it is back.

use crate::helpers::{error_code, free_port, product_body, wait_until, TestApp, TestAppBuilder};
use convrec::db::entities::{conversation, conversation_message, member};
use convrec::events::envelope::{Envelope, EventType};
use convrec::events::outbox;
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, EntityTrait, Set, TransactionTrait};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The periodic product sync (every second here) on a loaded 2-core machine.
const INDEX_TIMEOUT: Duration = Duration::from_secs(90);

fn search_app() -> TestAppBuilder {
    TestApp::builder().settings(|settings| settings.elasticsearch.product_sync_interval_secs = 1)
}

/// Writes a user message the way the chat does: the member, the conversation, the message
/// and its `conversation.message.created` outbox row in one transaction.
async fn store_message(app: &TestApp, member_id: &str, conversation_id: Uuid, text: &str) -> Uuid {
    let txn = app.db.begin().await.unwrap();
    let now = chrono::Utc::now().fixed_offset();
    if member::Entity::find_by_id(member_id.to_string())
        .one(&txn)
        .await
        .unwrap()
        .is_none()
    {
        member::ActiveModel {
            id: Set(member_id.to_string()),
            display_name: Set(None),
            created_at: Set(now),
        }
        .insert(&txn)
        .await
        .unwrap();
    }
    if conversation::Entity::find_by_id(conversation_id)
        .one(&txn)
        .await
        .unwrap()
        .is_none()
    {
        conversation::ActiveModel {
            id: Set(conversation_id),
            member_id: Set(member_id.to_string()),
            title: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await
        .unwrap();
    }
    let message_id = Uuid::now_v7();
    conversation_message::ActiveModel {
        id: Set(message_id),
        conversation_id: Set(conversation_id),
        member_id: Set(member_id.to_string()),
        role: Set("user".into()),
        content: Set(text.into()),
        embedding: Set(None),
        intent: Set(None),
        products: Set(None),
        created_at: Set(now),
    }
    .insert(&txn)
    .await
    .unwrap();
    let event = Envelope::new(
        EventType::ConversationMessageCreated,
        member_id,
        json!({"conversation_id": conversation_id, "message_id": message_id, "role": "user", "text": text}),
    );
    outbox::enqueue(&txn, &event).await.unwrap();
    txn.commit().await.unwrap();
    message_id
}

async fn search(app: &TestApp, bearer: &str, query: &str) -> reqwest::Response {
    app.get_as(bearer, &format!("/api/search/messages?{query}"))
        .await
}

/// The message ids a search answers (panics on a non-200).
async fn hit_ids(app: &TestApp, bearer: &str, query: &str) -> Vec<String> {
    let response = search(app, bearer, query).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    let body: Value = response.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["message_id"].as_str().unwrap().to_string())
        .collect()
}

/// Whether a search answers message `id` (call after the drain and the refresh).
async fn is_hit(app: &TestApp, bearer: &str, query: &str, id: Uuid) -> bool {
    hit_ids(app, bearer, query).await.contains(&id.to_string())
}

/// Waits until es-sync indexed every message written so far, and makes them searchable.
async fn index_messages(app: &TestApp) {
    app.drain_events().await;
    app.refresh_search().await;
}

#[actix_web::test]
async fn messages_become_searchable_in_korean_and_english_and_members_see_only_their_own() {
    let app = search_app().spawn().await;
    let alice = app.member_token("alice");
    let bob = app.member_token("bob");
    let alice_conversation = Uuid::new_v4();
    let korean = store_message(
        &app,
        "alice",
        alice_conversation,
        "겨울 패딩 10만원 이하로 추천해줘",
    )
    .await;
    let english = store_message(
        &app,
        "alice",
        alice_conversation,
        "I need waterproof hiking boots",
    )
    .await;
    let bobs = store_message(&app, "bob", Uuid::new_v4(), "패딩 말고 가벼운 바람막이").await;
    // Shopper text that is markup must come back as text inside the highlight.
    let markup = store_message(
        &app,
        "alice",
        alice_conversation,
        "<img src=x onerror=alert(1)> raincoat please",
    )
    .await;

    let started = Instant::now();
    index_messages(&app).await;
    assert!(
        is_hit(&app, &alice, "q=패딩", korean).await,
        "Korean message indexed"
    );
    assert!(
        is_hit(&app, &alice, "q=waterproof", english).await,
        "English message indexed"
    );
    assert!(
        is_hit(&app, &bob, "q=바람막이", bobs).await,
        "bob's message indexed"
    );
    println!(
        "messages searchable {:.1}s after they were written",
        started.elapsed().as_secs_f64()
    );

    // The highlight marks the matched term.
    let body: Value = search(&app, &alice, "q=waterproof")
        .await
        .json()
        .await
        .unwrap();
    let highlight = body["items"][0]["highlights"][0].as_str().unwrap();
    assert!(highlight.contains("<em>waterproof</em>"), "{highlight}");

    assert!(
        is_hit(&app, &alice, "q=raincoat", markup).await,
        "markup message indexed"
    );
    let body: Value = search(&app, &alice, "q=raincoat")
        .await
        .json()
        .await
        .unwrap();
    let highlight = body["items"][0]["highlights"][0].as_str().unwrap();
    assert!(
        highlight.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{highlight}"
    );
    assert!(highlight.contains("<em>raincoat</em>"), "{highlight}");
    assert!(!highlight.contains("<img"), "{highlight}");

    // Both wrote 패딩; each sees only their own.
    assert_eq!(
        hit_ids(&app, &alice, "q=패딩").await,
        vec![korean.to_string()]
    );
    assert_eq!(hit_ids(&app, &bob, "q=패딩").await, vec![bobs.to_string()]);
    let error = error_code(
        search(&app, &alice, "q=패딩&member=bob").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(error, "forbidden");
    // The shop sees everyone's, or one member's.
    assert_eq!(hit_ids(&app, &app.admin_token, "q=패딩").await.len(), 2);
    assert_eq!(
        hit_ids(&app, &app.admin_token, "q=패딩&member=bob").await,
        vec![bobs.to_string()]
    );
    // Conversation and time filters.
    assert_eq!(
        hit_ids(
            &app,
            &alice,
            &format!("q=패딩&conversation={}", Uuid::new_v4())
        )
        .await
        .len(),
        0
    );
    assert_eq!(
        hit_ids(
            &app,
            &alice,
            "q=패딩&from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z"
        )
        .await
        .len(),
        0
    );
}

#[actix_web::test]
async fn a_korean_word_is_found_inside_a_longer_form_and_before_a_particle() {
    let app = search_app().spawn().await;
    let carol = app.member_token("carol");
    let conversation = Uuid::new_v4();
    let long_padding = store_message(&app, "carol", conversation, "롱패딩을 찾고 있어요").await;
    let fridge = store_message(&app, "carol", conversation, "냉장고 정리함도 보여줘").await;
    index_messages(&app).await;
    assert!(
        is_hit(&app, &carol, "q=정리함", fridge).await,
        "both messages indexed"
    );
    assert_eq!(
        hit_ids(&app, &carol, "q=패딩").await,
        vec![long_padding.to_string()]
    );
    assert_eq!(
        hit_ids(&app, &carol, "q=롱패딩이").await,
        vec![long_padding.to_string()]
    );
    let body: Value = search(&app, &carol, "q=패딩").await.json().await.unwrap();
    let highlight = body["items"][0]["highlights"][0].as_str().unwrap();
    assert!(highlight.contains("<em>패딩</em>"), "{highlight}");
    assert!(hit_ids(&app, &carol, "q=러닝화").await.is_empty());
}

#[actix_web::test]
async fn bad_search_requests_are_clear_4xx() {
    let app = search_app().spawn().await;
    let alice = app.member_token("alice");
    let no_token = app.get("/api/search/messages?q=x").await;
    assert_eq!(
        error_code(no_token, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );
    for query in [
        "q=",
        "q=%20%20",
        "limit=5",
        "q=x&limit=0",
        "q=x&limit=51",
        "q=x&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
    ] {
        let code = error_code(search(&app, &alice, query).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(code, "invalid_query", "{query}");
    }
    let long = "가".repeat(201);
    let code = error_code(
        search(&app, &alice, &format!("q={long}")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(code, "invalid_query");
    let code = error_code(
        search(&app, &alice, "q=x&from=yesterday").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(code, "invalid_query");
    let code = error_code(
        app.get("/api/search/products?q=").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(code, "invalid_query");
}

#[actix_web::test]
async fn products_are_synced_and_found_by_text_and_meaning() {
    let app = search_app().spawn().await;
    let mut jacket = product_body("SR-1");
    jacket["title"] = json!("방수 고어텍스 등산 자켓");
    jacket["description"] = json!("waterproof breathable hiking shell jacket");
    jacket["category"] = json!("outdoor/jackets");
    let jacket = app.create_product(&jacket).await;
    let mut mug = product_body("SR-2");
    mug["title"] = json!("스테인리스 보온 머그");
    mug["description"] = json!("insulated coffee mug keeps drinks hot");
    mug["category"] = json!("home/kitchen");
    let mug = app.create_product(&mug).await;

    // Polled, not drained: products reach the index through the periodic product sync (every
    // second here), which is not part of the event backbone.
    let found = wait_until(INDEX_TIMEOUT, || async {
        let response = app.get("/api/search/products?q=등산%20자켓").await;
        if response.status() != StatusCode::OK {
            return false;
        }
        let body: Value = response.json().await.unwrap();
        body["items"][0]["product_id"] == jacket["id"]
    })
    .await;
    assert!(
        found,
        "the new product is indexed and ranks first for its words"
    );
    let body: Value = app
        .get("/api/search/products?q=waterproof")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["items"][0]["product_id"], jacket["id"]);
    assert!(body["items"][0]["highlights"][0]
        .as_str()
        .unwrap()
        .contains("<em>"));
    // Korean words run together and before a particle (the Hangul-bigram sub-fields).
    let body: Value = app
        .get("/api/search/products?q=등산자켓을")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["items"][0]["product_id"], jacket["id"]);
    // Category filter: the jacket is not in home/.
    let body: Value = app
        .get("/api/search/products?q=waterproof&category=home")
        .await
        .json()
        .await
        .unwrap();
    assert!(body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["category"] == "home/kitchen"));

    // A deleted product leaves the index on a following sync (the delete trigger's tombstone).
    let mug_is_found = || async {
        let body: Value = app
            .get("/api/search/products?q=머그")
            .await
            .json()
            .await
            .unwrap();
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["product_id"] == mug["id"])
    };
    assert!(wait_until(INDEX_TIMEOUT, mug_is_found).await);
    let deleted = app
        .client
        .delete(app.url(&format!("/api/products/{}", mug["id"].as_str().unwrap())))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = wait_until(INDEX_TIMEOUT, || async { !mug_is_found().await }).await;
    assert!(gone, "the deleted product is no longer found");
    // ... and its tombstone is forgotten once the index confirmed the removal.
    let cleared = wait_until(INDEX_TIMEOUT, || async {
        use sea_orm::ConnectionTrait;
        let row = app
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT count(*)::bigint AS n FROM product_tombstones",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap() == 0
    })
    .await;
    assert!(cleared, "the tombstone is removed after the index delete");
}

/// A noida-db (Elasticsearch-compatible) server of the test's own, so it can be stopped
/// without disturbing the shared one. Killed and removed when dropped.
struct PrivateSearchServer {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl PrivateSearchServer {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("convrec-noida-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            dir,
            port: free_port(),
            child: None,
        };
        server.resume();
        server
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn resume(&mut self) {
        let cache = std::env::var_os("CONVREC_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/convrec")
            });
        // The native server itself: the `venv/bin/noida-db` script is a Python wrapper whose
        // child would survive a kill of the wrapper.
        let binary = std::fs::read_dir(cache.join("venv/lib"))
            .unwrap()
            .map(|e| e.unwrap().path().join("site-packages/noida_db/noida-db"))
            .find(|p| p.is_file())
            .expect("noida-db is installed (scripts/stack.sh install)");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("noida.log"))
            .unwrap();
        let port = self.port.to_string();
        let data = self.dir.join("data");
        let child = Command::new(&binary)
            .args([
                "start",
                "--only",
                "elasticsearch",
                "--elasticsearch-port",
                &port,
            ])
            .args(["--host", "127.0.0.1", "--data-dir"])
            .arg(&data)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "private search server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server the way an operator would (SIGTERM, then SIGKILL after 10 s).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateSearchServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[actix_web::test]
async fn a_stopped_search_server_answers_503_and_missed_messages_are_indexed_after_restart() {
    let mut server = PrivateSearchServer::start();
    let app = search_app()
        .settings(|settings| {
            settings.elasticsearch.url = SecretString::from(server.url());
            settings.elasticsearch.request_timeout_ms = 1000;
        })
        .spawn()
        .await;
    let alice = app.member_token("alice");
    let conversation = Uuid::new_v4();
    let before = store_message(&app, "alice", conversation, "first message about tents").await;
    index_messages(&app).await;
    assert!(is_hit(&app, &alice, "q=tents", before).await);

    // Durable on the server's disk before it is killed (a flush, as Elasticsearch's translog
    // would make it): what is lost on a crash before that is the server's business, not ours.
    reqwest::Client::new()
        .post(format!("{}/_flush", server.url()))
        .send()
        .await
        .unwrap();
    server.stop();
    let missed = store_message(
        &app,
        "alice",
        conversation,
        "second message about sleeping bags",
    )
    .await;
    let response = search(&app, &alice, "q=tents").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(
        error_code(response, StatusCode::SERVICE_UNAVAILABLE).await,
        "search_unavailable"
    );
    let products = app.get("/api/search/products?q=tent").await;
    assert_eq!(products.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Meanwhile the event waits in Kafka (the es-sync group retries).
    tokio::time::sleep(Duration::from_secs(3)).await;

    server.resume();
    index_messages(&app).await;
    assert!(
        is_hit(&app, &alice, "q=sleeping", missed).await,
        "the message written while the server was down is indexed after it is back"
    );
    assert!(
        is_hit(&app, &alice, "q=tents", before).await,
        "nothing indexed before was lost"
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Prints search latency through the HTTP API (the closing note's figures): the demo catalog
/// with embeddings for products, 1,000 indexed messages for message search. No timing
/// assertion: this 2-core machine's speed swings too much for one.
#[actix_web::test]
async fn search_latency_through_the_api() {
    use convrec::search::documents::MessageDoc;
    use convrec::search::{bulk::index_documents, IndexKind, SearchClient};

    let app = search_app().spawn().await;
    let settings = &app.settings;
    app.import_demo_catalog().await;
    app.embed_catalog().await;

    let client = SearchClient::new(
        convrec::app::elasticsearch_client(&settings.elasticsearch).unwrap(),
        &settings.elasticsearch,
    );
    let words = [
        "패딩",
        "운동화",
        "waterproof",
        "headphones",
        "캠핑",
        "선물",
        "running",
        "향수",
    ];
    let docs: Vec<(String, MessageDoc)> = (0..1000)
        .map(|i| {
            let doc = MessageDoc {
                message_id: Uuid::new_v4(),
                conversation_id: Uuid::new_v4(),
                user_id: format!("member-{}", i % 50),
                content: format!(
                    "{} {} 추천해 주세요 message {i}",
                    words[i % 8],
                    words[(i / 8) % 8]
                ),
                role: "user".into(),
                timestamp: chrono::Utc::now(),
                embedding: None,
            };
            (doc.message_id.to_string(), doc)
        })
        .collect();
    let report = index_documents(&client, &client.alias(IndexKind::Messages), &docs)
        .await
        .unwrap();
    assert_eq!(report.indexed(), 1000);
    client.refresh(IndexKind::Messages).await.unwrap();
    // Wait until the product sync (periodic, outside the event backbone) indexed the catalog.
    assert!(
        wait_until(INDEX_TIMEOUT, || async {
            let body: Value = app
                .get("/api/search/products?q=패딩")
                .await
                .json()
                .await
                .unwrap();
            body["total"].as_u64().unwrap_or(0) > 0
        })
        .await
    );

    let member = app.member_token("member-7");
    let mut timings = std::collections::BTreeMap::<&str, Vec<f64>>::new();
    for round in 0..100 {
        let word = words[round % 8];
        let started = Instant::now();
        let response = search(&app, &member, &format!("q={word}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        timings
            .entry("messages")
            .or_default()
            .push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        let response = app.get(&format!("/api/search/products?q={word}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        timings
            .entry("products")
            .or_default()
            .push(started.elapsed().as_secs_f64() * 1e3);
    }
    for (kind, mut ms) in timings {
        ms.sort_by(f64::total_cmp);
        println!(
            "search {kind}: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms over {} requests",
            percentile(&ms, 0.50),
            percentile(&ms, 0.95),
            ms[ms.len() - 1],
            ms.len()
        );
    }
}
