//! Trending and popular are derived state (docs/events.md): when the state store loses them
//! (flushed, evicted), the `Analytics` actor rebuilds them from `interactions` by itself, and
//! `convrec rebuild analytics` (the domain's `analytics_rebuild::rebuild`) does on demand; the
//! rebuilt sets rank and group the products as the live counters did.

use crate::event_support::state_redis_connection;
use crate::helpers::{product_body, wait_until, TestApp, TestAppBuilder};
use convrec::catalog::InteractionKind;
use convrec::config::Settings;
use convrec::recommend::analytics_rebuild::{self, Rebuild};
use convrec::redis::RedisKeys;
use redis::aio::MultiplexedConnection;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use secrecy::ExposeSecret;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::Duration;
use uuid::Uuid;

const HALF_LIFE: Duration = Duration::from_secs(3600);
/// Every category level the test's products are in.
const CATEGORIES: [&str; 6] = [
    "books",
    "fashion",
    "fashion/outerwear",
    "fashion/tops",
    "outdoor",
    "outdoor/tents",
];

fn rebuild_app() -> TestAppBuilder {
    TestApp::builder().settings(|s| s.events.trending_half_life_secs = HALF_LIFE.as_secs())
}

/// The product ids of a ZSet, best first, and their scores.
async fn ranked(conn: &mut MultiplexedConnection, key: &str) -> Vec<(String, f64)> {
    redis::cmd("ZREVRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(conn)
        .await
        .expect("ZREVRANGE")
}

/// Trending and every popular set of the test's categories, ids only (the order is what is
/// compared: live scores were added when consumed, rebuilt ones are decayed from
/// `occurred_at`).
#[derive(Debug, PartialEq)]
struct Sets {
    trending: Vec<String>,
    popular: BTreeMap<&'static str, Vec<String>>,
}

async fn sets(conn: &mut MultiplexedConnection, keys: &RedisKeys) -> Sets {
    let ids = |pairs: Vec<(String, f64)>| pairs.into_iter().map(|(id, _)| id).collect();
    let trending = ids(ranked(conn, &keys.trending()).await);
    let mut popular = BTreeMap::new();
    for category in CATEGORIES {
        popular.insert(category, ids(ranked(conn, &keys.popular(category)).await));
    }
    Sets { trending, popular }
}

async fn exists(conn: &mut MultiplexedConnection, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(conn)
        .await
        .expect("EXISTS")
        == 1
}

/// Loses the test's state: deletes every key with its prefix from the cache and the state
/// store (SCAN + DEL, so tests running beside it keep theirs).
async fn lose_state(settings: &Settings) {
    let prefix = &settings.redis.key_prefix;
    assert!(prefix.starts_with("test:"), "only a test's own keys");
    let mut urls = vec![
        settings.redis.url.expose_secret().to_string(),
        settings.redis.state().url.expose_secret().to_string(),
    ];
    urls.dedup();
    for url in urls {
        let mut conn = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("Redis is up");
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            if !keys.is_empty() {
                let _: i64 = redis::cmd("DEL")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
}

/// Five products in distinct categories and with distinct weights: an order of 3 (15), an
/// order of 1 and a view (6), a cart add (3), two views (2) and one view (1).
async fn shop(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for (n, category) in [
        "fashion/outerwear",
        "fashion/tops",
        "outdoor/tents",
        "fashion/outerwear",
        "books",
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = product_body(&format!("REB-{n}-{}", Uuid::new_v4().simple()));
        body["category"] = category.into();
        let product = app.create_product(&body).await;
        ids.push(product["id"].as_str().unwrap().to_string());
    }
    let events = [
        json!({"type": "order", "member_id": "a", "product_id": ids[0], "order_id": "o-1", "quantity": 3}),
        json!({"type": "order", "member_id": "b", "product_id": ids[1], "order_id": "o-2", "quantity": 1}),
        json!({"type": "view", "member_id": "c", "product_id": ids[1]}),
        json!({"type": "cart", "member_id": "c", "product_id": ids[2]}),
        json!({"type": "view", "member_id": "a", "product_id": ids[3]}),
        json!({"type": "view", "member_id": "b", "product_id": ids[3]}),
        json!({"type": "view", "member_id": "d", "product_id": ids[4]}),
    ];
    for event in &events {
        assert_eq!(
            app.post_event(event).await.status(),
            StatusCode::ACCEPTED,
            "{event}"
        );
    }
    ids
}

#[actix_web::test]
async fn lost_trending_and_popular_are_rebuilt_from_interactions() {
    let app = rebuild_app().spawn().await;
    let settings = app.settings.clone();
    let keys = RedisKeys::new(&settings.redis.key_prefix);
    let mut state = state_redis_connection(&settings).await;
    let ids = shop(&app).await;
    app.drain_events().await;

    let pick = |which: &[usize]| -> Vec<String> { which.iter().map(|&i| ids[i].clone()).collect() };
    let before = sets(&mut state, &keys).await;
    assert_eq!(before.trending, ids, "the live counters rank by weight");
    assert_eq!(before.popular["fashion"], pick(&[0, 1, 3]));
    assert_eq!(before.popular["fashion/outerwear"], pick(&[0, 3]));
    assert_eq!(before.popular["fashion/tops"], pick(&[1]));
    assert_eq!(before.popular["outdoor"], pick(&[2]));
    assert_eq!(before.popular["books"], pick(&[4]));
    assert!(
        exists(&mut state, &keys.analytics_built()).await,
        "the actor built (an empty shop) at start"
    );

    // 1. Lost, and rebuilt by the actor: a new instance checks at start (a running one on
    // its next decay tick).
    lose_state(&settings).await;
    assert!(ranked(&mut state, &keys.trending()).await.is_empty());
    assert!(!exists(&mut state, &keys.analytics_built()).await);
    let _second = TestAppBuilder::from_settings(settings.clone())
        .spawn()
        .await;
    let rebuilt = wait_until(Duration::from_secs(30), || {
        let mut state = state.clone();
        let key = keys.analytics_built();
        async move { exists(&mut state, &key).await }
    })
    .await;
    assert!(rebuilt, "the built marker did not come back within 30 s");
    assert_eq!(
        sets(&mut state, &keys).await,
        before,
        "rebuilt by the actor"
    );

    // 2. Lost, and rebuilt on demand: `convrec rebuild analytics`.
    lose_state(&settings).await;
    let output = Command::new(env!("CARGO_BIN_EXE_convrec"))
        .args(["rebuild", "analytics"])
        .env(
            "CONVREC__DATABASE__URL",
            settings.database.url.expose_secret(),
        )
        .env("CONVREC__REDIS__KEY_PREFIX", &settings.redis.key_prefix)
        .env("CONVREC__REDIS__URL", settings.redis.url.expose_secret())
        .env(
            "CONVREC__REDIS__STATE_URL",
            settings.redis.state().url.expose_secret(),
        )
        .env(
            "CONVREC__EVENTS__TRENDING_HALF_LIFE_SECS",
            HALF_LIFE.as_secs().to_string(),
        )
        .env("CONVREC__LOG__LEVEL", "warn")
        .output()
        .expect("the convrec binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{}", stdout.trim());
    assert!(
        stdout.contains("5 products, 6 categories"),
        "the command says what it rebuilt: {stdout}"
    );
    assert!(exists(&mut state, &keys.analytics_built()).await);
    assert_eq!(
        sets(&mut state, &keys).await,
        before,
        "rebuilt by the command"
    );

    // 3. The domain function over existing state: one rebuild at a time, stale categories go,
    // and the scores are the documented formula.
    let pool = convrec::redis::connect_state(&settings.redis).unwrap();
    let lock = keys.analytics_rebuild_lock();
    let _: () = redis::cmd("SET")
        .arg(&lock)
        .arg("someone-else")
        .query_async(&mut state)
        .await
        .unwrap();
    assert_eq!(
        analytics_rebuild::rebuild(&app.db, &pool, &keys, HALF_LIFE)
            .await
            .unwrap(),
        Rebuild::Busy
    );
    let _: i64 = redis::cmd("DEL")
        .arg(&lock)
        .query_async(&mut state)
        .await
        .unwrap();
    let gone = keys.popular("discontinued");
    let _: i64 = redis::cmd("ZADD")
        .arg(&gone)
        .arg(1)
        .arg(&ids[0])
        .query_async(&mut state)
        .await
        .unwrap();
    let Rebuild::Built(report) = analytics_rebuild::rebuild(&app.db, &pool, &keys, HALF_LIFE)
        .await
        .unwrap()
    else {
        panic!("the lock was free")
    };
    println!(
        "rebuild: {} products, {} categories in {:?}",
        report.products, report.categories, report.elapsed
    );
    assert_eq!((report.products, report.categories), (5, 6));
    assert_eq!((report.trending, report.removed), (5, 1));
    assert!(
        !exists(&mut state, &gone).await,
        "a stale category is removed"
    );
    assert!(!exists(&mut state, &lock).await, "the lock is released");
    assert_eq!(sets(&mut state, &keys).await, before);

    // Trending: Σ counted weight × 0.5^(age / half-life) from the rows, as
    // `analytics_rebuild::trending_score` says; popular: Σ counted weight.
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT product_id, kind, quantity, occurred_at FROM interactions",
        ))
        .await
        .unwrap();
    let mut by_product: HashMap<String, Vec<(InteractionKind, i32, Duration)>> = HashMap::new();
    for row in rows {
        let product: Uuid = row.try_get("", "product_id").unwrap();
        let kind: String = row.try_get("", "kind").unwrap();
        let quantity: i32 = row.try_get("", "quantity").unwrap();
        let at: chrono::DateTime<chrono::Utc> = row.try_get("", "occurred_at").unwrap();
        let age = (report.built_at - at).to_std().unwrap_or_default();
        by_product.entry(product.to_string()).or_default().push((
            InteractionKind::parse(&kind).unwrap(),
            quantity,
            age,
        ));
    }
    let trending = ranked(&mut state, &keys.trending()).await;
    assert_eq!(trending.len(), 5);
    for (id, score) in &trending {
        let interactions = &by_product[id];
        let expected = analytics_rebuild::trending_score(interactions.clone(), HALF_LIFE);
        assert!(
            (score - expected).abs() < 1e-9 * expected,
            "trending {id}: {score} != {expected}"
        );
        let undecayed: f64 = interactions
            .iter()
            .map(|(kind, quantity, _)| kind.counted_weight(*quantity))
            .sum();
        assert!(*score < undecayed, "decayed since the events: {score}");
    }
    let fashion = ranked(&mut state, &keys.popular("fashion")).await;
    let totals: Vec<f64> = fashion.iter().map(|(_, score)| *score).collect();
    assert_eq!(totals, [15.0, 6.0, 2.0]);
}

#[test]
fn the_counted_weights_this_test_assumes() {
    // `shop`'s comment, checked: orders count per unit, views and cart adds once.
    assert_eq!(InteractionKind::Order.counted_weight(3), 15.0);
    assert_eq!(
        InteractionKind::Order.counted_weight(1) + InteractionKind::View.counted_weight(1),
        6.0
    );
    assert_eq!(InteractionKind::Cart.counted_weight(1), 3.0);
}
