//! `Secret`: a password or device secret. Never shown by `Debug`, redacted when the
//! configuration is printed, and read only through `expose`, by the one place that uses it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A password: never shown by `Debug`, and redacted when the configuration is printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

/// What `eliot check-config` prints in place of a password that is set.
pub const REDACTED: &str = "(redacted)";

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { REDACTED })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { REDACTED })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}
