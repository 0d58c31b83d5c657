//! The operations endpoints over real HTTP (`ureq`), against a running Eliot fed by real
//! MQTT clients: what `/health`, `/ready` and `/metrics` answer, what they count, and that
//! they cannot be used to slow ingestion down.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use prometheus_parse::{Scrape, Value};
use rumqttc::QoS;

/// The scrape, parsed by a Prometheus text-format parser.
async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format")
}

/// The value of `name` with exactly `labels` (a histogram's count); 0 when absent.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: HashMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && *s.labels == wanted)
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => panic!("no summaries here"),
        })
        .sum()
}

/// 20 valid readings and 5 invalid ones, all QoS 1, move each counter by exactly what was
/// sent: received 25, stored 20, dead-lettered 5 (class `json`), acked 25, and 25
/// receive→commit observations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_move_by_exactly_the_messages_sent_valid_and_bad() {
    let eliot = Eliot::start();
    let before = scrape(eliot.http_addr).await;
    assert_eq!(
        value(&before, "eliot_messages_received_total", &[("qos", "1")]),
        0.0
    );

    let mut device = Device::connect(eliot.addr, "robot_001");
    let mut payloads: Vec<String> = (0..20).map(|n| reading("robot_001", n)).collect();
    payloads.extend((0..5).map(|n| format!("not json {n}")));
    assert_eq!(
        device
            .publish_all("robot_001", payloads, QoS::AtLeastOnce)
            .await,
        25
    );

    let after = scrape(eliot.http_addr).await;
    let counted = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels);
    assert_eq!(
        counted("eliot_messages_received_total", &[("qos", "1")]),
        25.0
    );
    assert_eq!(
        counted("eliot_messages_received_total", &[("qos", "0")]),
        0.0
    );
    assert_eq!(counted("eliot_messages_processed_total", &[]), 20.0);
    assert_eq!(counted("eliot_readings_stored_total", &[]), 20.0);
    assert_eq!(
        counted("eliot_messages_rejected_total", &[("class", "json")]),
        5.0
    );
    assert_eq!(counted("eliot_dead_letters_stored_total", &[]), 5.0);
    assert_eq!(counted("eliot_acks_sent_total", &[("qos", "1")]), 25.0);
    assert_eq!(counted("eliot_receive_to_commit_seconds", &[]), 25.0);
    assert_eq!(counted("eliot_connections_opened_total", &[]), 1.0);
    assert_eq!(counted("eliot_connections_open", &[]), 1.0);
    assert_eq!(
        counted("eliot_in_flight_bytes", &[]),
        0.0,
        "everything acked"
    );
    assert!(counted("process_resident_memory_bytes", &[]) > 0.0);
    assert!(counted("process_open_fds", &[]) > 0.0);
    assert_eq!(eliot.count("readings"), 20);

    // The store's gauges follow its commits (set just after each one's acks).
    eventually_async(Duration::from_secs(5), || async {
        let now = scrape(eliot.http_addr).await;
        value(&now, "eliot_store_unmerged_readings", &[]) == 20.0
    })
    .await;
    let store = scrape(eliot.http_addr).await;
    assert_eq!(value(&store, "eliot_store_unmerged_readings", &[]), 20.0);
    assert!(value(&store, "eliot_store_unmerged_bytes", &[]) >= 20.0 * 64.0);
    assert!(value(&store, "eliot_store_wal_bytes", &[]) > 0.0);
}

/// `/metrics` parses as the Prometheus text format, and no label or line carries the id of
/// a device that connected and published, valid and invalid messages alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_carry_no_device_id() {
    let eliot = Eliot::start();
    let mut device = Device::connect(eliot.addr, "robot_secret_007");
    let payloads = vec![reading("robot_secret_007", 1), "{".to_owned()];
    assert_eq!(
        device
            .publish_all("robot_secret_007", payloads, QoS::AtLeastOnce)
            .await,
        2
    );
    let (_, text) = get(eliot.http_addr, "/metrics").await;
    assert!(!text.contains("robot_secret_007"), "{text}");
    let parsed = scrape(eliot.http_addr).await;
    assert!(
        parsed.samples.len() > 30,
        "{} samples",
        parsed.samples.len()
    );
    for sample in &parsed.samples {
        for (key, value) in sample.labels.iter() {
            assert!(
                !value.contains("robot"),
                "{}{{{key}={value}}}",
                sample.metric
            );
        }
    }
}

