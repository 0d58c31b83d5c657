//! `Metrics`: what the typed events count, in a Prometheus registry of its own (one per
//! running tree, so several Eliots in one process, as in the tests, never mix figures),
//! plus the process's own figures (`process`), read at each scrape.
//!
//! Here each family is declared and registered; what moves it is in the events (each names
//! the families it moves in `MOVES`, as a scrape names them: search for a family's name
//! to find both). A few are moved by their owners rather than by an event: the queues,
//! the in-flight bytes, the store's shape, pending connections, rate-limited messages.
//!
//! No label carries a device or client id: a fleet of 10,000 devices stays a handful of
//! series. Labels take their values from small fixed sets (a QoS, a rejection's class, a
//! CONNACK code, a child's or a breaker's name).

use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};

use super::process::ProcessCollector;

/// Every class a rejection may have (`messages_rejected_total{class}`).
pub const REJECTION_CLASSES: [&str; 9] = [
    "topic",
    "json",
    "schema",
    "identifier",
    "identity",
    "timestamp",
    "limit",
    "range",
    "panic",
];

/// Every `code` of `connections_refused_total`: a CONNACK code's name, or `none`.
pub const REFUSAL_CODES: [&str; 8] = [
    "none",
    "unsupported_protocol",
    "client_id_rejected",
    "server_unavailable",
    "quota_exceeded",
    "bad_authentication_method",
    "bad_credentials",
    "not_authorized",
];

