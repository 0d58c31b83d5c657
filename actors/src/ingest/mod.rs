//! Ingest: from one MQTT message to readings or a dead letter.
//!
//! - `processor`: the `Processor` actors (stateless, restartable), which run `validate`.
//! - `rules`: the `[ingest]` settings and `Rejection`, the reason a dead letter keeps.
//! - `validate`: the validation itself, a pure function of the rules, the message and now.
//! - `strict_json`: JSON parsing that refuses duplicated keys.
//! - `topic`: the telemetry topic pattern.
//!
//! What a message becomes (readings or a dead letter), the timestamp format and the
//! device-id rule are `message`'s: the store and identity use them without ingest.

mod processor;
mod rules;
mod strict_json;
mod topic;
mod validate;

pub use processor::{Message, Process, Processor, ProcessorSettings, Processors};
pub use rules::{IngestSettings, Quoted, Rules};
pub use topic::{TopicPattern, TopicPatternError, DEVICE_ID_PLACEHOLDER};
pub use validate::{is_sensor_type, validate};
