//! `POST /api/events` makes every accepted interaction durable (docs/events.md): views, cart
//! adds and orders are `interactions` rows written with their outbox row, so the CF model that
//! a restarted (or another) instance builds from the database has them; an idempotency key
//! counts a retried event once, per caller; a member token reports only its own views and
//! single cart adds (docs/security.md).

use crate::helpers::{error_code, product_body, test_settings, TestApp, TestAppBuilder};
use convrec::config::Settings;
use convrec::identity::MemberTokens;
use convrec::recommend::cf::{history_strengths, CfConfig};
use convrec::recommend::cf_store::{self, TrainOutcome};
use reqwest::{Response, StatusCode};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value as DbValue};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

/// Test settings that also accept member tokens.
fn settings_with_members() -> Settings {
    let mut settings = test_settings();
    settings.security.member_token_secret =
        SecretString::from(format!("durable-secret-{}", Uuid::new_v4()));
    settings
}

fn member_token(settings: &Settings, member: &str) -> String {
    MemberTokens::new(&settings.security).issue(member).unwrap()
}

async fn new_product(app: &TestApp) -> String {
    let sku = format!("DUR-{}", Uuid::new_v4().simple());
    let product = app.create_product(&product_body(&sku)).await;
    product["id"].as_str().unwrap().to_string()
}

/// Posts `body` with `token` and, when given, an `Idempotency-Key` header.
async fn post(app: &TestApp, token: &str, key: Option<&str>, body: &Value) -> Response {
    let mut request = app
        .client
        .post(app.url("/api/events"))
        .bearer_auth(token)
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.expect("request sent")
}

/// The event id of an answer with `status`.
async fn event_id(response: Response, status: StatusCode) -> String {
    let got = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    body["event_id"].as_str().expect("an event id").to_string()
}

async fn count(db: &DatabaseConnection, sql: &str, values: Vec<DbValue>) -> i64 {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            values,
        ))
        .await
        .expect("query runs")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("an integer")
}

async fn interactions(db: &DatabaseConnection, member: &str, kind: &str) -> i64 {
    count(
        db,
        "SELECT count(*) FROM interactions WHERE member_id = $1 AND kind = $2",
        vec![member.into(), kind.into()],
    )
    .await
}

async fn outbox_rows(db: &DatabaseConnection) -> i64 {
    count(db, "SELECT count(*) FROM outbox", vec![]).await
}

#[actix_web::test]
async fn views_and_cart_adds_from_the_shop_are_interactions_rows_with_their_outbox_rows() {
    let app = TestAppBuilder::from_settings(test_settings()).spawn().await;
    let product = new_product(&app).await;
    let view = json!({"type": "view", "member_id": "shopper", "product_id": product});
    let cart =
        json!({"type": "cart", "member_id": "shopper", "product_id": product, "quantity": 3});
    let view_id = event_id(
        post(&app, &app.admin_token, None, &view).await,
        StatusCode::ACCEPTED,
    )
    .await;
    event_id(
        post(&app, &app.admin_token, None, &cart).await,
        StatusCode::ACCEPTED,
    )
    .await;
    // Without a key, the same view again is another view.
    event_id(
        post(&app, &app.admin_token, None, &view).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(interactions(&app.db, "shopper", "view").await, 2);
    assert_eq!(interactions(&app.db, "shopper", "cart").await, 1);
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) FROM interactions WHERE kind = 'cart' AND quantity = 3",
            vec![]
        )
        .await,
        1
    );
    // A view's row names the event it came from.
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) FROM interactions WHERE source_ref = $1 AND kind = 'view'",
            vec![view_id.clone().into()]
        )
        .await,
        1
    );
    assert_eq!(outbox_rows(&app.db).await, 3);
}

