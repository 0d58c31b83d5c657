//! The read API over HTTP: a device's stored readings, as JSON.
//!
//! - `GET /devices/{id}/latest`: the newest reading of each of its sensor types.
//! - `GET /devices/{id}/readings?last=N`: its N newest readings (default 100), newest first.
//! - `GET /devices/{id}/readings?from=T&to=T[&limit=N]`: those with `from <= timestamp <
//!   to` (RFC 3339), oldest first; the oldest `limit` (default and most: 10,000) when
//!   there are more, so that a client pages on from the last timestamp it got.
//!
//! Reads run on the blocking pool with read-only connections: they never wait for the
//! store writer, nor hold up the workers that answer `/health`.

use actix_web::{web, HttpResponse};
use eliot_actors::{is_device_id, rfc3339_micros, StoreError, StoredReading};
use serde::Deserialize;
use serde_json::json;

use super::ApiState;

/// The most rows one answer carries.
pub const MAX_ROWS: usize = 10_000;
const DEFAULT_LAST: usize = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/devices/{device_id}/latest")
            .route(web::get().to(latest))
            .default_service(web::to(super::routes::method_not_allowed)),
    );
    cfg.service(
        web::resource("/devices/{device_id}/readings")
            .route(web::get().to(readings))
            .default_service(web::to(super::routes::method_not_allowed)),
    );
}

/// The read API's paths where it is not served (`HttpSettings::serves_reads`): a 403 that
/// says why, not a 404 that would look like a wrong path.
pub fn refuse(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/devices/{tail:.*}").to(|| async {
        HttpResponse::Forbidden().json(serde_json::json!({
            "error": "the read API has no authentication: it is served only on a loopback \
                      http.listen, unless http.reads_off_loopback = true (behind a proxy \
                      that authenticates, say)"
        }))
    }));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadingsQuery {
    last: Option<usize>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

/// What a request asks the store for, once checked.
enum Read {
    Latest,
    Last(usize),
    Range((i64, i64), usize),
}

async fn latest(state: web::Data<ApiState>, device: web::Path<String>) -> HttpResponse {
    answer(state, device.into_inner(), Ok(Read::Latest)).await
}

async fn readings(
    state: web::Data<ApiState>,
    device: web::Path<String>,
    query: Result<web::Query<ReadingsQuery>, actix_web::Error>,
) -> HttpResponse {
    let read = query
        .map_err(|e| format!("bad query: {e}"))
        .and_then(|q| checked(q.into_inner()));
    answer(state, device.into_inner(), read).await
}

fn checked(q: ReadingsQuery) -> Result<Read, String> {
    let within = |n: usize, name: &str| {
        if (1..=MAX_ROWS).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{name} must be from 1 to {MAX_ROWS}"))
        }
    };
    match (q.last, q.from, q.to) {
        (last, None, None) => {
            if q.limit.is_some() {
                return Err("limit goes with from and to; use last alone".into());
            }
            Ok(Read::Last(within(last.unwrap_or(DEFAULT_LAST), "last")?))
        }
        (None, Some(from), Some(to)) => {
            let from = rfc3339_micros(&from).map_err(|e| format!("from: {e}"))?;
            let to = rfc3339_micros(&to).map_err(|e| format!("to: {e}"))?;
            if from >= to {
                return Err("from must be before to".into());
            }
            let limit = within(q.limit.unwrap_or(MAX_ROWS), "limit")?;
            Ok(Read::Range((from, to), limit))
        }
        _ => Err("ask for either last=N, or from=T and to=T".into()),
    }
}

async fn answer(
    state: web::Data<ApiState>,
    device: String,
    read: Result<Read, String>,
) -> HttpResponse {
    if !is_device_id(&device) {
        return bad_request("device id: 1 to 64 letters, digits, `_`, `.`, `:` or `-`");
    }
    let read = match read {
        Ok(read) => read,
        Err(error) => return bad_request(&error),
    };
    let reader = state.reader.clone();
    let rows = web::block(move || -> Result<Vec<StoredReading>, StoreError> {
        match read {
            Read::Latest => reader.latest(&device),
            Read::Last(count) => reader.last(&device, count),
            Read::Range(range, limit) => reader.range(&device, range, limit),
        }
    })
    .await;
    match rows {
        Ok(Ok(rows)) => HttpResponse::Ok()
            .content_type("application/json")
            .body(to_json(&rows)),
        Ok(Err(error)) => HttpResponse::ServiceUnavailable()
            .json(json!({ "error": format!("the store cannot be read: {error}") })),
        Err(_) => {
            HttpResponse::ServiceUnavailable().json(json!({ "error": "the read was cancelled" }))
        }
    }
}

fn bad_request(error: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": error }))
}

/// The rows as a JSON array; `data` is stored as JSON text and goes in as it is. Written
/// straight into one buffer: a read of thousands of rows allocates once.
fn to_json(rows: &[StoredReading]) -> Vec<u8> {
    let text = |out: &mut Vec<u8>, name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        serde_json::to_writer(out, value).expect("a string serialises into memory");
    };
    let mut out = Vec::with_capacity(rows.len() * 220 + 2);
    out.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        text(&mut out, r#"{"device_id":"#, &row.device_id);
        text(&mut out, r#","sensor_type":"#, &row.sensor_type);
        text(&mut out, r#","timestamp":"#, &row.timestamp);
        out.extend_from_slice(br#","data":"#);
        out.extend_from_slice(row.data.as_bytes());
        text(&mut out, r#","received_at":"#, &row.received_at);
        out.push(b'}');
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_a_json_array_with_data_as_an_object_and_text_escaped() {
        let row = StoredReading {
            device_id: "d1".into(),
            sensor_type: "temp\"erature".into(),
            timestamp: "2025-06-05T14:30:00.000001Z".into(),
            data: r#"{"celsius":21.5}"#.into(),
            received_at: "2025-06-05T14:30:00.000002Z".into(),
        };
        let json: serde_json::Value =
            serde_json::from_slice(&to_json(&[row.clone(), row])).expect("the answer is JSON");
        assert_eq!(json.as_array().map(Vec::len), Some(2));
        assert_eq!(json[1]["sensor_type"], "temp\"erature");
        assert_eq!(json[0]["data"]["celsius"], 21.5);
        assert_eq!(json[0]["received_at"], "2025-06-05T14:30:00.000002Z");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&to_json(&[])).unwrap(),
            serde_json::json!([])
        );
    }
}
