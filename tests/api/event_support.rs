//! Helpers for the event-backbone tests: posting shop events, what each consumer group is
//! expected to apply and checking it did (after `TestApp::drain_events`), reading Redis and
//! the topics, a private Tansu broker for tests that stop it and a service process for a test
//! that kills it.

use crate::helpers::{free_port, scalar, wait_until, TestApp};
use convrec::config::Settings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use reqwest::{Response, StatusCode};
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub(crate) const GROUPS: [&str; 4] = [
    "es-sync",
    "preference-analysis",
    "recommendation",
    "analytics",
];

pub(crate) async fn processed(db: &DatabaseConnection, group: &str) -> i64 {
    scalar(
        db,
        &format!("SELECT count(*) FROM processed_events WHERE consumer_group = '{group}'"),
    )
    .await
}

pub(crate) async fn outbox_count(db: &DatabaseConnection, status: &str) -> i64 {
    scalar(
        db,
        &format!("SELECT count(*) FROM outbox WHERE status = '{status}'"),
    )
    .await
}

/// How many events each group is expected to apply, by what the test wrote.
#[derive(Debug, Default, Clone)]
pub(crate) struct Expected {
    pub(crate) shop: i64,
    pub(crate) messages: i64,
    /// Orders among `shop`: each also makes the PreferenceActor publish a
    /// `purchase_pattern.analyzed`, which the recommendation group reads.
    pub(crate) orders: i64,
    /// Sum of analytics weights (views 1, carts 3, orders 5 per unit).
    pub(crate) weight: f64,
    pub(crate) by_category: HashMap<String, f64>,
    /// `product.rejected` events the chat wrote (dialogue feedback): read by the groups of
    /// `user-behavior`, weighing nothing in analytics.
    pub(crate) rejections: i64,
}

impl Expected {
    pub(crate) fn per_group(&self, group: &str) -> i64 {
        match group {
            "es-sync" => self.messages,
            "preference-analysis" => self.messages + self.shop + self.rejections,
            "recommendation" => self.shop + self.orders + self.rejections,
            _ => self.shop + self.rejections,
        }
    }

    pub(crate) fn add_shop_event(&mut self, event: &Value, category: &str) {
        self.shop += 1;
        let quantity = event["quantity"].as_f64().unwrap_or(1.0);
        let w = match event["type"].as_str().unwrap() {
            "view" => 1.0,
            "cart" => 3.0,
            _ => {
                self.orders += 1;
                5.0 * quantity
            }
        };
        self.weight += w;
        let mut level = String::new();
        for part in category.split('/') {
            if !level.is_empty() {
                level.push('/');
            }
            level.push_str(part);
            *self.by_category.entry(level.clone()).or_default() += w;
        }
    }
}

/// Every group applied at least what `expected` says (call after the backbone drained).
pub(crate) async fn assert_groups_applied(db: &DatabaseConnection, expected: &Expected) {
    let mut counts = Vec::new();
    for group in GROUPS {
        counts.push((group, processed(db, group).await, expected.per_group(group)));
    }
    assert!(
        counts.iter().all(|(_, applied, wanted)| applied >= wanted),
        "groups did not apply every event: {counts:?} (group, applied, expected); \
         outbox pending {}, dead {}",
        outbox_count(db, "pending").await,
        outbox_count(db, "dead").await
    );
}

/// Every group applied each event exactly once (no more records than events), and the
/// analytics counters in Redis add up to exactly the weights of the events written.
pub(crate) async fn assert_applied_exactly_once(
    db: &DatabaseConnection,
    settings: &Settings,
    expected: &Expected,
) {
    for group in GROUPS {
        assert_eq!(
            processed(db, group).await,
            expected.per_group(group),
            "group {group}"
        );
    }
    let mut redis = state_redis_connection(settings).await;
    let prefix = &settings.redis.key_prefix;
    let trending = zset_sum(&mut redis, &format!("{prefix}rec:trending")).await;
    assert!(
        (trending - expected.weight).abs() < 1e-6 * expected.weight.max(1.0),
        "trending scores sum to {trending}, expected {}",
        expected.weight
    );
    for (category, weight) in &expected.by_category {
        let sum = zset_sum(
            &mut redis,
            &format!("{prefix}rec:popular:category:{category}"),
        )
        .await;
        assert_eq!(sum, *weight, "popular counters of {category}");
    }
}

/// A connection to the cache (`redis.url`).
pub(crate) async fn redis_connection(settings: &Settings) -> redis::aio::MultiplexedConnection {
    redis::Client::open(settings.redis.url.expose_secret())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("Redis is up")
}

/// A connection to the state store (`redis.state_url`, else `redis.url`): trending, popular
/// and the analytics group's markers.
pub(crate) async fn state_redis_connection(
    settings: &Settings,
) -> redis::aio::MultiplexedConnection {
    redis::Client::open(settings.redis.state().url.expose_secret())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("the Redis state store is up")
}

