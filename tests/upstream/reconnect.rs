//! Reconnects: the broker goes away and comes back. Eliot waits longer between each try
//! (rumqttc alone would retry in a tight loop), reconnects, and what was published
//! meanwhile arrives. Where the broker lost Eliot's session, Eliot says so and
//! subscribes again.

use std::time::Duration;

use super::common::checker::{publish_through_failures, Ledger, Pace};
use super::common::mosquitto::BrokerConfig;
use super::*;
use eliot_actors::CapturedLogs;

const WITHIN: Duration = Duration::from_secs(20);

fn publish_through(broker: &Mosquitto, device: &str, count: u64) -> tokio::task::JoinHandle<u64> {
    publish_paced(broker, device, count, Duration::from_millis(10))
}

/// The same, `every` apart (zero: as fast as the broker acks).
fn publish_paced(
    broker: &Mosquitto,
    device: &str,
    count: u64,
    every: Duration,
) -> tokio::task::JoinHandle<u64> {
    let pace = Pace {
        count,
        every,
        within: Duration::from_secs(90),
    };
    tokio::spawn(publish_through_failures(
        broker.addr(),
        device.to_owned(),
        pace,
        Ledger::default(),
    ))
}

fn retry_delays_ms(logs: &CapturedLogs) -> Vec<u64> {
    logs.events("upstream_connect_failed")
        .iter()
        .filter_map(|e| e.get("retry_in_ms")?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_down_for_20_s_is_retried_with_growing_delays_and_nothing_meanwhile_is_lost() {
    let Some(mut broker) = broker("reconnect", BrokerConfig::default()) else {
        return;
    };
    let logs = CapturedLogs::default();
    let eliot = Eliot::start_logged(|c| upstream_of(c, &broker, "reconnect"), logs.logger());
    subscribed(&broker, "reconnect");
    assert_eq!(publish_through(&broker, "before", 50).await.unwrap(), 50);
    assert!(wait_stored(&eliot, 50, WITHIN).await);

    tokio::task::block_in_place(|| broker.stop());
    // Published while the broker is down: the device's client holds them and retries.
    let during = publish_through(&broker, "during", 50);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let link = eliot.health().await.upstream[0].clone();
    assert!(!link.connected && link.failed_attempts >= 4, "{link:?}");
    tokio::task::block_in_place(|| broker.restart());

    assert_eq!(during.await.unwrap(), 50);
    assert!(
        wait_stored(&eliot, 100, WITHIN).await,
        "{} stored",
        stored(&eliot)
    );
    let delays = retry_delays_ms(&logs);
    println!("retry delays while the broker was down (ms): {delays:?}");
    assert!(delays.len() >= 4, "{delays:?}");
    assert!(
        delays[3] > delays[0] * 3,
        "delays grow (doubling, ±20 %): {delays:?}"
    );
    assert!(
        delays.iter().all(|d| *d <= 2_400),
        "capped at backoff_max: {delays:?}"
    );
    assert!(logs.events("upstream_connected").len() >= 2);
    assert!(
        link_when(&eliot, WITHIN, |l| l.connected)
            .await
            .session_present
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_broker_lost_is_reported_as_a_possible_gap_and_subscribed_again() {
    let Some(mut broker) = broker("session lost", BrokerConfig::default()) else {
        return;
    };
    let logs = CapturedLogs::default();
    let eliot = Eliot::start_logged(|c| upstream_of(c, &broker, "lost"), logs.logger());
    subscribed(&broker, "lost");

    tokio::task::block_in_place(|| {
        broker.stop();
        // The broker forgets every session, Eliot's included.
        std::fs::remove_file(broker.dir().join("mosquitto.db")).unwrap();
        broker.restart();
    });
    let reconnected = eventually(WITHIN, || logs.events("upstream_connected").len() >= 2).await;
    assert!(reconnected);
    // Said once the store has answered, after the CONNACK.
    assert!(eventually(WITHIN, || !logs.events("upstream_session_lost").is_empty()).await);
    assert!(eventually(WITHIN, || logs.events("upstream_subscribed").len() >= 2).await);
    assert_eq!(logs.events("upstream_session_lost").len(), 1);
    assert_eq!(publish_through(&broker, "after", 20).await.unwrap(), 20);
    assert!(wait_stored(&eliot, 20, WITHIN).await, "subscribed again");
}

/// The broker loses Eliot's session while Eliot is down (here: Eliot stopped, the broker
/// restarted without its persistence file). The first CONNACK of the next Eliot, a new
/// process, says Session Present 0: that is a possible gap, logged, counted and in
/// `/health`, because the broker's session is remembered in the database, not in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_lost_while_eliot_was_down_is_reported_after_the_restart() {
    let Some(mut broker) = broker("session lost while down", BrokerConfig::default()) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let config = upstream_file(data.path(), &broker, "away", "");
    let log = data.path().join("eliot.log");
    let mut launch =
        super::common::process::Launch::new(data.path(), super::common::process::free_addr())
            .env("ELIOT_LOG_FORMAT", "json")
            .env("ELIOT_LOG_LEVEL", "info");
    launch.args = vec!["--config".into(), config];
    launch.log = Some(log.clone());
    let eliot = launch.start();
    subscribed(&broker, "away");
    let (status, _) = eliot.terminate();
    assert!(status.success());
    std::fs::write(&log, "").unwrap();

    tokio::task::block_in_place(|| {
        broker.stop();
        let _ = std::fs::remove_file(broker.dir().join("mosquitto.db"));
        broker.restart();
    });
    let eliot = launch.start();
    let events = |name: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(&format!("\"event\":\"{name}\"")))
            .count()
    };
    assert!(
        eventually(WITHIN, || events("upstream_subscribed") >= 1).await,
        "subscribed again"
    );
    // Said once the store has answered, which may come after the SUBACK.
    assert!(
        eventually(WITHIN, || events("upstream_session_lost") >= 1).await,
        "reported after the restart"
    );
    assert_eq!(events("upstream_session_lost"), 1);
    let health: serde_json::Value =
        serde_json::from_str(&get(eliot.http, "/health").await.1).unwrap();
    assert_eq!(health["upstream"][0]["sessions_lost"], 1, "{health}");
    assert_eq!(
        metric(eliot.http, "eliot_upstream_sessions_lost_total").await,
        Some(1.0)
    );
}

/// A backlog far larger than the receive window drains: the window frees a slot when a
/// message is stored, not when its ack is written, which only the event loop's task does
/// (holding slots until then stopped both, with the backlog half read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_many_times_the_window_drains_to_the_last_message() {
    let Some(broker) = broker("backlog", BrokerConfig::default()) else {
        return;
    };
    let small_window = |c: &mut Config| {
        upstream_of(c, &broker, "backlog");
        c.upstream.receive_maximum = 20;
    };
    let eliot = Eliot::start_with(small_window);
    subscribed(&broker, "backlog");
    drop(eliot);
    // Queued at the broker for Eliot's session while it is away.
    let queued = publish_paced(&broker, "queued", 3_000, Duration::ZERO);
    assert_eq!(queued.await.unwrap(), 3_000);
    let eliot = Eliot::start_with(small_window);
    assert!(
        wait_stored(&eliot, 3_000, Duration::from_secs(60)).await,
        "{} of 3,000 stored",
        stored(&eliot)
    );
}

/// Repeated failures open the upstream breaker, which /health shows, and after which
/// Eliot waits its open period before trying again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_open_the_upstream_breaker() {
    let Some(mut broker) = broker("breaker", BrokerConfig::default()) else {
        return;
    };
    tokio::task::block_in_place(|| broker.stop());
    let logs = CapturedLogs::default();
    let eliot = Eliot::start_logged(
        |c| {
            upstream_of(c, &broker, "breaker");
            c.breakers.upstream.failure_threshold = 3;
            c.breakers.upstream.open_for = Duration::from_secs(5);
        },
        logs.logger(),
    );
    let opened = eventually_async(WITHIN, || async {
        let health = eliot.health().await;
        health
            .breaker("upstream")
            .is_some_and(|b| b.state == eliot_actors::BreakerState::Open)
    })
    .await;
    assert!(opened, "{:?}", eliot.health().await.breakers);
    let delays = retry_delays_ms(&logs);
    assert!(
        delays[2] >= 4_000,
        "the third failure waits the open period: {delays:?}"
    );
}
