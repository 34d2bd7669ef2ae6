//! `GET /healthz` (the process is alive) and `GET /readyz` (every dependency answered).

use crate::actors::dependency_monitor::{
    Criticality, DependencyState, DependencyStatus, GetReadiness,
};
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
    /// `ready` (every dependency is up), `degraded` (a degradable one is down: still 200),
    /// `not_ready` (a required one is down or not probed yet: 503) or `unavailable` (the
    /// monitor is gone: 503).
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

/// 200 while every required dependency (database, model) is up, 503 otherwise; the body
/// lists each one either way. Redis, the broker and the search server being down only
/// degrade the answer, so a load balancer polling this keeps the instances in.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Every required dependency is up", body = Readiness),
        (status = 503, description = "A required dependency is down or not probed yet", body = Readiness),
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
    let up = |d: &&DependencyState| d.status == DependencyStatus::Up;
    let serving = dependencies
        .iter()
        .filter(|d| d.criticality == Criticality::Required)
        .all(|d| up(&d));
    let all_up = dependencies.iter().all(|d| up(&d));
    let body = Readiness {
        status: match (serving, all_up) {
            (true, true) => "ready",
            (true, false) => "degraded",
            (false, _) => "not_ready",
        },
        dependencies,
    };
    if serving {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
