//! The readings, from their commit to their drop. Each is appended to `readings_log` in
//! arrival order and held in the memtable (`tiers`, `memtable`), after a check against
//! everything stored: the same key with the same data is a duplicate (a redelivery), with
//! other data a conflict; a device has a bounded number of series (`series`). The log
//! is sealed a generation at a time and merged into time chunks in bulk and key order
//! (`merge`, `chunks`, with many rows per INSERT: `bulk_insert`); retention drops whole
//! chunks. `reader` reads them back, from the memtable first and the chunks second;
//! `page` reads them a keyset page at a time, for cursors. `purge` deletes every reading
//! of one device, in bounded steps, without a merge bringing any back.
//!
//! The contract: the `readings` view shows each key once at every moment; a crash at any
//! step of a merge loses nothing and merges nothing twice; memory holds two generations
//! at most; a read misses nothing committed and returns each reading once.

mod bulk_insert;
mod chunks;
mod memtable;
mod merge;
mod page;
mod purge;
mod reader;
mod series;
mod tiers;

#[cfg(test)]
mod layout_tests;

pub(super) use chunks::{rebuild_view, Chunks};
pub(super) use merge::{MergePace, Upkeep};
pub use page::{Page, PageRequest, ReadingKey};
pub(super) use purge::PurgeStage;
pub use reader::{Reader, StoredReading};
pub(super) use tiers::{Accepted, SharedMemtable, Staged, Tiers};
