//! The fleet, read side, and release (503 `fleet_disabled` with `fleet.enabled = false`):
//!
//! - `GET /api/v1/devices`: a page of devices, filtered by status, sensor type, id prefix
//!   and quarantine, by id (the default) or most recently seen first, with a cursor. By
//!   id, the cursor is the last id given and the next page starts after it: a device
//!   added meanwhile is in a later page or not, never makes one repeat or skip another.
//!   By last seen, each page is a snapshot: a device that reports while someone pages
//!   moves to the front, and may be missed or seen twice.
//! - `GET /api/v1/devices/{id}`: one device's live state, counts and quality.
//! - `GET /api/v1/devices/{id}/events`: its stored status changes, oldest first, paged by
//!   event id (`after`).
//! - `POST /api/v1/devices/{id}/release`: ends its quarantine now (admin).

use actix_web::{web, HttpResponse};
use eliot_actors::{DeviceCursor, DeviceQuery, DeviceSort, Released, MAX_DEVICE_PAGE};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::device_view::{DeviceView, EventView, StatusName};
use super::error::{ApiError, ErrorBody};
use super::readings::DevicePath;
use super::{ok_json, params, V1State};

const DEFAULT_LIMIT: usize = 100;
const LISTING: &str = "devices";

/// The order of a devices listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    /// By device id (the default).
    #[default]
    Id,
    /// Most recently seen first; never seen last.
    LastSeen,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DevicesQuery {
    /// Only devices with this status.
    #[param(inline)]
    status: Option<StatusName>,
    /// Only devices with a reading of this sensor type.
    #[param(pattern = "^[a-z0-9_]{1,32}$")]
    sensor_type: Option<String>,
    /// Only devices whose id starts with this.
    #[param(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    id_prefix: Option<String>,
    /// Only those quarantined (`true`) or not (`false`).
    quarantined: Option<bool>,
    /// `id` (the default) or `last_seen`.
    #[param(inline)]
    sort: Option<SortBy>,
    /// Devices in the page: 1 to 1,000, 100 by default.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page, with the same filters and sort.
    #[param(max_length = 2048)]
    cursor: Option<String>,
}

/// A page of devices.
#[derive(Serialize, ToSchema)]
pub struct DevicesPage {
    pub devices: Vec<DeviceView>,
    /// Pass it as `cursor` (with the same filters and sort) for the next page; `null` at
    /// the end.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events with an id above this: the `next_cursor` of the previous page.
    #[param(minimum = 0, maximum = 9007199254740991_i64)]
    after: Option<i64>,
    /// Events in the page: 1 to 1,000, 100 by default.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// A page of a device's status events, oldest first.
#[derive(Serialize, ToSchema)]
pub struct EventsPage {
    pub events: Vec<EventView>,
    /// Pass it as `after` for the next page; `null` at the end.
    pub next_cursor: Option<i64>,
}

/// What `release` did.
#[derive(Serialize, ToSchema)]
pub struct ReleasedDevice {
    #[schema(example = "robot_001")]
    pub device_id: String,
    /// Always `true`.
    pub released: bool,
}

/// What a devices cursor holds: the position, and the filters it goes with.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
struct At {
    status: Option<StatusName>,
    sensor_type: Option<String>,
    id_prefix: Option<String>,
    quarantined: Option<bool>,
    sort: SortBy,
    /// The fleet's own cursor, encoded; empty in the filters compared.
    after: String,
}

/// A page of devices.
#[utoipa::path(
    get,
    path = "/api/v1/devices",
    tag = "devices",
    params(DevicesQuery),
    responses(
        (status = 200, description = "A page of devices", body = DevicesPage),
        (status = 400, description = "A bad query or cursor", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`fleet_disabled`, or the fleet cannot answer", body = ErrorBody),
    )
)]
pub async fn list(
    state: web::Data<V1State>,
    query: web::Query<DevicesQuery>,
) -> Result<HttpResponse, ApiError> {
    let fleet = state.fleet()?;
    let query = query.into_inner();
    let sensor_type = params::sensor_type(query.sensor_type)?;
    if let Some(prefix) = &query.id_prefix {
        if !eliot_actors::is_device_id(prefix) {
            return Err(ApiError::invalid_query(
                "id_prefix: 1 to 64 letters, digits, `_`, `.`, `:` or `-`",
            ));
        }
    }
    let limit = params::limit(query.limit, DEFAULT_LIMIT, MAX_DEVICE_PAGE)?;
    let filters = At {
        status: query.status,
        sensor_type,
        id_prefix: query.id_prefix,
        quarantined: query.quarantined,
        sort: query.sort.unwrap_or_default(),
        after: String::new(),
    };
    let after = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => {
            let at: At = state.cursors.open(LISTING, cursor)?;
            let position = DeviceCursor::decode(&at.after).ok();
            let same = At {
                after: String::new(),
                ..at.clone()
            } == filters;
            match (position, same) {
                (Some(position), true) => Some(position),
                _ => {
                    return Err(ApiError::invalid_cursor(
                        "this cursor belongs to a listing with other filters: ask again with \
                         the same status, sensor_type, id_prefix, quarantined and sort, or \
                         without a cursor",
                    ))
                }
            }
        }
    };
    let page = fleet
        .list(DeviceQuery {
            status: filters.status.map(Into::into),
            sensor_type: filters.sensor_type.clone(),
            id_prefix: filters.id_prefix.clone(),
            quarantined: filters.quarantined,
            sort: match filters.sort {
                SortBy::Id => DeviceSort::Id,
                SortBy::LastSeen => DeviceSort::LastSeen,
            },
            after,
            limit,
        })
        .await?;
    let next_cursor = page.next.map(|next| {
        let after = next.encode();
        state.cursors.seal(LISTING, At { after, ..filters })
    });
    ok_json(&DevicesPage {
        devices: page.devices.into_iter().map(Into::into).collect(),
        next_cursor,
    })
}

