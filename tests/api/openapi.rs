//! The served OpenAPI document covers exactly the routes the code registers, and the docs
//! routes (Swagger UI, the chat protocol's JSON Schema) work.

use crate::helpers::spawn_app;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// Routes that are deliberately not in the document: the chat page and its assets (HTML,
/// JavaScript, CSS for people, not an API), the document itself and its viewer.
const NOT_API: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/assets/chat.js"),
    ("GET", "/assets/chat.css"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/{file:.*}"),
];

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete", "head", "options"];

/// Reads `web::METHOD()` at the start of `text`, if there is one.
fn method_at(text: &str) -> Option<String> {
    let rest = text.strip_prefix("web::")?;
    METHODS
        .iter()
        .find(|m| rest.starts_with(&format!("{m}()")))
        .map(|m| m.to_uppercase())
}

/// The string literal at the start of `text` and what follows it.
fn literal_at(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix('"')?;
    let end = rest.find('"')?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// Every `(METHOD, path)` registered in one source file: `.route("/p", web::get()…)` and
/// `web::resource("/p").route(web::get()…).route(web::post()…)`.
fn routes_in(source: &str) -> Vec<(String, String)> {
    // rustfmt breaks these calls across lines however it likes; without whitespace they read
    // the same.
    let text: String = source.chars().filter(|c| !c.is_whitespace()).collect();
    let mut routes = Vec::new();
    for (at, _) in text.match_indices(".route(") {
        let args = &text[at + ".route(".len()..];
        if let Some((path, rest)) = literal_at(args) {
            let method = rest
                .strip_prefix(',')
                .and_then(method_at)
                .unwrap_or_else(|| panic!("cannot read the method of route {path}"));
            routes.push((method, path.to_string()));
        }
    }
    for (at, _) in text.match_indices("web::resource(") {
        let (path, mut rest) = literal_at(&text[at + "web::resource(".len()..])
            .expect("a resource has a literal path");
        rest = rest.strip_prefix(')').expect("resource(\"…\")");
        while let Some(args) = rest.strip_prefix(".route(") {
            let method = method_at(args).expect("a resource route names its method");
            routes.push((method, path.to_string()));
            // Skip `web::get().to(handler))`: to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let end = args
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(i, _)| i)
                .expect("balanced parentheses");
            rest = &args[end + 1..];
        }
    }
    routes
}

/// Every route of src/http/*.rs.
fn registered_routes() -> BTreeSet<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            routes.extend(routes_in(&std::fs::read_to_string(&path).unwrap()));
        }
    }
    routes
}

fn documented_routes(document: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if METHODS.contains(&method.as_str()) {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

#[test]
fn the_route_scanner_reads_both_registration_styles() {
    let source = r#"
        cfg.route("/a", web::get().to(a))
            .route(
                "/b/{id}",
                web::post().to(b),
            )
            .service(
                web::resource("/c")
                    .route(web::get().to(list))
                    .route(web::delete().to(remove)),
            );
    "#;
    let routes = routes_in(source);
    let expected = [
        ("GET", "/a"),
        ("POST", "/b/{id}"),
        ("GET", "/c"),
        ("DELETE", "/c"),
    ];
    assert_eq!(
        routes,
        expected
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect::<Vec<_>>()
    );
}

#[actix_web::test]
async fn every_registered_route_is_documented_and_nothing_else() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));

    let registered = registered_routes();
    assert!(
        registered.len() > 25,
        "the scanner found too few routes: {registered:?}"
    );
    let not_api: BTreeSet<(String, String)> = NOT_API
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    for route in &not_api {
        assert!(
            registered.contains(route),
            "{route:?} is no longer registered"
        );
    }
    let api: BTreeSet<_> = registered.difference(&not_api).cloned().collect();
    let documented = documented_routes(&document);

    let undocumented: Vec<_> = api.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "registered but missing from /openapi.json (add #[utoipa::path] and list it in \
         src/http/openapi.rs): {undocumented:?}"
    );
    let unregistered: Vec<_> = documented.difference(&api).collect();
    assert!(
        unregistered.is_empty(),
        "documented but not registered (or listed as not an API): {unregistered:?}"
    );
}

