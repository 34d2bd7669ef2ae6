//! The event backbone against the real broker, database and Redis: outbox → Kafka → the four
//! consumer groups, each event applied once, through outages, two dispatchers and a crash.

use crate::event_support::*;
use crate::helpers::{error_code, scalar, TestApp, TestAppBuilder};
use convrec::events::envelope::{Envelope, EventType};
use convrec::events::outbox;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// An app with trending decay slowed so score sums can be compared exactly.
fn event_app() -> TestAppBuilder {
    TestApp::builder().settings(|s| s.events.trending_half_life_secs = 1_000_000_000)
}

#[actix_web::test]
async fn a_thousand_events_reach_every_group_and_each_is_applied_once() {
    let _turn = crate::helpers::broker_heavy().await;
    let app = event_app().spawn().await;
    let settings = &app.settings;
    let products = create_products(&app, 8).await;
    let mut expected = Expected::default();

    let started = Instant::now();
    app.post_shop_events(&products, 0..900, &mut expected).await;
    // Chat messages come later with the chat work; write their events the way it will.
    let txn = app.db.begin().await.unwrap();
    for i in 0..100 {
        let event = Envelope::new(
            EventType::ConversationMessageCreated,
            format!("member-{i}"),
            json!({
                "conversation_id": uuid::Uuid::new_v4(),
                "message_id": uuid::Uuid::new_v4(),
                "role": "user",
                "text": format!("겨울 패딩 추천해줘 {i}"),
            }),
        );
        outbox::enqueue(&txn, &event).await.unwrap();
    }
    txn.commit().await.unwrap();
    expected.messages = 100;
    let accepted = started.elapsed();

    app.drain_events().await;
    let total = started.elapsed();
    println!(
        "1,000 events: accepted in {:.2}s, applied by all four groups after {:.2}s ({:.0} events/s end to end)",
        accepted.as_secs_f64(),
        total.as_secs_f64(),
        1000.0 / total.as_secs_f64()
    );
    assert_applied_exactly_once(&app.db, settings, &expected).await;
    assert_eq!(outbox_count(&app.db, "sent").await, 1000 + expected.orders);
    assert_eq!(
        app.metric("kafka_ingress_records_total{group=\"analytics\",outcome=\"applied\"}")
            .await,
        Some(900.0)
    );

    // Every event reached Kafka; the dispatcher sent each once (the outbox count above).
    let ids = topic_event_ids(&settings.kafka.brokers, &settings.kafka.topic_prefix).await;
    // The shop topics only; the purchase patterns the orders caused go elsewhere.
    assert_eq!(ids.len(), 1000);
    assert_copies_only_from_produce_retries(&ids);
}

