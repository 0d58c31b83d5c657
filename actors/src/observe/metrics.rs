//! `Metrics`: what the typed events count, in a Prometheus registry of its own (one per
//! running tree, so several Eliots in one process, as in the tests, never mix figures).
//!
//! No label carries a device or client id: a fleet of 10,000 devices stays a handful of
//! series. Labels take their values from small fixed sets (a rejection's class, a child's
//! name, a breaker's name and state).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A label set of one fixed-vocabulary label.
pub type Label = [(&'static str, &'static str); 1];
/// A label set of one label whose values are Eliot's own names (children, breakers).
pub type NameLabel = [(&'static str, String); 1];

pub struct Metrics {
    registry: Registry,
    pub messages_processed: Counter,
    pub messages_rejected: Family<Label, Counter>,
    pub readings_stored: Counter,
    pub readings_duplicate: Counter,
    pub dead_letters_stored: Counter,
    pub commit_seconds: Histogram,
    pub batch_rows: Histogram,
    pub store_failures: Counter,
    pub store_retries: Counter,
    pub connections_opened: Counter,
    pub connections_open: Gauge,
    pub connections_refused: Counter,
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
    pub open_file_limit: Gauge,
    pub start_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("eliot");
        let mut counter = |name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let messages_processed = counter("messages_processed", "Messages validated into readings");
        let readings_stored = counter("readings_stored", "Readings committed to the store");
        let readings_duplicate = counter(
            "readings_duplicate",
            "Readings already stored (redeliveries), not written again",
        );
        let dead_letters_stored = counter("dead_letters_stored", "Dead letters committed");
        let store_failures = counter("store_failures", "Failed store operations");
        let store_retries = counter("store_retries", "Commits retried after a failure");
        let connections_opened = counter("connections_opened", "Device connections accepted");
        let connections_refused = counter(
            "connections_refused",
            "Sockets closed before or at CONNECT (limits, timeouts, bad first packets)",
        );
        let protocol_errors = counter("protocol_errors", "Connections closed for a protocol error");
        let wills_published = counter("wills_published", "Will messages published");
        let accept_failures = counter("accept_failures", "Failed accepts on the device port");
        let panics = counter("panics", "Panics caught in actors");
        let escalations = counter("escalations", "Children past their restart intensity");
        let device_breaker_trips = counter("device_breaker_trips", "Device breakers tripped");
        let device_refusals = counter("device_refusals", "CONNECTs refused by a device breaker");
        let start_failures = counter("start_failures", "Starts that failed");
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let connections_open = gauge(&mut registry, "connections_open", "Device connections open");
        let listening = gauge(
            &mut registry,
            "listening",
            "1 while the device endpoint listens",
        );
        let shutting_down = gauge(&mut registry, "shutting_down", "1 once shutdown started");
        let open_file_limit = gauge(&mut registry, "open_file_limit", "The open-file soft limit");
        let messages_rejected = Family::default();
        registry.register(
            "messages_rejected",
            "Messages refused and kept as dead letters, by reason class",
            messages_rejected.clone(),
        );
        let restarts = Family::default();
        registry.register("restarts", "Restarts, by child", restarts.clone());
        let breaker_transitions = Family::default();
        registry.register(
            "breaker_transitions",
            "Circuit breaker state changes, by breaker",
            breaker_transitions.clone(),
        );
        let breaker_state = Family::default();
        registry.register(
            "breaker_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open",
            breaker_state.clone(),
        );
        let commit_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "commit_seconds",
            "Time one store transaction took",
            commit_seconds.clone(),
        );
        let batch_rows = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "batch_rows",
            "Rows per committed transaction",
            batch_rows.clone(),
        );
        Metrics {
            registry,
            messages_processed,
            messages_rejected,
            readings_stored,
            readings_duplicate,
            dead_letters_stored,
            commit_seconds,
            batch_rows,
            store_failures,
            store_retries,
            connections_opened,
            connections_open,
            connections_refused,
            protocol_errors,
            wills_published,
            accept_failures,
            panics,
            restarts,
            escalations,
            breaker_transitions,
            breaker_state,
            device_breaker_trips,
            device_refusals,
            listening,
            shutting_down,
            open_file_limit,
            start_failures,
        }
    }

    /// Every metric, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