async fn zset_sum(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> f64 {
    let pairs: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(conn)
        .await
        .unwrap();
    pairs.iter().map(|(_, s)| s).sum()
}

/// Creates `n` products in a few categories and answers (id, category) pairs.
pub(crate) async fn create_products(app: &TestApp, n: usize) -> Vec<(String, String)> {
    let categories = [
        "fashion/outerwear",
        "fashion/shoes",
        "outdoor/tents",
        "books",
    ];
    let mut products = Vec::new();
    for i in 0..n {
        let mut body = crate::helpers::product_body(&format!("EV-{i}"));
        let category = categories[i % categories.len()];
        body["category"] = json!(category);
        let created = app.create_product(&body).await;
        products.push((
            created["id"].as_str().unwrap().to_string(),
            category.to_string(),
        ));
    }
    products
}

/// The i-th shop event of a test: views, carts and orders in turn over the products.
pub(crate) fn shop_event(i: usize, products: &[(String, String)]) -> (Value, String) {
    let (product_id, category) = &products[i % products.len()];
    let member = format!("member-{}", i % 37);
    let event = match i % 3 {
        0 => json!({"type": "view", "member_id": member, "product_id": product_id}),
        1 => json!({"type": "cart", "member_id": member, "product_id": product_id, "quantity": 2}),
        _ => json!({"type": "order", "member_id": member, "product_id": product_id,
                    "quantity": 1 + i % 3, "order_id": format!("order-{i}")}),
    };
    (event, category.clone())
}

/// Posts a shop event with `token` (the shop's service token, or the member's own).
async fn post_event(client: &reqwest::Client, base: &str, token: &str, body: &Value) -> Response {
    client
        .post(format!("{base}/api/events"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

/// Posts shop events `range` to the service at `base` with 16 in flight, asserting each is
/// accepted.
pub(crate) async fn post_shop_events(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    products: &[(String, String)],
    range: std::ops::Range<usize>,
    expected: &mut Expected,
) {
    use futures::StreamExt;
    let events: Vec<(Value, String)> = range.map(|i| shop_event(i, products)).collect();
    let statuses: Vec<StatusCode> = futures::stream::iter(events.iter())
        .map(|(event, _)| async move { post_event(client, base, token, event).await.status() })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::ACCEPTED),
        "some events were refused: {statuses:?}"
    );
    for (event, category) in &events {
        expected.add_shop_event(event, category);
    }
}

impl TestApp {
    /// Posts shop events `range` as the shop, with 16 in flight, asserting each is accepted.
    pub(crate) async fn post_shop_events(
        &self,
        products: &[(String, String)],
        range: std::ops::Range<usize>,
        expected: &mut Expected,
    ) {
        post_shop_events(
            &self.client,
            &self.address,
            &self.admin_token,
            products,
            range,
            expected,
        )
        .await;
    }
}

/// The topics shop events are published to (without the prefix).
const SHOP_TOPICS: [&str; 4] = [
    "conv-msg-created",
    "product-viewed",
    "order-completed",
    "user-behavior",
];

/// Reads every record of the prefixed shop topics, from the beginning up to the high
/// watermarks, and counts each event id. Call it after the backbone drained: then every event
/// (and any duplicate send of one) lies below the watermarks.
/// The dispatcher sends an event once (tests check `outbox_sent_total` and the outbox), but
/// tests run without the idempotent producer (see `test_settings`), so librdkafka may retry a
/// produce whose ack a loaded broker was late with and leave a second copy. Consumers skip such
/// copies by event id. A retry resends a whole batch, so up to a tenth is allowed.
pub(crate) fn assert_copies_only_from_produce_retries(ids: &HashMap<String, usize>) {
    let extra_copies: usize = ids.values().map(|n| n - 1).sum();
    if extra_copies > 0 {
        println!("{extra_copies} produce retries left a second copy on the topic");
    }
    assert!(
        extra_copies <= ids.len() / 10,
        "{extra_copies} of {} events were on the topic more than once",
        ids.len()
    );
}

pub(crate) async fn topic_event_ids(brokers: &str, prefix: &str) -> HashMap<String, usize> {
    let (brokers, prefix) = (brokers.to_string(), prefix.to_string());
    // librdkafka's calls block: off the runtime the app's actors share with the test.
    tokio::task::spawn_blocking(move || read_event_ids(&brokers, &prefix))
        .await
        .unwrap()
}

fn read_event_ids(brokers: &str, prefix: &str) -> HashMap<String, usize> {
    const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("{prefix}test-reader-{}", Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    // The high watermark each partition is still to be read up to.
    let mut unread: HashMap<(String, i32), i64> = HashMap::new();
    for topic in SHOP_TOPICS {
        let name = format!("{prefix}{topic}");
        let metadata = consumer
            .fetch_metadata(Some(&name), REQUEST_TIMEOUT)
            .unwrap();
        for found in metadata.topics().iter().filter(|t| t.error().is_none()) {
            for partition in found.partitions() {
                let (low, high) = consumer
                    .fetch_watermarks(&name, partition.id(), REQUEST_TIMEOUT)
                    .unwrap();
                if high > low {
                    assignment
                        .add_partition_offset(&name, partition.id(), Offset::Beginning)
                        .unwrap();
                    unread.insert((name.clone(), partition.id()), high);
                }
            }
        }
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ids: HashMap<String, usize> = HashMap::new();
    while !unread.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the topics were not read up to their high watermarks: {unread:?} left"
        );
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let id = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "event_id"))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        *ids.entry(id).or_default() += 1;
        let key = (message.topic().to_string(), message.partition());
        if unread
            .get(&key)
            .is_some_and(|high| message.offset() + 1 >= *high)
        {
            unread.remove(&key);
        }
    }
    ids
}

