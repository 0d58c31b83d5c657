//! The one timestamp format Eliot writes: RFC 3339, UTC, microseconds; its inverse,
//! microseconds since the epoch, which is how the store's memory holds it; and the parser
//! for the RFC 3339 times devices and queries send, which decides what can be written.
//!
//! Every reading is formatted at least twice and parsed once on its way to a chunk, so
//! these are written out by hand for the one fixed-width format (years 1970 to 9999, which
//! is what `parse_timestamp` lets through), rather than through `time`'s general formatter.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Where the format's separators stand: `YYYY-MM-DDThh:mm:ss.ffffffZ`.
const SEPARATORS: [(usize, u8); 7] = [
    (4, b'-'),
    (7, b'-'),
    (10, b'T'),
    (13, b':'),
    (16, b':'),
    (19, b'.'),
    (26, b'Z'),
];
/// 10000-01-01T00:00:00Z: the first time past what the format can write.
const END_MICROS: i64 = 253_402_300_800_000_000;

/// `2025-06-05T14:30:00.000000Z`: fixed width, so text order in SQLite is time order.
pub fn format_utc(t: OffsetDateTime) -> String {
    let micros = i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000))
        .expect("a four-digit-year time is within i64 microseconds");
    format_micros(micros)
}

/// The text `format_utc` writes for `micros` since 1970 (clamped to years 1970 to 9999).
pub fn format_micros(micros: i64) -> String {
    let micros = micros.clamp(0, END_MICROS - 1);
    let (days, of_day) = (micros / MICROS_PER_DAY, micros % MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let seconds = of_day / 1_000_000;
    let mut text = [0u8; 27];
    let mut put = |at: usize, value: i64, width: usize| {
        let mut value = value;
        for i in (at..at + width).rev() {
            text[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, seconds / 3_600, 2);
    put(14, seconds / 60 % 60, 2);
    put(17, seconds % 60, 2);
    put(20, of_day % 1_000_000, 6);
    for (at, c) in SEPARATORS {
        text[at] = c;
    }
    String::from_utf8(text.to_vec()).expect("ASCII")
}

/// Microseconds since 1970 of a time `format_utc` wrote; `None` for any other text.
pub fn utc_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 27 || SEPARATORS.iter().any(|(at, c)| b[*at] != *c) {
        return None;
    }
    let number = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0i64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let days_in_month = match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if year < 1970 || !(1..=days_in_month).contains(&day) || hour > 23 || minute > 59 || second > 59
    {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(seconds * 1_000_000 + number(20, 26)?)
}

/// Microseconds since 1970 of an RFC 3339 time as readings carry them (a query's bounds,
/// say), or why it is not one.
pub fn rfc3339_micros(text: &str) -> Result<i64, String> {
    let t = parse_timestamp(text)?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000).map_err(|e| e.to_string())
}

/// RFC 3339 as docs/readings.md states it: `T` (or `t`) between date and time, at most 9
/// fractional digits of which only 6 may be significant, no leap second, an offset; and a
/// UTC year from 1970 to 9999. The conversion to UTC is checked: past year 9999 it would
/// overflow.
pub fn parse_timestamp(text: &str) -> Result<OffsetDateTime, String> {
    let bytes = text.as_bytes();
    if bytes.len() > 10 && !matches!(bytes[10], b'T' | b't') {
        return Err("date and time must be separated by `T`".into());
    }
    if bytes.get(17..19) == Some(b"60") {
        return Err("leap seconds (:60) are not accepted".into());
    }
    if bytes.get(19) == Some(&b'.') {
        let digits = bytes[20..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 9 {
            return Err(format!(
                "{digits} fractional digits, more than the 9 allowed"
            ));
        }
    }
    let ts = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| e.to_string())?;
    if ts.nanosecond() % 1_000 != 0 {
        // Stored with microseconds, `…00.0000001Z` and `…00.0000002Z` would be one key.
        return Err(
            "more precise than a microsecond, which is what Eliot keeps: \
                    send at most 6 significant fractional digits"
                .into(),
        );
    }
    ts.checked_to_offset(time::UtcOffset::UTC)
        .filter(|utc| (1970..=9999).contains(&utc.year()))
        .ok_or_else(|| "the year in UTC must be between 1970 and 9999".to_owned())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of `days` since 1970-01-01: the inverse of `days_from_civil`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, format_description};

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
            "2000-02-29T23:59:59.999999Z",
            "2025-06-05T14:30:00.123456Z",
            "9999-12-31T23:59:59.999999Z",
        ] {
            let micros = utc_micros(text).unwrap();
            assert_eq!(format_micros(micros), text);
        }
        for not_ours in [
            "2025-06-05T14:30:00Z",
            "2025-02-29T00:00:00.000000Z",
            "2025-13-01T00:00:00.000000Z",
            "2025-06-05T24:00:00.000000Z",
            "2025-06-05 14:30:00.000000Z",
            "2025-06-05T14:30:00.00000aZ",
        ] {
            assert_eq!(utc_micros(not_ours), None, "{not_ours}");
        }
    }

    #[test]
    fn the_hand_written_format_agrees_with_the_time_crate_across_the_range() {
        let general = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        let mut micros: i64 = 0;
        // Steps of a prime number of microseconds, about 11 days, over 1970 to 9999.
        while micros < END_MICROS {
            let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).unwrap();
            let expected = t.format(&general).unwrap();
            assert_eq!(format_micros(micros), expected);
            assert_eq!(utc_micros(&expected), Some(micros), "{expected}");
            micros += 999_999_999_989;
        }
    }
}
