//! `GET /api/v1/devices/{id}/anomalies`: a device's kept anomaly scores (at or above
//! `anomaly.floor`), each with its reading's key (sensor type and time) and the field
//! scored, in the order they were kept, filtered by the readings' time, paged by id
//! (`after`): a score kept while someone pages comes in a later page, never makes one
//! repeat or skip another. 503 `fleet_disabled` with `fleet.enabled = false` (detection runs
//! in the fleet); a device with no score kept has none: an empty page.

use actix_web::{web, HttpResponse};
use eliot_actors::{format_micros, AnomalyQuery, AnomalyRow, MAX_DEVICE_PAGE};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::readings::DevicePath;
use super::{ok_json, params, V1State};

const DEFAULT_LIMIT: usize = 100;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AnomaliesQuery {
    /// Scores of readings at or after this time (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Scores of readings before this time (RFC 3339).
    #[param(format = DateTime)]
    to: Option<String>,
    /// Only scores with an id above this: the `next_cursor` of the previous page.
    #[param(minimum = 0, maximum = 9007199254740991_i64)]
    after: Option<i64>,
    /// Scores in the page: 1 to 1,000, 100 by default.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// One kept score.
#[derive(Serialize, ToSchema)]
pub struct AnomalyView {
    #[schema(example = 42)]
    pub id: i64,
    #[schema(example = "temperature")]
    pub sensor_type: String,
    /// The reading's time (with the device and sensor type, the reading's key).
    #[schema(example = "2025-06-05T14:30:00.000000Z")]
    pub ts: String,
    /// The path of the numeric field in the reading's `data`, dots between nested keys.
    #[schema(example = "value")]
    pub field: String,
    /// 0 to 1: how unlike the series' recent behaviour the value is (docs/anomaly.md).
    #[schema(example = 0.93)]
    pub score: f64,
    /// When Eliot received the reading.
    pub received_at: String,
}

impl From<AnomalyRow> for AnomalyView {
    fn from(a: AnomalyRow) -> AnomalyView {
        AnomalyView {
            id: a.id,
            sensor_type: a.sensor_type,
            ts: format_micros(a.ts),
            field: a.field,
            score: a.score,
            received_at: format_micros(a.received_at),
        }
    }
}

/// A page of a device's kept anomaly scores.
#[derive(Serialize, ToSchema)]
pub struct AnomaliesPage {
    pub anomalies: Vec<AnomalyView>,
    /// Pass it as `after` (with the same `from` and `to`) for the next page; `null` at the
    /// end.
    pub next_cursor: Option<i64>,
}

/// A device's kept anomaly scores, in the order they were kept.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}/anomalies",
    tag = "devices",
    params(DevicePath, AnomaliesQuery),
    responses(
        (status = 200, description = "A page of scores (none for a device with none kept)", body = AnomaliesPage),
        (status = 400, description = "A bad device id or query", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`fleet_disabled`, or the store cannot be read", body = ErrorBody),
    )
)]
pub async fn anomalies(
    state: web::Data<V1State>,
    path: web::Path<DevicePath>,
    query: web::Query<AnomaliesQuery>,
) -> Result<HttpResponse, ApiError> {
    let fleet = state.fleet()?;
    let device_id = params::device_id(&path.id)?.to_owned();
    let limit = params::limit(query.limit, DEFAULT_LIMIT, MAX_DEVICE_PAGE)?;
    let within = params::window(query.from.as_deref(), query.to.as_deref())?;
    let after = params::after(query.after, "a score's")?;
    // One more than asked tells whether another page follows (at the most a page may
    // hold, a full page is taken to mean one may).
    let mut rows = fleet
        .anomalies(AnomalyQuery {
            device_id,
            within,
            after,
            limit: (limit + 1).min(MAX_DEVICE_PAGE),
        })
        .await?;
    let more = rows.len() > limit || rows.len() == MAX_DEVICE_PAGE;
    rows.truncate(limit);
    let next_cursor = more.then(|| rows.last().map(|a| a.id)).flatten();
    ok_json(&AnomaliesPage {
        anomalies: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    })
}
