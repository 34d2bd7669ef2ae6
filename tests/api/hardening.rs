//! Rate limits (per member, per IP, the shop exempt) and CORS.

use crate::helpers::{error_code, spawn_app, TestApp};
use reqwest::StatusCode;

#[actix_web::test]
async fn members_over_their_limit_get_429_with_retry_after_and_others_are_unaffected() {
    let app = TestApp::builder()
        .settings(|settings| {
            settings.rate_limit.enabled = true;
            settings.rate_limit.per_member_burst = 3;
            settings.rate_limit.per_member_per_minute = 6;
        })
        .spawn()
        .await;
    let search = |token: String| {
        app.client
            .get(app.url("/api/search/messages?q=padding"))
            .bearer_auth(token)
            .send()
    };
    let alice = app.member_token("alice");
    for _ in 0..3 {
        assert_ne!(
            search(alice.clone()).await.unwrap().status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    let limited = search(alice.clone()).await.unwrap();
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    assert_eq!(
        error_code(limited, StatusCode::TOO_MANY_REQUESTS).await,
        "rate_limited"
    );
    // Bob has his own allowance; the shop's service token is exempt.
    let bob = app.member_token("bob");
    assert_ne!(
        search(bob).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    for _ in 0..10 {
        let shop = search(app.admin_token.clone()).await.unwrap();
        assert_ne!(shop.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    // Unlimited routes stay open.
    for _ in 0..10 {
        assert_eq!(app.get("/api/products").await.status(), StatusCode::OK);
    }
}

#[actix_web::test]
async fn one_ip_over_its_limit_gets_429_even_without_a_token() {
    let app = TestApp::builder()
        .settings(|settings| {
            settings.rate_limit.enabled = true;
            settings.rate_limit.per_ip_burst = 5;
            settings.rate_limit.per_ip_per_minute = 5;
        })
        .spawn()
        .await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(app.get("/api/search/products?q=").await.status());
    }
    assert!(
        statuses[..5].iter().all(|s| *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
    assert!(
        statuses[5..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

/// `GET path` as `member` (or anonymous) through the given instance, with forwarding headers.
async fn status_via(
    app: &TestApp,
    address: &str,
    path: &str,
    token: Option<&str>,
    forwarded_for: Option<&str>,
) -> StatusCode {
    let mut request = app.client.get(format!("{address}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(client) = forwarded_for {
        request = request.header("X-Forwarded-For", client);
    }
    request.send().await.unwrap().status()
}

#[actix_web::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_bucket_and_spoofing_does_not_help() {
    let limited = |trusted: &'static str| {
        TestApp::builder().settings(move |settings| {
            settings.rate_limit.enabled = true;
            settings.rate_limit.per_ip_burst = 3;
            settings.rate_limit.per_ip_per_minute = 1;
            settings.rate_limit.trusted_proxies = trusted.to_string();
        })
    };
    // The test client connects from 127.0.0.1: here that is the proxy.
    let app = limited("127.0.0.1").spawn().await;
    let path = "/api/search/products?q=";
    let mut first = Vec::new();
    for _ in 0..4 {
        first.push(status_via(&app, &app.address, path, None, Some("203.0.113.1")).await);
    }
    assert_eq!(first[3], StatusCode::TOO_MANY_REQUESTS, "{first:?}");
    assert!(first[..3]
        .iter()
        .all(|s| *s != StatusCode::TOO_MANY_REQUESTS));
    // Another shopper behind the same proxy has their own bucket.
    assert_ne!(
        status_via(&app, &app.address, path, None, Some("203.0.113.2")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Prepending a fake address does not escape: the proxy's own hop is what counts.
    assert_eq!(
        status_via(&app, &app.address, path, None, Some("9.9.9.9, 203.0.113.1")).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Without trusted proxies the header is the client's own words: one bucket for the peer.
    let direct = limited("").spawn().await;
    let mut statuses = Vec::new();
    for n in 0..4 {
        let client = format!("198.51.100.{n}");
        statuses.push(status_via(&direct, &direct.address, path, None, Some(&client)).await);
    }
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
}

#[actix_web::test]
async fn two_instances_share_one_member_limit() {
    let first = TestApp::builder()
        .settings(|settings| {
            settings.rate_limit.enabled = true;
            settings.rate_limit.per_member_burst = 4;
            settings.rate_limit.per_member_per_minute = 1;
        })
        .spawn()
        .await;
    let second = crate::helpers::TestAppBuilder::from_settings(first.settings.clone())
        .spawn()
        .await;
    let token = first.member_token("alice");
    let path = "/api/search/messages?q=padding";
    let mut statuses = Vec::new();
    for address in [
        &first.address,
        &second.address,
        &first.address,
        &second.address,
    ] {
        statuses.push(status_via(&first, address, path, Some(&token), None).await);
    }
    assert!(
        statuses.iter().all(|s| *s != StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // The fifth request is over the one shared burst, whichever instance gets it.
    assert_eq!(
        status_via(&first, &second.address, path, Some(&token), None).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[actix_web::test]
async fn socket_messages_count_against_the_member_limit_and_the_socket_stays_open() {
    use crate::chat_support::send_json;
    let app = TestApp::builder()
        .settings(|settings| {
            settings.rate_limit.enabled = true;
            // The upgrade itself is one request.
            settings.rate_limit.per_member_burst = 3;
            settings.rate_limit.per_member_per_minute = 1;
        })
        .spawn()
        .await;
    let mut socket = app.connect("chatty").await;
    for (n, text) in ["방수 자켓", "더 싼 거", "또 보여줘"].iter().enumerate() {
        send_json(
            &mut socket,
            serde_json::json!({"type": "message", "text": text, "client_id": format!("m{n}")}),
        )
        .await;
    }
    // The first two are acknowledged (their replies interleave); the third is refused.
    let mut acked = Vec::new();
    let refusal = loop {
        let frame = crate::chat_support::next_frame(&mut socket).await;
        match frame["type"].as_str() {
            Some("ack") => acked.push(frame["client_id"].as_str().unwrap_or("").to_string()),
            Some("error") => break frame,
            _ => {}
        }
    };
    // m1 waits behind m0's turn, so its ack may come after the refusal.
    while acked.len() < 2 {
        let frame = crate::chat_support::next_frame(&mut socket).await;
        if frame["type"] == "ack" {
            acked.push(frame["client_id"].as_str().unwrap_or("").to_string());
        }
    }
    assert_eq!(acked, ["m0", "m1"], "{refusal}");
    assert_eq!(refusal["code"], "rate_limited", "{refusal}");
    assert_eq!(refusal["client_id"], "m2", "{refusal}");
    // The socket lives on: a ping is answered (after any reply frames still coming).
    send_json(&mut socket, serde_json::json!({"type": "ping"})).await;
    while crate::chat_support::next_frame(&mut socket).await["type"] != "pong" {}
}

#[actix_web::test]
async fn a_member_may_hold_only_so_many_sockets() {
    let app = TestApp::builder()
        .settings(|settings| {
            settings.rate_limit.enabled = true;
            settings.rate_limit.max_sockets_per_member = 2;
        })
        .spawn()
        .await;
    let token = app.member_token("greedy");
    let first = app.try_connect(&token, None).await.expect("first socket");
    let _second = app.try_connect(&token, None).await.expect("second socket");
    let refused = app.try_connect(&token, None).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429)
        }
        other => panic!("a third socket must be refused, got {other:?}"),
    }
    // Another member is not affected.
    let _other = app.connect("modest").await;
    // Closing one frees its slot.
    drop(first);
    let reopened = crate::helpers::wait_until(std::time::Duration::from_secs(10), || async {
        app.try_connect(&token, None).await.is_ok()
    })
    .await;
    assert!(reopened, "a closed socket's slot is free again");
}

#[actix_web::test]
async fn cors_allows_only_the_configured_origins() {
    let app = TestApp::builder()
        .settings(|settings| {
            settings.server.cors_allowed_origins =
                "https://shop.example, https://m.shop.example".into()
        })
        .spawn()
        .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/products"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
    };
    let allowed = preflight("https://m.shop.example").await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://m.shop.example"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let simple = app
        .client
        .get(app.url("/api/products"))
        .header("Origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
}

/// Sends a raw request head and returns the response's status code (0: closed unanswered).
async fn raw_status(address: &str, head: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .unwrap();
    // The server may answer and close before reading everything: write errors are expected.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut response),
    )
    .await;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[actix_web::test]
async fn oversized_or_too_many_headers_get_431_and_the_server_stays_up() {
    let app = spawn_app().await;
    let request = |extra: String| {
        format!("GET /api/products HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n")
    };
    // A normal request through the raw client, to trust it.
    assert_eq!(raw_status(&app.address, &request(String::new())).await, 200);
    // actix-http's fixed limits: 96 headers, 128 KiB for the whole request head.
    let many: String = (0..100).map(|n| format!("X-Filler-{n}: {n}\r\n")).collect();
    assert_eq!(raw_status(&app.address, &request(many)).await, 431);
    let huge = format!("X-Huge: {}\r\n", "a".repeat(200 * 1024));
    let status = raw_status(&app.address, &request(huge)).await;
    assert!(
        status == 431 || status == 0,
        "a 200 KiB header got {status}"
    );
    let long_uri = format!(
        "GET /api/products?q={} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let status = raw_status(&app.address, &long_uri).await;
    assert!(status == 431 || status == 0, "a 200 KiB URI got {status}");
    // Still serving.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(app.get("/api/products").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn api_responses_and_the_chat_page_carry_the_security_headers() {
    let app = spawn_app().await;
    let products = app.get("/api/products").await;
    let not_found = app.get("/no/such/route").await;
    let unauthorized = app.get("/api/conversations").await;
    for response in [&products, &not_found, &unauthorized] {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
    }
    // The page keeps its own policy (scripts and styles from 'self'), not the API's.
    for path in ["/", "/assets/chat.js", "/assets/chat.css"] {
        let page = app.get(path).await;
        let headers = page.headers();
        assert_eq!(
            headers["content-security-policy"],
            convrec::http::page::CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
    }
}
