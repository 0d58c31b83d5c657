//! Eliot's actor engine.
//!
//! # Layout
//!
//! One folder per subsystem; each names its actors after their file, so each actor of
//! ARCHITECTURE.md's tree is found in one step. Listed from the top of the dependencies
//! down:
//!
//! - `tree/`: wires the children below under actix `Supervisor`s (`children.rs`) and shuts them down in
//!   phases. Nothing else.
//! - `endpoint/`: `DeviceEndpoint` (`device_endpoint/`: accept, the registry, drain; its
//!   `handshake` reads and answers each CONNECT), `admission.rs` (CONNECT → session or
//!   refusal), `DeviceConnection` (`device_connection/`: one per device, acks after
//!   commit), its `AckQueue`, the `Transport` it reads and writes, and the `TlsListener`
//!   (`tls_listener.rs`) that hands it devices over TLS.
//! - `upstream/`: `UpstreamConnection` (`upstream_connection.rs`), one rumqttc client per
//!   configured connection to an existing broker, its poll and ack tasks (`link_tasks.rs`),
//!   acking after commit in receipt order (`in_order.rs`), over rustls (`tls.rs`).
//! - `pipeline/`: the path every message takes, whichever way it came in: a processor,
//!   the quarantine check, the store, then the fleet told; and the in-flight `ByteBudget`
//!   (`budget.rs`) both ways in draw on.
//! - `fleet/`: every known device's live state in `FleetShard` actors (`shard.rs`):
//!   presence from connections and from each device's rhythm (`rhythm.rs`, `timers.rs`),
//!   quality, quarantine, persisted through the store writer's batches; each device's
//!   anomaly detectors and the scores they keep (`anomalies.rs`, `history.rs`,
//!   `scores.rs`); each (rule, device) alert (`alerts/`); the `FleetHandle` (`handle.rs`)
//!   the HTTP API asks.
//! - `notify/`: the `Notifier`, the webhook's one sender (the committed outbox, in order,
//!   retried), and the `AlertsHandle` the HTTP API asks of alerting.
//! - `identity/`: who a device is: credentials (Argon2 hashes), the `Authenticator` that
//!   admission asks, the devices' TLS configuration and certificate names
//!   (`server_tls.rs`), and the limits keyed by the client (per address, per device).
//! - `ingest/`: `Processor` (`processor.rs`), the validation rules and `validate`.
//! - `store/`, one folder per part: `writer/`, the `StoreWriter` (`store_writer.rs`:
//!   batches, commits, then answers; between commits `upkeep.rs`); `database/`, the `Store`
//!   (`store.rs`), its schema and migrations (`schema.rs`) and checkpoints off the writer's
//!   thread (`checkpointer.rs`); `readings/`, the log and memtable (`tiers.rs`,
//!   `memtable.rs`), the merge into chunks (`merge.rs`, `chunks.rs`) and the read API
//!   (`reader.rs`); `sessions/`, durable and bounded device sessions; and the dead
//!   letters' byte quota (`dead_letters.rs`).
//! - `supervision/`: `HealthMonitor` (`health_monitor.rs`), a `Breaker` per dependency
//!   (`breaker.rs`, running `circuit.rs`: the store's, and the upstream broker's when that
//!   mode is on), the per-device `DeviceGuard` (`device_guard.rs`), the restart policy
//!   every child carries (`restart.rs`), and the one `SlidingWindow` and `Backoff` they
//!   share.
//! - `mqtt/`: the packet vocabulary for MQTT 3.1.1 and 5, and its codec over rumqttc's.
//! - `webhook/`: a webhook's URL, signature and one POST.
//! - `anomaly/`: the streaming anomaly detector of one series (`Detector`): plain
//!   arithmetic on its values, which the fleet runs and `examples/nab` scores.
//! - `message/`: the ground floor every subsystem passes along: what a message becomes
//!   (`reading.rs`: readings or a dead letter), the one timestamp format and its parser
//!   (`timefmt.rs`), and the device-id rule (`device_id.rs`).
//! - `observe/`: typed events that log and count, their `Metrics`, and a log capture.
//! - `settings`: how each settings section reports its problems.
//! - `secret`: a `Secret` (a password or device secret), never shown by `Debug` and
//!   redacted when the configuration is printed.
//! - `pem`: the certificate and key files both TLS sides read.
//!
//! Dependencies point one way, down these ranks (a module uses only lower ones, or its own
//! folder): `tree`; `endpoint`, `upstream`; `pipeline`, `notify`; `fleet`, `identity`;
//! `ingest`, `store`; `mqtt`, `supervision`; and the floor, `message`, `secret`, `settings`,
//! `pem`, `observe`, `anomaly`, `webhook`.
//! A child reports to its owner through a `Recipient`. `layering_tests/` holds the ranks
//! and fails on any edge that points up or sideways.

