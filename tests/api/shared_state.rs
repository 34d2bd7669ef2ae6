//! Learned state is shared state (issue "Learned state that survives restarts and is the same
//! on every instance", docs/scaling.md): two `convrec serve` processes on one stack give the
//! same list and see each other's events; a restart forgets nothing; a list computed across an
//! invalidation is never served; a training does not stall readiness or the consumers.

use crate::event_support::{processed, ServiceProcess};
use crate::helpers::{scalar, wait_until, TestApp, TestAppBuilder};
use convrec::recommend::list_cache::{invalidate_member_lists, MemberListCache};
use convrec::recommend::RecommendedProduct;
use convrec::redis::RedisKeys;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Models trained and looked for every second, so a test sees a new version quickly.
fn fast_training() -> TestAppBuilder {
    TestApp::builder().settings(|settings| {
        settings.recommender.cf_rebuild_interval_secs = 1;
        settings.recommender.model_poll_interval_secs = 1;
    })
}

/// `id`s of a member's list on the instance at `address`, after dropping the member's cached
/// lists (so the list is computed by that instance).
async fn fresh_list(app: &TestApp, address: &str, member: &str) -> Vec<String> {
    invalidate_member_lists(&app.state.redis, &app.state.keys, member)
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .get(format!("{address}/api/recommendations/{member}?limit=10"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

async fn post_event(address: &str, token: &str, body: &Value) {
    let response = reqwest::Client::new()
        .post(format!("{address}/api/events"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED, "{body}");
}

/// The version an instance serves, from its `/metrics`.
async fn served_version(address: &str) -> i64 {
    let text = reqwest::get(format!("{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    crate::helpers::sample(&text, "cf_model_version").unwrap_or(0.0) as i64
}

/// Waits until a version trained on every interaction so far is stored and every instance in
/// `addresses` serves it.
async fn wait_for_current_model(app: &TestApp, addresses: &[&str]) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let version = scalar(
            &app.db,
            "SELECT coalesce(max(id), 0) FROM model_versions WHERE interactions = \
             (SELECT count(*) FROM interactions)",
        )
        .await;
        let mut served = Vec::new();
        for address in addresses {
            served.push(served_version(address).await);
        }
        if version > 0 && served.iter().all(|v| *v >= version) {
            return version;
        }
        assert!(
            Instant::now() < deadline,
            "every instance serves the newest model (stored {version}, served {served:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
async fn two_processes_give_the_same_list_see_each_others_views_and_forget_nothing_on_restart() {
    let app = fast_training().spawn().await;
    app.import_demo_catalog().await;
    let outdoor: Vec<String> = {
        use sea_orm::ConnectionTrait;
        let rows = app
            .db
            .query_all_raw(sea_orm::Statement::from_string(
                app.db.get_database_backend(),
                "SELECT id::text AS id FROM products WHERE category LIKE 'outdoor/%' ORDER BY sku",
            ))
            .await
            .unwrap();
        rows.iter().map(|r| r.try_get("", "id").unwrap()).collect()
    };
    assert!(outdoor.len() >= 12, "the demo catalog has outdoor gear");
    let log = std::env::temp_dir().join(format!("convrec-shared-{}.log", uuid::Uuid::new_v4()));
    let a = ServiceProcess::start(&app.settings, &log).await;
    let b = ServiceProcess::start(&app.settings, &log).await;

    // Campers buy outdoor gear together (through a); the hiker views some (through b).
    for camper in 0..6 {
        for (i, id) in outdoor.iter().enumerate().skip(camper).step_by(2).take(5) {
            let order = json!({"type": "order", "member_id": format!("camper-{camper}"),
                "product_id": id, "order_id": format!("c{camper}-{i}")});
            post_event(&a.address, &app.admin_token, &order).await;
        }
    }
    for id in outdoor.iter().take(3) {
        let view = json!({"type": "view", "member_id": "hiker", "product_id": id});
        post_event(&b.address, &app.admin_token, &view).await;
    }
    app.drain_events().await;
    wait_for_current_model(&app, &[&a.address, &b.address, &app.address]).await;

    let from_a = fresh_list(&app, &a.address, "hiker").await;
    let from_b = fresh_list(&app, &b.address, "hiker").await;
    assert_eq!(from_a.len(), 10);
    assert_eq!(from_a, from_b, "the same list from either instance");
    assert!(
        from_a.iter().all(|id| !outdoor[..3].contains(id)),
        "viewed products are history, not suggestions"
    );

    // A view posted to a changes the list b serves next, with no consumer in between.
    let viewed = from_a[0].clone();
    let started = Instant::now();
    let view = json!({"type": "view", "member_id": "hiker", "product_id": viewed});
    post_event(&a.address, &app.admin_token, &view).await;
    let response = reqwest::Client::new()
        .get(format!("{}/api/recommendations/hiker?limit=10", b.address))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let after: Vec<String> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect();
    println!(
        "a view on instance a changed instance b's list {} ms after it was posted",
        started.elapsed().as_millis()
    );
    assert!(!after.contains(&viewed), "b's next list knows the view");
    assert_ne!(after, from_a);

    // kill -9 of both instances (and the in-process one's lists dropped): a new process
    // serves the same list from the same database.
    app.drain_events().await;
    wait_for_current_model(&app, &[&a.address, &b.address]).await;
    let before_restart = fresh_list(&app, &b.address, "hiker").await;
    drop(a);
    drop(b);
    let c = ServiceProcess::start(&app.settings, &log).await;
    let after_restart = fresh_list(&app, &c.address, "hiker").await;
    assert_eq!(
        after_restart, before_restart,
        "views from before the restart still shape the list"
    );
    assert!(after_restart.iter().all(|id| *id != viewed));
    let _ = std::fs::remove_file(&log);
}

fn product(n: u128) -> RecommendedProduct {
    RecommendedProduct {
        id: uuid::Uuid::from_u128(n),
        sku: format!("sku-{n}"),
        title: "t".into(),
        category: "c".into(),
        brand: None,
        price_minor: None,
        currency: "KRW".into(),
        price_display: None,
        stock: 1,
        image_url: None,
        score: Default::default(),
        explanation: String::new(),
        reasons: Vec::new(),
        outside_request: Vec::new(),
    }
}

#[actix_web::test]
async fn a_list_computed_across_an_invalidation_is_never_served() {
    let app = TestApp::builder().spawn().await;
    let cache = MemberListCache::new(app.state.redis.clone(), app.state.keys.clone(), 60, 4);
    // A request looks up (miss), starts computing under the generation it saw…
    let seen = cache.lookup("m", "q=tent").await.unwrap();
    assert!(seen.hit.is_none());
    // …the member's event is applied meanwhile…
    invalidate_member_lists(&app.state.redis, &app.state.keys, "m")
        .await
        .unwrap();
    // …and the list computed before it arrives late: refused, and not found afterwards.
    let stale = vec![product(1)];
    assert!(!cache
        .store("m", &seen.generation, "q=tent", &stale)
        .await
        .unwrap());
    let next = cache.lookup("m", "q=tent").await.unwrap();
    assert!(next.hit.is_none(), "the stale list is not served");
    assert_ne!(next.generation, seen.generation);
    // A list computed after the event is stored and served.
    let fresh = vec![product(2)];
    assert!(cache
        .store("m", &next.generation, "q=tent", &fresh)
        .await
        .unwrap());
    let hit = cache.lookup("m", "q=tent").await.unwrap().hit.unwrap();
    assert_eq!(hit[0].id, fresh[0].id);

    // Redis flushed (the generation lost): a new token, never the old one, so nothing
    // stored before can come back.
    let keys: &RedisKeys = &app.state.keys;
    let mut conn = app.state.redis.get().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(keys.member_list_generation("m"))
        .query_async(&mut *conn)
        .await
        .unwrap();
    let after_flush = cache.lookup("m", "q=tent").await.unwrap();
    assert!(after_flush.hit.is_none());
    assert_ne!(after_flush.generation, next.generation);
}

#[actix_web::test]
async fn each_cached_variant_has_its_own_lifetime_and_a_member_keeps_a_bounded_number() {
    let app = TestApp::builder().spawn().await;
    let keys = app.state.keys.clone();
    let cache = MemberListCache::new(app.state.redis.clone(), keys.clone(), 30, 4);
    let generation = cache.lookup("m", "q=0").await.unwrap().generation;
    let mut conn = app.state.redis.get().await.unwrap();
    cache
        .store("m", &generation, "q=0", &[product(0)])
        .await
        .unwrap();
    let first_key = keys.member_list("m", &generation, "q=0");
    let _: () = redis::cmd("EXPIRE")
        .arg(&first_key)
        .arg(5)
        .query_async(&mut *conn)
        .await
        .unwrap();
    // Another variant written later does not renew the first one's lifetime.
    cache
        .store("m", &generation, "q=1", &[product(1)])
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(&first_key)
        .query_async(&mut *conn)
        .await
        .unwrap();
    assert!((1..=5).contains(&ttl), "ttl {ttl}");
    // Ten variants: only the newest four are kept.
    for n in 2..10 {
        let variant = format!("q={n}");
        cache
            .store("m", &generation, &variant, &[product(n)])
            .await
            .unwrap();
    }
    let kept: i64 = redis::cmd("ZCARD")
        .arg(keys.member_list_index("m"))
        .query_async(&mut *conn)
        .await
        .unwrap();
    assert_eq!(kept, 4);
    assert!(cache.lookup("m", "q=0").await.unwrap().hit.is_none());
    assert!(cache.lookup("m", "q=9").await.unwrap().hit.is_some());
}

#[actix_web::test]
async fn a_training_does_not_stall_readiness_or_the_consumers() {
    let app = fast_training().spawn().await;
    app.import_demo_catalog().await;
    // A shop with 5,000 products and 400,000 interactions (skewed), written directly.
    let started = Instant::now();
    {
        use sea_orm::ConnectionTrait;
        for sql in [
            "INSERT INTO products (id, sku, title, category, price_minor, stock) \
             SELECT gen_random_uuid(), 'gen-' || g, 'Generated ' || g, 'gen/' || (g % 50), \
             1000 + g, 10 FROM generate_series(1, 5000) g",
            "INSERT INTO members (id) SELECT 'load-' || g FROM generate_series(1, 20000) g",
            "INSERT INTO interactions (member_id, product_id, kind, quantity, occurred_at) \
             SELECT 'load-' || (1 + floor(random() * 20000)::int), \
             ids.a[1 + floor(power(random(), 2) * array_length(ids.a, 1))::int], \
             'view', 1, now() - random() * interval '30 days' \
             FROM generate_series(1, 400000), (SELECT array_agg(id) AS a FROM products) ids",
        ] {
            app.db.execute_unprepared(sql).await.unwrap();
        }
    }
    println!("load written in {:?}", started.elapsed());
    let before = scalar(&app.db, "SELECT coalesce(max(id), 0) FROM model_versions").await;
    // While the instance's trainer reads and trains, readiness and an event's path are timed.
    let mut slowest_ready = Duration::ZERO;
    let mut slowest_event = Duration::ZERO;
    let product: String = {
        use sea_orm::ConnectionTrait;
        app.db
            .query_one_raw(sea_orm::Statement::from_string(
                app.db.get_database_backend(),
                "SELECT id::text AS id FROM products ORDER BY sku LIMIT 1",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "id")
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut n = 0;
    loop {
        let asked = Instant::now();
        let ready = app.get("/readyz").await;
        slowest_ready = slowest_ready.max(asked.elapsed());
        assert_eq!(ready.status(), StatusCode::OK, "ready while training");
        if n % 10 == 0 {
            let applied = processed(&app.db, "recommendation").await;
            let view = json!({"type": "view", "member_id": "timed", "product_id": product});
            let posted = Instant::now();
            assert_eq!(app.post_event(&view).await.status(), StatusCode::ACCEPTED);
            let consumed = wait_until(Duration::from_secs(30), || async {
                processed(&app.db, "recommendation").await > applied
            })
            .await;
            assert!(consumed, "the consumers went on while training");
            slowest_event = slowest_event.max(posted.elapsed());
        }
        n += 1;
        let trained = scalar(
            &app.db,
            &format!(
                "SELECT coalesce(max(train_ms), 0) FROM model_versions \
                 WHERE id > {before} AND interactions >= 400000"
            ),
        )
        .await;
        if trained > 0 {
            println!(
                "trained in {trained} ms; slowest /readyz {slowest_ready:?}, slowest event \
                 posted→applied {slowest_event:?} over {n} probes"
            );
            assert!(
                slowest_ready < Duration::from_secs(1),
                "readiness stalled for {slowest_ready:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no training finished in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
