//! What a store operation can fail with, each naming the file or directory it is about:
//! whoever reads the log must know which database, and a path mistyped in the settings
//! must show.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}, or make what Eliot created there private: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("SQLite error on {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// What is written would go to a file nobody will find again.
    #[error("the database file {path} was deleted or replaced while open")]
    Moved { path: PathBuf },
    #[error("the database file {path} has schema version {version}, newer than this Eliot's: run a newer Eliot, or restore a backup")]
    Newer { path: PathBuf, version: i64 },
    /// The file no longer starts as a SQLite database does: something overwrote it.
    #[error("the database file {path} is damaged: its header is not SQLite's any more")]
    Damaged { path: PathBuf },
    #[error("the database file {path} cannot be written (its mode, an immutable flag, a read-only mount)")]
    ReadOnly { path: PathBuf },
    #[error("there is no database at {path}: is the data directory right (store.data_dir, ELIOT_DATA_DIR)? `eliot device add` or `eliot` itself creates it")]
    NoDatabase { path: PathBuf },
}

/// Turns a SQLite error into one that names the database file.
pub(in crate::store) fn naming(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_owned(),
        source,
    }
}
