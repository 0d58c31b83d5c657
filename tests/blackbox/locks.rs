//! Eliot's SHARED lock on `eliot.db`, seen from another process: the kernel's list of
//! POSIX locks (`/proc/locks`). Closing any descriptor of the file in Eliot's process would
//! drop it (see `actors/src/store/db_file.rs`); this checks it is there at each moment
//! where Eliot did something to the file: committing, checkpointing (the WAL started over),
//! reopening after the store writer restarted, and serving reads.

use std::time::Duration;

use libtest_mimic::Trial;

use crate::common::checker::{reading_ts, Ledger, Pace};
use crate::common::drill_device::DrillDevice;
use crate::common::eventually_async;
use crate::common::process::{own_loopback_addr, EliotProcess, Launch};
use crate::support::{get_json, restarts, trial, wal_bytes};

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
    let data = tempfile::tempdir().unwrap();
    // The 300th commit fails as if the database were broken: the store writer restarts
    // and reopens it (a fault point, compiled into the binary `cargo test` builds).
    let eliot = Launch::new(data.path(), own_loopback_addr())
        .env("FAILPOINTS", "store::write=299*off->1*return(broken)->off")
        .start();
    let ledger = Ledger::default();
    let steady = Pace {
        count: 3_000,
        every: Duration::from_millis(10),
        within: Duration::from_secs(120),
    };
    let device = tokio::spawn(DrillDevice::new(eliot.addr, "steady", steady).run(ledger.clone()));
    assert!(
        eventually_async(Duration::from_secs(10), || async {
            ledger.acked_count() >= 20
        })
        .await,
        "the device's readings are acked"
    );
    assert_locked(&eliot, "while ingesting");

    // Big readings take the WAL past its bound; the checkpointer then starts it over, and
    // the next commit cuts it back.
    let mut big = DrillDevice::new(
        eliot.addr,
        "big",
        Pace {
            count: 500,
            every: Duration::ZERO,
            within: Duration::from_secs(120),
        },
    );
    big.payload = big_reading;
    big.window = 8;
    let big = tokio::spawn(big.run(ledger.clone()));
    let http = eliot.http;
    let (mut peak, deadline) = (0, tokio::time::Instant::now() + Duration::from_secs(120));
    let started_over = loop {
        let wal = wal_bytes(http).await;
        peak = peak.max(wal);
        if peak > WAL_BOUND && wal <= WAL_BOUND {
            break true;
        }
        if tokio::time::Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        started_over,
        "the WAL grew to {peak} bytes and was not started over"
    );
    assert_locked(&eliot, "after a checkpoint started the WAL over");

    let restarted = eventually_async(Duration::from_secs(60), || async {
        restarts(http, "store_writer").await > 0
    })
    .await;
    assert!(restarted, "the store writer restarted (the fault point)");
    assert!(
        eventually_async(Duration::from_secs(10), || async {
            let acked = ledger.acked_count();
            tokio::time::sleep(Duration::from_millis(200)).await;
            ledger.acked_count() > acked
        })
        .await,
        "acks resume after the restart"
    );
    assert_locked(&eliot, "after the store writer restarted");

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

    let (steady, big) = (device.await.unwrap(), big.await.unwrap());
    let db = eliot.db_path();
    let (status, _) = eliot.terminate();
    assert!(status.success());
    let verdict = ledger.check(&db);
    println!("locks: {verdict}; WAL peak {peak} bytes");
    assert_eq!(
        (verdict.lost, verdict.duplicated, verdict.unexpected),
        (0, 0, 0),
        "{verdict}"
    );
    assert_eq!((steady.acked, big.acked), (3_000, 500), "{verdict}");
}
