//! Supervision (issue 19, part 8): every long-lived actor is made to fail as a fatal error
//! would (it stops); its supervisor restarts it on the same mailbox, the restart is counted
//! in `actor_restarts_total{actor}`, and the work each one does goes on: events are
//! dispatched, consumed and applied by every group, chat turns are embedded, ranked and
//! answered, recommendations computed, readiness probed.

use crate::event_support::{create_products, Expected};
use crate::helpers::{spawn_app, wait_until};
use convrec::actors::supervision::Fail;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

#[actix_web::test]
async fn every_long_lived_actor_is_restarted_after_it_fails_and_the_work_goes_on() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let products = create_products(&app, 4).await;
    let mut expected = Expected::default();
    app.post_shop_events(&products, 0..30, &mut expected).await;
    app.drain_events().await;

    let mut per_actor: BTreeMap<&str, usize> = BTreeMap::new();
    for actor in &app.supervised {
        *per_actor.entry(actor.name).or_default() += 1;
    }
    for name in [
        "dependency_monitor",
        "search_indexer",
        "embedding_batcher",
        "recommender",
        "kafka_egress",
        "outbox_dispatcher",
        "analytics",
        "recommendation_cache",
        "preference",
        "kafka_ingress",
    ] {
        assert!(
            per_actor.contains_key(name),
            "{name} is supervised: {per_actor:?}"
        );
    }
    let restarts = |name: &str| format!("actor_restarts_total{{actor=\"{name}\"}}");
    let mut before = BTreeMap::new();
    for name in per_actor.keys() {
        before.insert(*name, app.metric(&restarts(name)).await.unwrap_or(0.0));
    }

    for actor in &app.supervised {
        actor
            .fail
            .send(Fail)
            .await
            .expect("the actor takes the message");
    }
    for (name, count) in &per_actor {
        let wanted = before[name] + *count as f64;
        let restarted = wait_until(Duration::from_secs(20), || async {
            app.metric(&restarts(name)).await.unwrap_or(0.0) >= wanted
        })
        .await;
        assert!(restarted, "{name} was not restarted {count} time(s)");
    }

    // The work goes on. Events: written, dispatched, consumed and applied by every group.
    app.post_shop_events(&products, 30..60, &mut expected).await;
    app.drain_events().await;
    crate::event_support::assert_groups_applied(&app.db, &expected).await;
    crate::event_support::assert_applied_exactly_once(&app.db, &app.settings, &expected).await;
    // A chat turn: embedded (batcher), analysed, ranked (recommender pool), answered.
    let conversation = app.create_conversation("after-restart", None).await;
    let response = app
        .post_as(
            &app.member_token("after-restart"),
            &format!("/api/conversations/{conversation}/messages"),
            &json!({"text": "따뜻한 패딩 추천해 주세요", "client_id": "after"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let turn: Value = response.json().await.unwrap();
    assert!(
        !turn["reply"]["products"].as_array().unwrap().is_empty(),
        "{turn}"
    );
    // Its event reaches the preference group (the profile is written).
    app.drain_events().await;
    // Recommendations and readiness.
    let response = app
        .get_as(
            &app.member_token("member-1"),
            "/api/recommendations/member-1?limit=5",
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let ready = wait_until(Duration::from_secs(20), || async {
        app.get("/readyz").await.status() == StatusCode::OK
    })
    .await;
    assert!(ready, "readiness is probed again");
}
