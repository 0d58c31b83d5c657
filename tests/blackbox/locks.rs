//! Eliot's SHARED lock on `eliot.db`, seen from another process: the kernel's list of
//! POSIX locks (`/proc/locks`). Closing any descriptor of the file in Eliot's process would
//! drop it (see `actors/src/store/database/db_file.rs`); this checks it is there at each moment
//! where Eliot did something to the file: committing, checkpointing (the WAL started over),
//! reopening after the store writer restarted, serving reads, and with the administration
//! commands run beside it.

use std::time::Duration;

use libtest_mimic::Trial;

use crate::common::checker::Ledger;
use crate::common::eventually_async;
use crate::common::outside::{self, HeldTransaction};
use crate::common::process::{eliot_binary, own_loopback_addr, EliotProcess, Launch};
use crate::support::{get_json, health, trial, wal_bytes};
use crate::wal_load::{WalLoad, WAL_BOUND};

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "locks::eliot_holds_its_shared_lock_through_commits_checkpoints_restarts_and_reads",
        shared_lock_throughout,
    )]
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
    let mut load = WalLoad::start(eliot.addr, &ledger);
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
    load.send_big(eliot.addr, Duration::ZERO);
    let past_bound = eventually_async(Duration::from_secs(240), || async {
        wal_bytes(http).await.is_some_and(|wal| wal > WAL_BOUND)
    })
    .await;
    held.end();
    assert!(
        past_bound,
        "the WAL grew past {WAL_BOUND} bytes behind the reader"
    );
    let started_over = eventually_async(Duration::from_secs(60), || async {
        wal_bytes(http).await.is_some_and(|wal| wal <= WAL_BOUND)
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
                0 => "/api/v1/devices/steady/readings?limit=500",
                _ => "/api/v1/devices/steady/readings/latest",
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

    load.finish(eliot, "locks").await;
}
