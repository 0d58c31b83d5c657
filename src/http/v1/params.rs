//! What the listings' query strings share: the order, the limit, a time window, and the
//! path's device id; each checked into what the store is asked, or a 400 saying why.

use eliot_actors::is_device_id;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::error::ApiError;

/// 10000-01-01T00:00:00Z in microseconds: no reading is at or past it.
pub const END_MICROS: i64 = 253_402_300_800_000_000;
/// The largest id JSON carries exactly (2^53 - 1).
pub const MAX_ID: i64 = 9_007_199_254_740_991;

/// A listing's `after`, a row id (`what`: of what): 0 to `MAX_ID`, or a 400.
pub fn after(after: Option<i64>, what: &str) -> Result<Option<i64>, ApiError> {
    match after {
        Some(a) if !(0..=MAX_ID).contains(&a) => Err(ApiError::invalid_query(format!(
            "after: {what} id, from 0 to 2^53 - 1"
        ))),
        _ => Ok(after),
    }
}

/// Which way a listing runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first (the default).
    #[default]
    Desc,
}

impl Order {
    pub fn descending(self) -> bool {
        self == Order::Desc
    }
}

/// `limit`, within `1..=max`, `default` when absent.
pub fn limit(asked: Option<u32>, default: usize, max: usize) -> Result<usize, ApiError> {
    match asked.map(|n| n as usize) {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid_query(format!(
            "limit must be from 1 to {max}"
        ))),
    }
}

/// `from <= t < to` in microseconds: any RFC 3339 times, clamped to the years readings may
/// have (1970 to 9999). A window that holds nothing (`from >= to`) is no error: its pages
/// are empty.
pub fn window(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), ApiError> {
    let from = from.map(|t| micros("from", t)).transpose()?.unwrap_or(0);
    let to = to
        .map(|t| micros("to", t))
        .transpose()?
        .unwrap_or(END_MICROS);
    Ok((from, to))
}

fn micros(name: &str, text: &str) -> Result<i64, ApiError> {
    time_micros(text).map_err(|why| {
        ApiError::invalid_query(format!(
            "{name}: not an RFC 3339 time ({why}), e.g. 2025-06-05T14:30:00Z"
        ))
    })
}

/// Any RFC 3339 time, in microseconds, clamped to the years Eliot keeps (1970 to 9999).
pub fn time_micros(text: &str) -> Result<i64, String> {
    // The parser takes any byte between date and time: only `T` (or `t`) is RFC 3339.
    if text.len() > 10 && !matches!(text.as_bytes()[10], b'T' | b't') {
        return Err("date and time are separated by T".into());
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| e.to_string())?;
    let micros = t.unix_timestamp_nanos().div_euclid(1_000);
    Ok(micros.clamp(0, i128::from(END_MICROS)) as i64)
}

/// The path's device id, checked as ingestion checks it.
pub fn device_id(id: &str) -> Result<&str, ApiError> {
    match is_device_id(id) {
        true => Ok(id),
        false => Err(ApiError::invalid_path(
            "device id: 1 to 64 letters, digits, `_`, `.`, `:` or `-`",
        )),
    }
}

/// A sensor type filter, checked as ingestion checks sensor types.
pub fn sensor_type(sensor: Option<String>) -> Result<Option<String>, ApiError> {
    match sensor {
        Some(s)
            if !(1..=32).contains(&s.len())
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            Err(ApiError::invalid_query(
                "sensor_type: 1 to 32 lowercase letters, digits or `_`",
            ))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_take_any_rfc3339_time_clamped_and_refuse_the_rest() {
        assert_eq!(window(None, None).unwrap(), (0, END_MICROS));
        assert_eq!(
            window(
                Some("1970-01-01T00:00:01+00:00"),
                Some("0001-01-01T00:00:00Z")
            )
            .unwrap(),
            (1_000_000, 0)
        );
        assert_eq!(
            window(Some("9999-12-31T23:59:59.999999-23:59"), None)
                .unwrap()
                .0,
            END_MICROS
        );
        for bad in [
            "yesterday",
            "2025-06-05 14:30:00Z",
            "2025-06-05X14:30:00Z",
            "2025-13-01T00:00:00Z",
        ] {
            let error = window(Some(bad), None).unwrap_err();
            assert_eq!(error.code, "invalid_query", "{bad}");
        }
        assert!(limit(Some(0), 100, 10).is_err());
        assert_eq!(limit(None, 100, 10_000).unwrap(), 100);
        assert!(sensor_type(Some("GPS".into())).is_err());
    }
}
