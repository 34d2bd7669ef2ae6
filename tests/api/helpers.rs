//! The test harness: [`TestApp`], the real service on port 0 against the local stack, isolated
//! for one test (its own database, Redis key prefix, Kafka topic prefix and search index
//! prefix), with member tokens always available and the common requests as methods.
//!
//! ```ignore
//! let app = spawn_app().await; // or, with settings of the test's own:
//! let app = TestApp::builder()
//!     .settings(|s| s.events.trending_half_life_secs = 1_000_000_000)
//!     .spawn()
//!     .await;
//! let token = app.member_token("alice");
//! app.post_event(&json!({...})).await;
//! app.drain_events().await; // the event backbone has applied everything published so far
//! ```

use convrec::app::{Application, StartupError};
use convrec::config::Settings;
use convrec::http::AppState;
use convrec::ml::blocking::BlockingEmbedder;
use reqwest::{Response, StatusCode};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) client: reqwest::Client,
    /// The shop's service token (catalog writes, any member's data).
    pub(crate) admin_token: String,
    pub(crate) db: DatabaseConnection,
    /// What the app was started with (prefixes, brokers, secrets).
    pub(crate) settings: Settings,
    /// The running app's state (its Redis pool, token signer, recommender).
    pub(crate) state: actix_web::web::Data<AppState>,
    /// Its intent analyser and reply writer (the LLM's, or the local ones).
    pub(crate) language: convrec::llm::Language,
    /// Its long-lived actors, each under a supervisor.
    pub(crate) supervised: Vec<convrec::actors::supervision::SupervisedActor>,
}

/// Replaces the database name of a `postgres://…/name` URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("database URL has a path");
    format!("{base}/{name}")
}

/// Settings from the environment (the stack's addresses), isolated for one test: its own
/// database, Redis key prefix, Kafka topic prefix, Elasticsearch index prefix, admin token and
/// member-token secret. For tests that need settings without an app; the others use
/// [`TestApp::builder`].
pub(crate) fn test_settings() -> Settings {
    let mut settings =
        Settings::load(None).expect("settings load; run the tests through scripts/test.sh");
    let id = Uuid::new_v4().simple().to_string();
    let database_name = format!("test_{id}");
    settings.database.url = SecretString::from(with_database(
        settings.database.url.expose_secret(),
        &database_name,
    ));
    settings.database.max_connections = 5;
    settings.server.port = 0;
    settings.server.workers = 2;
    settings.server.readiness_interval_secs = 1;
    settings.redis.key_prefix = format!("test:{id}:");
    settings.kafka.topic_prefix = format!("test-{id}-");
    settings.elasticsearch.index_prefix = format!("test-{id}-");
    settings.security.admin_token = SecretString::from(format!("admin-{id}"));
    settings.security.member_token_secret = SecretString::from(format!("member-secret-{id}"));
    // Tests poll and fan out from one IP; the rate-limit tests turn the limiter on themselves.
    settings.rate_limit.enabled = false;
    // Tansu 0.6 kills its storage task when an idempotent producer's epoch is bumped (which
    // librdkafka does after delivery timeouts, e.g. on a loaded machine), and every later test
    // then fails. Delivery stays at-least-once with acks=all; consumers are idempotent.
    settings.events.idempotent_producer = false;
    settings
}

/// Builds a [`TestApp`]: isolated [`test_settings`], changed by the test, then started.
pub(crate) struct TestAppBuilder {
    settings: Settings,
}

impl TestAppBuilder {
    /// Starts from `settings` as they are, e.g. a second instance on the same database and
    /// topics as `first.settings.clone()`.
    pub(crate) fn from_settings(settings: Settings) -> Self {
        Self { settings }
    }

    /// Changes the settings (may be called more than once).
    pub(crate) fn settings(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(&mut self.settings);
        self
    }

    /// The settings the app would start with, for a test that runs the service another way
    /// (as a child process).
    pub(crate) fn into_settings(self) -> Settings {
        self.settings
    }

