//! The crash test (issue 19, part 9): `kill -9` of the service while 50 shoppers chat over
//! REST and the shop posts events, then a restart. Afterwards every acknowledged message has
//! exactly one reply, every accepted event was applied exactly once by each group (checked by
//! the analytics counters' sums, not only by the ledger), and nothing is left pending. Clients
//! do what a well-behaved client does after a failure: retry with the same client id (chat)
//! or event id (events); half of the shoppers give up instead, and the recovery sweeper
//! answers what they left.

use crate::event_support::{
    assert_applied_exactly_once, assert_groups_applied, outbox_count, shop_event, Expected,
    ServiceProcess,
};
use crate::helpers::{scalar, wait_until, TestApp};
use convrec::identity::MemberTokens;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const SHOPPERS: usize = 50;
/// More than the shop can post before the kill: the rest fail and are posted again after it.
const SHOP_EVENTS: usize = 800;
const TEXTS: [&str; 6] = [
    "20만원 이하 패딩 추천해 주세요",
    "Show me waterproof jackets",
    "검은색 운동화 있어요?",
    "a tent for two people",
    "따뜻한 겨울 코트",
    "something cheaper please",
];

/// One shopper's side of the test.
#[derive(Default)]
struct Shopper {
    /// (client id, text) of every message sent.
    sent: Vec<(String, String)>,
    /// Client ids answered with a stored turn (2xx).
    acknowledged: HashSet<String>,
    /// The message in flight when the service died (its answer never came).
    in_flight: Option<(String, String)>,
}

async fn post_message(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    conversation: &str,
    client_id: &str,
    text: &str,
) -> Result<StatusCode, reqwest::Error> {
    client
        .post(format!("{base}/api/conversations/{conversation}/messages"))
        .bearer_auth(token)
        .json(&json!({"text": text, "client_id": client_id}))
        .send()
        .await
        .map(|r| r.status())
}

