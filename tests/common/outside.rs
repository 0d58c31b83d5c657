//! Reading the database from another process, as users do: the `sqlite3` shell.
//!
//! A reader inside the test process shares SQLite's per-inode lock table with an Eliot
//! running in that process, and so cannot see what an outside reader does to Eliot: acked
//! readings were lost once anyone queried the database, and every in-process test passed.
//! So the checkers read through `sqlite3`. On CI (`CI` set) it must be installed (`.ci/run`
//! installs it); elsewhere, without it, reads fall back to this process, saying so once.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// Who reads the database.
#[derive(Debug, Clone)]
pub enum Reader {
    /// The `sqlite3` shell at this path.
    Shell(PathBuf),
    /// A program taking `<db> <sql>` and printing rows as the shell does (one a line,
    /// fields separated by tabs), with `envs` set.
    Program {
        path: PathBuf,
        envs: Vec<(String, String)>,
    },
    /// This process, through rusqlite: only where no shell is installed, outside CI.
    ThisProcess,
}

pub fn on_ci() -> bool {
    std::env::var_os("CI").is_some_and(|value| !value.is_empty())
}

/// The `sqlite3` shell, if it is on the `PATH`.
pub fn shell() -> Option<PathBuf> {
    static SHELL: OnceLock<Option<PathBuf>> = OnceLock::new();
    SHELL
        .get_or_init(|| {
            let found = Command::new("sqlite3")
                .arg("-version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            found.then(|| PathBuf::from("sqlite3"))
        })
        .clone()
}

/// The shell for a test that needs it, or `None` after saying the test was skipped. On CI a
/// missing shell is a failure: a skipped test there would prove nothing.
pub fn shell_for(test: &str) -> Option<PathBuf> {
    let found = shell();
    match (&found, on_ci()) {
        (Some(_), _) => {}
        (None, true) => panic!("{test}: CI must have the sqlite3 shell (.ci/run installs it)"),
        (None, false) => {
            eprintln!("{test}: skipped, it needs the sqlite3 shell (apt-get install sqlite3)")
        }
    }
    found
}

/// The reader the checkers use: the shell, or (outside CI, without one) this process.
pub fn default_reader() -> Reader {
    static WARNED: OnceLock<()> = OnceLock::new();
    match shell() {
        Some(path) => Reader::Shell(path),
        None if on_ci() => panic!("CI must have the sqlite3 shell (.ci/run installs it)"),
        None => {
            WARNED.get_or_init(|| {
                eprintln!(
                    "note: no sqlite3 shell, so the checkers read the database in the test \
                     process, where they cannot see lock defects (apt-get install sqlite3)"
                )
            });
            Reader::ThisProcess
        }
    }
}

impl Reader {
    /// The rows of `sql` on the database at `db`, each as its fields' text.
    pub fn query(&self, db: &Path, sql: &str) -> Vec<Vec<String>> {
        let command = match self {
            Reader::ThisProcess => return query_here(db, sql),
            Reader::Shell(shell) => {
                let mut command = Command::new(shell);
                command
                    .args(["-batch", "-bail", "-noheader", "-separator", "\t"])
                    .args(["-cmd", ".timeout 10000"])
                    .arg(db)
                    .arg(sql);
                command
            }
            Reader::Program { path, envs } => {
                let mut command = Command::new(path);
                command.arg(db).arg(sql).envs(envs.iter().cloned());
                command
            }
        };
        let output = run(command);
        String::from_utf8(output)
            .expect("the reader prints UTF-8")
            .lines()
            .map(|line| line.split('\t').map(str::to_owned).collect())
            .collect()
    }

    /// The one number `sql` answers.
    pub fn number(&self, db: &Path, sql: &str) -> i64 {
        let rows = self.query(db, sql);
        let value = rows.first().and_then(|row| row.first());
        value
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("`{sql}` answered {rows:?}, not one number"))
    }
}

fn run(mut command: Command) -> Vec<u8> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{command:?} starts: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The rows of `sql` on the database at `db`, read in this process.
pub fn query_here(db: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(db).expect("the database opens");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let mut statement = conn.prepare(sql).expect("the query compiles");
    let columns = statement.column_count();
    statement
        .query_map([], |row| {
            (0..columns)
                .map(|i| {
                    Ok(match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => String::new(),
                        rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                        rusqlite::types::ValueRef::Real(r) => r.to_string(),
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        rusqlite::types::ValueRef::Blob(b) => format!("{b:02x?}"),
                    })
                })
                .collect()
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// How often each (device_id, ts) is stored in `readings`, read by the default reader.
pub fn stored_keys(db: &Path) -> HashMap<(String, String), usize> {
    stored_keys_by(&default_reader(), db)
}

/// How often each (device_id, ts) is stored in `readings`, read by `reader`.
pub fn stored_keys_by(reader: &Reader, db: &Path) -> HashMap<(String, String), usize> {
    reader
        .query(
            db,
            "SELECT device_id, ts, count(*) FROM readings GROUP BY device_id, ts",
        )
        .into_iter()
        .map(|row| match &row[..] {
            [device, ts, count] => ((device.clone(), ts.clone()), count.parse().unwrap()),
            _ => panic!("unexpected row {row:?}"),
        })
        .collect()
}

/// A `sqlite3` shell holding a transaction open on the database, until `end`.
pub struct HeldTransaction {
    child: Child,
    /// What `begin` printed.
    printed: String,
}

impl HeldTransaction {
    /// Starts `shell` on `db` and runs `begin` (say `BEGIN; SELECT count(*) FROM readings;`
    /// for a reader keeping its snapshot, or `BEGIN EXCLUSIVE;` for a writer holding the
    /// lock); returns once the shell has printed `ready`, that is, once `begin` ran.
    pub fn start(shell: &Path, db: &Path, begin: &str) -> HeldTransaction {
        let mut child = Command::new(shell)
            .args(["-batch", "-bail", "-cmd", ".timeout 10000"])
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sqlite3 starts");
        let stdin = child.stdin.as_mut().unwrap();
        writeln!(stdin, "{begin}\nSELECT 'ready';").unwrap();
        stdin.flush().unwrap();
        let stdout = child.stdout.as_mut().unwrap();
        let mut seen = Vec::new();
        let mut byte = [0u8];
        while !String::from_utf8_lossy(&seen).ends_with("ready\n") {
            let read = std::io::Read::read(stdout, &mut byte).expect("sqlite3 answers");
            assert_eq!(read, 1, "sqlite3 ended before `{begin}` ran");
            seen.push(byte[0]);
        }
        let printed = String::from_utf8_lossy(&seen);
        let printed = printed.trim_end_matches("ready\n").to_owned();
        HeldTransaction { child, printed }
    }

    /// What `begin` printed (a count it selected, say), without the final `ready`.
    pub fn printed(&self) -> &str {
        &self.printed
    }

    /// Commits, and waits for the shell to exit.
    pub fn end(mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "COMMIT;\n.quit").unwrap();
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "sqlite3 holding a transaction: {status}");
    }
}

impl Drop for HeldTransaction {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
