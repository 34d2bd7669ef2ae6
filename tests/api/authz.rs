//! Who may call what (docs/security.md): a table of every authenticated endpoint called with no
//! token, bad tokens, member A's token on member B's data, a member's token on the shop's
//! endpoints and the shop's token on member-only ones, plus the chat socket. Positive controls
//! (B on B's data, the shop on anyone's) show the refusals are not just broken routes.

use crate::chat_support::*;
use crate::helpers::{spawn_app, test_settings, TestApp};
use convrec::chat::store::{self, MessageExtras, Role};
use convrec::identity::MemberTokens;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};
use uuid::Uuid;

/// `alg: none`, `sub: bob`, expiring in 2100: must never be accepted.
const UNSIGNED_TOKEN: &str =
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJib2IiLCJleHAiOjQxMDI0NDQ4MDB9.";

struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
}

fn case(method: Method, path: impl Into<String>, body: Option<Value>) -> Case {
    Case {
        method,
        path: path.into(),
        body,
    }
}

impl Case {
    async fn call(&self, app: &TestApp, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = app.client.request(self.method.clone(), app.url(&self.path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = &self.body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

struct World {
    app: TestApp,
    alice: String,
    bob: String,
    bobs_conversation: Uuid,
    product: String,
}

async fn world() -> World {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let bobs_conversation = app.create_conversation("bob", Some("bob's secret")).await;
    let conversation = store::find_conversation(&app.db, bobs_conversation)
        .await
        .unwrap()
        .unwrap();
    store::insert_message(
        &app.db,
        &conversation,
        Role::User,
        "bob's private padding question",
        MessageExtras::default(),
    )
    .await
    .unwrap();
    let products: Value = app.get("/api/products").await.json().await.unwrap();
    let product = products["items"][0]["id"].as_str().unwrap().to_string();
    World {
        alice: app.member_token("alice"),
        bob: app.member_token("bob"),
        app,
        bobs_conversation,
        product,
    }
}

/// Every endpoint scoped to member B, as member B or the shop may call it.
fn bobs_endpoints(w: &World) -> Vec<Case> {
    let conversation = w.bobs_conversation;
    vec![
        case(Method::GET, "/api/conversations?member_id=bob", None),
        case(
            Method::GET,
            format!("/api/conversations/{conversation}/messages"),
            None,
        ),
        case(
            Method::POST,
            format!("/api/conversations/{conversation}/messages"),
            Some(json!({"text": "sneaking in"})),
        ),
        case(Method::GET, "/api/recommendations/bob", None),
        case(Method::GET, "/api/members/bob/preferences", None),
        case(
            Method::GET,
            "/api/search/messages?q=padding&member=bob",
            None,
        ),
        case(
            Method::POST,
            "/api/events",
            // A cart add: a member token may not report orders at all (durable_events.rs).
            Some(json!({"type": "cart", "member_id": "bob", "product_id": w.product})),
        ),
    ]
}

/// The catalog writes: the shop's alone.
fn shop_endpoints(w: &World) -> Vec<Case> {
    let product = &w.product;
    let mut new_product = crate::helpers::product_body(&format!("AUTHZ-{}", Uuid::new_v4()));
    new_product["stock"] = json!(1);
    vec![
        case(Method::POST, "/api/products", Some(new_product.clone())),
        case(
            Method::PUT,
            format!("/api/products/{product}"),
            Some(new_product),
        ),
        case(
            Method::PATCH,
            format!("/api/products/{product}"),
            Some(json!({"stock": 0})),
        ),
        case(Method::DELETE, format!("/api/products/{product}"), None),
    ]
}

/// Endpoints any authenticated caller may use for themselves (as member A).
fn own_endpoints() -> Vec<Case> {
    vec![
        case(Method::GET, "/api/conversations", None),
        case(Method::POST, "/api/conversations", Some(json!({}))),
        case(Method::GET, "/api/recommendations/alice", None),
        case(Method::GET, "/api/members/alice/preferences", None),
        case(Method::GET, "/api/search/messages?q=padding", None),
    ]
}

#[actix_web::test]
async fn no_token_and_bad_tokens_are_401_on_every_authenticated_endpoint() {
    let w = world().await;
    let other_secret = {
        let mut settings = test_settings();
        settings.security.member_token_secret = SecretString::from("someone-elses-secret");
        MemberTokens::new(&settings.security)
    };
    let expired = w.app.state.tokens.issue_with_ttl("bob", 0).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let forged = other_secret.issue("bob").unwrap();
    let cases: Vec<Case> = bobs_endpoints(&w)
        .into_iter()
        .chain(own_endpoints())
        .collect();
    for case in &cases {
        let (status, body) = case.call(&w.app, None).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{} without a token: {body}",
            case.name()
        );
        for (what, token, code) in [
            ("garbage", "not-a-token", "unauthorized"),
            ("unsigned (alg none)", UNSIGNED_TOKEN, "unauthorized"),
            (
                "signed with another secret",
                forged.as_str(),
                "unauthorized",
            ),
            ("expired", expired.as_str(), "token_expired"),
        ] {
            let (status, body) = case.call(&w.app, Some(token)).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} with a {what} token: {body}",
                case.name()
            );
            assert_eq!(body["error"]["code"], code, "{} {what}", case.name());
        }
    }
    // Catalog writes: no token is 401; any bearer token but the shop's is 403.
    for case in shop_endpoints(&w) {
        let (status, _) = case.call(&w.app, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", case.name());
        let (status, _) = case.call(&w.app, Some("not-a-token")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{}", case.name());
    }
    // The socket: refused before the upgrade.
    for token in ["", "not-a-token", UNSIGNED_TOKEN, &forged, &expired] {
        match w.app.try_connect(token, None).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401)
            }
            other => panic!("the socket opened with {token:?}: {:?}", other.is_ok()),
        }
    }
}

