//! The writer: the `StoreWriter` actor, which owns the `Store`, the one connection that
//! writes readings, dead letters and sessions (readers open their own). It batches every
//! connection's outcomes into one transaction, and between commits does the store's
//! upkeep (merging the log into chunks, retention); a failed operation is classified as
//! worth a retry, a full disk, or a connection that will not heal.
//!
//! The contract: a request is answered only after the commit that holds it (acked ⇒
//! stored); while a commit fails, or a sealed generation must finish merging, the writer
//! takes no new request, so the backlog stays in the devices, not in memory.

mod failure;
mod fleet_writes;
mod store_writer;
mod upkeep;

pub(super) use failure::FailureKind;
pub use fleet_writes::PersistFleet;
pub use store_writer::{persist, NotStored, StoreWriter, StoreWriterLinks, NAME};
