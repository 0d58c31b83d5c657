//! The API v1, under `/api/v1`: JSON, versioned, authenticated, paged with cursors.
//!
//! # Layout
//!
//! - `auth`: the check every request passes before routing (bearer tokens and roles, or
//!   loopback only without tokens); `tokens`: the kept tokens, their hashes, their
//!   configuration and the `eliot api-token` command's new ones.
//! - `error`: the one error body, also for actix-web's own extractor errors.
//! - `params`: what the listings' queries share; `cursor`: opaque, signed cursors.
//! - `readings`, `dead_letters`: one file per resource.
//! - `openapi`: the OpenAPI document, generated from the handlers.
//!
//! Routing: each path is one resource answering its methods, 405 (with `Allow`) for
//! others; an unknown path under `/api/v1` is 404. All with the error body.

mod auth;
mod cursor;
mod dead_letters;
mod error;
pub mod openapi;
mod params;
mod readings;
pub mod tokens;

use actix_web::{middleware, web, HttpResponse};
use eliot_actors::Reader;
use serde::Serialize;

pub use auth::Gate;
pub use cursor::CursorKey;
use error::ApiError;

/// What the API v1's handlers share.
#[derive(Clone)]
pub struct V1State {
    /// The store's read-only reads.
    pub reader: Reader,
    /// Signs and opens the cursors.
    pub cursors: CursorKey,
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
            .service(get_only("/dead-letters", dead_letters::list))
            .service(get_only("/dead-letters/{id}", dead_letters::one))
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
        .default_service(web::to(|| async { error::method_not_allowed("GET") }))
}

/// A 200 with `body` as JSON.
fn ok_json(body: &impl Serialize) -> Result<HttpResponse, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(ApiError::store_unavailable)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(bytes))
}
