use crate::helpers::{spawn_app, test_settings, TestApp};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[actix_web::test]
async fn liveness_answers_200() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "alive");
}

/// Polls readiness until every dependency has been probed at least once.
async fn probed_readiness(app: &crate::helpers::TestApp) -> (StatusCode, Value) {
    for _ in 0..50 {
        let response = app.get("/readyz").await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        let probed = body["dependencies"]
            .as_array()
            .is_some_and(|deps| deps.iter().all(|d| d["status"] != "unknown"));
        if probed {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("readiness never probed every dependency");
}

#[actix_web::test]
async fn readiness_reports_every_dependency_up_on_the_local_stack() {
    let app = spawn_app().await;
    let (status, body) = probed_readiness(&app).await;
    let names: Vec<&str> = body["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["database", "redis", "kafka", "elasticsearch", "model"]
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
}

/// Polls readiness until a probe after the model directory went has reported it.
async fn readiness_once_model_is_down(app: &crate::helpers::TestApp) -> (StatusCode, Value) {
    for _ in 0..100 {
        let (status, body) = probed_readiness(app).await;
        let model_down = body["dependencies"].as_array().is_some_and(|deps| {
            deps.iter()
                .any(|d| d["name"] == "model" && d["status"] == "down")
        });
        if model_down {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("readiness never reported the model down");
}

/// A fresh directory whose files link to the model in `dir`.
fn linked_model_dir(dir: &Path) -> PathBuf {
    let linked = std::env::temp_dir().join(format!("convrec-model-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&linked).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        std::os::unix::fs::symlink(entry.path(), linked.join(entry.file_name())).unwrap();
    }
    linked
}

#[actix_web::test]
async fn readiness_is_503_and_names_the_dependency_that_is_down() {
    // The model is loaded at start-up; its directory (links to the real files) then goes.
    let model_dir = linked_model_dir(&test_settings().model.dir);
    let app = TestApp::builder()
        .settings(|settings| {
            // Nothing listens on port 1: Redis is "down" while everything else is up.
            settings.redis.url = SecretString::from("redis://127.0.0.1:1".to_string());
            settings.redis.connect_timeout_ms = 200;
            settings.model.dir = model_dir.clone();
        })
        .spawn()
        .await;
    std::fs::remove_dir_all(&model_dir).unwrap();
    let (status, body) = readiness_once_model_is_down(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "not_ready");
    let deps = body["dependencies"].as_array().unwrap();
    let state = |name: &str| deps.iter().find(|d| d["name"] == name).unwrap().clone();
    assert_eq!(state("redis")["status"], "down");
    assert_eq!(state("database")["status"], "up");
    let model = state("model");
    assert_eq!(model["status"], "down");
    assert!(model["error"]
        .as_str()
        .unwrap()
        .contains(&*model_dir.to_string_lossy()));
    // The liveness probe does not depend on anything.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn readiness_stays_200_when_only_degradable_dependencies_are_down() {
    let app = TestApp::builder()
        .settings(|settings| {
            // Redis and the search server down: the service still answers (caches skipped,
            // search 503), so a load balancer must keep the instance in.
            settings.redis.url = SecretString::from("redis://127.0.0.1:1".to_string());
            settings.redis.connect_timeout_ms = 200;
            settings.elasticsearch.url = SecretString::from("http://127.0.0.1:1".to_string());
        })
        .spawn()
        .await;
    let (status, body) = probed_readiness(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "degraded");
    let deps = body["dependencies"].as_array().unwrap();
    let state = |name: &str| deps.iter().find(|d| d["name"] == name).unwrap().clone();
    assert_eq!(state("redis")["status"], "down");
    assert_eq!(state("redis")["criticality"], "degradable");
    assert_eq!(state("elasticsearch")["status"], "down");
    assert_eq!(state("database")["criticality"], "required");
}

#[actix_web::test]
async fn metrics_record_requests_by_route_template() {
    let app = spawn_app().await;
    app.get("/api/products/0190a5d2-0000-7000-8000-000000000000")
        .await;
    app.get("/api/products?limit=5").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            r#"http_server_requests_seconds_count{method="GET",route="/api/products/{id}",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"http_server_requests_seconds_count{method="GET",route="/api/products",status="200"} 1"#
    ));
    assert!(!text.contains("0190a5d2"), "raw ids never become labels");
}
