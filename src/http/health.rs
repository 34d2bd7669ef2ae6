//! `GET /healthz` (the process is alive) and `GET /readyz` (every dependency answered).

use crate::actors::dependency_monitor::{DependencyStatus, GetReadiness};
use crate::http::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(liveness))
        .route("/readyz", web::get().to(readiness));
}

async fn liveness() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "alive" }))
}

/// 200 when every dependency is up, 503 otherwise; the body lists each one either way.
async fn readiness(state: web::Data<AppState>) -> HttpResponse {
    let dependencies = match state.monitor.send(GetReadiness).await {
        Ok(states) => states,
        Err(_) => {
            return HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "unavailable", "dependencies": [] }))
        }
    };
    let ready = dependencies
        .iter()
        .all(|d| d.status == DependencyStatus::Up);
    let body = json!({
        "status": if ready { "ready" } else { "degraded" },
        "dependencies": dependencies,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
