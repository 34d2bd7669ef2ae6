//! `GET /healthz` (the process is alive) and `GET /readyz` (every dependency answered).

use crate::actors::dependency_monitor::{DependencyState, DependencyStatus, GetReadiness};
use crate::http::AppState;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(liveness))
        .route("/readyz", web::get().to(readiness));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `alive`.
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `degraded` (a dependency is not up) or `unavailable` (the monitor is gone).
    pub status: &'static str,
    pub dependencies: Vec<DependencyState>,
}

/// The process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Liveness))
)]
async fn liveness() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "alive" })
}

/// 200 when every dependency is up, 503 otherwise; the body lists each one either way.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Every dependency is up", body = Readiness),
        (status = 503, description = "A dependency is down or not probed yet", body = Readiness),
    )
)]
async fn readiness(state: web::Data<AppState>) -> HttpResponse {
    let dependencies = match state.monitor.send(GetReadiness).await {
        Ok(states) => states,
        Err(_) => {
            return HttpResponse::ServiceUnavailable().json(Readiness {
                status: "unavailable",
                dependencies: Vec::new(),
            })
        }
    };
    let ready = dependencies
        .iter()
        .all(|d| d.status == DependencyStatus::Up);
    let body = Readiness {
        status: if ready { "ready" } else { "degraded" },
        dependencies,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
