//! Supervision: a child that fails is restarted, and the message flow goes on.
//!
//! Failures are injected through the `fail` crate's fault points, compiled in for tests
//! only. Fault points are process-wide, so these tests take turns.

mod common;

use std::time::{Duration, Instant};

use common::*;
use eliot_actors::RestartSettings;
use eliot_actors::{CapturedLogs, ChildState, HealthReport};
use rumqttc::{Event, Packet, QoS};

static FAULT_POINTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits until the health monitor shows `child` running after `restarts` restarts.
async fn wait_restarted(eliot: &Eliot, child: &str, restarts: u32) -> HealthReport {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = eliot.health().await;
        let c = report
            .child(child)
            .expect("the child is known to the health monitor");
        if c.restarts == restarts && c.state == ChildState::Running {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "{child} not restarted: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A processor panics while handling a message: that message becomes a dead letter with
/// reason `processor panic: ...` (and is acked, being stored), and the processor carries
/// on without a restart (a panic tied to one message is that input's doing, and must not
/// count toward the restart intensity); the messages after it are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_processor_dead_letters_the_message_and_carries_on() {
    let _turn = FAULT_POINTS.lock().await;
    let eliot = Eliot::start_with(|c| c.processors.count = 1);
    let before = eliot.health().await;
    assert_eq!(before.child("processor-0").unwrap().restarts, 0);

    fail::cfg("processor::process", "1*panic(injected processor failure)").unwrap();
    let mut device = Device::connect(eliot.addr, "robot_001");
    let acked = device
        .publish_all("robot_001", vec![reading("robot_001", 0)], QoS::AtLeastOnce)
        .await;
    fail::remove("processor::process");
    assert_eq!(acked, 1);

    let report = eliot.health().await;
    let processor = report.child("processor-0").unwrap();
    assert_eq!(processor.restarts, 0, "{report:?}");
    let dead = eliot.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].reason,
        "processor panic: injected processor failure"
    );
    assert_eq!(dead[0].payload, reading("robot_001", 0).as_bytes());

    let later = (1..=100).map(|n| reading("robot_001", n)).collect();
    assert_eq!(
        device
            .publish_all("robot_001", later, QoS::AtLeastOnce)
            .await,
        100
    );
    assert_eq!(eliot.count("readings"), 100);
}

/// The store writer panics in the middle of a commit: nothing in that batch is acked
/// (the device's connection is closed instead, so it will re-send), the supervisor
/// restarts the writer with a fresh database connection, and a device publishing after
/// that is stored and acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_store_writer_acks_nothing_and_is_restarted() {
    let _turn = FAULT_POINTS.lock().await;
    let eliot = Eliot::start();

    fail::cfg("store::write", "1*panic(injected store failure)").unwrap();
    publish_one_expecting_the_close(&eliot).await;
    fail::remove("store::write");

    wait_restarted(&eliot, "store_writer", 1).await;
    assert_eq!(
        eliot.count("readings"),
        0,
        "the failed batch was rolled back"
    );
    // What an operator sees: the restart, over HTTP.
    let (status, health) = json(eliot.http_addr, "/health").await;
    assert_eq!(status, 200);
    let writer = health["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "store_writer")
        .cloned()
        .unwrap();
    assert_eq!(writer["restarts"], 1, "{health}");
    assert!(writer["last_failure"]
        .as_str()
        .unwrap()
        .contains("injected store failure"));

    let mut again = Device::connect(eliot.addr, "robot_001");
    let payloads = (0..50).map(|n| reading("robot_001", n)).collect();
    assert_eq!(
        again
            .publish_all("robot_001", payloads, QoS::AtLeastOnce)
            .await,
        50
    );
    assert_eq!(eliot.count("readings"), 50);
}