#[actix_web::test]
async fn every_operation_documents_its_errors_and_authenticated_ones_their_tokens() {
    let app = spawn_app().await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["member_token"]["scheme"], "bearer");
    assert_eq!(schemes["member_token"]["bearerFormat"], "JWT");
    assert_eq!(schemes["service_token"]["scheme"], "bearer");
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.contains_key("500"),
                "{method} {path} lists no 500"
            );
            let secured = operation.get("security").is_some();
            if secured {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} needs a token but lists no 401"
                );
            }
            if operation.get("requestBody").is_some() {
                for status in ["413", "415", "422"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} takes a body but lists no {status}"
                    );
                }
            }
        }
    }
    // Catalog writes need the service token; a member's data either token.
    let post_product = &document["paths"]["/api/products"]["post"]["security"];
    assert_eq!(post_product, &serde_json::json!([{"service_token": []}]));
    let recommendations = &document["paths"]["/api/recommendations/{member_id}"]["get"];
    assert_eq!(
        recommendations["security"],
        serde_json::json!([{"member_token": []}, {"service_token": []}])
    );
}

#[actix_web::test]
async fn swagger_ui_is_served_with_its_own_policy() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(redirect.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(redirect.headers()["location"], "/docs/");

    let page = app.get("/docs/").await;
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(page.text().await.unwrap().contains("swagger-ui"));

    // The initializer points the UI at our document.
    let initializer = app.get("/docs/swagger-initializer.js").await;
    assert_eq!(initializer.status(), StatusCode::OK);
    assert!(initializer.text().await.unwrap().contains("/openapi.json"));
    let bundle = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status(), StatusCode::OK);
    assert!(bundle.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));

    let missing = app.get("/docs/no-such-file.js").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn the_chat_protocol_schema_is_served() {
    let app = spawn_app().await;
    let response = app.get("/ws-protocol.schema.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let schema: Value = response.json().await.unwrap();
    assert_eq!(schema, convrec::http::openapi::chat_protocol_schema());
    let defs = schema["$defs"].as_object().unwrap();
    assert!(defs.contains_key("ClientFrame") && defs.contains_key("ServerFrame"));
}

/// A validator for one of the schema's definitions (`ClientFrame` or `ServerFrame`).
fn frame_validator(definition: &str) -> jsonschema::Validator {
    let schema = convrec::http::openapi::chat_protocol_schema();
    let root = serde_json::json!({
        "$schema": schema["$schema"],
        "$defs": schema["$defs"],
        "$ref": format!("#/$defs/{definition}"),
    });
    jsonschema::validator_for(&root).expect("the generated schema compiles")
}

fn assert_valid(validator: &jsonschema::Validator, frame: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(frame)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{frame} does not match the schema: {errors:?}"
    );
}

#[actix_web::test]
async fn the_frames_the_server_sends_match_the_schema() {
    use crate::chat_support::{expect_frame, send_json};
    use serde_json::json;

    let server = frame_validator("ServerFrame");
    let client = frame_validator("ClientFrame");
    let app = spawn_app().await;
    app.seed_catalog().await;
    let mut socket = app.connect("alice").await;

    let mut frames = Vec::new();
    let ping = json!({"type": "ping"});
    assert_valid(&client, &ping);
    send_json(&mut socket, ping).await;
    frames.push(expect_frame(&mut socket, "pong").await);
    send_json(&mut socket, json!({"type": "dance"})).await;
    frames.push(expect_frame(&mut socket, "error").await);

    let message =
        json!({"type": "message", "text": "20만원 이하 패딩 추천해 주세요", "client_id": "k1"});
    assert_valid(&client, &message);
    send_json(&mut socket, message).await;
    let ack = expect_frame(&mut socket, "ack").await;
    frames.push(ack.clone());
    frames.push(expect_frame(&mut socket, "typing").await);
    let reply = expect_frame(&mut socket, "reply").await;
    assert!(!reply["products"].as_array().unwrap().is_empty(), "{reply}");
    frames.push(reply);

    let resume = json!({"type": "resume", "conversation_id": ack["conversation_id"]});
    assert_valid(&client, &resume);
    send_json(&mut socket, resume).await;
    let history = expect_frame(&mut socket, "history").await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        2,
        "{history}"
    );
    frames.push(history);

    for frame in &frames {
        assert_valid(&server, frame);
    }
    // And the schema is not vacuous: a frame of no known type, or missing a field, fails.
    assert!(!server.is_valid(&json!({"type": "dance"})));
    assert!(!server.is_valid(&json!({"type": "ack", "client_id": null})));
    assert!(!client.is_valid(&json!({"type": "message"})));
}
