//! The fleet: every known device's live state, owned by shard actors (a device's shard is
//! a hash of its id), changed only by messages: presence from connections and from each
//! device's own rhythm, data quality, quarantine; persisted through the store writer's
//! batches and reloaded at start.
//!
//! - `shard.rs`: `FleetShard`, the actor (load, timers, hand-over to the store writer);
//!   `heard.rs` what it makes of what it hears (`intake.rs`: of one message),
//!   `requests.rs` what the handle asks.
//! - `state.rs`: a device as a shard keeps it (compact) and as it is handed out.
//! - `endings.rs`: who waits for a closed connection to end, and the devices forgotten
//!   while a connection carried them (what it still had in flight must not bring them back).
//! - `book.rs`: a shard's devices, ordered by id, with an index per status (but
//!   `offline`, the many never heard) and per connection.
//! - `rhythm.rs`: the reporting interval's running estimate; `timers.rs`: the deadline
//!   heap (timers, not scans); `unsaved.rs`: which rows are due for writing, when;
//!   `quality.rs`: the quality signals; `quarantine.rs`:
//!   thresholds, the shared set of quarantined ids the pipeline checks, and how quarantine
//!   relates to the device guard.
//! - `persist.rs`: a device's row and back, and how presence resumes after a restart.
//! - `feed.rs`: what the pipeline and the connections tell the fleet (`FleetFeed`);
//!   `handle.rs`: what the rest of Eliot asks it (`FleetHandle`).
//! - `status_topic.rs`: presence from the upstream status topic (wills).
//! - `anomalies.rs`: each device's anomaly detectors, one per series (a sensor type's
//!   numeric field), fed every reading the shard hears; the scores that reach the floor;
//!   `history.rs`: after a restart, a device's history read back for its detectors;
//!   `scores.rs`: what the shard does with the scores kept.
//! - `alerts/`: each (rule, device) alert, judged here: thresholds before their reading's
//!   commit (`Evaluate`), absence, dead letters and scores as the shard hears them.
//! - `settings.rs`: the `[fleet]` section; `anomaly_settings.rs`: the `[anomaly]` section.
//!
//! Presence: a device carried by a connection of the device endpoint is online from the
//! moment the connection authenticated as it (or carried its first committed message)
//! until that connection ends (offline at once, with the reason). Upstream, a device is
//! online when its readings arrive. Either way it is late once it misses its own rhythm
//! (`rhythm.rs`), and without a live connection offline after a longer bound.

mod alerts;
mod anomalies;
mod anomaly_settings;
mod book;
mod endings;
mod feed;
mod handle;
mod heard;
mod history;
mod intake;
mod numeric_fields;
mod persist;
mod quality;
mod quarantine;
mod requests;
mod rhythm;
mod scores;
mod settings;
mod shard;
mod state;
mod status_topic;
mod timers;
mod unsaved;

#[cfg(test)]
mod memory_tests;

use std::path::PathBuf;
use std::sync::Arc;

use actix::Addr;

pub use alerts::{
    Acked, AlertSettings, Alerting, EliotCondition, Kind as RuleKind, Phase as AlertPhase,
    RuleConfig, RuleSet, Severity, Silences, Slot as AlertSlot, Transition as AlertTransition,
    WebhookSettings,
};
pub use anomalies::{AnomalyState, Detection, KeptState, SeriesState};
pub use anomaly_settings::AnomalySettings;
pub use feed::{Carrier, CloseConnection, FleetFeed, Source};
pub use handle::{
    BadCursor, ConnectionsClosed, DeviceCursor, DevicePage, DeviceQuery, DeviceSort, FleetError,
    FleetHandle, Released, MAX_PAGE,
};
pub use quarantine::QuarantineSet;
pub use requests::FlushNow;
pub use settings::FleetSettings;
pub use shard::{now_micros, FleetShard, ShardLinks, Tracked};
pub use state::{
    Counts, DeviceEvent, DeviceState, LastReadingState, Presence, QualityState, QuarantineState,
    RhythmState, Status,
};
pub use status_topic::parse_status;

/// The running fleet: its shards, the feed the pipeline and connections tell it through,
/// and the handle the rest of Eliot asks it through.
#[derive(Clone)]
pub struct Fleet {
    pub shards: Arc<[Addr<FleetShard>]>,
    pub feed: FleetFeed,
    pub handle: FleetHandle,
}

impl Fleet {
    /// `mailbox`: the updates each shard's mailbox holds (`fleet.mailbox`); `every_data`:
    /// the shards score every reading (anomaly detection is on).
    pub fn new(
        shards: Vec<Addr<FleetShard>>,
        mailbox: usize,
        quarantine: Arc<QuarantineSet>,
        db_path: PathBuf,
        every_data: bool,
        alerting: Option<Arc<Alerting>>,
    ) -> Fleet {
        let shards: Arc<[Addr<FleetShard>]> = shards.into();
        let room = shards
            .iter()
            .map(|_| Arc::new(tokio::sync::Semaphore::new(mailbox)))
            .collect();
        Fleet {
            feed: FleetFeed {
                shards: shards.clone(),
                room,
                quarantine,
                every_data,
                alerting,
            },
            handle: FleetHandle {
                shards: shards.clone(),
                db_path: Arc::new(db_path),
            },
            shards,
        }
    }

    /// Hands every shard's pending changes to the store writer, and waits until it took
    /// them (before the store's thread stops, at shutdown).
    pub async fn flush(&self) {
        let flushes = self.shards.iter().map(|s| s.send(FlushNow));
        futures_util::future::join_all(flushes).await;
    }
}

#[cfg(test)]
mod anomaly_tests;
#[cfg(test)]
mod cadence_tests;
#[cfg(test)]
mod forget_tests;
#[cfg(test)]
mod handle_tests;
