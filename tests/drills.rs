//! Fault drills with fault points: faults injected into an Eliot running in the test
//! process while devices publish, then the checker (see `common/checker.rs`) counts lost,
//! duplicated and unexpected messages, reading the database from another process. Each
//! drill prints its checker line; every one must show 0 lost and 0 duplicated. The drills
//! on the `eliot` binary (kill -9, a stalled store, SIGTERM) are in `blackbox/drills.rs`.

mod common;

use std::time::{Duration, Instant};

use common::checker::{publish_through_failures, Ledger, Pace};
use common::*;
use eliot_actors::Status;
use eliot_actors::{BreakerSettings, BreakerState};
use rumqttc::QoS;

/// Fault points are process-wide: the in-process drills take turns.
static FAULT_POINTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `devices` drill devices (`device_00`, ...) publishing through failures.
fn fleet(
    addr: std::net::SocketAddr,
    devices: u32,
    pace: Pace,
    ledger: &Ledger,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..devices)
        .map(|d| {
            tokio::spawn(publish_through_failures(
                addr,
                format!("device_{d:02}"),
                pace,
                ledger.clone(),
            ))
        })
        .collect()
}

/// Waits for every device; the readings acked in all.
async fn all_acked(devices: Vec<tokio::task::JoinHandle<u64>>) -> u64 {
    let mut acked = 0;
    for device in devices {
        acked += device.await.unwrap();
    }
    acked
}

/// Store failure: every commit fails for 3 s (a fault point). The store breaker opens,
/// nothing unwritten is acked, devices are not read; when the store recovers a trial
/// commit succeeds, the breaker closes, and everything is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_opens_the_breaker_and_loses_nothing() {
    let _turn = FAULT_POINTS.lock().await;
    let eliot = Eliot::start_with(|c| {
        c.breakers.store = BreakerSettings {
            failure_threshold: 3,
            open_for: Duration::from_millis(200),
            open_max: Duration::from_secs(1),
            retry_delay: Duration::from_millis(50),
        }
    });
    let ledger = Ledger::default();
    // Paced so that the load outlasts the failure on any machine: each device needs at
    // least 3 s for its readings (a fast one acked all 10,000 before the fault, unpaced).
    let pace = Pace {
        count: 1_000,
        every: Duration::from_millis(3),
        within: Duration::from_secs(60),
    };
    let devices = fleet(eliot.addr, 10, pace, &ledger);
    tokio::time::sleep(Duration::from_millis(300)).await;

    fail::cfg("store::write", "return").unwrap();
    let failing_since = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acked_at_start = ledger.acked_count();
    assert!(
        acked_at_start < 10_000,
        "the devices are still publishing when the store fails"
    );
    let mut saw_open = false;
    while failing_since.elapsed() < Duration::from_secs(3) {
        let health = eliot.health().await;
        saw_open |= health
            .breaker("store")
            .is_some_and(|b| b.state == BreakerState::Open);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let acked_while_failing = ledger.acked_count() - acked_at_start;
    fail::remove("store::write");

    let acked = all_acked(devices).await;
    let health = eliot.health().await;
    let verdict = ledger.check(&eliot.db_path());
    println!("store failure 3 s: {verdict}; acked while failing: {acked_while_failing}");
    assert!(saw_open, "the store breaker opened");
    assert_eq!(health.breaker("store").unwrap().state, BreakerState::Closed);
    assert_eq!(health.status, Status::Healthy, "{health:?}");
    assert_eq!(
        acked_while_failing, 0,
        "nothing acked while the store fails"
    );
    assert_eq!(
        (verdict.lost, verdict.duplicated, verdict.unexpected),
        (0, 0, 0),
        "{verdict}"
    );
    assert_eq!(acked, 10_000, "{verdict}");
}

/// Poison message: a payload that makes a processor panic (a fault point keyed on the
/// payload) is dead-lettered with reason `processor panic: ...` and the processor is
/// restarted; the other 10,000 readings of the run are all stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_and_nothing_else_is_lost() {
    let _turn = FAULT_POINTS.lock().await;
    let eliot = Eliot::start();
    fail::cfg("processor::poison", "panic(poison pill)").unwrap();
    let ledger = Ledger::default();
    // Paced so that the poison arrives among the other readings on any machine: each
    // device needs at least 1 s for its readings.
    let pace = Pace {
        count: 1_000,
        every: Duration::from_millis(1),
        within: Duration::from_secs(60),
    };
    let devices = fleet(eliot.addr, 10, pace, &ledger);
    let mut poisoner = Device::connect(eliot.addr, "poisoner");
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let acked = poisoner
            .publish_all("poisoner", vec![format!("POISON {i}")], QoS::AtLeastOnce)
            .await;
        assert_eq!(
            acked, 1,
            "a poison message is acked: it is stored, as a dead letter"
        );
    }
    assert!(
        ledger.acked_count() < 10_000,
        "the devices were still publishing when the last poison came"
    );
    let acked = all_acked(devices).await;
    fail::remove("processor::poison");

    let verdict = ledger.check(&eliot.db_path());
    let dead = eliot.dead_letters();
    let restarts: u32 = eliot
        .health()
        .await
        .children
        .iter()
        .filter(|c| c.name.starts_with("processor-"))
        .map(|c| c.restarts)
        .sum();
    println!(
        "poison x3: {verdict}; dead letters {}; processor restarts {restarts}",
        dead.len()
    );
    assert_eq!(
        (verdict.lost, verdict.duplicated, verdict.unexpected),
        (0, 0, 0),
        "{verdict}"
    );
    assert_eq!((acked, verdict.stored), (10_000, 10_000), "{verdict}");
    assert_eq!(dead.len(), 3);
    assert!(
        dead.iter()
            .all(|d| d.reason == "processor panic: poison pill"),
        "{dead:?}"
    );
    assert_eq!(restarts, 0, "a panic tied to a message restarts nothing");
}