    /// Starts the app, or answers why it did not start.
    pub(crate) async fn try_spawn(self) -> Result<TestApp, StartupError> {
        let settings = self.settings;
        let admin_token = settings.security.admin_token.expose_secret().to_string();
        let app = Application::build(settings.clone()).await?;
        let address = format!("http://127.0.0.1:{}", app.port());
        let state = app.state.clone();
        let language = app.language.clone();
        let supervised = app.supervised.clone();
        actix_web::rt::spawn(app.run_until_stopped());
        Ok(TestApp {
            address,
            client: reqwest::Client::builder()
                // actix closes a keep-alive connection idle for 5 s; reusing one just then
                // fails the request (IncompleteMessage), so idle ones are dropped before that.
                .pool_idle_timeout(Duration::from_secs(3))
                .build()
                .unwrap(),
            admin_token,
            db: state.db.clone(),
            settings,
            state,
            language,
            supervised,
        })
    }

    pub(crate) async fn spawn(self) -> TestApp {
        self.try_spawn()
            .await
            .expect("the application starts; is the stack up (scripts/stack.sh up)?")
    }
}

/// An app with the default test settings: `TestApp::builder().spawn()`.
pub(crate) async fn spawn_app() -> TestApp {
    TestApp::builder().spawn().await
}

