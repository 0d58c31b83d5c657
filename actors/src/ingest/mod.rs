//! Ingest: from one MQTT message to readings or a dead letter.
//!
//! - `processor`: the `Processor` actors (stateless, restartable), which run `validate`.
//! - `rules`: the `[ingest]` settings and `Rejection`, the reason a dead letter keeps.
//! - `validate`: the validation itself, a pure function of the rules, the message and now.
//! - `reading`: what a processor hands the store: readings, or a dead letter.
//! - `strict_json`: JSON parsing that refuses duplicated keys.
//! - `topic`, `timefmt`: the telemetry topic pattern, and the one timestamp format.

mod processor;
mod reading;
mod rules;
mod strict_json;
mod timefmt;
mod topic;
mod validate;

pub use processor::{Message, Process, Processor, ProcessorSettings, Processors};
pub use reading::{DeadLetter, Origin, Outcome, Reading};
pub use rules::{IngestSettings, Quoted, Rejection, Rules};
pub use timefmt::{format_micros, format_utc, rfc3339_micros, utc_micros};
pub use topic::{TopicPattern, TopicPatternError, DEVICE_ID_PLACEHOLDER};
pub use validate::{is_device_id, validate};
