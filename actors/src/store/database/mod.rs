//! The database itself: the `Store` (`store.rs`: one-transaction writes of many outcomes,
//! the readings' upkeep between them, what it holds for health) over the writer's one
//! connection to `eliot.db` (`connection.rs`: created private, WAL mode, migrated), and
//! what its operations fail with, each naming the file (`error.rs`); the schema and its
//! migrations (`schema.rs`); the database file, reached only through SQLite's own
//! descriptor (`db_file.rs`); and WAL checkpoints on a thread of their own, so that no
//! commit waits for one (`checkpointer.rs`).
//!
//! The contract: what `Store::write` answers `Ok` for is committed, all of it or none of it;
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