impl TestApp {
    pub(crate) fn builder() -> TestAppBuilder {
        TestAppBuilder::from_settings(test_settings())
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A member token for `member`, signed by the app's own signer.
    pub(crate) fn member_token(&self, member: &str) -> String {
        self.state
            .tokens
            .issue(member)
            .expect("member tokens are enabled in test settings")
    }

    /// `GET path` without a token.
    pub(crate) async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// `GET path` with a bearer token (a member's, the shop's, or a bad one on purpose).
    pub(crate) async fn get_as(&self, token: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// `POST path` with a JSON body and a bearer token.
    pub(crate) async fn post_as(&self, token: &str, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub(crate) async fn post_product(&self, body: &Value) -> Response {
        self.post_as(&self.admin_token, "/api/products", body).await
    }

    /// Creates a product and returns its JSON, failing the test if that does not work.
    pub(crate) async fn create_product(&self, body: &Value) -> Value {
        let response = self.post_product(body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "creating {body}");
        response.json().await.unwrap()
    }

    pub(crate) async fn product_count(&self) -> u64 {
        use sea_orm::{EntityTrait, PaginatorTrait};
        convrec::db::entities::product::Entity::find()
            .count(&self.db)
            .await
            .unwrap()
    }

    /// Posts a shop event (`POST /api/events`) with the shop's service token.
    pub(crate) async fn post_event(&self, body: &Value) -> Response {
        self.post_as(&self.admin_token, "/api/events", body).await
    }

    /// Creates a conversation for `member` over REST and returns its id.
    pub(crate) async fn create_conversation(&self, member: &str, title: Option<&str>) -> Uuid {
        let response = self
            .post_as(
                &self.member_token(member),
                "/api/conversations",
                &serde_json::json!({ "title": title }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    /// A small catalog the chat can recommend from (Korean and English titles), in the
    /// categories the local intent analyser knows.
    pub(crate) async fn seed_catalog(&self) {
        let products = [
            (
                "PAD-1",
                "경량 패딩 자켓",
                "fashion/outerwear",
                89_000,
                "black",
            ),
            (
                "PAD-2",
                "롱 구스다운 패딩 코트",
                "fashion/outerwear",
                159_000,
                "navy",
            ),
            ("PAD-3", "숏 패딩 점퍼", "fashion/outerwear", 69_000, "red"),
            (
                "BOOT-1",
                "Waterproof Hiking Boots",
                "shoes/hiking",
                129_000,
                "brown",
            ),
            (
                "BOOT-2",
                "Gore-Tex Trail Hiking Boots",
                "shoes/hiking",
                189_000,
                "black",
            ),
            (
                "JKT-1",
                "Windproof Hiking Jacket",
                "outdoor/jackets",
                99_000,
                "green",
            ),
            ("TEE-1", "코튼 반팔 티셔츠", "fashion/tops", 19_000, "white"),
        ];
        for (sku, title, category, price, color) in products {
            let mut body = product_body(sku);
            body["title"] = title.into();
            body["category"] = category.into();
            body["description"] = format!("{title} ({color})").into();
            body["price"]["amount_minor"] = price.into();
            body["attributes"]["colors"] = serde_json::json!([color]);
            self.create_product(&body).await;
        }
    }

    /// Imports the built-in demo catalog (stock 100 per product) into the app's database.
    pub(crate) async fn import_demo_catalog(&self) {
        use convrec::import::{self, ImportSource};
        import::run(&self.db, ImportSource::Demo, 100, false)
            .await
            .expect("the demo catalog imports");
    }

    /// Embeds every product without a vector of the content model (passage prompts), the way
    /// `convrec embed` does; answers how many were written.
    pub(crate) async fn embed_catalog(&self) -> u64 {
        use convrec::catalog::embedding::{embed_products, Scope};
        let embedder = content_embedder(&self.settings);
        embed_products(
            &self.db,
            Scope::Missing,
            embedder.model_id(),
            |t| embedder.embed_as(convrec::ml::TextKind::Passage, t),
            false,
        )
        .await
        .expect("the catalog embeds")
    }

    /// Makes what the es-sync group indexed visible to message search now (the search
    /// server's refresh, which otherwise comes on its own interval). After
    /// [`Self::drain_events`], a message search is then deterministic.
    pub(crate) async fn refresh_search(&self) {
        use convrec::search::{IndexKind, SearchClient};
        let es = &self.settings.elasticsearch;
        let client = SearchClient::new(convrec::app::elasticsearch_client(es).unwrap(), es);
        client
            .refresh(IndexKind::Messages)
            .await
            .expect("the search server refreshes the messages index");
    }

    /// One integer from `sql` on the app's database.
    pub(crate) async fn scalar(&self, sql: &str) -> i64 {
        scalar(&self.db, sql).await
    }

    /// The Prometheus text of `/metrics`.
    pub(crate) async fn metrics_text(&self) -> String {
        self.get("/metrics").await.text().await.unwrap()
    }

    /// The value of the sample `series` (name and labels exactly as exported), if exported.
    pub(crate) async fn metric(&self, series: &str) -> Option<f64> {
        sample(&self.metrics_text().await, series)
    }

    /// Waits until the event backbone has applied everything published so far (see
    /// `drain.rs`); fails the test after [`crate::drain::DRAIN_TIMEOUT`], naming what had not
    /// drained.
    pub(crate) async fn drain_events(&self) {
        crate::drain::drain_events(&self.settings, &self.db, crate::drain::DRAIN_TIMEOUT).await;
    }
}

/// The value of the Prometheus sample line that is `series` followed by its value.
pub(crate) fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// The content model (the multilingual one when configured), loaded once per test process
/// and shared by the tests that embed a catalog or queries themselves.
pub(crate) fn content_embedder(settings: &Settings) -> BlockingEmbedder {
    static LOADED: OnceLock<Mutex<HashMap<String, BlockingEmbedder>>> = OnceLock::new();
    let model = settings.content_model();
    let mut loaded = LOADED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loaded
        .entry(format!("{model:?}"))
        .or_insert_with(|| {
            BlockingEmbedder::new(
                convrec::ml::load_embedder(&model).expect("the content model loads"),
            )
        })
        .clone()
}

/// One integer from `sql`.
pub(crate) async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("query runs")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("an integer")
}

/// Tests that put thousands of events through the shared local broker take turns: two of them
/// at once on two cores outrun Tansu's SQLite storage and time each other's drains out.
pub(crate) async fn broker_heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// Polls `check` every 100 ms until it answers true; false when `timeout` passed first. Only
/// for effects outside the event backbone (periodic jobs, readiness probes); for what the
/// backbone does, use [`TestApp::drain_events`].
pub(crate) async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A product body with sensible values; tests override what they care about.
pub(crate) fn product_body(sku: &str) -> Value {
    serde_json::json!({
        "sku": sku,
        "title": format!("경량 패딩 자켓 {sku}"),
        "description": "가볍고 따뜻한 겨울 패딩",
        "category": "fashion/outerwear",
        "brand": "Northway",
        "price": { "amount_minor": 89000, "currency": "KRW" },
        "stock": 12,
        "attributes": { "colors": ["black", "navy"] }
    })
}

/// Asserts the stable JSON error shape and returns its `code`.
pub(crate) async fn error_code(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("error body is JSON");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "error has a message: {body}");
    body["error"]["code"]
        .as_str()
        .expect("error has a code")
        .to_string()
}

/// The shared real data sets (../shared/data), when present.
pub(crate) fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("CONVREC_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    dir.is_dir().then_some(dir)
}
