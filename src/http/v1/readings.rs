//! A device's stored readings:
//!
//! - `GET /api/v1/devices/{id}/readings`: a page of them, in time order either way,
//!   filtered by sensor type and a time window, with a cursor to the next page;
//! - `GET /api/v1/devices/{id}/readings/latest`: the newest of each sensor type.
//!
//! A device that sent nothing (or is unknown) has no readings: an empty list, not a 404.
//! Reads run on the blocking pool with the store's read-only `Reader`: they never wait for
//! the store writer, nor hold up the workers that answer `/health`.

use actix_web::{web, HttpResponse};
use eliot_actors::{PageRequest, ReadingKey, StoredReading};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::params::{self, Order};
use super::{ok_json, V1State};

/// The most readings one page carries.
pub const MAX_LIMIT: usize = 10_000;
const DEFAULT_LIMIT: usize = 100;
const LISTING: &str = "readings";

/// One stored reading.
#[derive(Serialize, ToSchema)]
pub struct Reading<'a> {
    #[schema(example = "robot_001")]
    pub device_id: &'a str,
    #[schema(example = "gps")]
    pub sensor_type: &'a str,
    /// The device's time, UTC, microseconds.
    #[schema(example = "2025-06-05T14:30:00.000000Z")]
    pub timestamp: &'a str,
    /// The reading's `data` object, as the device sent it.
    #[schema(value_type = Object)]
    pub data: &'a RawValue,
    /// When Eliot received it.
    pub received_at: &'a str,
}

/// A page of readings.
#[derive(Serialize, ToSchema)]
pub struct ReadingsPage<'a> {
    pub readings: Vec<Reading<'a>>,
    /// Pass it as `cursor` (with the same filters) for the next page; `null` at the end.
    pub next_cursor: Option<String>,
}

/// The newest reading of each sensor type.
#[derive(Serialize, ToSchema)]
pub struct LatestReadings<'a> {
    pub readings: Vec<Reading<'a>>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadingsQuery {
    /// Only this sensor type.
    #[param(pattern = "^[a-z0-9_]{1,32}$")]
    sensor_type: Option<String>,
    /// Readings at or after this time (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Readings before this time (RFC 3339).
    #[param(format = DateTime)]
    to: Option<String>,
    /// `desc` (newest first, the default) or `asc`.
    #[param(inline)]
    order: Option<Order>,
    /// Readings in the page: 1 to 10,000, 100 by default.
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page, with the same filters.
    #[param(max_length = 2048)]
    cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LatestQuery {
    /// Only this sensor type.
    #[param(pattern = "^[a-z0-9_]{1,32}$")]
    sensor_type: Option<String>,
}

/// The path's device.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DevicePath {
    /// The device id.
    #[param(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    pub(super) id: String,
}

/// What a readings cursor holds: the position, and the filters it goes with.
#[derive(Serialize, Deserialize, PartialEq)]
struct At {
    device: String,
    sensor_type: Option<String>,
    within: (i64, i64),
    descending: bool,
    ts: i64,
    sensor: String,
}

/// A page of a device's readings.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}/readings",
    tag = "readings",
    params(DevicePath, ReadingsQuery),
    responses(
        (status = 200, description = "A page of readings", body = ReadingsPage),
        (status = 400, description = "A bad device id, query or cursor", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "The store cannot be read", body = ErrorBody),
    )
)]
pub async fn readings(
    state: web::Data<V1State>,
    path: web::Path<DevicePath>,
    query: web::Query<ReadingsQuery>,
) -> Result<HttpResponse, ApiError> {
    let device = params::device_id(&path.id)?.to_owned();
    let query = query.into_inner();
    let sensor_type = params::sensor_type(query.sensor_type)?;
    let within = params::window(query.from.as_deref(), query.to.as_deref())?;
    let descending = query.order.unwrap_or_default().descending();
    let limit = params::limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let mut filters = At {
        device: device.clone(),
        sensor_type: sensor_type.clone(),
        within,
        descending,
        ts: 0,
        sensor: String::new(),
    };
    let after = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => {
            let at: At = state.cursors.open(LISTING, cursor)?;
            let same_filters = At {
                ts: at.ts,
                sensor: at.sensor.clone(),
                ..filters
            };
            if at != same_filters {
                return Err(ApiError::invalid_cursor(
                    "this cursor belongs to a listing with other filters: ask again with the \
                     same device, sensor_type, from, to and order, or without a cursor",
                ));
            }
            filters = same_filters;
            Some(ReadingKey {
                ts: at.ts,
                sensor_type: at.sensor,
            })
        }
    };
    let request = PageRequest {
        sensor_type,
        within,
        descending,
        after,
        limit,
    };
    let reader = state.reader.clone();
    let page = web::block(move || reader.page(&device, &request))
        .await
        .map_err(ApiError::store_unavailable)?
        .map_err(ApiError::store_unavailable)?;
    let next_cursor = page.next.map(|next| {
        state.cursors.seal(
            LISTING,
            At {
                ts: next.ts,
                sensor: next.sensor_type,
                ..filters
            },
        )
    });
    ok_json(&ReadingsPage {
        readings: dtos(&page.readings)?,
        next_cursor,
    })
}

/// The newest reading of each of a device's sensor types.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}/readings/latest",
    tag = "readings",
    params(DevicePath, LatestQuery),
    responses(
        (status = 200, description = "The newest reading of each sensor type, by sensor type", body = LatestReadings),
        (status = 400, description = "A bad device id or query", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "The store cannot be read", body = ErrorBody),
    )
)]
pub async fn latest(
    state: web::Data<V1State>,
    path: web::Path<DevicePath>,
    query: web::Query<LatestQuery>,
) -> Result<HttpResponse, ApiError> {
    let device = params::device_id(&path.id)?.to_owned();
    let sensor_type = params::sensor_type(query.into_inner().sensor_type)?;
    let reader = state.reader.clone();
    let mut rows = web::block(move || reader.latest(&device))
        .await
        .map_err(ApiError::store_unavailable)?
        .map_err(ApiError::store_unavailable)?;
    if let Some(sensor) = sensor_type {
        rows.retain(|r| r.sensor_type == sensor);
    }
    ok_json(&LatestReadings {
        readings: dtos(&rows)?,
    })
}

fn dtos(rows: &[StoredReading]) -> Result<Vec<Reading<'_>>, ApiError> {
    rows.iter()
        .map(|row| {
            let data = serde_json::from_str::<&RawValue>(&row.data).map_err(|e| {
                ApiError::store_unavailable(format!("a stored reading is not JSON: {e}"))
            })?;
            Ok(Reading {
                device_id: &row.device_id,
                sensor_type: &row.sensor_type,
                timestamp: &row.timestamp,
                data,
                received_at: &row.received_at,
            })
        })
        .collect()
}
