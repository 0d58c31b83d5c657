//! The store: where readings, dead letters and sessions are kept, in one SQLite database
//! that one actor writes. Each folder is a part: its `mod.rs` states the part's contract
//! and re-exports what the rest of the store may use of it.
//!
//! - `writer/`: the `StoreWriter` actor, which batches every connection's outcomes into
//!   one transaction and answers each request only after its commit (acked ⇒ stored);
//!   between commits, its upkeep; what a failure means for it (retry, make room, reopen).
//! - `database/`: the `Store`, the writer's one connection (opened private, in WAL mode,
//!   migrated; one-transaction writes of many outcomes; upkeep; what it holds); the
//!   schema and its migrations; the database file, reached only through SQLite's own
//!   descriptor; WAL checkpoints on a thread of their own.
//! - `readings/`: readings appended to the log and held in the memtable, checked against
//!   everything stored, bounded in series per device, merged into time chunks in bulk and
//!   dropped a chunk at a time by retention; and the read API, which never waits for the
//!   writer.
//! - `sessions/`: device sessions, durable so that Session Present survives a crash: the
//!   rows, the writer's requests, and the endpoint's handle.
//! - `dead_letters.rs`: the dead letters' byte quota, the oldest shed first.
//! - `dead_letter_reads.rs`: the dead letters read back, a bounded keyset page at a time.
//! - `anomalies.rs`: the anomaly scores kept (at or above the floor), written with the
//!   fleet's rows, gone with retention and purge, read back a device's at a time.
//! - `alerts.rs`: the alerts raised now, their history, the webhook's outbox and log, the
//!   silences.
//! - `device_state.rs`: the fleet's rows (device state, status events), written in the
//!   writer's batches, and the reads the fleet makes of them.
//! - `purge.rs`: deleting every reading of a device, a bounded step at a time between
//!   commits, answered once done.
//! - `replay.rs`: the dead letters a replay takes up again, by id or by filter (their
//!   rows leave in the transaction that stores their readings: `Store::write`).
//! - `settings.rs`: the `[store]` section.

mod alerts;
mod anomalies;
mod database;
mod dead_letter_reads;
mod dead_letters;
mod device_state;
mod purge;
mod readings;
mod replay;
mod sessions;
mod settings;
mod writer;

pub use alerts::{
    add_silence, alert_event, alert_events, alert_states, delete_alert_rule, load_alert_states,
    put_alert_rule, remove_silence, waiting_deliveries, AlertEventQuery, AlertEventRow,
    AlertEventView, AlertQuery, AlertStateRow, AlertWrites, Delivery, DeliveryUpdate, DeliveryView,
    SilenceRow,
};
pub use anomalies::{device_anomalies, AnomalyQuery, AnomalyRow};
#[cfg(test)]
pub use database::DEVICES_TABLE;
pub use database::{Amendment, Store, StoreError};
pub use dead_letter_reads::{
    DeadLetterPage, DeadLetterQuery, DeadLetterSummary, StoredDeadLetter,
    SCAN_ROWS as DEAD_LETTER_SCAN_ROWS,
};
pub use device_state::{
    device_events, load_device_rows, load_known_ids, open_for_reading, DeviceRow, EventRow,
    FleetWrites,
};
pub use purge::Purger;
pub use readings::{Page, PageRequest, Reader, ReadingKey, StoredReading};
pub use replay::{DeadLetterFilter, KeptDeadLetter, LoadDeadLetters, Selection};
pub use sessions::{SessionRequest, Sessions, SESSION_REFRESH};
pub use settings::StoreSettings;
pub use writer::{
    persist, NotStored, PersistFleet, StoreWriter, StoreWriterLinks, NAME as STORE_WRITER,
};
