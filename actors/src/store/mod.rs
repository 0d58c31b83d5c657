//! The store: where readings, dead letters and sessions are kept.
//!
//! - `sqlite`: the schema and one-transaction writes of many outcomes (`Store`).
//! - `store_writer`: the `StoreWriter` actor, which batches every connection's outcomes
//!   into one transaction and answers each request only after its commit.
//! - `sessions`: device sessions, durable so that Session Present survives a crash.

mod dead_letters;
mod failure;
mod sessions;
mod sqlite;
mod store_writer;

pub use sessions::{SessionRequest, Sessions, SESSION_REFRESH};
pub use sqlite::{Store, StoreError, StoreSettings, Synchronous};
pub use store_writer::{persist, NotStored, StoreWriter, StoreWriterLinks, NAME as STORE_WRITER};