/// The store writer fails, and then fails again each time it starts (its database will
/// not open): each restart waits longer than the one before (the `actor_restarting` log
/// lines show the growing delays), and once the restart intensity is exceeded the failure
/// escalates: the tree shuts down instead of spinning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_failing_on_start_backs_off_then_escalates() {
    let _turn = FAULT_POINTS.lock().await;
    let logs = CapturedLogs::default();
    let mut eliot = Eliot::start_logged(
        |c| {
            c.supervision = RestartSettings {
                max_restarts: 4,
                window: Duration::from_secs(60),
                backoff_initial: Duration::from_millis(50),
                backoff_max: Duration::from_secs(5),
            }
        },
        logs.logger(),
    );
    fail::cfg("store::open", "return").unwrap();
    fail::cfg("store::write", "1*panic(first failure)").unwrap();
    let device = Device::connect(eliot.addr, "robot_001");
    device
        .client
        .publish(
            topic("robot_001"),
            QoS::AtLeastOnce,
            false,
            reading("robot_001", 0),
        )
        .await
        .unwrap();

    let started = Instant::now();
    let (escalation, _) = eliot.escalation(Duration::from_secs(30)).await;
    fail::remove("store::open");
    fail::remove("store::write");
    assert_eq!(escalation.child, "store_writer");
    assert_eq!(
        escalation.restarts, 5,
        "the fifth restart within the window escalates"
    );

    let delays: Vec<u64> = logs
        .events("actor_restarting")
        .iter()
        .filter(|e| e["child"] == "store_writer")
        .map(|e| e["delay_ms"].parse().unwrap())
        .collect();
    println!(
        "restart delays (ms): {delays:?}, escalated after {:?}",
        started.elapsed()
    );
    assert_eq!(delays.len(), 4, "four restarts, then the escalation");
    assert!(
        delays.windows(2).all(|w| w[1] > w[0]),
        "growing delays: {delays:?}"
    );
    assert!(
        (40..=60).contains(&delays[0]),
        "first delay near 50 ms: {delays:?}"
    );
}

/// A panic while a device connection handles a packet is caught at the handler: that
/// connection closes after settling what it had read (a connection's restart is the
/// device reconnecting), the device re-sends what was not acked, and another device is
/// untouched. Every reading ends up acked and stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_connection_is_closed_and_its_device_loses_nothing() {
    use common::checker::{publish_through_failures, Ledger, Pace};
    let _turn = FAULT_POINTS.lock().await;
    let eliot = Eliot::start();
    let mut bystander = Device::connect(eliot.addr, "bystander");
    fail::cfg(
        "connection::packet",
        "50*off->1*panic(injected connection failure)->off",
    )
    .unwrap();
    let ledger = Ledger::default();
    let pace = Pace {
        count: 200,
        every: Duration::ZERO,
        within: Duration::from_secs(30),
    };
    let acked =
        publish_through_failures(eliot.addr, "robot_001".into(), pace, ledger.clone()).await;
    fail::remove("connection::packet");
    let payloads = (0..50).map(|n| reading("bystander", n)).collect();
    assert_eq!(
        bystander
            .publish_all("bystander", payloads, QoS::AtLeastOnce)
            .await,
        50
    );
    for n in 0..50 {
        ledger.published("bystander", n);
        ledger.acked("bystander", n);
    }

    let verdict = ledger.check(&eliot.db_path());
    println!("connection panic: {verdict}");
    assert_eq!(acked, 200, "{verdict}");
    assert_eq!(
        (verdict.lost, verdict.duplicated, verdict.unexpected),
        (0, 0, 0),
        "{verdict}"
    );
    assert_eq!(eliot.count("readings"), 250);
}

/// A commit failing in a way that will not heal (a read-only, corrupt or vanished
/// database; injected here) is not retried for ever: nothing in the batch is acked, the
/// writer restarts and reopens the database, and the flow resumes. (Had the reopening
/// kept failing, the restart intensity would have escalated, as above.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_heal_is_reopened_not_retried_for_ever() {
    let _turn = FAULT_POINTS.lock().await;
    let eliot = Eliot::start();
    fail::cfg("store::write", "1*return(broken)").unwrap();
    publish_one_expecting_the_close(&eliot).await;
    fail::remove("store::write");
    let report = wait_restarted(&eliot, "store_writer", 1).await;
    let writer = report.child("store_writer").unwrap();
    assert!(
        writer
            .last_failure
            .as_deref()
            .unwrap_or_default()
            .contains("cannot be written"),
        "{writer:?}"
    );
    let mut again = Device::connect(eliot.addr, "robot_001");
    let payloads = (0..10).map(|n| reading("robot_001", n)).collect();
    assert_eq!(
        again
            .publish_all("robot_001", payloads, QoS::AtLeastOnce)
            .await,
        10
    );
}

/// Publishes one QoS 1 reading and expects its connection to close without a PUBACK.
async fn publish_one_expecting_the_close(eliot: &Eliot) {
    let mut device = Device::connect(eliot.addr, "robot_001");
    device
        .client
        .publish(
            topic("robot_001"),
            QoS::AtLeastOnce,
            false,
            reading("robot_001", 0),
        )
        .await
        .unwrap();
    let outcome = device
        .expect_event(Duration::from_secs(10), |e| {
            e.is_err() || matches!(e, Ok(Event::Incoming(Packet::PubAck(_))))
        })
        .await;
    assert!(outcome.is_err(), "closed without a PUBACK, got {outcome:?}");
}
