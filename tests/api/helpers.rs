use convrec::app::Application;
use convrec::config::Settings;
use reqwest::{Response, StatusCode};
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::path::PathBuf;
use uuid::Uuid;

pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) client: reqwest::Client,
    pub(crate) admin_token: String,
    pub(crate) db: DatabaseConnection,
}

/// Replaces the database name of a `postgres://…/name` URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("database URL has a path");
    format!("{base}/{name}")
}

/// Settings from the environment (the stack's addresses), isolated for one test: its own
/// database, Redis key prefix, Kafka topic prefix and Elasticsearch index prefix.
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
    // Tests poll and fan out from one IP; the rate-limit tests turn the limiter on themselves.
    settings.rate_limit.enabled = false;
    // Tansu 0.6 kills its storage task when an idempotent producer's epoch is bumped (which
    // librdkafka does after delivery timeouts, e.g. on a loaded machine), and every later test
    // then fails. Delivery stays at-least-once with acks=all; consumers are idempotent.
    settings.events.idempotent_producer = false;
    settings
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(test_settings()).await
}

pub(crate) async fn spawn_app_with(settings: Settings) -> TestApp {
    let admin_token = settings.security.admin_token.expose_secret().to_string();
    let app = Application::build(settings)
        .await
        .expect("the application starts; is the stack up (scripts/stack.sh up)?");
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.state.db.clone();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        admin_token,
        db,
    }
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub(crate) async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub(crate) async fn post_product(&self, body: &Value) -> Response {
        self.client
            .post(self.url("/api/products"))
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await
            .expect("request sent")
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