#[actix_web::test]
async fn member_a_can_neither_read_nor_write_member_bs_data() {
    let w = world().await;
    for case in bobs_endpoints(&w) {
        let (status, body) = case.call(&w.app, Some(&w.alice)).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "alice: {}: {body}",
            case.name()
        );
        assert_eq!(body["error"]["code"], "forbidden", "{}", case.name());
    }
    // Nothing alice tried was written: bob's conversation still has its one message.
    let messages = store::list_messages(&w.app.db, w.bobs_conversation, None, 10)
        .await
        .unwrap();
    assert_eq!(messages.len(), 1, "alice wrote into bob's conversation");
    // Positive controls: bob himself and the shop get through (not 401/403).
    for case in bobs_endpoints(&w) {
        for (who, token) in [("bob", w.bob.as_str()), ("shop", &w.app.admin_token)] {
            if who == "shop" && case.method == Method::POST && case.path.contains("/messages") {
                continue; // posting chat messages is for members only (checked below)
            }
            let (status, body) = case.call(&w.app, Some(token)).await;
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "{who}: {}: {status} {body}",
                case.name()
            );
        }
    }
    // Alice's own views never contain bob's data.
    let (_, page) = case(Method::GET, "/api/conversations", None)
        .call(&w.app, Some(&w.alice))
        .await;
    assert!(
        !page.to_string().contains(&w.bobs_conversation.to_string()),
        "{page}"
    );
    let (status, hits) = case(
        Method::GET,
        format!(
            "/api/search/messages?q=padding&conversation={}",
            w.bobs_conversation
        ),
        None,
    )
    .call(&w.app, Some(&w.alice))
    .await;
    assert_eq!(status, StatusCode::OK, "{hits}");
    assert_eq!(
        hits["total"], 0,
        "a conversation filter never widens the member filter: {hits}"
    );
}

#[actix_web::test]
async fn members_get_403_on_the_shops_endpoints_and_the_shop_on_member_only_ones() {
    let w = world().await;
    for case in shop_endpoints(&w) {
        let (status, body) = case.call(&w.app, Some(&w.alice)).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "alice: {}: {body}",
            case.name()
        );
    }
    assert_eq!(
        w.app.product_count().await,
        7,
        "no member write got through"
    );
    // Creating conversations and chatting are a member's (the shop has no conversations).
    let shop = w.app.admin_token.clone();
    for case in [
        case(Method::POST, "/api/conversations", Some(json!({}))),
        case(
            Method::POST,
            format!("/api/conversations/{}/messages", w.bobs_conversation),
            Some(json!({"text": "hello"})),
        ),
    ] {
        let (status, body) = case.call(&w.app, Some(&shop)).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "shop: {}: {body}",
            case.name()
        );
    }
    match w.app.try_connect(&shop, None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403)
        }
        other => panic!("the shop opened a chat socket: {:?}", other.is_ok()),
    }
    // A member reports their own events, not anyone else's.
    let own = case(
        Method::POST,
        "/api/events",
        Some(json!({"type": "view", "member_id": "alice", "product_id": w.product})),
    );
    assert_eq!(
        own.call(&w.app, Some(&w.alice)).await.0,
        StatusCode::ACCEPTED
    );
}

#[actix_web::test]
async fn over_the_socket_member_a_cannot_join_resume_or_write_to_bs_conversation() {
    let w = world().await;
    let bobs = w.bobs_conversation;
    // Joining at the upgrade.
    match w.app.try_connect(&w.alice, Some(bobs)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403)
        }
        other => panic!("alice joined bob's conversation: {:?}", other.is_ok()),
    }
    let mut socket = w.app.connect("alice").await;
    // Resuming by frame.
    send_json(&mut socket, json!({"type":"resume","conversation_id":bobs})).await;
    let error = expect_frame(&mut socket, "error").await;
    assert_eq!(error["code"], "forbidden", "{error}");
    // Writing into it by naming it.
    send_json(
        &mut socket,
        json!({"type":"message","text":"hi bob","conversation_id":bobs,"client_id":"x"}),
    )
    .await;
    let error = expect_frame(&mut socket, "error").await;
    assert_eq!(error["code"], "forbidden", "{error}");
    assert_eq!(error["client_id"], "x");
    // Her next message goes to a conversation of her own, not bob's.
    send_json(
        &mut socket,
        json!({"type":"message","text":"패딩 추천","client_id":"own"}),
    )
    .await;
    let ack = expect_frame(&mut socket, "ack").await;
    assert_ne!(ack["conversation_id"], bobs.to_string());
    expect_frame(&mut socket, "typing").await;
    expect_frame(&mut socket, "reply").await;
    let messages = store::list_messages(&w.app.db, bobs, None, 10)
        .await
        .unwrap();
    assert_eq!(messages.len(), 1, "bob's conversation is untouched");
    // Bob himself can resume it (positive control).
    let mut bobs_socket = w.app.try_connect(&w.bob, Some(bobs)).await.unwrap();
    let history = expect_frame(&mut bobs_socket, "history").await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
}