/// `/health` is 200 with every child and the store's figures; after a processor panics on
/// a poison message, the message is a dead letter of class `panic` in `/metrics`, the
/// panic is counted, and nothing restarts (see tests/supervision.rs for a restart shown
/// in `/health`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_after_a_panic_on_a_poison_message() {
    let eliot = Eliot::start_with(|c| c.processors.count = 1);
    let (status, health) = json(eliot.http_addr, "/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["breakers"][0]["name"], "store");
    assert!(health["store"]["backlog_rows"].is_u64(), "{health}");
    let child = |health: &serde_json::Value, name: &str| {
        health["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no child {name}: {health}"))
    };
    assert_eq!(child(&health, "processor-0")["restarts"], 0);
    assert_eq!(child(&health, "http")["state"], "running");

    fail::cfg("processor::poison", "panic(poison pill)").unwrap();
    let mut device = Device::connect(eliot.addr, "robot_002");
    let sent = device
        .publish_all("robot_002", vec!["POISON".to_owned()], QoS::AtLeastOnce)
        .await;
    fail::remove("processor::poison");
    assert_eq!(sent, 1, "the poison message is acked as a dead letter");

    let (_, health) = json(eliot.http_addr, "/health").await;
    assert_eq!(child(&health, "processor-0")["restarts"], 0, "{health}");
    assert_eq!(health["status"], "healthy");
    let metrics = scrape(eliot.http_addr).await;
    assert_eq!(value(&metrics, "eliot_panics_total", &[]), 1.0);
    assert_eq!(
        value(
            &metrics,
            "eliot_messages_rejected_total",
            &[("class", "panic")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &metrics,
            "eliot_restarts_total",
            &[("child", "processor-0")]
        ),
        0.0
    );
}

/// While another connection holds SQLite's write lock, a reading waits for its commit:
/// once it has waited longer than `http.ready_max_backlog_age`, `/ready` answers 503 and
/// says the store is behind. When the lock goes, the reading is stored and acked, and
/// `/ready` answers 200 again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_turns_503_while_the_database_is_locked_and_200_after() {
    let eliot = Eliot::start_with(|c| c.http.ready_max_backlog_age = Duration::from_millis(500));
    let (status, ready) = json(eliot.http_addr, "/ready").await;
    assert_eq!(
        (status, &ready),
        (200, &serde_json::json!({ "ready": true }))
    );

    let mut device = Device::connect(eliot.addr, "robot_003");
    device
        .expect_event(Duration::from_secs(10), |e| {
            matches!(e, Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))))
        })
        .await
        .unwrap();
    let lock = eliot.db();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    device
        .client
        .publish(
            topic("robot_003"),
            QoS::AtLeastOnce,
            false,
            reading("robot_003", 1),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let reasons = loop {
        let (status, ready) = json(eliot.http_addr, "/ready").await;
        if status == 503 {
            break ready["reasons"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "/ready turns 503 while the store cannot commit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(reasons.to_string().contains("the store has"), "{reasons}");

    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    let acked = device
        .expect_event(Duration::from_secs(30), |e| {
            matches!(e, Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))))
        })
        .await;
    assert!(acked.is_ok(), "the reading is acked once the lock is gone");
    let ready_again = eventually_async(Duration::from_secs(30), || async {
        get(eliot.http_addr, "/ready").await.0 == 200
    })
    .await;
    assert!(ready_again, "/ready answers 200 again");
    assert_eq!(eliot.count("readings"), 1);
}

/// An unknown path is a JSON 404; another method than GET on an endpoint is a JSON 405
/// with `Allow: GET`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods_get_json_errors() {
    let eliot = Eliot::start();
    let (status, body) = get(eliot.http_addr, "/devices").await;
    assert_eq!(status, 404);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "not found");
    for path in ["/health", "/ready", "/metrics"] {
        let (status, body) = request("POST", eliot.http_addr, path).await;
        assert_eq!(status, 405, "POST {path}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "method not allowed");
    }
}

/// 150 HTTP clients that open a connection and never finish their request (more than the
/// worker takes at once) do not slow devices down: 200 QoS 1 readings are all acked
/// meanwhile. The slow clients are closed after `http.request_timeout`, and `/health`
/// answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_http_clients_cannot_slow_ingestion() {
    let eliot = Eliot::start_with(|c| {
        c.http.request_timeout = Duration::from_secs(1);
        // Fewer than the clients (the default, 256, leaves room for dashboards).
        c.http.max_connections = 64;
    });
    let mut slow = Vec::new();
    for _ in 0..150 {
        let mut client = std::net::TcpStream::connect(eliot.http_addr).unwrap();
        client
            .write_all(b"GET /health HTTP/1.1\r\nHost: eli")
            .unwrap();
        slow.push(client);
    }
    let started = Instant::now();
    let mut device = Device::connect(eliot.addr, "robot_004");
    let payloads = (0..200).map(|n| reading("robot_004", n)).collect();
    assert_eq!(
        device
            .publish_all("robot_004", payloads, QoS::AtLeastOnce)
            .await,
        200
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(eliot.count("readings"), 200);

    let answered = eventually_async(Duration::from_secs(15), || async {
        get(eliot.http_addr, "/health").await.0 == 200
    })
    .await;
    assert!(answered, "/health answers once the slow clients time out");
    drop(slow);
}