/// A Tansu broker of the test's own (SQLite storage in a temporary folder), so a test can
/// stop it without disturbing the shared one. Killed and removed when dropped.
pub(crate) struct PrivateBroker {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl PrivateBroker {
    pub(crate) fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("convrec-tansu-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut broker = Self {
            dir,
            port: free_port(),
            child: None,
        };
        broker.resume();
        broker
    }

    pub(crate) fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and storage.
    pub(crate) fn resume(&mut self) {
        let cache = std::env::var_os("CONVREC_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/convrec")
            });
        let binary = cache.join("tansu/bin/tansu");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .unwrap();
        let child = Command::new(&binary)
            .current_dir(&self.dir)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "private Tansu did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the broker (as a crash would).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `convrec serve` child process; SIGKILLed when dropped.
pub(crate) struct ServiceProcess {
    pub(crate) child: Child,
    pub(crate) address: String,
}

impl ServiceProcess {
    /// Starts the service binary with `settings` (passed as `CONVREC__…` variables) and waits
    /// until it answers `/healthz`.
    pub(crate) async fn start(settings: &Settings, log: &std::path::Path) -> Self {
        let port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_convrec"))
            .arg("serve")
            .env("CONVREC__SERVER__PORT", port.to_string())
            .env("CONVREC__SERVER__WORKERS", "2")
            .env(
                "CONVREC__DATABASE__URL",
                settings.database.url.expose_secret(),
            )
            .env("CONVREC__DATABASE__MAX_CONNECTIONS", "5")
            .env("CONVREC__REDIS__KEY_PREFIX", &settings.redis.key_prefix)
            .env("CONVREC__KAFKA__BROKERS", &settings.kafka.brokers)
            .env("CONVREC__KAFKA__TOPIC_PREFIX", &settings.kafka.topic_prefix)
            .env("CONVREC__KAFKA__INSTANCE_ID", &settings.kafka.instance_id)
            .env(
                "CONVREC__ELASTICSEARCH__INDEX_PREFIX",
                &settings.elasticsearch.index_prefix,
            )
            .env(
                "CONVREC__SECURITY__ADMIN_TOKEN",
                settings.security.admin_token.expose_secret(),
            )
            .env(
                "CONVREC__EVENTS__OUTBOX_BATCH_SIZE",
                settings.events.outbox_batch_size.to_string(),
            )
            .env(
                "CONVREC__EVENTS__OUTBOX_POLL_INTERVAL_MS",
                settings.events.outbox_poll_interval_ms.to_string(),
            )
            .env(
                "CONVREC__EVENTS__TRENDING_HALF_LIFE_SECS",
                settings.events.trending_half_life_secs.to_string(),
            )
            .env(
                "CONVREC__EVENTS__IDEMPOTENT_PRODUCER",
                settings.events.idempotent_producer.to_string(),
            )
            .env(
                "CONVREC__CHAT__UNANSWERED_AFTER_SECS",
                settings.chat.unanswered_after_secs.to_string(),
            )
            .env(
                "CONVREC__CHAT__RECOVERY_INTERVAL_SECS",
                settings.chat.recovery_interval_secs.to_string(),
            )
            .env(
                "CONVREC__RATE_LIMIT__ENABLED",
                settings.rate_limit.enabled.to_string(),
            )
            .env(
                "CONVREC__SECURITY__MEMBER_TOKEN_SECRET",
                settings.security.member_token_secret.expose_secret(),
            )
            .env(
                "CONVREC__RECOMMENDER__CF_REBUILD_INTERVAL_SECS",
                settings.recommender.cf_rebuild_interval_secs.to_string(),
            )
            .env(
                "CONVREC__RECOMMENDER__MODEL_POLL_INTERVAL_SECS",
                settings.recommender.model_poll_interval_secs.to_string(),
            )
            .env("CONVREC__LOG__LEVEL", "info,sqlx=warn,convrec=debug")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("the convrec binary starts");
        let address = format!("http://127.0.0.1:{port}");
        let health = format!("{address}/healthz");
        let up = wait_until(Duration::from_secs(60), || async {
            reqwest::get(&health)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(up, "convrec serve did not come up");
        Self { child, address }
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
