//! The writer's connection to the database, as the store needs it: the data directory
//! and file created private if they are new (and, for the administration commands, not
//! created at all where there is nothing), WAL mode without automatic checkpoints, a busy
//! handler that retries every millisecond, and the schema migrated to this version.

use std::path::Path;

use rusqlite::Connection;

use super::super::settings::{StoreSettings, Synchronous};
use super::checkpointer::WAL_MAX_BYTES;
use super::error::{naming, StoreError};
use super::schema::{migrate, MigrateError, Migrated};
use super::store::now_micros;

/// Readings are nobody else's business, whatever the umask: a data directory Eliot creates
/// is 0700, and a database file it creates 0600 (SQLite gives its -wal and -shm files the
/// database's mode, so this runs after SQLite created the file and before it made them).
/// What existed before is left as its owner set it: a shared directory (a 1777 `/tmp`, a
/// group's) is not Eliot's to close. By path only: a descriptor opened here and closed would
/// drop the locks of every connection this process has on the file (see `db_file`).
#[cfg(unix)]
fn make_private(created: &[&Path]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for path in created {
        let mode = if path.is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_: &[&Path]) -> std::io::Result<()> {
    Ok(())
}

/// A busy handler that tries again every millisecond, for `FOR_MS` milliseconds at most.
/// SQLite's own (`busy_timeout`) sleeps ever longer, up to 100 ms a time, so a commit held
/// up by a 30 ms checkpoint would wait until the 33rd, and one held 60 ms, until the 78th.
pub(super) fn retry_every_millisecond<const FOR_MS: i32>(attempts: i32) -> bool {
    if attempts >= FOR_MS {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_millis(1));
    true
}

/// The database of `settings`, in WAL mode, migrated to this version, created if need be
/// (unless `must_exist`); and what the migration found.
pub(super) fn open_migrated(
    settings: &StoreSettings,
    must_exist: bool,
) -> Result<(Connection, Migrated), StoreError> {
    let data_dir = |source| StoreError::DataDir {
        path: settings.data_dir.clone(),
        source,
    };
    let path = settings.db_path();
    let new_dir = !settings.data_dir.exists();
    if must_exist && (new_dir || !path.exists()) {
        return Err(StoreError::NoDatabase { path });
    }
    let sqlite = naming(&path);
    std::fs::create_dir_all(&settings.data_dir).map_err(data_dir)?;
    let new_db = !path.exists();
    let mut conn = Connection::open(&path).map_err(&sqlite)?;
    let created: Vec<&Path> = [(new_dir, settings.data_dir.as_path()), (new_db, &path)]
        .into_iter()
        .filter_map(|(new, path)| new.then_some(path))
        .collect();
    make_private(&created).map_err(data_dir)?;
    let synchronous = match settings.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
         PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {WAL_MAX_BYTES};"
    ))
    .map_err(&sqlite)?;
    // The writer waits up to 5 s for a lock (the checkpointer's, restarting the WAL).
    conn.busy_handler(Some(retry_every_millisecond::<5_000>))
        .map_err(&sqlite)?;
    let migrated = migrate(&mut conn, now_micros()).map_err(|error| match error {
        MigrateError::Sqlite(source) => sqlite(source),
        MigrateError::Newer(version) => StoreError::Newer {
            path: path.clone(),
            version,
        },
    })?;
    Ok((conn, migrated))
}
