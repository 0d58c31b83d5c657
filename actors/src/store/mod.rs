//! The store: where readings, dead letters and sessions are kept.
//!
//! - `sqlite`: one-transaction writes of many outcomes (`Store`); `schema`: the tables,
//!   the `readings` view and the migrations.
//! - `tiers`, `memtable`: readings appended to the log and held in memory, and how a new
//!   one is checked against everything stored; `series`: the (device, sensor type) pairs
//!   stored, bounded per device; `merge`, `chunks`: generations of the log merged into
//!   time chunks in bulk, and retention.
//! - `store_writer`: the `StoreWriter` actor, which batches every connection's outcomes
//!   into one transaction and answers each request only after its commit; `upkeep`: its
//!   merging between commits; `checkpointer`: WAL checkpoints on a thread of their own.
//! - `bulk_insert`: many rows per INSERT statement; `db_file`: what the store asks of the
//!   database file itself, through SQLite's own descriptor (never one of its own).
//! - `reader`: the read API (latest, last N, a time range) on read-only connections.
//! - `sessions`: device sessions, durable so that Session Present survives a crash.

mod database;
mod dead_letters;
mod readings;
mod sessions;
mod settings;
mod writer;

#[cfg(test)]
pub use database::DEVICES_TABLE;
pub use database::{Amendment, Store, StoreError};
pub use readings::{Reader, StoredReading};
pub use sessions::{SessionRequest, Sessions, SESSION_REFRESH};
pub use settings::{StoreSettings, Synchronous};
pub use writer::{persist, NotStored, StoreWriter, StoreWriterLinks, NAME as STORE_WRITER};