/// A label set of one fixed-vocabulary label.
pub type Label = [(&'static str, &'static str); 1];
/// A label set of one label whose values are Eliot's own names (children, breakers).
pub type NameLabel = [(&'static str, String); 1];

pub struct Metrics {
    registry: Registry,
    /// False when `[metrics] enabled = false`: events only log.
    pub enabled: bool,
    /// PUBLISHes read, by QoS (0, 1, 2).
    pub messages_received: [Counter; 3],
    /// Acks written: PUBACK (QoS 1), PUBREC (QoS 2).
    pub acks_sent: [Counter; 2],
    /// From a PUBLISH read to its outcome committed, per message.
    pub receive_to_commit_seconds: Histogram,
    /// Requests waiting for (or in) the store writer's and the processors' mailboxes.
    pub store_writer_queue: Gauge,
    pub processor_queue: Gauge,
    /// Payload bytes read and not yet acked (the shared in-flight budget in use).
    pub in_flight_bytes: Gauge,
    /// What the store holds outside its chunks (set as `/health` shows it).
    pub store_unmerged_readings: Gauge,
    pub store_unmerged_bytes: Gauge,
    pub store_wal_bytes: Gauge,
    pub messages_processed: Counter,
    pub messages_rejected: Family<Label, Counter>,
    pub readings_stored: Counter,
    pub readings_duplicate: Counter,
    pub dead_letters_stored: Counter,
    pub dead_letters_shed: Counter,
    pub dead_letters_shed_bytes: Counter,
    /// Dead letters replayed, by what became of them (`accepted`, `rejected`, `gone`).
    pub dead_letters_replayed: Family<Label, Counter>,
    /// Readings deleted by a device's purge.
    pub readings_purged: Counter,
    pub readings_merged: Counter,
    pub chunks_expired: Counter,
    pub readings_expired: Counter,
    pub schema_version: Gauge,
    pub commit_seconds: Histogram,
    pub batch_rows: Histogram,
    pub store_failures: Counter,
    pub store_retries: Counter,
    pub connections_opened: Counter,
    pub connections_open: Gauge,
    pub connections_pending: Gauge,
    pub connections_refused: Family<Label, Counter>,
    pub protocol_errors: Counter,
    pub wills_published: Counter,
    pub accept_failures: Counter,
    pub panics: Counter,
    pub restarts: Family<NameLabel, Counter>,
    pub escalations: Counter,
    pub breaker_transitions: Family<NameLabel, Counter>,
    /// 0 closed, 1 open, 2 half-open.
    pub breaker_state: Family<NameLabel, Gauge>,
    pub device_breaker_trips: Counter,
    pub device_refusals: Counter,
    pub listening: Gauge,
    pub shutting_down: Gauge,
    pub open_file_limit_wanted: Gauge,
    pub start_failures: Counter,
    pub http_listening: Gauge,
    pub http_failures: Counter,
    /// Messages a device's rate limit made wait before they were read.
    pub rate_limited: Counter,
    /// TLS reloads (SIGHUP), by outcome: `done` or `failed`.
    pub tls_reloads: Family<Label, Counter>,
    pub upstream_connects: Counter,
    /// 1 while an upstream connection is connected, by connection.
    pub upstream_connected: Family<NameLabel, Gauge>,
    pub upstream_connect_failures: Counter,
    pub upstream_sessions_lost: Counter,
    pub upstream_not_stored: Counter,
    /// Status changes of devices, by the status changed to.
    pub device_status_changes: Family<Label, Counter>,
    /// Devices per status.
    pub devices: Family<Label, Gauge>,
    /// Messages of devices not tracked because the fleet was full (moved by the fleet).
    pub fleet_untracked: Counter,
    /// Dead letters of no known device (moved by the fleet).
    pub dead_letters_unattributed: Counter,
    pub device_events_dropped: Counter,
    /// Anomaly scores at or above `anomaly.floor` (kept).
    pub anomalies: Counter,
    pub anomalies_dropped: Counter,
    /// Series scored now, every device together (set by the fleet).
    pub anomaly_series: Gauge,
    /// Fields not scored: a bound on series was reached (moved by the fleet).
    pub anomaly_series_untracked: Counter,
    /// Alert changes, by what the alert became.
    pub alert_changes: Family<Label, Counter>,
    pub alert_changes_dropped: Counter,
    /// Notifications the webhook took (2xx), and attempts that failed.
    pub alert_notifications: Counter,
    pub alert_notification_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Registers `metric` under `name`, and hands back a handle to it.
fn register<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

fn counter(registry: &mut Registry, name: &str, help: &str) -> Counter {
    register(registry, name, help, Counter::default())
}

fn gauge(registry: &mut Registry, name: &str, help: &str) -> Gauge {
    register(registry, name, help, Gauge::default())
}

fn histogram(registry: &mut Registry, name: &str, help: &str, start: f64) -> Histogram {
    let buckets = exponential_buckets(start, 2.0, 14);
    register(registry, name, help, Histogram::new(buckets))
}

/// A family of metrics, one per label set (`Label` or `NameLabel`).
fn family<L, M>(registry: &mut Registry, name: &str, help: &str) -> Family<L, M>
where
    Family<L, M>: Metric + Default + Clone,
{
    register(registry, name, help, Family::default())
}

impl Metrics {
    /// Metrics that events do not update (to measure what counting costs).
    pub fn disabled() -> Metrics {
        Metrics {
            enabled: false,
            ..Metrics::new()
        }
    }

    pub fn new() -> Metrics {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let r = root.sub_registry_with_prefix("eliot");
        let received = family::<Label, Counter>(r, "messages_received", "PUBLISHes read, by QoS");
        let acks = family::<Label, Counter>(r, "acks_sent", "PUBACKs and PUBRECs written, by QoS");
        let queues = family::<Label, Gauge>(
            r,
            "queued_requests",
            "Requests waiting for or in an actor's mailbox",
        );
        let store_writer_queue = queues.get_or_create(&[("actor", "store_writer")]).clone();
        let processor_queue = queues.get_or_create(&[("actor", "processors")]).clone();
        let messages_received =
            ["0", "1", "2"].map(|qos| received.get_or_create(&[("qos", qos)]).clone());
        let acks_sent = ["1", "2"].map(|qos| acks.get_or_create(&[("qos", qos)]).clone());
        let messages_rejected = family::<Label, Counter>(
            r,
            "messages_rejected",
            "Messages refused and kept as dead letters, by reason class",
        );
        let connections_refused = family::<Label, Counter>(
            r,
            "connections_refused",
            "Connections refused at or before CONNECT, by CONNACK code (none: closed without one)",
        );
        // Every series of a fixed vocabulary exists from the start, at zero, so that a
        // rate or an alert on it works before the first event.
        for class in REJECTION_CLASSES {
            let _ = messages_rejected.get_or_create(&[("class", class)]);
        }
        for code in REFUSAL_CODES {
            let _ = connections_refused.get_or_create(&[("code", code)]);
        }
        let device_status_changes = family::<Label, Counter>(
            r,
            "device_status_changes",
            "Device status changes, by the status changed to",
        );
        let devices = family::<Label, Gauge>(r, "devices", "Devices known, by status");
        for status in ["online", "late", "offline", "quarantined"] {
            let _ = device_status_changes.get_or_create(&[("to", status)]);
            let _ = devices.get_or_create(&[("status", status)]);
        }
        let alert_changes = family::<Label, Counter>(
            r,
            "alert_changes",
            "Alert changes, by what the alert became",
        );
        for to in super::events::ALERT_CHANGES {
            let _ = alert_changes.get_or_create(&[("to", to)]);
        }
        Metrics {
            enabled: true,
            alert_changes,
            alert_changes_dropped: counter(
                r,
                "alert_changes_dropped",
                "Alert changes dropped before being written (alerts.max_pending)",
            ),
            alert_notifications: counter(
                r,
                "alert_notifications",
                "Alert notifications the webhook took (a 2xx answer)",
            ),
            alert_notification_failures: counter(
                r,
                "alert_notification_failures",
                "Webhook attempts that failed (each retry counts)",
            ),
            device_status_changes,
            devices,
            fleet_untracked: counter(
                r,
                "fleet_untracked",
                "Messages and connections of devices not tracked: fleet.max_devices reached",
            ),
            dead_letters_unattributed: counter(
                r,
                "dead_letters_unattributed",
                "Dead letters of no known device (counted against no device)",
            ),
            device_events_dropped: counter(
                r,
                "device_events_dropped",
                "Device status events dropped before being written (the store writer behind)",
            ),
            anomalies: counter(
                r,
                "anomalies",
                "Anomaly scores at or above anomaly.floor, kept with their reading's key",
            ),
            anomalies_dropped: counter(
                r,
                "anomalies_dropped",
                "Kept anomaly scores dropped before being written (anomaly.max_pending)",
            ),
            anomaly_series: gauge(
                r,
                "anomaly_series",
                "Series (device, sensor type, numeric field) scored for anomalies",
            ),
            anomaly_series_untracked: counter(
                r,
                "anomaly_series_untracked",
                "Numeric fields not scored: anomaly.max_series_per_device or max_series reached",
            ),
            messages_received,
            acks_sent,
            store_writer_queue,
            processor_queue,
            receive_to_commit_seconds: histogram(
                r,
                "receive_to_commit_seconds",
                "From a PUBLISH read to its outcome committed",
                0.0005,
            ),
            in_flight_bytes: gauge(r, "in_flight_bytes", "Payload bytes read and not yet acked"),
            store_unmerged_readings: gauge(
                r,
                "store_unmerged_readings",
                "Readings in memory and the log, not yet merged into a chunk",
            ),
            store_unmerged_bytes: gauge(
                r,
                "store_unmerged_bytes",
                "What the unmerged readings take in memory, about",
            ),
            store_wal_bytes: gauge(r, "store_wal_bytes", "The store's WAL file's size"),
            messages_processed: counter(
                r,
                "messages_processed",
                "Messages validated into readings",
            ),
            messages_rejected,
            readings_stored: counter(r, "readings_stored", "Readings committed to the store"),
            readings_duplicate: counter(
                r,
                "readings_duplicate",
                "Readings already stored (redeliveries), not written again",
            ),
            dead_letters_stored: counter(r, "dead_letters_stored", "Dead letters committed"),
            dead_letters_shed: counter(
                r,
                "dead_letters_shed",
                "Oldest dead letters removed to stay within the quota",
            ),
            dead_letters_shed_bytes: counter(
                r,
                "dead_letters_shed_bytes",
                "Bytes of dead letters removed to stay within the quota",
            ),
            dead_letters_replayed: {
                let replayed = family::<Label, Counter>(
                    r,
                    "dead_letters_replayed",
                    "Dead letters replayed, by outcome: accepted (stored, gone from the dead letters), rejected (kept), gone",
                );
                for outcome in ["accepted", "rejected", "gone"] {
                    let _ = replayed.get_or_create(&[("outcome", outcome)]);
                }
                replayed
            },
            readings_purged: counter(r, "readings_purged", "Readings deleted by a device's purge"),
            rate_limited: counter(
                r,
                "rate_limited",
                "Messages a device's rate limit made wait before they were read",
            ),
            tls_reloads: {
                let reloads = family::<Label, Counter>(
                    r,
                    "tls_reloads",
                    "TLS files read again on SIGHUP, by outcome",
                );
                for outcome in ["done", "failed"] {
                    let _ = reloads.get_or_create(&[("outcome", outcome)]);
                }
                reloads
            },
            upstream_connects: counter(
                r,
                "upstream_connects",
                "Connections established to the upstream broker",
            ),
            upstream_connected: family(
                r,
                "upstream_connected",
                "1 while an upstream connection is connected, by connection",
            ),
            upstream_connect_failures: counter(
                r,
                "upstream_connect_failures",
                "Failed or broken connections to the upstream broker",
            ),
            upstream_sessions_lost: counter(
                r,
                "upstream_sessions_lost",
                "Reconnections that found no session at the broker (a possible gap)",
            ),
            upstream_not_stored: counter(
                r,
                "upstream_not_stored",
                "Messages from the broker not stored (left unacked, for redelivery)",
            ),
            readings_merged: counter(
                r,
                "readings_merged",
                "Readings moved from the log into a chunk",
            ),
            chunks_expired: counter(r, "chunks_expired", "Chunks dropped by the retention"),
            readings_expired: counter(
                r,
                "readings_expired",
                "Readings dropped with their chunks by the retention",
            ),
            schema_version: gauge(r, "schema_version", "The database's schema version"),
            commit_seconds: histogram(
                r,
                "commit_seconds",
                "Time one store transaction took",
                0.0005,
            ),
            batch_rows: histogram(r, "batch_rows", "Rows per committed transaction", 1.0),
            store_failures: counter(r, "store_failures", "Failed store operations"),
            store_retries: counter(r, "store_retries", "Commits retried after a failure"),
            connections_opened: counter(r, "connections_opened", "Device connections accepted"),
            connections_open: gauge(r, "connections_open", "Device connections open"),
            connections_pending: gauge(
                r,
                "connections_pending",
                "Sockets accepted whose CONNECT is not answered yet",
            ),
            connections_refused,
            protocol_errors: counter(
                r,
                "protocol_errors",
                "Connections closed for a protocol error",
            ),
            wills_published: counter(r, "wills_published", "Will messages published"),
            accept_failures: counter(r, "accept_failures", "Failed accepts on the device port"),
            panics: counter(r, "panics", "Panics caught in actors"),
            restarts: family(r, "restarts", "Restarts, by child"),
            escalations: counter(r, "escalations", "Children past their restart intensity"),
            breaker_transitions: family(
                r,
                "breaker_transitions",
                "Circuit breaker state changes, by breaker",
            ),
            breaker_state: family(
                r,
                "breaker_state",
                "Circuit breaker state: 0 closed, 1 open, 2 half-open",
            ),
            device_breaker_trips: counter(r, "device_breaker_trips", "Device breakers tripped"),
            device_refusals: counter(r, "device_refusals", "CONNECTs refused by a device breaker"),
            listening: gauge(r, "listening", "1 while the device endpoint listens"),
            shutting_down: gauge(r, "shutting_down", "1 once shutdown started"),
            open_file_limit_wanted: gauge(
                r,
                "open_file_limit_wanted",
                "Open files mqtt.max_connections needs, when the limit could not be raised to it",
            ),
            start_failures: counter(r, "start_failures", "Starts that failed"),
            http_listening: gauge(r, "http_listening", "1 while the HTTP server listens"),
            http_failures: counter(
                r,
                "http_failures",
                "HTTP server failures (each restarts it)",
            ),
            registry: root,
        }
    }

    /// Every metric, in the Prometheus text format (0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// One request counted in a queue gauge from its creation until it is dropped (handled,
/// or refused by a closed mailbox): the queue's depth, including senders waiting for room.
pub struct Queued(Option<Gauge>);

impl Queued {
    pub fn new(gauge: &Gauge, enabled: bool) -> Queued {
        Queued(enabled.then(|| {
            gauge.inc();
            gauge.clone()
        }))
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        if let Some(gauge) = &self.0 {
            gauge.dec();
        }
    }
}
