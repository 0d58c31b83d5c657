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
//! - `settings.rs`: the `[store]` section.

mod database;
mod dead_letter_reads;
mod dead_letters;
mod readings;
mod sessions;
mod settings;
mod writer;

#[cfg(test)]
pub use database::DEVICES_TABLE;
pub use database::{Amendment, Store, StoreError};
pub use dead_letter_reads::{
    DeadLetterPage, DeadLetterQuery, DeadLetterSummary, StoredDeadLetter,
    SCAN_ROWS as DEAD_LETTER_SCAN_ROWS,
};
pub use readings::{Page, PageRequest, Reader, ReadingKey, StoredReading};
pub use sessions::{SessionRequest, Sessions, SESSION_REFRESH};
pub use settings::StoreSettings;
pub use writer::{persist, NotStored, StoreWriter, StoreWriterLinks, NAME as STORE_WRITER};
