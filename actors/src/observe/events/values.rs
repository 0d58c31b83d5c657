//! How the events write a value into a record: a device's strings cut and escaped
//! (`Clean`), durations in whole microseconds (`micros`).

use std::time::Duration;

/// The most one logged value takes, in bytes; a longer one is cut and marked.
pub const LOG_VALUE_MAX: usize = 512;

/// A logged string, cut at `LOG_VALUE_MAX` bytes and with control characters escaped: a
/// device's topic, id or payload-quoting reason can neither flood the logs nor forge
/// lines in the terminal format.
pub struct Clean<'a>(pub &'a str);

impl std::fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        let mut written = 0;
        for c in self.0.chars() {
            if written + c.len_utf8() > LOG_VALUE_MAX {
                return write!(f, "…[cut: {} bytes in all]", self.0.len());
            }
            written += c.len_utf8();
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// `d` in whole microseconds, saturating.
pub fn micros(d: Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}
