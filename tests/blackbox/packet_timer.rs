//! `mqtt.packet_timeout` (30 s) times one packet: a device may not hold half a packet in
//! Eliot's buffer for ever, but a well-behaved one is never closed by it. TCP may deliver
//! any stream in any pieces: these devices write each packet so that the write ends one
//! byte into the next, so Eliot's buffer is never empty between packets.

use std::time::{Duration, Instant};

use libtest_mimic::Trial;

use crate::common::checker::{Ledger, Pace};
use crate::common::drill_device::DrillDevice;
use crate::common::outside::{self, HeldTransaction};
use crate::common::process::{own_loopback_addr, Launch};
use crate::support::trial;

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "packet_timer::a_device_whose_writes_split_packets_stays_connected_for_60_s",
            streaming_device,
        ),
        trial(
            "packet_timer::a_device_whose_packets_wait_through_a_40_s_store_stall_stays_connected",
            device_through_a_stall,
        ),
    ]
}

/// A device streaming for 60 s, one reading every 3 ms (each packet whole within 3 ms),
/// every write ending one byte into the next packet: kept connected, every reading stored.
async fn streaming_device() {
    let data = tempfile::tempdir().unwrap();
    let eliot = Launch::new(data.path(), own_loopback_addr()).start();
    let ledger = Ledger::default();
    let mut device = DrillDevice::new(
        eliot.addr,
        "streaming",
        Pace {
            count: 20_000,
            every: Duration::from_millis(3),
            within: Duration::from_secs(150),
        },
    );
    device.split = true;
    let started = Instant::now();
    let report = device.run(ledger.clone()).await;
    let took = started.elapsed();
    let db = eliot.db_path();
    let (status, _) = eliot.terminate();
    assert!(status.success());
    let verdict = ledger.check(&db);
    println!(
        "streaming with split writes for {took:?}: {verdict}; closed by Eliot: {:?}",
        report.closed_by_server
    );
    assert!(took > Duration::from_secs(59), "it streamed for a minute");
    assert_eq!(report.closed_by_server, vec![], "kept connected");
    assert_eq!(report.connections, 1);
    assert_eq!(
        (verdict.lost, verdict.acked, verdict.stored),
        (0, 20_000, 20_000)
    );
}

/// Another process holds SQLite's write lock for 40 s while a device streams with split
/// writes and up to 1,000 readings in flight, more than Eliot's window (128): Eliot stops
/// reading, and the device's packets wait in the socket, one of them half read. Neither
/// the packet timer (30 s) nor the keep-alive closes it: the wait is Eliot's doing. After
/// the stall everything is stored.
async fn device_through_a_stall() {
    let Some(shell) = outside::shell_for("device_through_a_stall") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let eliot = Launch::new(data.path(), own_loopback_addr()).start();
    let ledger = Ledger::default();
    let mut device = DrillDevice::new(
        eliot.addr,
        "patient",
        Pace {
            count: 5_000,
            every: Duration::from_millis(5),
            within: Duration::from_secs(180),
        },
    );
    device.split = true;
    device.window = 1_000;
    let device = tokio::spawn(device.run(ledger.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lock = HeldTransaction::start(&shell, &eliot.db_path(), "BEGIN EXCLUSIVE;");
    // The commit running when the lock was taken may still finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked_at_stall = ledger.acked_count();
    tokio::time::sleep(Duration::from_secs(39)).await;
    let acked_in_stall = ledger.acked_count() - acked_at_stall;
    lock.end();
    let report = device.await.unwrap();
    let db = eliot.db_path();
    let (status, _) = eliot.terminate();
    assert!(status.success());
    let verdict = ledger.check(&db);
    println!(
        "40 s store stall: {verdict}; acked during it {acked_in_stall}; closed by Eliot: {:?}",
        report.closed_by_server
    );
    assert!(
        acked_at_stall < 5_000,
        "the device was publishing when the store stalled"
    );
    assert_eq!(
        acked_in_stall, 0,
        "nothing is acked while the store is stalled"
    );
    assert_eq!(report.closed_by_server, vec![], "kept connected");
    assert_eq!(report.connections, 1);
    assert_eq!(
        (verdict.lost, verdict.acked, verdict.stored),
        (0, 5_000, 5_000)
    );
}
