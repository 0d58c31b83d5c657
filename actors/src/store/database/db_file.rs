//! The database file, reached only through the descriptor SQLite holds for it.
//!
//! Closing any descriptor of a file drops every POSIX advisory lock the process holds on
//! that file, SQLite's included ("How To Corrupt An SQLite Database File", 2.2). A
//! `std::fs::File` opened on `eliot.db` and closed while a connection is open takes
//! Eliot's SHARED lock with it: the next outside `sqlite3` to close then believes it is
//! the last connection, checkpoints and deletes the WAL, and Eliot goes on committing
//! (and acking) into an unlinked file. So what the store asks of the file itself (is it
//! still the file opened, does it still start as a SQLite database, sync it) goes through
//! SQLite's own file object, and nothing else in Eliot opens the database file. Paths may
//! be `stat`ed and `chmod`ed: neither opens a descriptor.

use std::ffi::{c_int, c_void};

use rusqlite::{ffi, Connection};

/// The first 16 bytes of every SQLite database.
const HEADER: &[u8; 16] = b"SQLite format 3\0";

fn failure(code: c_int) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
}

/// `sqlite3_file_control` on the main database of `conn`.
///
/// # Safety
/// `arg` must be what `op` expects (SQLite's documentation of each opcode).
unsafe fn file_control(conn: &Connection, op: c_int, arg: *mut c_void) -> rusqlite::Result<()> {
    match ffi::sqlite3_file_control(conn.handle(), c"main".as_ptr(), op, arg) {
        ffi::SQLITE_OK => Ok(()),
        code => Err(failure(code)),
    }
}

/// SQLite's open file object for the main database of `conn`.
fn sqlite_file(conn: &Connection) -> rusqlite::Result<*mut ffi::sqlite3_file> {
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: FILE_POINTER writes a `sqlite3_file *` into its argument.
    unsafe { file_control(conn, ffi::SQLITE_FCNTL_FILE_POINTER, (&raw mut file).cast())? };
    // A database that was never opened has no methods: nothing to read or sync.
    // SAFETY: a non-null pointer from SQLite is its live file object while `conn` is open.
    if file.is_null() || unsafe { (*file).pMethods.is_null() } {
        return Err(failure(ffi::SQLITE_CANTOPEN));
    }
    Ok(file)
}

/// Whether the database file `conn` opened was deleted or replaced since (another file
/// now at its path): SQLite would go on writing to the unlinked file, and lose it all on
/// restart.
pub fn has_moved(conn: &Connection) -> rusqlite::Result<bool> {
    let mut moved: c_int = 0;
    // SAFETY: HAS_MOVED writes an int into its argument.
    unsafe { file_control(conn, ffi::SQLITE_FCNTL_HAS_MOVED, (&raw mut moved).cast())? };
    Ok(moved != 0)
}

/// Whether the database file still starts as every SQLite database does, read from the
/// file itself (not the WAL, where SQLite's own reads would find page 1). A file too short
/// to tell is left to SQLite.
pub fn starts_as_sqlite(conn: &Connection) -> rusqlite::Result<bool> {
    let file = sqlite_file(conn)?;
    let mut header = [0u8; 16];
    // SAFETY: `file` is live while `conn` is (above); xRead fills at most 16 bytes of
    // `header`, and on this connection's thread nothing else uses the file object.
    let code = unsafe {
        match (*(*file).pMethods).xRead {
            Some(read) => read(file, header.as_mut_ptr().cast(), 16, 0),
            None => ffi::SQLITE_IOERR,
        }
    };
    match code {
        ffi::SQLITE_OK => Ok(&header == HEADER),
        ffi::SQLITE_IOERR_SHORT_READ => Ok(true),
        code => Err(failure(code)),
    }
}

/// Syncs the database file's data to disk, through SQLite's descriptor.
pub fn sync(conn: &Connection) -> rusqlite::Result<()> {
    let file = sqlite_file(conn)?;
    // SAFETY: as in `starts_as_sqlite`.
    let code = unsafe {
        match (*(*file).pMethods).xSync {
            Some(sync) => sync(file, ffi::SQLITE_SYNC_NORMAL),
            None => ffi::SQLITE_IOERR,
        }
    };
    match code {
        ffi::SQLITE_OK => Ok(()),
        code => Err(failure(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v);")
            .unwrap();
        (dir, path, conn)
    }

    #[test]
    fn a_database_starts_as_sqlite_until_overwritten() {
        let (_dir, path, conn) = database();
        assert!(starts_as_sqlite(&conn).unwrap());
        sync(&conn).unwrap();
        std::fs::write(&path, b"not a database, not at all").unwrap();
        assert!(!starts_as_sqlite(&conn).unwrap());
    }

    #[test]
    fn a_deleted_or_replaced_file_has_moved() {
        let (dir, path, conn) = database();
        assert!(!has_moved(&conn).unwrap());
        std::fs::rename(&path, dir.path().join("elsewhere.db")).unwrap();
        assert!(has_moved(&conn).unwrap());
        std::fs::write(&path, b"").unwrap();
        assert!(has_moved(&conn).unwrap(), "another file at the same path");
    }

    /// The reason for this module: a reader in another process finds the writer's SHARED
    /// lock after every call here (`/proc/locks` lists it for this process). A `File`
    /// opened and closed on the database drops it.
    #[cfg(target_os = "linux")]
    #[test]
    fn none_of_this_drops_the_connections_lock() {
        use std::os::unix::fs::MetadataExt;
        let (_dir, path, conn) = database();
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        let shared_lock_held = || {
            let pid = std::process::id().to_string();
            std::fs::read_to_string("/proc/locks")
                .unwrap()
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .any(|f| {
                    f.get(3) == Some(&"READ")
                        && f.get(4) == Some(&pid.as_str())
                        && f.get(5)
                            .is_some_and(|id| id.ends_with(&format!(":{inode}")))
                })
        };
        assert!(
            shared_lock_held(),
            "a WAL connection holds SHARED while open"
        );
        assert!(starts_as_sqlite(&conn).unwrap());
        assert!(!has_moved(&conn).unwrap());
        sync(&conn).unwrap();
        assert!(
            shared_lock_held(),
            "still held after the checks and the sync"
        );
        drop(std::fs::File::open(&path).unwrap());
        assert!(
            !shared_lock_held(),
            "the test can see a lost lock: closing a File drops it"
        );
    }
}
