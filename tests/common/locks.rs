//! SQLite's locks on a database file as the kernel lists them (`/proc/locks`, Linux).
//!
//! A connection in WAL mode holds a SHARED lock on the database file from open to close:
//! a read lock on the bytes from 0x40000002 (`PENDING_BYTE + 2`, SQLite's `SHARED_FIRST`).
//! A closing connection that can lock the file exclusively believes it is the last one,
//! checkpoints and deletes the WAL: so while Eliot runs, that lock must be there.

use std::path::Path;

/// Where SQLite's SHARED range starts.
const SHARED_FIRST: u64 = 0x4000_0002;

/// Whether process `pid` holds a lock covering SQLite's SHARED range of the file at `path`.
#[cfg(target_os = "linux")]
pub fn holds_shared_lock(pid: u32, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(inode) = std::fs::metadata(path).map(|m| m.ino()) else {
        return false;
    };
    let locks = std::fs::read_to_string("/proc/locks").expect("/proc/locks is readable");
    locks.lines().any(|line| {
        // "1: POSIX  ADVISORY  READ 1234 fd:01:5678 1073741826 1073742335"; a waiting
        // lock has "->" after the number: it is not held.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, "POSIX", _, _, owner, file, start, end] = fields[..] else {
            return false;
        };
        let covers = |start: &str, end: &str| {
            let start: u64 = start.parse().unwrap_or(u64::MAX);
            start <= SHARED_FIRST && (end == "EOF" || end.parse().unwrap_or(0) >= SHARED_FIRST)
        };
        owner == pid.to_string()
            && file.rsplit(':').next() == Some(inode.to_string().as_str())
            && covers(start, end)
    })
}