#[actix_web::test]
async fn the_same_idempotency_key_counts_once_and_answers_the_first_event_id() {
    let app = TestAppBuilder::from_settings(test_settings()).spawn().await;
    let product = new_product(&app).await;
    let other_product = new_product(&app).await;
    let key = Uuid::new_v4();
    let view = json!({"type": "view", "member_id": "retrier", "product_id": product});
    let first = event_id(
        post(&app, &app.admin_token, Some(&key.to_string()), &view).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let again = event_id(
        post(&app, &app.admin_token, Some(&key.to_string()), &view).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again, first);
    // The same UUID as the body's event_id (and the header in capitals) is the same key.
    let mut with_event_id = view.clone();
    with_event_id["event_id"] = json!(key);
    let by_body = event_id(
        post(&app, &app.admin_token, None, &with_event_id).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_body, first);
    let both = event_id(
        post(
            &app,
            &app.admin_token,
            Some(&key.to_string().to_uppercase()),
            &with_event_id,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(both, first);
    assert_eq!(interactions(&app.db, "retrier", "view").await, 1);
    assert_eq!(outbox_rows(&app.db).await, 1);
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) FROM outbox WHERE event_id = $1",
            vec![Uuid::parse_str(&first).unwrap().into()]
        )
        .await,
        1
    );

    // The key with another event is refused, and nothing is written.
    let elsewhere = json!({"type": "view", "member_id": "retrier", "product_id": other_product});
    assert_eq!(
        error_code(
            post(&app, &app.admin_token, Some(&key.to_string()), &elsewhere).await,
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        "idempotency_key_reused"
    );

    // Orders: a replay of the key is 200; another event with the same order line stays 409.
    let order = json!({"type": "order", "member_id": "retrier", "product_id": product,
                       "order_id": "SHOP-1", "quantity": 2});
    let order_id = event_id(
        post(&app, &app.admin_token, Some("order-SHOP-1"), &order).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(
        event_id(
            post(&app, &app.admin_token, Some("order-SHOP-1"), &order).await,
            StatusCode::OK
        )
        .await,
        order_id
    );
    assert_eq!(
        error_code(
            post(&app, &app.admin_token, Some("order-SHOP-1-b"), &order).await,
            StatusCode::CONFLICT
        )
        .await,
        "conflict"
    );
    assert_eq!(
        error_code(
            post(&app, &app.admin_token, None, &order).await,
            StatusCode::CONFLICT
        )
        .await,
        "conflict"
    );
    // The refused 409 did not keep its key: it is still free for a new event.
    let cart = json!({"type": "cart", "member_id": "retrier", "product_id": product});
    event_id(
        post(&app, &app.admin_token, Some("order-SHOP-1-b"), &cart).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(interactions(&app.db, "retrier", "order").await, 1);
    assert_eq!(interactions(&app.db, "retrier", "view").await, 1);
    assert_eq!(interactions(&app.db, "retrier", "cart").await, 1);
    assert_eq!(outbox_rows(&app.db).await, 3);
}

#[actix_web::test]
async fn a_body_event_id_that_differs_from_the_header_or_a_bad_key_is_422_and_writes_nothing() {
    let app = TestAppBuilder::from_settings(test_settings()).spawn().await;
    let product = new_product(&app).await;
    let body = json!({"type": "view", "member_id": "m", "product_id": product,
                      "event_id": Uuid::new_v4()});
    let response = post(
        &app,
        &app.admin_token,
        Some(&Uuid::new_v4().to_string()),
        &body,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "validation_failed", "{error}");
    assert_eq!(error["error"]["details"][0]["field"], "event_id", "{error}");
    let view = json!({"type": "view", "member_id": "m", "product_id": product});
    for bad in ["k".repeat(129), "two words".into()] {
        assert_eq!(
            error_code(
                post(&app, &app.admin_token, Some(&bad), &view).await,
                StatusCode::UNPROCESSABLE_ENTITY
            )
            .await,
            "validation_failed",
            "{bad:?}"
        );
    }
    assert!(
        post(&app, &app.admin_token, Some(&"k".repeat(128)), &view)
            .await
            .status()
            == StatusCode::ACCEPTED
    );
    assert_eq!(interactions(&app.db, "m", "view").await, 1);
    assert_eq!(outbox_rows(&app.db).await, 1);
}

#[actix_web::test]
async fn members_report_only_their_own_views_and_single_cart_adds_and_keys_are_per_caller() {
    let settings = settings_with_members();
    let alice = member_token(&settings, "alice");
    let bob = member_token(&settings, "bob");
    let app = TestAppBuilder::from_settings(settings).spawn().await;
    let product = new_product(&app).await;
    let order = json!({"type": "order", "member_id": "alice", "product_id": product,
                       "order_id": format!("invented-{}", Uuid::new_v4())});
    let big_cart =
        json!({"type": "cart", "member_id": "alice", "product_id": product, "quantity": 2});
    let big_order = json!({"type": "order", "member_id": "alice", "product_id": product,
                           "order_id": "invented", "quantity": 1000});
    for refused in [&order, &big_cart, &big_order] {
        let response = post(&app, &alice, None, refused).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{refused}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "forbidden", "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("shop's service token"),
            "{error}"
        );
    }
    assert_eq!(
        count(&app.db, "SELECT count(*) FROM interactions", vec![]).await,
        0
    );
    assert_eq!(outbox_rows(&app.db).await, 0);

    // Her own view and a one-unit cart add are accepted and durable.
    let view = json!({"type": "view", "member_id": "alice", "product_id": product});
    let cart = json!({"type": "cart", "member_id": "alice", "product_id": product, "quantity": 1});
    let alices = event_id(
        post(&app, &alice, Some("tab-1"), &view).await,
        StatusCode::ACCEPTED,
    )
    .await;
    event_id(post(&app, &alice, None, &cart).await, StatusCode::ACCEPTED).await;
    assert_eq!(
        event_id(
            post(&app, &alice, Some("tab-1"), &view).await,
            StatusCode::OK
        )
        .await,
        alices
    );
    // Bob's token with alice's key neither replays nor sees her event: for his own view it is
    // a new key of his; for hers it is 403 as always.
    let bobs_view = json!({"type": "view", "member_id": "bob", "product_id": product});
    let bobs = event_id(
        post(&app, &bob, Some("tab-1"), &bobs_view).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_ne!(bobs, alices);
    assert_eq!(
        error_code(
            post(&app, &bob, Some("tab-1"), &view).await,
            StatusCode::FORBIDDEN
        )
        .await,
        "forbidden"
    );
    // The shop's keys are its own too: the same key and event from the shop is a new event.
    let shops = event_id(
        post(&app, &app.admin_token, Some("tab-1"), &view).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_ne!(shops, alices);
    assert_eq!(interactions(&app.db, "alice", "view").await, 2);
    assert_eq!(interactions(&app.db, "alice", "cart").await, 1);
    assert_eq!(interactions(&app.db, "bob", "view").await, 1);
    assert_eq!(outbox_rows(&app.db).await, 4);
}

#[actix_web::test]
async fn views_survive_a_restart_and_every_instance_builds_them_into_its_cf_model() {
    let settings = test_settings();
    let first = TestAppBuilder::from_settings(settings.clone())
        .spawn()
        .await;
    let a = new_product(&first).await;
    let b = new_product(&first).await;
    let c = new_product(&first).await;
    for (member, kind, product) in [
        ("m", "view", &a),
        ("m", "cart", &b),
        ("n", "view", &a),
        ("n", "view", &b),
        ("n", "view", &c),
    ] {
        let body = json!({"type": kind, "member_id": member, "product_id": product});
        event_id(
            post(&first, &first.admin_token, None, &body).await,
            StatusCode::ACCEPTED,
        )
        .await;
    }
    // A second instance on the same settings (the same database), as after a restart.
    let second = TestAppBuilder::from_settings(settings).spawn().await;
    assert_eq!(interactions(&second.db, "m", "view").await, 1);
    let interactions = cf_store::member_interactions(&second.db, "m", None)
        .await
        .unwrap();
    let history: Vec<String> = history_strengths(&CfConfig::default(), &interactions, 0)
        .into_iter()
        .map(|(item, _)| item.to_string())
        .collect();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0], *b, "the cart add weighs more than the view");
    assert_eq!(history[1], *a);
    // n's views tie a to b and c: a training on either instance stores a version that the
    // second one loads.
    let trained = cf_store::train_if_due(&first.db, CfConfig::default(), Duration::ZERO)
        .await
        .unwrap();
    assert!(matches!(trained, TrainOutcome::Trained(_)), "{trained:?}");
    let served = &second.state.recommender.cf;
    cf_store::refresh(&second.db, served, CfConfig::default().model)
        .await
        .unwrap();
    let similar: Vec<String> = served
        .current()
        .neighbours
        .similar(Uuid::parse_str(&a).unwrap(), 5)
        .into_iter()
        .map(|(item, _)| item.to_string())
        .collect();
    assert!(similar.contains(&b) && similar.contains(&c), "{similar:?}");
}

#[actix_web::test]
async fn concurrent_retries_with_one_key_store_one_event() {
    let app = TestAppBuilder::from_settings(test_settings()).spawn().await;
    let product = new_product(&app).await;
    let view = json!({"type": "view", "member_id": "racer", "product_id": product});
    let answers = futures::future::join_all((0..8).map(|_| async {
        let response = post(&app, &app.admin_token, Some("race-1"), &view).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        (status, body["event_id"].as_str().unwrap().to_string())
    }))
    .await;
    let accepted = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::ACCEPTED)
        .count();
    assert_eq!(accepted, 1, "{answers:?}");
    assert!(
        answers.iter().all(|(status, id)| *id == answers[0].1
            && (*status == StatusCode::ACCEPTED || *status == StatusCode::OK)),
        "{answers:?}"
    );
    assert_eq!(interactions(&app.db, "racer", "view").await, 1);
    assert_eq!(outbox_rows(&app.db).await, 1);
}

#[actix_web::test]
async fn idempotency_keys_older_than_the_retention_are_pruned_and_then_count_as_new() {
    let app = TestAppBuilder::from_settings(test_settings()).spawn().await;
    let product = new_product(&app).await;
    let (old, fresh) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let view = json!({"type": "view", "member_id": "late-retrier", "product_id": product});
    for key in [&old, &fresh] {
        event_id(
            post(&app, &app.admin_token, Some(key), &view).await,
            StatusCode::ACCEPTED,
        )
        .await;
    }
    app.db
        .execute_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "UPDATE event_idempotency_keys SET created_at = now() - interval '200 hours' \
             WHERE key = $1",
            [DbValue::from(old.clone())],
        ))
        .await
        .unwrap();
    let pruned = convrec::events::idempotency::prune(&app.db, 168)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    // The fresh key still answers its first event; the pruned one is a new event now.
    event_id(
        post(&app, &app.admin_token, Some(&fresh), &view).await,
        StatusCode::OK,
    )
    .await;
    event_id(
        post(&app, &app.admin_token, Some(&old), &view).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(interactions(&app.db, "late-retrier", "view").await, 3);
}
