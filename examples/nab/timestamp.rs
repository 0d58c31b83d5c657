//! NAB's timestamps: `2013-07-04 00:00:00` in the data, `2013-07-04 00:00:00.000000` in the
//! labels; no time zone, taken as UTC.

use time::{Date, Month, PrimitiveDateTime, Time};

/// Microseconds since the Unix epoch of `text`, or why it is not a NAB timestamp.
pub fn parse_micros(text: &str) -> Result<i64, String> {
    let invalid = || format!("`{text}` is not a timestamp like `2013-07-04 00:00:00`");
    let (seconds, fraction) = match text.split_once('.') {
        Some((seconds, fraction)) => (seconds, Some(fraction)),
        None => (text, None),
    };
    let bytes = seconds.as_bytes();
    if bytes.len() != 19 || [bytes[4], bytes[7], bytes[10], bytes[13], bytes[16]] != *b"-- ::" {
        return Err(invalid());
    }
    let number = |from: usize, to: usize| -> Result<u32, String> {
        let digits = &seconds[from..to];
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        digits.parse().map_err(|_| invalid())
    };
    let micros = match fraction {
        None => 0,
        // Up to six digits, read as a decimal fraction of a second.
        Some(digits)
            if (1..=6).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            digits.parse::<u32>().map_err(|_| invalid())? * 10u32.pow(6 - digits.len() as u32)
        }
        Some(_) => return Err(invalid()),
    };
    let month = Month::try_from(number(5, 7)? as u8).map_err(|_| invalid())?;
    let date = Date::from_calendar_date(number(0, 4)? as i32, month, number(8, 10)? as u8)
        .map_err(|_| invalid())?;
    let time = Time::from_hms_micro(
        number(11, 13)? as u8,
        number(14, 16)? as u8,
        number(17, 19)? as u8,
        micros,
    )
    .map_err(|_| invalid())?;
    let nanos = PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp_nanos();
    Ok((nanos / 1000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_and_label_forms_are_the_same_instant() {
        // 2013-07-04 is 15_890 days after 1970-01-01.
        let midnight = 15_890 * 86_400 * 1_000_000;
        assert_eq!(parse_micros("2013-07-04 00:00:00"), Ok(midnight));
        assert_eq!(parse_micros("2013-07-04 00:00:00.000000"), Ok(midnight));
        assert_eq!(
            parse_micros("2013-07-04 00:00:01.5"),
            Ok(midnight + 1_500_000)
        );
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for bad in [
            "2013-07-04",
            "2013-13-04 00:00:00",
            "2013-07-04T00:00:00",
            "2013-07-04 00:00:00.",
            "x",
        ] {
            assert!(parse_micros(bad).is_err(), "{bad}");
        }
    }
}
