//! Observing Eliot: typed events, each of which logs and counts (`events`), the metrics
//! they count (`metrics`, with the process's own figures from `process`), and a log
//! capture for tests and examples (`capture`).

mod capture;
mod events;
mod metrics;
mod process;

use std::sync::Arc;

use slog::Logger;

pub use capture::{CapturedLogs, Fields};
pub use events::Event;
pub use metrics::{Metrics, Queued};
// The rejection classes' tests (validation's, the docs') read the list the metric uses.
#[cfg(test)]
pub use metrics::REJECTION_CLASSES;

/// Where events go: the logger (with the emitting actor's name as its `actor` key) and the
/// metrics of the running tree. Cheap to clone; every actor holds one.
#[derive(Clone)]
pub struct Telemetry {
    log: Logger,
    metrics: Arc<Metrics>,
}

impl Telemetry {
    pub fn new(log: Logger, metrics: Arc<Metrics>) -> Self {
        Telemetry { log, metrics }
    }

    /// Logs nowhere, counts into metrics of its own: for unit tests.
    pub fn discard() -> Self {
        Telemetry::new(Logger::root(slog::Discard, slog::o!()), Default::default())
    }

    /// The same destinations, with `actor = name` on every record.
    pub fn for_actor(&self, name: impl Into<String>) -> Telemetry {
        Telemetry {
            log: self.log.new(slog::o!("actor" => name.into())),
            metrics: self.metrics.clone(),
        }
    }

    pub fn log(&self) -> &Logger {
        &self.log
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}