#[actix_web::test]
async fn killed_mid_traffic_every_message_is_answered_once_and_every_event_applied_once() {
    let _turn = crate::helpers::broker_heavy().await;
    let settings = TestApp::builder()
        .settings(|s| {
            s.events.trending_half_life_secs = 1_000_000_000;
            // Small, frequent batches so the kill lands while the outbox is being dispatched.
            s.events.outbox_batch_size = 5;
            s.events.outbox_poll_interval_ms = 20;
            s.chat.unanswered_after_secs = 5;
            s.chat.recovery_interval_secs = 1;
        })
        .into_settings();
    let log = std::env::temp_dir().join(format!("convrec-crash-{}.log", uuid::Uuid::new_v4()));
    let mut service = ServiceProcess::start(&settings, &log).await;
    let base = service.address.clone();
    let db = sea_orm::Database::connect(settings.database.url.expose_secret())
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let admin = settings.security.admin_token.expose_secret().to_string();
    let tokens = MemberTokens::new(&settings.security);

    let mut products = Vec::new();
    for i in 0..4 {
        let mut body = crate::helpers::product_body(&format!("K-{i}"));
        let category = [
            "fashion/outerwear",
            "fashion/shoes",
            "outdoor/tents",
            "books",
        ][i];
        body["category"] = json!(category);
        let response = client
            .post(format!("{base}/api/products"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.unwrap();
        products.push((
            created["id"].as_str().unwrap().to_string(),
            category.to_string(),
        ));
    }
    let mut conversations = Vec::new();
    for i in 0..SHOPPERS {
        let token = tokens.issue(&format!("shopper-{i}")).unwrap();
        let response = client
            .post(format!("{base}/api/conversations"))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        conversations.push((token, body["id"].as_str().unwrap().to_string()));
    }

    // The traffic: shoppers chat until their request fails; the shop posts its events with
    // ids (8 at a time). A monitor kills the service in the middle of both.
    let answered = AtomicUsize::new(0);
    let shoppers = futures::future::join_all(conversations.iter().enumerate().map(
        |(i, (token, conversation))| {
            let (client, base, answered) = (&client, &base, &answered);
            async move {
                let mut shopper = Shopper::default();
                for n in 0.. {
                    let client_id = format!("s{i}-{n}");
                    let text = TEXTS[(i + n) % TEXTS.len()].to_string();
                    shopper.sent.push((client_id.clone(), text.clone()));
                    // Busy (429/503): the same message again, as a client would.
                    loop {
                        match post_message(client, base, token, conversation, &client_id, &text)
                            .await
                        {
                            Ok(status) if status.is_success() => {
                                shopper.acknowledged.insert(client_id.clone());
                                answered.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Ok(status) if status.is_server_error() || status.as_u16() == 429 => {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                            Ok(status) => panic!("turn {client_id} refused with {status}"),
                            Err(_) => {
                                shopper.in_flight = Some((client_id.clone(), text.clone()));
                                break;
                            }
                        }
                    }
                    if shopper.in_flight.is_some() {
                        break;
                    }
                    // A shopper reads the reply before writing again.
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                }
                shopper
            }
        },
    ));
    let events: Vec<(Value, String)> = (0..SHOP_EVENTS)
        .map(|i| {
            let (mut event, category) = shop_event(i, &products);
            event["event_id"] = json!(uuid::Uuid::new_v4());
            (event, category)
        })
        .collect();
    let accepted_before = AtomicUsize::new(0);
    let shop = {
        use futures::StreamExt;
        let (client, base, admin, accepted_before) = (&client, &base, &admin, &accepted_before);
        futures::stream::iter(events.iter().enumerate())
            .map(move |(i, (event, _))| async move {
                let sent = client
                    .post(format!("{base}/api/events"))
                    .bearer_auth(admin)
                    .json(event)
                    .send()
                    .await;
                // The shop's back end reports as orders come in, not all at once.
                tokio::time::sleep(Duration::from_millis(50)).await;
                match sent {
                    Ok(r) if r.status() == StatusCode::ACCEPTED => {
                        accepted_before.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                    Ok(r) => panic!("event {i} refused before the kill: {}", r.status()),
                    Err(_) => Some(i),
                }
            })
            .buffer_unordered(4)
            .filter_map(|failed| async move { failed })
            .collect::<Vec<usize>>()
    };
    let monitor = async {
        // A running service: every group has its partitions and applies events (a kill
        // inside the groups' first join is Tansu 0.6's defect, docs/events.md#tansu).
        let mid_traffic = wait_until(Duration::from_secs(120), || async {
            let mut consuming = true;
            for group in crate::event_support::GROUPS {
                consuming &= crate::event_support::processed(&db, group).await > 0;
            }
            consuming
                && answered.load(Ordering::Relaxed) >= 2 * SHOPPERS
                && outbox_count(&db, "sent").await > 0
                && outbox_count(&db, "pending").await > 0
        })
        .await;
        service.kill();
        mid_traffic
    };
    let (shoppers, failed_events, mid_traffic) = tokio::join!(shoppers, shop, monitor);
    assert!(
        mid_traffic,
        "the traffic had not started (log: {})",
        log.display()
    );
    let (sent, pending) = (
        outbox_count(&db, "sent").await,
        outbox_count(&db, "pending").await,
    );
    let acked_before: usize = shoppers.iter().map(|s| s.acknowledged.len()).sum();
    let in_flight = shoppers.iter().filter(|s| s.in_flight.is_some()).count();
    let stored_before = scalar(
        &db,
        "SELECT count(*) FROM conversation_messages WHERE role = 'user'",
    )
    .await;
    println!(
        "SIGKILL: outbox {sent} sent / {pending} pending; chat: {acked_before} turns answered, \
         {in_flight} in flight, {stored_before} user messages stored; events: {} accepted, {} failed",
        accepted_before.load(Ordering::Relaxed),
        failed_events.len()
    );

    // Restarted as a process supervisor would, after a pause longer than the consumers'
    // session (30 s): Tansu 0.6 can leave a group that a member rejoins within the dead
    // member's session without some partitions, for good (docs/events.md#tansu).
    tokio::time::sleep(Duration::from_secs(32)).await;
    // The usual batches now (the small ones were only there to land the kill mid-dispatch).
    let mut after = settings.clone();
    after.events.outbox_batch_size = 100;
    after.events.outbox_poll_interval_ms = 200;
    let restarted = ServiceProcess::start(&after, &log).await;
    let base = restarted.address.clone();
    // Even shoppers retry their message in flight with its client id; odd ones give up.
    let mut acknowledged: HashSet<String> = shoppers
        .iter()
        .flat_map(|s| s.acknowledged.iter().cloned())
        .collect();
    let mut retried = 0;
    for (i, shopper) in shoppers.iter().enumerate() {
        let Some((client_id, text)) = &shopper.in_flight else {
            continue;
        };
        if i % 2 == 1 {
            continue;
        }
        let (token, conversation) = &conversations[i];
        let status = post_message(&client, &base, token, conversation, client_id, text)
            .await
            .expect("the restarted service answers");
        assert!(status.is_success(), "retry of {client_id}: {status}");
        acknowledged.insert(client_id.clone());
        retried += 1;
    }
    // The shop retries its failed events with their ids.
    {
        use futures::StreamExt;
        let (client, base, admin, events) = (&client, &base, &admin, &events);
        futures::stream::iter(failed_events.iter())
            .for_each_concurrent(8, move |i| async move {
                let response = client
                    .post(format!("{base}/api/events"))
                    .bearer_auth(admin)
                    .json(&events[*i].0)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    matches!(response.status(), StatusCode::ACCEPTED | StatusCode::OK),
                    "retry of event {i}: {}",
                    response.status()
                );
            })
            .await;
    }
    // The sweeper answers what the shoppers who gave up left.
    let unanswered = "SELECT count(*) FROM conversation_messages \
                      WHERE role = 'user' AND answered_at IS NULL";
    let all_answered = wait_until(Duration::from_secs(120), || async {
        scalar(&db, unanswered).await == 0
    })
    .await;
    let user_messages = scalar(
        &db,
        "SELECT count(*) FROM conversation_messages WHERE role = 'user'",
    )
    .await;
    let replies = scalar(
        &db,
        "SELECT count(*) FROM conversation_messages WHERE role = 'assistant'",
    )
    .await;
    let duplicates = scalar(
        &db,
        "SELECT count(*) FROM (SELECT reply_to FROM conversation_messages \
         WHERE role = 'assistant' GROUP BY reply_to HAVING count(*) > 1) d",
    )
    .await;
    let stored_ids: HashSet<String> = {
        use sea_orm::{ConnectionTrait, Statement};
        db.query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT client_message_id FROM conversation_messages \
             WHERE role = 'user' AND answered_at IS NOT NULL",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "client_message_id").unwrap())
        .collect()
    };
    let lost = acknowledged.difference(&stored_ids).count();
    let sent_messages: usize = shoppers.iter().map(|s| s.sent.len()).sum();
    println!(
        "chat: {sent_messages} sent, {} acknowledged ({retried} after a retry), \
         {user_messages} stored, {replies} replies, {} left unanswered, duplicates {duplicates}, \
         lost {lost}; recovered by the sweeper: {}",
        acknowledged.len(),
        scalar(&db, unanswered).await,
        user_messages - acknowledged.len() as i64,
    );
    assert!(
        all_answered,
        "messages left unanswered (log: {})",
        log.display()
    );
    assert_eq!(duplicates, 0, "a message was answered twice");
    assert_eq!(lost, 0, "an acknowledged message has no reply");
    assert_eq!(
        replies, user_messages,
        "one reply per message, none without one"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM conversation_messages WHERE role = 'assistant' AND reply_to IS NULL"
        )
        .await,
        0
    );

    // Every event: the shop's, and one per stored chat message.
    let mut expected = Expected::default();
    for (event, category) in &events {
        expected.add_shop_event(event, category);
    }
    expected.messages = scalar(&db, "SELECT count(*) FROM conversation_messages").await;
    expected.rejections = scalar(
        &db,
        "SELECT count(*) FROM outbox WHERE payload->>'type' = 'product.rejected'",
    )
    .await;
    // Twice the usual bound: this test alone writes about 2,000 events, and in the suite it
    // shares the broker with the other tests.
    crate::drain::drain_events(&settings, &db, 2 * crate::drain::DRAIN_TIMEOUT).await;
    assert_groups_applied(&db, &expected).await;
    assert_eq!(outbox_count(&db, "pending").await, 0);
    assert_eq!(outbox_count(&db, "dead").await, 0);
    assert_applied_exactly_once(&db, &settings, &expected).await;
    println!(
        "events: {} shop events, {} chat messages and {} rejections applied once by each group",
        SHOP_EVENTS, expected.messages, expected.rejections
    );
    drop(restarted);
    let _ = std::fs::remove_file(&log);
}
