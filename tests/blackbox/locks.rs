//! Eliot's SHARED lock on `eliot.db`, seen from another process: the kernel's list of
//! POSIX locks (`/proc/locks`). Closing any descriptor of the file in Eliot's process would
//! drop it (see `actors/src/store/db_file.rs`); this checks it is there at each moment
//! where Eliot did something to the file: committing, checkpointing (the WAL started over),
//! reopening after the store writer restarted, serving reads, and with the administration
//! commands run beside it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libtest_mimic::Trial;

use crate::common::checker::{reading_ts, Ledger, Pace};
use crate::common::drill_device::DrillDevice;
use crate::common::eventually_async;
use crate::common::outside::{self, HeldTransaction};
use crate::common::process::{eliot_binary, own_loopback_addr, EliotProcess, Launch};
use crate::support::{get_json, health, trial, wal_bytes};

/// The WAL's bound (`checkpointer::WAL_MAX_BYTES`): past it the WAL is started over.
pub const WAL_BOUND: u64 = 64 << 20;

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "locks::eliot_holds_its_shared_lock_through_commits_checkpoints_restarts_and_reads",
        shared_lock_throughout,
    )]
}

/// A reading of about 200 KB (200 fields of 1,000 bytes), with `reading`'s timestamp, so
/// that a few hundred of them take the WAL past its bound.
pub fn big_reading(device: &str, n: u64) -> String {
    let ts = reading_ts(n);
    let fields: Vec<String> = (0..200)
        .map(|i| format!(r#""f{i:03}":"{}""#, "x".repeat(1_000)))
        .collect();
    format!(
        r#"{{"device_id":"{device}","timestamp":"{ts}","sensor_type":"blob","data":{{{}}}}}"#,
        fields.join(",")
    )
}

fn assert_locked(eliot: &EliotProcess, when: &str) {
    assert!(
        eliot.holds_shared_lock(),
        "{when}: /proc/locks shows no SHARED lock of Eliot (pid {}) on its database:\n{}",
        eliot.pid(),
        std::fs::read_to_string("/proc/locks").unwrap_or_default()
    );
    println!("{when}: Eliot holds its SHARED lock");
}

async fn shared_lock_throughout() {
    if !cfg!(target_os = "linux") {
        return eprintln!("locks: skipped, /proc/locks is Linux's");
    }
    let Some(shell) = outside::shell_for("locks") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    // The 300th commit fails as if the database were broken: the store writer restarts
    // and reopens it (a fault point, compiled into the binary `cargo test` builds).
    let eliot = Launch::new(data.path(), own_loopback_addr())
        .env("FAILPOINTS", "store::write=299*off->1*return(broken)->off")
        .start();
    let ledger = Ledger::default();
    // A device publishing every 10 ms until the test is done.
    let mut steady = DrillDevice::new(
        eliot.addr,
        "steady",
        Pace {
            count: u64::MAX,
            every: Duration::from_millis(10),
            within: Duration::from_secs(600),
        },
    );
    let stop = Arc::new(AtomicBool::new(false));
    steady.stop = Some(stop.clone());
    let steady = tokio::spawn(steady.run(ledger.clone()));
    assert!(
        eventually_async(Duration::from_secs(10), || async {
            ledger.acked_count() >= 20
        })
        .await,
        "the device's readings are acked"
    );
    assert_locked(&eliot, "while ingesting");

    // A reader keeping its snapshot holds the WAL back while big readings take it past its
    // bound; once the reader is done, the checkpointer syncs the database and starts the
    // WAL over, and the next commit cuts it back.
    let http = eliot.http;
    let held = HeldTransaction::start(&shell, &eliot.db_path(), "BEGIN; SELECT 1 FROM readings;");
    let mut big = DrillDevice::new(
        eliot.addr,
        "big",
        Pace {
            count: 500,
            every: Duration::ZERO,
            within: Duration::from_secs(300),
        },
    );
    big.payload = big_reading;
    big.window = 8;
    let big = tokio::spawn(big.run(ledger.clone()));
    let past_bound = eventually_async(Duration::from_secs(240), || async {
        wal_bytes(http).await > WAL_BOUND
    })
    .await;
    held.end();
    assert!(
        past_bound,
        "the WAL grew past {WAL_BOUND} bytes behind the reader"
    );
    let started_over = eventually_async(Duration::from_secs(60), || async {
        wal_bytes(http).await <= WAL_BOUND
    })
    .await;
    assert!(
        started_over,
        "the WAL was started over once the reader was done"
    );
    assert_locked(&eliot, "after a checkpoint started the WAL over");

    // Restarted, and running again: the database was reopened.
    let reopened = eventually_async(Duration::from_secs(60), || async {
        let health = health(http).await;
        let children = health["children"].as_array().cloned().unwrap_or_default();
        children.iter().any(|c| {
            c["name"] == "store_writer"
                && c["restarts"].as_u64() > Some(0)
                && c["state"] == "running"
        })
    })
    .await;
    assert!(
        reopened,
        "the store writer restarted (the fault point) and reopened"
    );
    assert_locked(&eliot, "after the store writer restarted");

    // The administration commands, in processes of their own beside the server.
    for args in [&["device", "add", "lock-check"][..], &["device", "list"]] {
        let status = std::process::Command::new(eliot_binary())
            .args(args)
            .env("ELIOT_ENV", "test")
            .env("ELIOT_DATA_DIR", data.path())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "eliot {args:?}");
    }
    assert_locked(&eliot, "after `eliot device add` and `list` beside it");

    let reads = tokio::spawn(async move {
        for n in 0..50 {
            let path = match n % 2 {
                0 => "/devices/steady/readings?last=500",
                _ => "/devices/steady/latest",
            };
            let (status, _) = get_json(http, path).await;
            assert_eq!(status, 200, "{path}");
        }
    });
    while !reads.is_finished() {
        assert_locked(&eliot, "while HTTP reads run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reads.await.unwrap();
    assert_locked(&eliot, "after HTTP reads");

    stop.store(true, Ordering::Relaxed);
    let (steady, big) = (steady.await.unwrap(), big.await.unwrap());
    let db = eliot.db_path();
    let (status, _) = eliot.terminate();
    assert!(status.success());
    let verdict = ledger.check(&db);
    println!("locks: {verdict}");
    assert_eq!(
        (verdict.lost, verdict.duplicated, verdict.unexpected),
        (0, 0, 0),
        "{verdict}"
    );
    // Acks went on after the restart: every reading published was acked in the end.
    assert_eq!(verdict.acked, verdict.published, "{verdict}");
    assert_eq!(big.acked, 500, "{verdict}");
    assert!(steady.acked > 0);
}
