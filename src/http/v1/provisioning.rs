//! Provisioning, from the API (admin tokens only, as every method but `GET`):
//!
//! - `POST /api/v1/devices`: adds a device, answers its secret once (201, `Location`);
//! - `POST /api/v1/devices/{id}/rotate`: a new secret, shown once; the old one stops
//!   working and the device's live connections are closed;
//! - `DELETE /api/v1/devices/{id}?purge=`: removes its credentials, closes its connections
//!   and waits for them to end (at most `CLOSE_WAIT`), removes its fleet state, and with
//!   `purge=true` deletes its readings: those of every message acked before the answer.
//!
//! Secrets appear in these answers only (with `Cache-Control: no-store`), never in a log.
//! The credentials change on an administration connection (`Provisioning`), one change at
//! a time; the fleet is told after, when it is on.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use eliot_actors::credentials::{CredentialsError, Login};
use eliot_actors::{is_device_id, ConnectionsClosed, ProvisioningError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::params;
use super::readings::DevicePath;
use super::V1State;

/// How a new device logs in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoginKind {
    /// With a secret (shown once in the answer), or a client certificate naming it where
    /// `auth.mode` accepts certificates. The default.
    #[default]
    Secret,
    /// With a client certificate naming it, only: no secret.
    Certificate,
}

/// A device to provision.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// 1 to 64 letters, digits, `_`, `.`, `:` or `-`.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$", example = "robot_001")]
    device_id: String,
    /// `secret` by default.
    #[serde(default)]
    login: LoginKind,
}

/// A provisioned device, with its secret: shown this once, kept only hashed.
#[derive(Serialize, ToSchema)]
pub struct ProvisionedDevice {
    #[schema(example = "robot_001")]
    pub device_id: String,
    pub login: LoginKind,
    /// The device's secret (`null` for a certificate-only device).
    pub secret: Option<String>,
}

/// A device's new secret: shown this once.
#[derive(Serialize, ToSchema)]
pub struct RotatedSecret {
    #[schema(example = "robot_001")]
    pub device_id: String,
    pub secret: String,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// `true`: delete the device's stored readings too (`false`, the default, keeps them).
    purge: Option<bool>,
}

/// What a deletion did.
#[derive(Serialize, ToSchema)]
pub struct RemovedDevice {
    #[schema(example = "robot_001")]
    pub device_id: String,
    /// Always `true`.
    pub removed: bool,
    /// Connections the fleet closed (0 with the fleet off: where devices authenticate,
    /// removing the credentials closes them all the same).
    pub connections_closed: usize,
    /// Of those, the ones that had not ended 5 s after they were asked to close: what
    /// they still had in flight may be stored after this answer (and survive a purge).
    /// Normally 0.
    pub connections_still_closing: usize,
    /// Readings deleted with `purge=true`; `null` without.
    pub readings_purged: Option<u64>,
}

fn provisioning_error(e: ProvisioningError, id: &str) -> ApiError {
    match e {
        ProvisioningError::Credentials(e) => match e {
            CredentialsError::BadId(_) => {
                ApiError::invalid_body("device_id: 1 to 64 letters, digits, `_`, `.`, `:` or `-`")
            }
            CredentialsError::Exists(_) => ApiError::conflict(
                "device_exists",
                format!("device {id} is provisioned already (rotate its secret instead)"),
            ),
            CredentialsError::Unknown(_) => {
                ApiError::not_found(format!("no provisioned device {id}"))
            }
            CredentialsError::CertificateOnly(_) => ApiError::conflict(
                "certificate_only",
                format!("device {id} logs in by certificate only: it has no secret to rotate"),
            ),
            other => ApiError::store_unavailable(other),
        },
        other => ApiError::store_unavailable(other),
    }
}

