//! The one timestamp format Eliot writes: RFC 3339, UTC, microseconds.

use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// `2025-06-05T14:30:00.000000Z`: fixed width, so text order in SQLite is time order.
pub fn format_utc(t: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    t.to_offset(UtcOffset::UTC)
        .format(&format)
        .expect("a four-digit-year UTC time always formats")
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
}
