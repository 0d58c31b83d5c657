//! The message's ground floor: what every subsystem passes along, and the formats they
//! agree on.
//!
//! - `reading`: what one MQTT message becomes (`Outcome`: `Reading`s with their `Origin`,
//!   or a `DeadLetter`), handed from a processor to the store.
//! - `timefmt`: the one timestamp format Eliot writes, its inverse, and the RFC 3339 parser
//!   that decides which times are kept.
//! - `device_id`: the rule a device id obeys.
//!
//! It depends on nothing else in the crate, so that ingest, the store, identity and the
//! shell can all use these without depending on each other.

mod device_id;
mod reading;
mod timefmt;

pub use device_id::is_device_id;
pub use reading::{DeadLetter, Origin, Outcome, Reading};
pub use timefmt::{format_micros, format_utc, parse_timestamp, rfc3339_micros, utc_micros};