mod anomaly;
mod endpoint;
mod fleet;
mod identity;
mod ingest;
#[cfg(test)]
mod layering_tests;
mod message;
mod mqtt;
mod notify;
mod observe;
mod pem;
mod pipeline;
mod secret;
mod settings;
mod store;
mod supervision;
mod tree;
mod upstream;
mod webhook;

// The public surface: what the shell (`src/`), the tests and the examples use.
pub use anomaly::Detector as AnomalyDetector;
pub use endpoint::{Adopter, EndpointSettings, Transport};
pub use fleet::{
    now_micros, Acked, AlertSettings, AnomalySettings, AnomalyState, BadCursor, ConnectionsClosed,
    Counts, DeviceCursor, DeviceEvent, DevicePage, DeviceQuery, DeviceSort, DeviceState,
    FleetError, FleetHandle, FleetSettings, KeptState as AnomalyKeptState, LastReadingState,
    Presence, QualityState, QuarantineState, Released, RhythmState, RuleConfig as AlertRule,
    SeriesState as AnomalySeriesState, Severity as AlertSeverity, Status as DeviceStatus,
    WebhookSettings, MAX_PAGE as MAX_DEVICE_PAGE,
};
pub use identity::{
    credentials, AuthMode, AuthSettings, Provisioning, ProvisioningError, TlsSettings,
};
pub use ingest::{validate, IngestSettings, ProcessorSettings, Rules};
pub use message::{format_micros, format_utc, is_device_id, rfc3339_micros};
pub use mqtt::{CodecError, MqttCodec};
pub use notify::{AlertsError, AlertsHandle, Retried, RuleChange, RuleSource};
pub use observe::{CapturedLogs, Event, Fields, Metrics, Telemetry};
pub use pipeline::{ReplayError, ReplayOutcome, ReplayPage, ReplaySettings, Replayed, Replayer};
pub use secret::Secret;
pub use settings::Problems;
pub use store::{
    AlertEventQuery, AlertEventView, AlertQuery, AlertStateRow, AnomalyQuery, AnomalyRow,
    DeadLetterFilter, DeadLetterPage, DeadLetterQuery, DeadLetterSummary, DeliveryView, NotStored,
    Page, PageRequest, Purger, Reader, ReadingKey, SilenceRow, Store, StoreError, StoreSettings,
    StoredDeadLetter, StoredReading, DEAD_LETTER_SCAN_ROWS,
};
// `Ping` is what an `answers_pings!` expansion answers, in the shell too.
pub use supervision::{
    BreakerSettings, BreakerState, BreakersSettings, ChildState, DeviceBreakerSettings, Escalation,
    HealthProbe, HealthReport, HealthSettings, LinkHealth, Ping, RestartSettings, Restarts, Status,
};
pub use tree::{ShutdownReport, StartError, Tree, TreeSettings};
pub use upstream::{Protocol, UpstreamSettings};

/// The fault points named in the `FAILPOINTS` environment variable (`name=action;...`, the
/// `fail` crate's syntax), active until the guard is dropped. Only in builds with the
/// `failpoints` feature, which tests and drills have and `cargo build` does not: the
/// black-box tests inject faults into the `eliot` binary this way. `None` otherwise.
pub fn fault_points_from_env() -> Option<fail::FailScenario<'static>> {
    cfg!(feature = "failpoints").then(fail::FailScenario::setup)
}
