//! Eliot's configuration with one section's `enabled` on or off: what the cost
//! configurations (`fleet`, `anomaly`) measure a feature by, the same Eliot with and
//! without it, in the same run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;

use crate::field_load::FieldLoad;
use crate::procs::{Programs, Server};
use crate::sampling::rss_kib;

pub struct Modes {
    _dir: TempDir,
    on: PathBuf,
    off: PathBuf,
}

impl Modes {
    /// The two files for `[section] enabled = true|false`, each followed by `also`.
    pub fn new(section: &str, also: &str) -> Modes {
        let dir = tempdir();
        let write = |enabled: bool| {
            let path = dir.path().join(format!("{section}-{enabled}.toml"));
            std::fs::write(&path, format!("[{section}]\nenabled = {enabled}\n{also}"))
                .expect("the configuration file can be written");
            path
        };
        let (on, off) = (write(true), write(false));
        Modes { _dir: dir, on, off }
    }

    pub fn config(&self, on: bool) -> &Path {
        if on {
            &self.on
        } else {
            &self.off
        }
    }
}

/// What one run measured.
pub struct Run {
    /// Eliot's CPU µs per acked message.
    pub us_per_message: f64,
    /// Acked msg/s.
    pub rate: f64,
    /// Eliot's resident memory once done, KiB.
    pub rss_kib: u64,
}

/// One run of `load` into a fresh store, Eliot started with `config`. Work done after the
/// acks (the fleet's shards handle their mailboxes after them) is let finish, and counted,
/// before CPU and memory are read.
pub fn run(programs: &Programs, config: &Path, load: FieldLoad) -> (Run, Vec<String>) {
    let (run, problems, ()) = run_beside(programs, config, load, |_| ());
    (run, problems)
}

/// `run`, with `beside` started on the Eliot before the load and what it made kept (and
/// dropped) until CPU and memory are read: clients of another kind sharing the run.
pub fn run_beside<B>(
    programs: &Programs,
    config: &Path,
    load: FieldLoad,
    beside: impl FnOnce(&Server) -> B,
) -> (Run, Vec<String>, B) {
    let eliot = Server::eliot_configured(programs, Arc::new(tempdir()), config);
    let company = beside(&eliot);
    let before = eliot.cpu_seconds();
    let outcome = load.run(eliot.addr);
    std::thread::sleep(Duration::from_secs(1));
    let used = eliot.cpu_seconds() - before;
    let run = Run {
        us_per_message: used * 1e6 / outcome.acked.max(1) as f64,
        rate: outcome.rate(),
        rss_kib: rss_kib(eliot.pid()),
    };
    (run, outcome.problems(), company)
}

pub fn tempdir() -> TempDir {
    tempfile::tempdir().expect("a temporary directory")
}
