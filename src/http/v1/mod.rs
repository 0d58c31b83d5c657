//! The API v1, under `/api/v1`: JSON, versioned, authenticated, paged with cursors.
//!
//! # Layout
//!
//! - `auth`: the check every request passes before routing (bearer tokens and roles, or
//!   loopback only without tokens); `tokens`: the kept tokens, their hashes, their
//!   configuration and the `eliot api-token` command's new ones.
//! - `error`: the one error body, also for actix-web's own extractor errors.
//! - `params`: what the listings' queries share; `cursor`: opaque, signed cursors;
//!   `integers`: integers in JSON bodies, as JSON Schema counts them.
//! - `devices` (the fleet's reads and release; `device_view`: a device as shown),
//!   `provisioning` (add, rotate, delete), `readings`, `dead_letters`, `replay`,
//!   `anomalies`, `alerts`, `alert_rules`: one file per resource.
//! - `openapi`: the OpenAPI document, generated from the handlers.
//!
//! Routing: each path is one resource answering its methods, 405 (with `Allow`) for
//! others; an unknown path under `/api/v1` is 404. All with the error body.

mod alert_rules;
mod alerts;
mod anomalies;
mod auth;
mod cursor;
mod dead_letters;
mod device_view;
mod devices;
mod error;
mod integers;
pub mod openapi;
mod params;
mod provisioning;
mod readings;
mod replay;
pub mod tokens;

use actix_web::{middleware, web, HttpResponse};
use eliot_actors::{AlertsHandle, FleetHandle, Provisioning, Purger, Reader, Replayer};
use serde::Serialize;

pub use alerts::silence_row;
pub use auth::Gate;
pub use cursor::CursorKey;
use error::ApiError;
pub use params::END_MICROS;

/// What the API v1's handlers share.
#[derive(Clone)]
pub struct V1State {
    /// The store's read-only reads.
    pub reader: Reader,
    /// Signs and opens the cursors.
    pub cursors: CursorKey,
    /// The live device state; `None` with `fleet.enabled = false`.
    pub fleet: Option<FleetHandle>,
    /// Adds, rotates and removes devices' credentials.
    pub provisioning: Provisioning,
    /// Deletes a device's readings.
    pub purger: Purger,
    /// Takes dead letters up again.
    pub replayer: Replayer,
    /// The alerts; `None` with the fleet or alerting off.
    pub alerts: Option<AlertsHandle>,
}

impl V1State {
    /// The fleet, or 503 `fleet_disabled`.
    fn fleet(&self) -> Result<&FleetHandle, ApiError> {
        self.fleet.as_ref().ok_or_else(ApiError::fleet_disabled)
    }
}

/// Mounts `/api/v1` (and its open OpenAPI document).
pub fn configure(cfg: &mut web::ServiceConfig, state: V1State, gate: Gate) {
    cfg.service(
        web::resource("/api/v1/openapi.json")
            .route(web::get().to(openapi::serve))
            .default_service(web::to(|| async { error::method_not_allowed("GET") })),
    );
    cfg.service(
        web::scope("/api/v1")
            .app_data(web::Data::new(state))
            .app_data(web::Data::new(gate))
            .configure(error::extractor_configs)
            .wrap(middleware::from_fn(auth::authenticate))
            .service(get_only("/devices/{id}/readings", readings::readings))
            .service(get_only("/devices/{id}/readings/latest", readings::latest))
            .service(
                web::resource("/devices")
                    .route(web::get().to(devices::list))
                    .route(web::post().to(provisioning::add))
                    .default_service(only("GET, POST")),
            )
            .service(
                web::resource("/devices/{id}")
                    .route(web::get().to(devices::one))
                    .route(web::delete().to(provisioning::remove))
                    .default_service(only("GET, DELETE")),
            )
            .service(get_only("/devices/{id}/events", devices::events))
            .service(get_only("/devices/{id}/anomalies", anomalies::anomalies))
            .service(post_only("/devices/{id}/release", devices::release))
            .service(post_only(
                "/devices/{id}/alerts/{rule}/ack",
                alerts::acknowledge,
            ))
            .service(get_only("/alerts", alerts::list))
            .service(get_only("/alerts/events", alerts::events))
            .service(post_only("/alerts/events/{id}/retry", alerts::retry))
            .service(get_only("/alerts/rules", alert_rules::list))
            .service(
                web::resource("/alerts/rules/{name}")
                    .app_data(error::json_config(alert_rules::MAX_BODY))
                    .route(web::put().to(alert_rules::put))
                    .route(web::delete().to(alert_rules::delete))
                    .default_service(only("PUT, DELETE")),
            )
            .service(
                web::resource("/alerts/silences")
                    .route(web::get().to(alerts::silences))
                    .route(web::post().to(alerts::silence))
                    .default_service(only("GET, POST")),
            )
            .service(
                web::resource("/alerts/silences/{id}")
                    .route(web::delete().to(alerts::unsilence))
                    .default_service(only("DELETE")),
            )
            .service(post_only("/devices/{id}/rotate", provisioning::rotate))
            .service(get_only("/dead-letters", dead_letters::list))
            // Before `/dead-letters/{id}`, which would take `replay` for an id.
            .service(post_only("/dead-letters/replay", replay::matching))
            .service(get_only("/dead-letters/{id}", dead_letters::one))
            .service(post_only("/dead-letters/{id}/replay", replay::one))
            .default_service(web::to(error::no_such_path)),
    );
}

/// A path answering `GET` alone.
fn get_only<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(only("GET"))
}

/// A path answering `POST` alone.
fn post_only<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(only("POST"))
}

/// What a resource answers to a method it does not take: 405 naming those it does.
fn only(allow: &'static str) -> actix_web::Route {
    web::to(move || async move { error::method_not_allowed(allow) })
}

/// A 200 with `body` as JSON.
fn ok_json(body: &impl Serialize) -> Result<HttpResponse, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(ApiError::store_unavailable)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(bytes))
}
