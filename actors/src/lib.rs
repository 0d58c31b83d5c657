//! Eliot's actor engine.
//!
//! # Layout
//!
//! The supervision tree (`tree`) starts these children, each an actix actor:
//!
//! - `health::HealthMonitor`: knows every child's state; probes each on an interval.
//! - `device_endpoint::DeviceEndpoint`: accepts device sockets and reads each CONNECT.
//! - `device_connection::DeviceConnection`: one per connected device; owns its MQTT
//!   session, acks a PUBLISH only after its outcome is committed, in arrival order.
//! - `processor::Processor` × N: parse and validate payloads (`validate`) into
//!   readings or a dead letter (`reading`).
//! - `store_writer::StoreWriter`: batches outcomes into one SQLite transaction (`store`).
//!
//! Around them: `mqtt` (packets and codec over rumqttc's), `pipeline` (processor then
//! store, shared by every way in), `supervision` (panics become restarts), `events`
//! (every log line, typed), `topic` and `timefmt`.

pub mod breaker;
pub mod device_connection;
pub mod device_endpoint;
pub mod device_guard;
pub mod events;
pub mod health;
pub mod mqtt;
pub mod pipeline;
pub mod processor;
pub mod reading;
pub mod restart;
pub mod store;
pub mod store_writer;
pub mod supervision;
pub mod timefmt;
pub mod topic;
pub mod tree;
pub mod validate;
