//! The one timestamp format Eliot writes: RFC 3339, UTC, microseconds; and its inverse,
//! microseconds since the epoch, which is how the store's memory holds it.

use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// `2025-06-05T14:30:00.000000Z`: fixed width, so text order in SQLite is time order.
pub fn format_utc(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&FORMAT)
        .expect("a four-digit-year UTC time always formats")
}

/// Microseconds since 1970 of a time `format_utc` wrote; `None` for any other text.
pub fn utc_micros(text: &str) -> Option<i64> {
    let t = PrimitiveDateTime::parse(text, &FORMAT).ok()?.assume_utc();
    i64::try_from(t.unix_timestamp_nanos() / 1_000).ok()
}

/// Microseconds since 1970 of an RFC 3339 time as readings carry them (a query's bounds,
/// say), or why it is not one.
pub fn rfc3339_micros(text: &str) -> Result<i64, String> {
    let t = super::validate::parse_timestamp(text)?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000).map_err(|e| e.to_string())
}

/// The text `format_utc` writes for `micros` since 1970.
pub fn format_micros(micros: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .expect("microseconds from a stored timestamp are in range");
    format_utc(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_with_fixed_width_in_utc() {
        assert_eq!(
            format_utc(datetime!(2025-06-05 16:30:00.5 +02:00)),
            "2025-06-05T14:30:00.500000Z"
        );
    }

    #[test]
    fn micros_and_text_convert_both_ways() {
        for text in [
            "1970-01-01T00:00:00.000000Z",
            "2025-06-05T14:30:00.123456Z",
            "9999-12-31T23:59:59.999999Z",
        ] {
            let micros = utc_micros(text).unwrap();
            assert_eq!(format_micros(micros), text);
        }
        assert_eq!(utc_micros("2025-06-05T14:30:00Z"), None);
    }
}