#[actix_web::test]
async fn trending_and_popular_rank_products_by_what_shoppers_did() {
    let app = event_app().spawn().await;
    let products = create_products(&app, 4).await; // outerwear, shoes, tents, books
    let (jacket, shoes, tent) = (&products[0].0, &products[1].0, &products[2].0);
    let events = [
        json!({"type": "view", "member_id": "a", "product_id": shoes}),
        json!({"type": "view", "member_id": "b", "product_id": jacket}),
        json!({"type": "order", "member_id": "a", "product_id": jacket, "order_id": "o-1", "quantity": 2}),
        json!({"type": "cart", "member_id": "c", "product_id": tent}),
    ];
    for event in &events {
        let response = app.post_event(event).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body: Value = response.json().await.unwrap();
        assert!(body["event_id"].is_string());
    }
    app.drain_events().await;
    assert_eq!(
        processed(&app.db, "analytics").await,
        4,
        "analytics group did not apply the events"
    );

    let trending: Value = app.get("/api/trending").await.json().await.unwrap();
    let ranked: Vec<(&str, f64)> = trending["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["product"]["id"].as_str().unwrap(),
                i["score"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranked[0].0, jacket.as_str()); // 1 view + an order of 2 = 11
    assert_eq!(ranked[1].0, tent.as_str()); // a cart add = 3
    assert_eq!(ranked[2].0, shoes.as_str()); // a view = 1
    assert!((ranked[0].1 - 11.0).abs() < 1e-6);

    let popular: Value = app
        .get("/api/popular?category=fashion")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = popular["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["product"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![jacket.as_str(), shoes.as_str()]);
    let outdoor: Value = app
        .get("/api/popular?category=outdoor/tents&limit=5")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outdoor["items"][0]["product"]["id"], json!(tent));

    assert_eq!(
        error_code(app.get("/api/popular").await, StatusCode::BAD_REQUEST).await,
        "invalid_query"
    );
    assert_eq!(
        error_code(
            app.get("/api/trending?limit=0").await,
            StatusCode::BAD_REQUEST
        )
        .await,
        "invalid_query"
    );
    // The order also landed in interactions.
    assert_eq!(
        scalar(
            &app.db,
            "SELECT count(*) FROM interactions WHERE kind = 'order'"
        )
        .await,
        1
    );
}

#[actix_web::test]
async fn malformed_event_bodies_are_refused_and_nothing_is_written() {
    let app = event_app().spawn().await;
    let products = create_products(&app, 1).await;
    let product = &products[0].0;
    let raw = |body: &'static str| {
        app.client
            .post(app.url("/api/events"))
            .bearer_auth(&app.admin_token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        error_code(
            raw("{\"type\": \"view\", ").await.unwrap(),
            StatusCode::BAD_REQUEST
        )
        .await,
        "malformed_json"
    );
    let not_an_object = raw("[1, 2]").await.unwrap().status();
    assert!(not_an_object.is_client_error(), "{not_an_object}");
    let bad = [
        json!({"type": "teleport", "member_id": "m", "product_id": product}),
        json!({"type": "view", "member_id": "m", "product_id": "not-a-uuid"}),
        json!({"type": "view", "member_id": "m", "product_id": product, "extra": 1}),
        json!({"type": "view", "product_id": product}),
    ];
    for body in &bad {
        let response = app.post_event(body).await;
        assert_eq!(
            error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await,
            "invalid_body",
            "{body}"
        );
    }
    let invalid = [
        json!({"type": "view", "member_id": "", "product_id": product}),
        json!({"type": "order", "member_id": "m", "product_id": product}),
        json!({"type": "cart", "member_id": "m", "product_id": product, "quantity": 0}),
        json!({"type": "view", "member_id": "m", "product_id": uuid::Uuid::new_v4()}),
        json!({"type": "view", "member_id": "m", "product_id": product, "order_id": "o"}),
    ];
    for body in &invalid {
        let response = app.post_event(body).await;
        assert_eq!(
            error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await,
            "validation_failed",
            "{body}"
        );
    }
    let order =
        json!({"type": "order", "member_id": "m", "product_id": product, "order_id": "o-9"});
    assert_eq!(app.post_event(&order).await.status(), StatusCode::ACCEPTED);
    let again = app.post_event(&order).await;
    assert_eq!(error_code(again, StatusCode::CONFLICT).await, "conflict");

    assert_eq!(scalar(&app.db, "SELECT count(*) FROM outbox").await, 1);
    assert_eq!(
        scalar(&app.db, "SELECT count(*) FROM interactions").await,
        1
    );
}

#[actix_web::test]
async fn a_poison_record_is_parked_and_its_group_goes_on() {
    let app = event_app().spawn().await;
    let settings = &app.settings;
    let products = create_products(&app, 1).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &settings.kafka.brokers)
        .create()
        .unwrap();
    let topic = format!("{}product-viewed", settings.kafka.topic_prefix);
    let unknown_type = json!({"event_id": uuid::Uuid::new_v4(), "type": "product.teleported",
        "version": 1, "occurred_at": "2026-01-01T00:00:00Z", "member_id": "m", "payload": {}});
    let poison = [b"{not json".to_vec(), unknown_type.to_string().into_bytes()];
    for payload in &poison {
        producer
            .send(
                FutureRecord::to(&topic).key("m").payload(payload),
                Duration::from_secs(10),
            )
            .await
            .expect("the broker takes the poison record");
    }
    let mut expected = Expected::default();
    app.post_shop_events(&products, 0..3, &mut expected).await;

    app.drain_events().await;
    assert_groups_applied(&app.db, &expected).await;
    // Three groups read product-viewed; each parked both records once (before committing them,
    // so the drain covers it).
    assert_eq!(
        app.scalar("SELECT count(*) FROM parked_events").await,
        6,
        "poison records were not parked"
    );
    assert_applied_exactly_once(&app.db, settings, &expected).await;
    assert_eq!(
        app.metric("kafka_ingress_records_total{group=\"analytics\",outcome=\"parked\"}")
            .await,
        Some(2.0)
    );
}

