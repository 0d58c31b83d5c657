//! What a valid message looks like: the `[ingest]` settings, the rules compiled from
//! them, and `Rejection`, whose text is the reason stored with a dead letter.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::topic::{TopicPattern, TopicPatternError};
use crate::settings::Problems;

/// The `[ingest]` section: what a valid message looks like.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// Topic readings arrive on; `{device_id}` stands for one whole topic level.
    pub topic: String,
    /// How far in the future a reading's timestamp may be (device clocks drift).
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    /// Deepest nesting allowed in `data` (`data` itself is depth 1).
    pub max_depth: usize,
    /// Most fields allowed in `data`, counting nested objects' fields and array elements.
    pub max_fields: usize,
    /// Longest string (value or key) allowed in `data`, in bytes.
    pub max_string_len: usize,
    /// Most readings one JSON array message may carry.
    pub max_batch: usize,
}

/// The rules a processor applies, compiled once from [`IngestSettings`].
#[derive(Debug, Clone)]
pub struct Rules {
    pub topic: TopicPattern,
    pub max_future_skew: Duration,
    pub max_depth: usize,
    pub max_fields: usize,
    pub max_string_len: usize,
    pub max_batch: usize,
}

impl TryFrom<&IngestSettings> for Rules {
    type Error = TopicPatternError;

    fn try_from(s: &IngestSettings) -> Result<Self, Self::Error> {
        Ok(Rules {
            topic: TopicPattern::parse(&s.topic)?,
            max_future_skew: s.max_future_skew,
            max_depth: s.max_depth,
            max_fields: s.max_fields,
            max_string_len: s.max_string_len,
            max_batch: s.max_batch,
        })
    }
}

/// Why a message was refused. The `Display` text is what lands in `dead_letters.reason`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("topic `{topic}` does not match the telemetry pattern `{pattern}`")]
    Topic { topic: Quoted, pattern: String },
    #[error("payload is not valid JSON: {0}")]
    Json(String),
    #[error("payload must be a JSON object or an array of objects, found {0}")]
    Shape(&'static str),
    #[error("payload is an empty array: it carries no reading")]
    EmptyBatch,
    #[error("batch has {count} readings, more than the limit of {max}")]
    BatchTooLarge { count: usize, max: usize },
    #[error("batch element [{index}] (counting from 0): {source}")]
    InBatch {
        index: usize,
        #[source]
        source: Box<Rejection>,
    },
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("unknown field `{0}` (allowed: device_id, timestamp, sensor_type, data)")]
    UnknownField(Quoted),
    #[error("{field}: expected {expected}, found {found}")]
    Type {
        field: Quoted,
        expected: &'static str,
        found: &'static str,
    },
    #[error("device_id `{0}` is invalid: it must be 1 to 64 characters of A-Z a-z 0-9 _ . : -")]
    DeviceId(Quoted),
    #[error("device_id `{payload}` does not match the topic's device id `{topic}`")]
    DeviceMismatch { payload: Quoted, topic: Quoted },
    #[error("identity mismatch: the client authenticated as `{identity}`, but the topic names device `{topic}`")]
    IdentityMismatch { identity: Quoted, topic: Quoted },
    #[error("sensor_type `{0}` is invalid: it must be 1 to 32 characters of a-z 0-9 _")]
    SensorType(Quoted),
    #[error(
        "timestamp `{value}` is not RFC 3339 with an offset (e.g. 2025-06-05T14:30:00Z): {error}"
    )]
    Timestamp { value: Quoted, error: String },
    #[error("timestamp `{value}` is {ahead} in the future, more than the allowed skew of {max}")]
    FutureTimestamp {
        value: Quoted,
        ahead: HumanDuration,
        max: HumanDuration,
    },
    #[error("data is empty: a reading needs at least one field")]
    EmptyData,
    #[error("{field} nests deeper than the limit of {max} levels")]
    TooDeep { field: Quoted, max: usize },
    #[error("data has more than {max} fields")]
    TooManyFields { max: usize },
    #[error("{field}: string of {len} bytes is longer than the limit of {max}")]
    StringTooLong {
        field: Quoted,
        len: usize,
        max: usize,
    },
    #[error("{field}: number is not finite")]
    NotFinite { field: Quoted },
    #[error("{field}: {value} is outside the range {min} to {max}")]
    OutOfRange {
        field: Quoted,
        value: f64,
        min: f64,
        max: f64,
    },
}

/// The most of one input a reason quotes, in bytes.
pub const QUOTE_MAX: usize = 200;

/// Input quoted in a reason: at most `QUOTE_MAX` bytes of it, marked when cut, so that a
/// 250 KiB device id makes a short reason (and holds no 250 KiB string meanwhile).
#[derive(Debug, Clone, PartialEq)]
pub struct Quoted(String);

