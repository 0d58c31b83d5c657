//! Fault drills: faults injected while devices publish, then the checker (see
//! `common/checker.rs`) counts lost, duplicated and unexpected messages. Each drill prints
//! its checker line; every one must show 0 lost and 0 duplicated.

mod common;

use std::time::{Duration, Instant};

use common::checker::{publish_through_failures, spawn_publisher, Ledger, Pace};
use common::process::{free_addr, EliotProcess};
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

fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % n
}

/// kill -9 mid-stream: 50 devices publish 20,000 QoS 1 readings with persistent sessions
/// while Eliot (the real binary) is killed with SIGKILL at 5 random moments and restarted
/// each time. The devices reconnect, find their session present, and re-send what was
/// not acked. Every reading ends up acked, and none is lost or duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_nothing_acked() {
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut eliot = EliotProcess::start(data.path(), addr, &[]);
    let ledger = Ledger::default();
    // 400 readings, one every 15 ms: the stream lasts about 6 s, across the kills.
    let pace = Pace {
        count: 400,
        every: Duration::from_millis(15),
        within: Duration::from_secs(120),
    };
    let devices = fleet(addr, 50, pace, &ledger);

    let started = Instant::now();
    for kill in 1..=5 {
        tokio::time::sleep(Duration::from_millis(300 + random_below(900))).await;
        let acked = ledger.acked_count();
        eliot.kill9();
        println!(
            "kill -9 #{kill} at {:?}: {acked} acked so far",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(random_below(300))).await;
        eliot = EliotProcess::start(data.path(), addr, &[]);
    }
    let acked = all_acked(devices).await;
    let (status, _) = eliot.terminate();
    assert!(status.success());

    let verdict = ledger.check(&data.path().join("eliot.db"));
    println!(
        "kill -9 x5: {verdict}, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        (verdict.lost, verdict.duplicated, verdict.unexpected),
        (0, 0, 0),
        "{verdict}"
    );
    assert_eq!(acked, 20_000, "every reading acked in the end: {verdict}");
    assert_eq!(verdict.stored, 20_000, "{verdict}");
}

/// Store stall: another process holds SQLite's write lock for 10 s while 20 devices
/// publish. Eliot stops acking (its commits wait, then fail and are retried), stops
/// reading the devices' sockets, and its memory stays bounded; once the lock is
/// released, everything published is stored and acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_stops_acks_bounds_memory_and_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let eliot = EliotProcess::start(data.path(), free_addr(), &[]);
    let ledger = Ledger::default();
    // Paced so that the load outlasts the first half second on any machine: each device
    // needs at least 2 s for its readings.
    let pace = Pace {
        count: 2_000,
        every: Duration::from_millis(1),
        within: Duration::from_secs(90),
    };
    let devices = fleet(eliot.addr, 20, pace, &ledger);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = eliot.rss_kib();

    let db_path = data.path().join("eliot.db");
    let lock = rusqlite::Connection::open(&db_path).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let locked_at = Instant::now();
    // Give the commit that was running when the lock was taken time to finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acked_early_in_stall = ledger.acked_count();
    assert!(
        acked_early_in_stall < 40_000,
        "the devices are still publishing when the store stalls"
    );
    let mut rss_peak = 0;
    while locked_at.elapsed() < Duration::from_secs(10) {
        rss_peak = rss_peak.max(eliot.rss_kib());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let acked_during_stall = ledger.acked_count() - acked_early_in_stall;
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);

    let acked = all_acked(devices).await;
    let (status, _) = eliot.terminate();
    assert!(status.success());
    let verdict = ledger.check(&db_path);
    println!(
        "store stall 10 s: {verdict}; acked during the stall: {acked_during_stall}; \
         RSS before {} MiB, peak during the stall {} MiB",
        rss_before / 1024,
        rss_peak / 1024
    );
    assert_eq!(
        (verdict.lost, verdict.duplicated, verdict.unexpected),
        (0, 0, 0),
        "{verdict}"
    );
    assert_eq!(
        acked_during_stall, 0,
        "nothing acked while the store is stalled"
    );
    assert_eq!(acked, 40_000, "everything acked after the stall: {verdict}");
    // The bound: connections x in-flight window x packet, far below this for these devices.
    assert!(
        rss_peak < rss_before + 64 * 1024,
        "RSS grew from {rss_before} to {rss_peak} KiB"
    );
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

/// One device publishing QoS 1 readings as fast as acks allow until its connection ends
/// (no reconnect); records what was published and acked.
async fn publish_until_closed(addr: std::net::SocketAddr, device: String, ledger: Ledger) {
    use rumqttc::{Event, Outgoing, Packet};
    let mut dev = Device::connect(addr, &device);
    let publisher = spawn_publisher(dev.client.clone(), &device, None, Duration::ZERO, &ledger);
    // No reconnect here, so the n-th outgoing PUBLISH is reading n.
    let (mut sent, mut in_flight) = (0u64, std::collections::HashMap::new());
    while let Some(Ok(event)) = dev.events.recv().await {
        match event {
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                in_flight.insert(pkid, sent);
                sent += 1;
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(n) = in_flight.remove(&ack.pkid) {
                    ledger.acked(&device, n);
                }
            }
            _ => {}
        }
    }
    publisher.abort();
}

/// Graceful shutdown under load: SIGTERM while 50 devices publish. Eliot stops accepting,
/// commits and acks what it has read, and exits 0 within its deadline (3 s in the test
/// environment); every reading that was acked is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_zero_within_the_deadline_and_keeps_every_acked_reading() {
    let data = tempfile::tempdir().unwrap();
    let eliot = EliotProcess::start(data.path(), free_addr(), &[]);
    let ledger = Ledger::default();
    let devices: Vec<_> = (0..50)
        .map(|d| {
            tokio::spawn(publish_until_closed(
                eliot.addr,
                format!("device_{d:02}"),
                ledger.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let acked_before = ledger.acked_count();

    let (status, took) = eliot.terminate();
    assert_eq!(status.code(), Some(0), "exit status 0 after SIGTERM");
    assert!(
        took < Duration::from_secs(3),
        "within the 3 s deadline: {took:?}"
    );
    for device in devices {
        tokio::time::timeout(Duration::from_secs(10), device)
            .await
            .expect("every device sees the close")
            .unwrap();
    }
    let verdict = ledger.check(&data.path().join("eliot.db"));
    println!("SIGTERM under load (50 devices): exited 0 in {took:?}; {verdict}");
    assert!(
        acked_before > 1_000,
        "the devices were publishing: {acked_before} acked"
    );
    assert_eq!(
        (verdict.lost, verdict.duplicated, verdict.unexpected),
        (0, 0, 0),
        "{verdict}"
    );
}