#[actix_web::test]
async fn a_broker_outage_delays_events_but_loses_none() {
    let mut broker = PrivateBroker::start();
    let app = event_app()
        .settings(|settings| {
            settings.kafka.brokers = broker.brokers();
            settings.events.delivery_timeout_ms = 3000;
            settings.events.outbox_backoff_max_ms = 2000;
            // Tansu 0.6 panics on the producer-epoch bump librdkafka's idempotent producer
            // makes after delivery timeouts (docs/events.md); Apache Kafka does not need this.
            settings.events.idempotent_producer = false;
        })
        .spawn()
        .await;
    let products = create_products(&app, 4).await;
    let mut expected = Expected::default();
    app.post_shop_events(&products, 0..30, &mut expected).await;
    app.drain_events().await;
    assert_groups_applied(&app.db, &expected).await;

    let outage = Duration::from_secs(
        std::env::var("CONVREC_TEST_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    );
    broker.stop();
    let outage_started = Instant::now();
    let mut next = 30;
    while outage_started.elapsed() < outage {
        app.post_shop_events(&products, next..next + 20, &mut expected)
            .await;
        next += 20;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let backlog = outbox_count(&app.db, "pending").await;
    assert!(
        backlog > 0,
        "the outbox kept the events written during the outage"
    );
    assert_eq!(outbox_count(&app.db, "dead").await, 0);

    broker.resume();
    let recovered = Instant::now();
    crate::drain::outbox_dispatched(&app.db, crate::drain::DRAIN_TIMEOUT).await;
    let drained = recovered.elapsed();
    app.drain_events().await;
    assert_groups_applied(&app.db, &expected).await;
    println!(
        "outage of {:.0}s: {backlog} events pending at its end; outbox drained {:.2}s and every group caught up {:.2}s after the broker came back",
        outage.as_secs_f64(),
        drained.as_secs_f64(),
        recovered.elapsed().as_secs_f64()
    );
    assert_applied_exactly_once(&app.db, &app.settings, &expected).await;
}

/// Dead-letter rows (those the broker refused `outbox_max_attempts` times; an outage does not
/// make rows dead) are published again by `convrec outbox retry-dead` once the cause is fixed,
/// and applied once by every group.
#[actix_web::test]
async fn dead_rows_are_redriven_by_the_cli_and_applied_once() {
    let mut broker = PrivateBroker::start();
    let app = event_app()
        .settings(|settings| {
            settings.kafka.brokers = broker.brokers();
            settings.events.delivery_timeout_ms = 1500;
            settings.events.idempotent_producer = false;
        })
        .spawn()
        .await;
    let products = create_products(&app, 3).await;
    let mut expected = Expected::default();
    broker.stop();
    app.post_shop_events(&products, 0..12, &mut expected).await;
    // The state the dispatcher leaves after ten refusals (a refusal cannot be provoked on the
    // local broker without breaking it for the other tests).
    app.db
        .execute_unprepared(
            "UPDATE outbox SET status = 'dead', attempts = 10, \
             last_error = 'Broker: topic authorization failed' WHERE status = 'pending'",
        )
        .await
        .unwrap();
    assert_eq!(outbox_count(&app.db, "dead").await, 12);
    broker.resume();
    // Dead rows stay dead by themselves…
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(outbox_count(&app.db, "dead").await, 12);
    // …until an operator re-drives them.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_convrec"))
        .args(["outbox", "retry-dead"])
        .env(
            "CONVREC__DATABASE__URL",
            secrecy::ExposeSecret::expose_secret(&app.settings.database.url),
        )
        .env("CONVREC__LOG__LEVEL", "warn")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("12 dead outbox rows"), "{stdout}");
    crate::drain::outbox_dispatched(&app.db, crate::drain::DRAIN_TIMEOUT).await;
    app.drain_events().await;
    assert_eq!(outbox_count(&app.db, "dead").await, 0);
    assert_groups_applied(&app.db, &expected).await;
    assert_applied_exactly_once(&app.db, &app.settings, &expected).await;
}

/// The harness's drain fails a test after its timeout, naming what had not drained, rather
/// than hanging or passing: here the broker is gone, so the outbox keeps the events.
#[actix_web::test]
async fn a_drain_that_cannot_finish_fails_and_names_what_is_left() {
    let mut broker = PrivateBroker::start();
    let app = event_app()
        .settings(|settings| settings.kafka.brokers = broker.brokers())
        .spawn()
        .await;
    let products = create_products(&app, 1).await;
    broker.stop();
    app.post_shop_events(&products, 0..3, &mut Expected::default())
        .await;
    let drain = crate::drain::drain_events(&app.settings, &app.db, Duration::from_secs(2));
    let failure = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(drain))
        .await
        .expect_err("the drain fails");
    let message = failure
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(
        message.contains("did not drain within 2s")
            && message.contains("the outbox to be dispatched: 3 rows, 3 pending"),
        "{message}"
    );
}

#[actix_web::test]
async fn two_dispatchers_on_one_outbox_never_send_an_event_twice() {
    let _turn = crate::helpers::broker_heavy().await;
    let first = event_app()
        .settings(|settings| {
            settings.events.outbox_batch_size = 20;
            settings.events.outbox_poll_interval_ms = 20;
        })
        .spawn()
        .await;
    // A second instance on the same database, topics and groups.
    let second = TestAppBuilder::from_settings(first.settings.clone())
        .spawn()
        .await;
    let settings = &first.settings;
    let products = create_products(&first, 4).await;
    let mut expected = Expected::default();
    let (a, b) = (Expected::default(), Expected::default());
    let (mut a, mut b) = (a, b);
    futures::join!(
        first.post_shop_events(&products, 0..500, &mut a),
        second.post_shop_events(&products, 500..1000, &mut b),
    );
    for e in [a, b] {
        expected.shop += e.shop;
        expected.orders += e.orders;
        expected.weight += e.weight;
        for (k, v) in e.by_category {
            *expected.by_category.entry(k).or_default() += v;
        }
    }
    first.drain_events().await;
    assert_groups_applied(&first.db, &expected).await;
    let ids = topic_event_ids(&settings.kafka.brokers, &settings.kafka.topic_prefix).await;
    // The shop topics only; the purchase patterns the orders caused go elsewhere.
    assert_eq!(ids.len(), 1000);
    assert_copies_only_from_produce_retries(&ids);
    let sent_first = first.metric("outbox_sent_total").await.unwrap_or(0.0);
    let sent_second = second.metric("outbox_sent_total").await.unwrap_or(0.0);
    println!("dispatcher one sent {sent_first}, dispatcher two sent {sent_second}");
    assert_eq!(sent_first + sent_second, 1000.0 + expected.orders as f64);
    assert!(
        sent_first > 0.0 && sent_second > 0.0,
        "both dispatchers took part"
    );
    assert_applied_exactly_once(&first.db, settings, &expected).await;
}