impl From<&str> for Quoted {
    fn from(input: &str) -> Self {
        if input.len() <= QUOTE_MAX {
            return Quoted(input.to_owned());
        }
        let mut end = QUOTE_MAX;
        while !input.is_char_boundary(end) {
            end -= 1;
        }
        Quoted(format!(
            "{}…[cut: {} bytes in all]",
            &input[..end],
            input.len()
        ))
    }
}

impl From<String> for Quoted {
    fn from(input: String) -> Self {
        if input.len() <= QUOTE_MAX {
            Quoted(input)
        } else {
            Quoted::from(input.as_str())
        }
    }
}

impl fmt::Display for Quoted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A duration printed the humantime way (`1h 0m 3s` → `1h 3s`), rounded to seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = Duration::from_secs(self.0.as_secs().max(1));
        write!(
            f,
            "{}",
            humantime_serde::re::humantime::format_duration(secs)
        )
    }
}

impl IngestSettings {
    pub fn validate(&self, problems: &mut Problems) {
        if let Err(e) = TopicPattern::parse(&self.topic) {
            problems.add("topic", e.to_string());
        }
        problems.at_least("max_depth", self.max_depth, 1);
        problems.at_least("max_fields", self.max_fields, 1);
        problems.at_least("max_string_len", self.max_string_len, 1);
        problems.at_least("max_batch", self.max_batch, 1);
    }
}

impl Rejection {
    /// The reason's class, from a small fixed set: what metrics count rejections by.
    pub fn class(&self) -> &'static str {
        match self {
            Rejection::Topic { .. } => "topic",
            Rejection::Json(_) => "json",
            Rejection::InBatch { source, .. } => source.class(),
            Rejection::Shape(_)
            | Rejection::EmptyBatch
            | Rejection::Missing(_)
            | Rejection::UnknownField(_)
            | Rejection::Type { .. }
            | Rejection::EmptyData => "schema",
            Rejection::DeviceId(_) | Rejection::SensorType(_) => "identifier",
            Rejection::DeviceMismatch { .. } | Rejection::IdentityMismatch { .. } => "identity",
            Rejection::Timestamp { .. } | Rejection::FutureTimestamp { .. } => "timestamp",
            Rejection::BatchTooLarge { .. }
            | Rejection::TooDeep { .. }
            | Rejection::TooManyFields { .. }
            | Rejection::StringTooLong { .. } => "limit",
            Rejection::NotFinite { .. } | Rejection::OutOfRange { .. } => "range",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::REJECTION_CLASSES;

    #[test]
    fn a_long_input_is_quoted_cut_and_marked() {
        let id = "é".repeat(150_000);
        let reason = Rejection::DeviceId(id.as_str().into()).to_string();
        assert!(reason.len() < QUOTE_MAX + 200, "{} bytes", reason.len());
        assert!(reason.contains("…[cut: 300000 bytes in all]"), "{reason}");
        assert_eq!(Quoted::from("robot_001").to_string(), "robot_001");
    }

    #[test]
    fn every_rejection_has_a_class_that_metrics_know() {
        let s = || "x".to_owned();
        let q = || Quoted::from("x");
        let d = HumanDuration(Duration::from_secs(1));
        let all = [
            Rejection::Topic {
                topic: q(),
                pattern: s(),
            },
            Rejection::Json(s()),
            Rejection::Shape("a number"),
            Rejection::EmptyBatch,
            Rejection::BatchTooLarge { count: 2, max: 1 },
            Rejection::InBatch {
                index: 0,
                source: Box::new(Rejection::EmptyData),
            },
            Rejection::Missing("data"),
            Rejection::UnknownField(q()),
            Rejection::Type {
                field: q(),
                expected: "a",
                found: "b",
            },
            Rejection::DeviceId(q()),
            Rejection::DeviceMismatch {
                payload: q(),
                topic: q(),
            },
            Rejection::IdentityMismatch {
                identity: q(),
                topic: q(),
            },
            Rejection::SensorType(q()),
            Rejection::Timestamp {
                value: q(),
                error: s(),
            },
            Rejection::FutureTimestamp {
                value: q(),
                ahead: d,
                max: d,
            },
            Rejection::EmptyData,
            Rejection::TooDeep { field: q(), max: 1 },
            Rejection::TooManyFields { max: 1 },
            Rejection::StringTooLong {
                field: q(),
                len: 2,
                max: 1,
            },
            Rejection::NotFinite { field: q() },
            Rejection::OutOfRange {
                field: q(),
                value: 2.0,
                min: 0.0,
                max: 1.0,
            },
        ];
        for rejection in all {
            assert!(
                REJECTION_CLASSES.contains(&rejection.class()),
                "{rejection:?}"
            );
        }
    }
}
