//! What a failed store operation means for the store writer: retry, make room, or reopen.

use super::super::database::StoreError;

/// What a failed store operation means for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Locked, busy, interrupted: the same batch may well succeed on a retry.
    Transient,
    /// The disk (or `store.max_size`) is full: room has to be made first.
    Full,
    /// Read-only, corrupt, not a database, gone: this connection will not heal; the writer
    /// restarts and reopens, and escalates if that keeps failing.
    Broken,
}

impl StoreError {
    pub fn kind(&self) -> FailureKind {
        use rusqlite::ErrorCode as C;
        let StoreError::Sqlite { source, .. } = self else {
            return FailureKind::Broken;
        };
        match source.sqlite_error_code() {
            Some(C::DiskFull) => FailureKind::Full,
            Some(
                C::ReadOnly
                | C::DatabaseCorrupt
                | C::NotADatabase
                | C::CannotOpen
                | C::SystemIoFailure
                | C::PermissionDenied,
            ) => FailureKind::Broken,
            _ => FailureKind::Transient,
        }
    }
}
