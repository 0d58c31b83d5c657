//! A user's `sqlite3` beside a running Eliot, as docs/schema.md invites ("query it while
//! Eliot runs"). Each count is a `sqlite3` process that opens the database and closes it; a
//! closing connection that finds no other SHARED lock checkpoints and deletes the WAL. So
//! if Eliot ever lost its lock, the next count would delete the WAL it commits to, and what
//! it acked after that would vanish at the next kill.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libtest_mimic::Trial;

use crate::common::checker::{Ledger, Pace};
use crate::common::drill_device::DrillDevice;
use crate::common::outside::{self, stored_keys_by, Reader};
use crate::common::process::{own_loopback_addr, Launch};
use crate::support::{helper, trial, Rng};

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "outside_reader::counting_and_a_backup_beside_kill_9_lose_nothing_acked",
        counting_and_a_backup_beside_kill_9,
    )]
}

/// 20 devices publish 1,000 QoS 1 readings each with persistent sessions. Meanwhile
/// another process counts `readings` every 300 ms and takes one `.backup`, and Eliot is
/// killed with SIGKILL 3 times and started again. Then it is killed once more and started
/// again, and the database counted by two readers of its own (the shell, and the helper
/// with another SQLite): every PUBACKed reading is stored exactly once, and the backup
/// opens and passes `PRAGMA integrity_check`.
async fn counting_and_a_backup_beside_kill_9() {
    let Some(shell) = outside::shell_for("outside_reader") else {
        return;
    };
    let mut rng = Rng::from_env("ELIOT_KILL_SEED");
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let db = data.join("eliot.db");
    let mut launch = Launch::new(&data, own_loopback_addr());
    launch.log = Some(work.path().join("eliot.log"));
    let mut eliot = launch.start();
    let ledger = Ledger::default();
    // 1,000 readings, one every 10 ms: about 10 s of publishing, across the kills.
    let pace = Pace {
        count: 1_000,
        every: Duration::from_millis(10),
        within: Duration::from_secs(120),
    };
    let devices: Vec<_> = (0..20)
        .map(|d| {
            let device = DrillDevice::new(launch.addr, format!("device_{d:02}"), pace);
            tokio::spawn(device.run(ledger.clone()))
        })
        .collect();

    let counting = Arc::new(AtomicBool::new(true));
    let backup = work.path().join("backup.db");
    let counter = {
        let (counting, db, backup, shell) =
            (counting.clone(), db.clone(), backup.clone(), shell.clone());
        std::thread::spawn(move || {
            let reader = Reader::Shell(shell);
            let mut counts = Vec::new();
            while counting.load(Ordering::Relaxed) {
                counts.push(reader.number(&db, "SELECT count(*) FROM readings"));
                if counts.len() == 10 {
                    reader.query(&db, &format!(".backup '{}'", backup.display()));
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            counts
        })
    };
    for kill in 1..=3 {
        tokio::time::sleep(rng.millis(1_500, 3_000)).await;
        let acked = ledger.acked_count();
        let launch = eliot.kill9();
        println!("kill -9 #{kill}: {acked} acked so far");
        tokio::time::sleep(rng.millis(0, 300)).await;
        eliot = launch.start();
    }
    let mut closes = 0;
    for device in devices {
        closes += device.await.unwrap().closed_by_server.len();
    }
    counting.store(false, Ordering::Relaxed);
    let counts = counter.join().unwrap();
    let launch = eliot.kill9();
    let eliot = launch.start();

    let by_shell = stored_keys_by(&Reader::Shell(shell.clone()), &db);
    let by_helper = stored_keys_by(&helper::reader(), &db);
    drop(eliot);
    let verdict = ledger.check(&db);
    let backup_check = Reader::Shell(shell.clone()).query(&backup, "PRAGMA integrity_check");
    let backed_up = Reader::Shell(shell).number(&backup, "SELECT count(*) FROM readings");
    println!(
        "outside reader: {verdict}; {} counts taken (last {:?}), backup of {backed_up} \
         readings: {backup_check:?}; {closes} disconnections seen by the devices",
        counts.len(),
        counts.last()
    );
    assert!(
        counts.len() > 10,
        "the outside reader counted and backed up"
    );
    assert_eq!(
        (verdict.lost, verdict.duplicated, verdict.unexpected),
        (0, 0, 0),
        "{verdict}"
    );
    assert_eq!(
        (verdict.acked, verdict.stored),
        (20_000, 20_000),
        "{verdict}"
    );
    assert_eq!(by_shell, by_helper, "both readers see the same rows");
    assert_eq!(by_shell.len(), 20_000);
    assert_eq!(backup_check, vec![vec!["ok".to_owned()]]);
    assert!(backed_up > 0, "the backup holds readings");
}
