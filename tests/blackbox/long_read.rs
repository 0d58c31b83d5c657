//! A user's query that keeps its snapshot for a minute, as docs/schema.md describes: while it runs
//! the WAL cannot be started over and grows; ingest goes on; once it is done, the WAL is
//! cut back to its bound.

use std::time::{Duration, Instant};

use libtest_mimic::Trial;

use crate::common::checker::Ledger;
use crate::common::eventually_async;
use crate::common::outside::{self, HeldTransaction};
use crate::common::process::{own_loopback_addr, Launch};
use crate::support::{trial, wal_bytes};
use crate::wal_load::{WalLoad, WAL_BOUND};

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "long_read::a_reader_holding_its_snapshot_60_s_loses_nothing_and_the_wal_is_bounded_after",
        reader_holding_its_snapshot,
    )]
}

/// A `sqlite3` shell opens a read transaction and keeps it 60 s (longer if the machine is
/// slow, until the WAL is past its bound) while a device sends about 200 KB readings (more
/// than the WAL's bound in all) and another small ones. Ingest goes on throughout, the WAL
/// grows past its bound while the reader holds it back, and within 20 s of the reader's end
/// it is back within its bound; nothing acked is lost.
async fn reader_holding_its_snapshot() {
    let Some(shell) = outside::shell_for("long_read") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let eliot = Launch::new(data.path(), own_loopback_addr()).start();
    let ledger = Ledger::default();
    let mut load = WalLoad::start(eliot.addr, &ledger);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let held = HeldTransaction::start(
        &shell,
        &eliot.db_path(),
        "BEGIN; SELECT count(*) FROM readings;",
    );
    // 500 big readings over about 50 s: about 100 MB written while the reader holds on.
    load.send_big(eliot.addr, Duration::from_millis(100));
    let held_at = Instant::now();
    let (mut peak, mut acked_at) = (0, vec![]);
    // At least 60 s, and until the WAL is past its bound (a slow machine takes longer to
    // write 100 MB), 240 s at most.
    while held_at.elapsed() < Duration::from_secs(60)
        || (peak <= WAL_BOUND && held_at.elapsed() < Duration::from_secs(240))
    {
        peak = peak.max(wal_bytes(eliot.http).await.unwrap_or(0));
        acked_at.push(ledger.acked_count());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    held.end();
    let ended_at = Instant::now();
    let http = eliot.http;
    let bounded = eventually_async(Duration::from_secs(20), || async {
        wal_bytes(http).await.is_some_and(|wal| wal <= WAL_BOUND)
    })
    .await;
    let after = wal_bytes(http).await.unwrap_or_default();
    println!(
        "long read: held {:?}; WAL peak {peak} bytes meanwhile, {after} bytes {:?} after; \
         acked {} readings during the hold",
        ended_at - held_at,
        ended_at.elapsed(),
        acked_at.last().unwrap() - acked_at[0]
    );
    assert!(
        peak > WAL_BOUND,
        "the held reader kept the WAL from starting over: peak {peak}"
    );
    assert!(bounded, "the WAL is back within {WAL_BOUND} bytes: {after}");
    // Ingest never stopped: every 10 s of the hold saw acks.
    for window in acked_at.chunks(10).filter(|w| w.len() == 10) {
        assert!(
            window[9] > window[0],
            "acks stalled during the hold: {acked_at:?}"
        );
    }
    load.finish(eliot, "long read").await;
}
