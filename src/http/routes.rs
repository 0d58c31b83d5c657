//! The three endpoints and the JSON errors around them.
//!
//! - `GET /health`: 200 with the health report while Eliot's actors answer; 503 when a
//!   part failed past its restart intensity (Eliot is stopping).
//! - `GET /ready`: 200 when Eliot should be sent devices; otherwise 503 with the reasons.
//! - `GET /metrics`: the Prometheus text format.
//!
//! Another path is 404 (a path of the old read API, `/devices/...`, says where it
//! moved), another method 405, both as JSON. The API v1 (`v1`) has its own.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use eliot_actors::{HealthReport, Status, Tree};
use serde_json::json;

use super::ApiState;

/// How long a handler waits for the health monitor before it calls Eliot unresponsive.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, handler) in [
        ("/health", Route::Health),
        ("/ready", Route::Ready),
        ("/metrics", Route::Metrics),
    ] {
        cfg.service(
            web::resource(path)
                .route(web::get().to(move |state: web::Data<ApiState>| handler.answer(state)))
                .default_service(web::to(method_not_allowed)),
        );
    }
}

#[derive(Clone, Copy)]
enum Route {
    Health,
    Ready,
    Metrics,
}

impl Route {
    async fn answer(self, state: web::Data<ApiState>) -> HttpResponse {
        match self {
            Route::Health => health(&state).await,
            Route::Ready => ready(&state).await,
            Route::Metrics => metrics(&state),
        }
    }
}

async fn report(state: &ApiState) -> Option<HealthReport> {
    tokio::time::timeout(PROBE_TIMEOUT, state.probe.report())
        .await
        .ok()
        .flatten()
}

async fn health(state: &ApiState) -> HttpResponse {
    match report(state).await {
        Some(report) if report.status == Status::Failed => {
            HttpResponse::ServiceUnavailable().json(report)
        }
        Some(report) => HttpResponse::Ok().json(report),
        None => HttpResponse::ServiceUnavailable().json(json!({
            "status": "unresponsive",
            "error": "the health monitor did not answer",
        })),
    }
}

async fn ready(state: &ApiState) -> HttpResponse {
    let Some(report) = report(state).await else {
        return not_ready(&["the health monitor did not answer".to_owned()]);
    };
    let shutting_down = state.shutting_down.load(Ordering::Relaxed);
    let mut reasons = Tree::readiness(&report, shutting_down, state.ready_max_backlog_age)
        .err()
        .unwrap_or_default();
    reasons.extend(at_capacity(state));
    match reasons.is_empty() {
        true => HttpResponse::Ok().json(json!({ "ready": true })),
        false => not_ready(&reasons),
    }
}

/// Why no new device can connect now, if none can: every slot of `mqtt.max_connections`
/// is a connection or a socket yet to be answered.
fn at_capacity(state: &ApiState) -> Option<String> {
    let metrics = &state.metrics;
    let taken = metrics.connections_open.get() + metrics.connections_pending.get();
    let taken = usize::try_from(taken).unwrap_or(0);
    (taken >= state.max_connections).then(|| {
        format!(
            "{taken} of mqtt.max_connections ({}) sockets taken: new devices are refused",
            state.max_connections
        )
    })
}

fn metrics(state: &ApiState) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.encode())
}

fn not_ready(reasons: &[String]) -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(json!({ "ready": false, "reasons": reasons }))
}

pub async fn not_found(request: actix_web::HttpRequest) -> HttpResponse {
    if request.path().starts_with("/devices/") {
        // The read API's old paths: say where it went.
        return HttpResponse::NotFound().json(json!({
            "error": "moved to the API v1: GET /api/v1/devices/{id}/readings and \
                      /api/v1/devices/{id}/readings/latest (see /api/v1/openapi.json)",
        }));
    }
    HttpResponse::NotFound().json(json!({
        "error": "not found",
        "endpoints": ["/health", "/ready", "/metrics", "/api/v1 (see /api/v1/openapi.json)"],
    }))
}

pub async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "GET"))
        .json(json!({ "error": "method not allowed", "allowed": ["GET"] }))
}
