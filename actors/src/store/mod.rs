//! The store: where readings, dead letters and sessions are kept.
//!
//! - `sqlite`: the schema and one-transaction writes of many outcomes (`Store`).
//! - `store_writer`: the `StoreWriter` actor, which batches every connection's outcomes
//!   into one transaction and answers each request only after its commit.
//! - `sessions`: device sessions, durable so that Session Present survives a crash.

mod chunks;
mod dead_letters;
mod failure;
mod memtable;
mod merge;
mod reader;
mod schema;
mod sessions;
mod sqlite;
mod store_writer;
mod tiers;
mod upkeep;

#[cfg(test)]
mod layout_tests;

pub use reader::{Reader, StoredReading};
pub use sessions::{SessionRequest, Sessions, SESSION_REFRESH};
pub use sqlite::{Amendment, Store, StoreError, StoreSettings, Synchronous};
pub use store_writer::{persist, NotStored, StoreWriter, StoreWriterLinks, NAME as STORE_WRITER};