/// One device's live state.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}",
    tag = "devices",
    params(DevicePath),
    responses(
        (status = 200, description = "The device", body = DeviceView),
        (status = 400, description = "A bad device id", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 404, description = "The fleet does not know it", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`fleet_disabled`, or the fleet cannot answer", body = ErrorBody),
    )
)]
pub async fn one(
    state: web::Data<V1State>,
    path: web::Path<DevicePath>,
) -> Result<HttpResponse, ApiError> {
    let fleet = state.fleet()?;
    let id = params::device_id(&path.id)?;
    match fleet.get(id).await? {
        Some(device) => ok_json(&DeviceView::from(device)),
        None => Err(ApiError::not_found(format!(
            "the fleet knows no device {id} (never provisioned nor heard, or deleted)"
        ))),
    }
}

/// A device's stored status changes, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}/events",
    tag = "devices",
    params(DevicePath, EventsQuery),
    responses(
        (status = 200, description = "A page of events (none for a device never heard)", body = EventsPage),
        (status = 400, description = "A bad device id or query", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`fleet_disabled`, or the store cannot be read", body = ErrorBody),
    )
)]
pub async fn events(
    state: web::Data<V1State>,
    path: web::Path<DevicePath>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let fleet = state.fleet()?;
    let id = params::device_id(&path.id)?;
    let limit = params::limit(query.limit, DEFAULT_LIMIT, MAX_DEVICE_PAGE)?;
    let after = params::after(query.after, "an event")?;
    // One more than asked tells whether another page follows (at the most a page may
    // hold, a full page is taken to mean one may).
    let mut events = fleet
        .events(id, after, (limit + 1).min(MAX_DEVICE_PAGE))
        .await?;
    let more = events.len() > limit || events.len() == MAX_DEVICE_PAGE;
    events.truncate(limit);
    let next_cursor = more.then(|| events.last().map(|e| e.id)).flatten();
    ok_json(&EventsPage {
        events: events.into_iter().map(Into::into).collect(),
        next_cursor,
    })
}

/// Ends a device's quarantine now.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/release",
    tag = "devices",
    params(DevicePath),
    responses(
        (status = 200, description = "Released", body = ReleasedDevice),
        (status = 400, description = "A bad device id", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "The fleet does not know it", body = ErrorBody),
        (status = 409, description = "`not_quarantined`", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`fleet_disabled`, or the fleet cannot answer", body = ErrorBody),
    )
)]
pub async fn release(
    state: web::Data<V1State>,
    path: web::Path<DevicePath>,
) -> Result<HttpResponse, ApiError> {
    let fleet = state.fleet()?;
    let id = params::device_id(&path.id)?;
    match fleet.release(id).await? {
        Released::Released => ok_json(&ReleasedDevice {
            device_id: id.to_owned(),
            released: true,
        }),
        Released::NotQuarantined => Err(ApiError::conflict(
            "not_quarantined",
            format!("device {id} is not quarantined"),
        )),
        Released::Unknown => Err(ApiError::not_found(format!(
            "the fleet knows no device {id}"
        ))),
    }
}
