//! The database itself: the `Store`, the writer's one connection to `eliot.db` (opened in
//! WAL mode and migrated, one-transaction writes of many outcomes, the readings' upkeep
//! between them, what it holds for health); the schema and its migrations; the database
//! file, reached only through SQLite's own descriptor; and WAL checkpoints on a thread of
//! their own, so that no commit waits for one.
//!
//! The contract: whatever `Store::write` answers is committed, all of it or none of it;
//! a file deleted, replaced or overwritten under the store fails the next write instead
//! of being written blind. The other parts of the store add their own methods to `Store`
//! (sessions, the dead letters' room) over the fields it shares within the store.

mod checkpointer;
mod connection;
mod db_file;
mod error;
mod schema;
mod store;

pub(super) use error::naming;
pub use error::StoreError;
#[cfg(test)]
pub use schema::DEVICES_TABLE;
pub(super) use schema::VERSION as SCHEMA_VERSION;
pub use store::{Amendment, Store};
