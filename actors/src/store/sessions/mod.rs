//! Device sessions, kept in the store so that a CONNACK's Session Present is true after
//! any crash: a v5 client that has session state and is told Session Present = 0 must
//! discard it, and with it the messages it had not got acked.
//!
//! Bounded: at most `store.max_sessions` are kept, the least recently seen dropped first;
//! expired v5 sessions are purged. The last-seen time of connected devices is refreshed
//! every `SESSION_REFRESH`, so that an expiry counts from when the device was last seen
//! even when Eliot was killed meanwhile.
//!
//! The parts: `records` (each session a row of `sessions`, changed in one committed
//! transaction), `requests` (what the store writer is asked about sessions, and how it
//! answers) and `handle` (`Sessions`, the endpoint's handle: it records sessions through
//! the store writer, which owns the database connection).

mod handle;
mod records;
mod requests;

use std::time::Duration;

pub use handle::Sessions;

/// How often the sessions of connected devices are marked seen (and expired ones purged).
pub const SESSION_REFRESH: Duration = Duration::from_secs(60);

/// A CONNECT's session request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    pub client_id: String,
    /// Clean session (3.1.1) / clean start (5): any stored session is discarded.
    pub clean_start: bool,
    /// Whether the session outlives this connection: `None` no; `Some(None)` for ever
    /// (3.1.1 clean session 0); `Some(Some(s))` until `s` seconds after it ends (5).
    pub keep: Option<Option<u32>>,
    /// The connection asking (the endpoint's id for it): only it may end the session.
    pub owner: u64,
}
