//! `GET /metrics` and the middleware that times every request.

use crate::http::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use std::time::Instant;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(render));
}

/// Prometheus metrics of this instance, in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4",
               content_type = "text/plain; version=0.0.4", body = String))
)]
async fn render(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// Records `http_server_requests_seconds` by route template, so `/api/products/{id}` is one
/// series however many ids are requested.
pub async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    let response = next.call(req).await?;
    let elapsed = started.elapsed();
    if route != "/healthz" && route != "/metrics" {
        tracing::info!(
            %method,
            %route,
            status = response.status().as_u16(),
            ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    }
    if let Some(metrics) = metrics {
        metrics
            .http_requests
            .with_label_values(&[method.as_str(), route.as_str(), response.status().as_str()])
            .observe(elapsed.as_secs_f64());
    }
    Ok(response)
}