/// A JSON answer carrying a secret: never cached.
fn secret_answer(
    mut answer: actix_web::HttpResponseBuilder,
    body: &impl Serialize,
) -> HttpResponse {
    answer
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// Provisions a device; its secret is in this answer only.
#[utoipa::path(
    post,
    path = "/api/v1/devices",
    tag = "devices",
    request_body = NewDevice,
    responses(
        (status = 201, description = "Provisioned; the secret is shown this once",
            body = ProvisionedDevice,
            headers(("Location" = String, description = "The device's path"))),
        (status = 400, description = "A bad body or device id", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 409, description = "`device_exists`: provisioned already", body = ErrorBody),
        (status = 413, description = "A body over 64 KiB", body = ErrorBody),
        (status = 415, description = "A body that is not JSON", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "The store or the fleet cannot answer", body = ErrorBody),
    )
)]
pub async fn add(
    state: web::Data<V1State>,
    body: web::Json<NewDevice>,
) -> Result<HttpResponse, ApiError> {
    let NewDevice { device_id, login } = body.into_inner();
    if !is_device_id(&device_id) {
        return Err(ApiError::invalid_body(
            "device_id: 1 to 64 letters, digits, `_`, `.`, `:` or `-`",
        ));
    }
    let how = match login {
        LoginKind::Secret => Login::Secret,
        LoginKind::Certificate => Login::CertificateOnly,
    };
    let secret = state
        .provisioning
        .add(device_id.clone(), how)
        .await
        .map_err(|e| provisioning_error(e, &device_id))?;
    if let Some(fleet) = &state.fleet {
        fleet.provisioned(&device_id).await?;
    }
    let mut answer = HttpResponse::Created();
    answer.insert_header((header::LOCATION, format!("/api/v1/devices/{device_id}")));
    Ok(secret_answer(
        answer,
        &ProvisionedDevice {
            secret: secret.map(|s| s.expose().to_owned()),
            device_id,
            login,
        },
    ))
}

/// Gives a device a new secret (in this answer only) and closes its live connections.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/rotate",
    tag = "devices",
    params(DevicePath),
    responses(
        (status = 200, description = "The new secret, shown this once", body = RotatedSecret),
        (status = 400, description = "A bad device id", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such provisioned device", body = ErrorBody),
        (status = 409, description = "`certificate_only`: it has no secret", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "The store or the fleet cannot answer", body = ErrorBody),
    )
)]
pub async fn rotate(
    state: web::Data<V1State>,
    path: web::Path<DevicePath>,
) -> Result<HttpResponse, ApiError> {
    let id = params::device_id(&path.id)?.to_owned();
    let secret = state
        .provisioning
        .rotate(id.clone())
        .await
        .map_err(|e| provisioning_error(e, &id))?;
    // Where devices authenticate, the revocation log closes them too; with
    // `auth.mode = none` this is what does.
    if let Some(fleet) = &state.fleet {
        fleet.disconnect(&id, "secret rotated").await?;
    }
    Ok(secret_answer(
        HttpResponse::Ok(),
        &RotatedSecret {
            device_id: id,
            secret: secret.expose().to_owned(),
        },
    ))
}

/// Removes a device: its credentials, its live state and connections, and with
/// `purge=true` its readings (its status events and dead letters are kept).
#[utoipa::path(
    delete,
    path = "/api/v1/devices/{id}",
    tag = "devices",
    params(DevicePath, DeleteQuery),
    responses(
        (status = 200, description = "Removed", body = RemovedDevice),
        (status = 400, description = "A bad device id or query", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "Neither provisioned nor known to the fleet", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "The store or the fleet cannot answer", body = ErrorBody),
    )
)]
pub async fn remove(
    state: web::Data<V1State>,
    path: web::Path<DevicePath>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = params::device_id(&path.id)?.to_owned();
    // Credentials first: from here on it cannot log in again.
    let provisioned = match state.provisioning.remove(id.clone()).await {
        Ok(()) => true,
        Err(ProvisioningError::Credentials(CredentialsError::Unknown(_))) => false,
        Err(e) => return Err(provisioning_error(e, &id)),
    };
    let (mut closed, mut known) = (ConnectionsClosed::default(), false);
    if let Some(fleet) = &state.fleet {
        // Its connections end first: what they read is then stored and acked, and the
        // fleet heard all of it, so nothing of them comes after the forget or the purge.
        closed = fleet.disconnect(&id, "device deleted").await?;
        known = fleet.forget(&id).await?;
    }
    // After the connections ended, so that nothing they read is written meanwhile.
    let readings_purged = match query.purge.unwrap_or(false) {
        true => Some(
            state
                .purger
                .purge(id.clone())
                .await
                .map_err(ApiError::store_unavailable)?,
        ),
        false => None,
    };
    if !provisioned && !known && readings_purged.unwrap_or(0) == 0 {
        return Err(ApiError::not_found(format!(
            "no device {id}: neither provisioned nor known to the fleet"
        )));
    }
    Ok(HttpResponse::Ok().json(RemovedDevice {
        device_id: id,
        removed: true,
        connections_closed: closed.total(),
        connections_still_closing: closed.timed_out,
        readings_purged,
    }))
}
