//! The upstream broker mode against real Mosquitto brokers, each started by the test on a
//! free loopback port with a generated configuration (and certificates made by rcgen).
//! Without Mosquitto, each test says it was skipped and why; under CI it fails instead.

#[path = "../common/mod.rs"]
mod common;

mod at_least_once;
mod config;
mod harness;
mod modes;
mod reconnect;
mod shared;

use std::path::Path;
use std::time::Duration;

use common::mosquitto::{BrokerConfig, Mosquitto};
use common::*;
use eliot::config::Config;
use eliot_actors::LinkHealth;
use rumqttc::QoS;

/// A broker, started and ready, or `None` (the test was skipped) without Mosquitto.
fn broker(test: &str, config: BrokerConfig) -> Option<Mosquitto> {
    let bin = common::mosquitto::require_mosquitto(test)?;
    let mut broker = Mosquitto::start(&bin, config);
    broker.wait_ready().expect("mosquitto ready");
    Some(broker)
}

/// Eliot in the upstream mode alone, subscribed to `broker` over plain TCP, with short
/// reconnect delays.
fn upstream_of(config: &mut Config, broker: &Mosquitto, client_id: &str) {
    config.mqtt.enabled = false;
    let up = &mut config.upstream;
    up.enabled = true;
    up.host = "127.0.0.1".into();
    up.port = broker.port().into();
    up.tls = false;
    up.client_id = client_id.into();
    up.keepalive = Duration::from_secs(10);
    up.backoff_initial = Duration::from_millis(100);
    up.backoff_max = Duration::from_secs(2);
    // The breaker would pause reconnects longer than these tests wait.
    config.breakers.upstream.failure_threshold = 50;
}

/// The same, as a configuration file for the `eliot` binary.
fn upstream_file(dir: &Path, broker: &Mosquitto, client_id: &str, extra: &str) -> String {
    let path = dir.join("upstream.toml");
    let text = format!(
        "[upstream]\nenabled = true\nhost = \"127.0.0.1\"\nport = {}\ntls = false\n\
         client_id = \"{client_id}\"\nkeepalive = \"10s\"\nbackoff_initial = \"100ms\"\n\
         backoff_max = \"2s\"\n{extra}\n[breakers.upstream]\nfailure_threshold = 50\n",
        broker.port()
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Waits until the broker has answered the subscriptions of Eliot's connection 0.
fn subscribed(broker: &Mosquitto, client_id: &str) {
    let line = format!("Sending SUBACK to {client_id}-0");
    assert!(
        broker.wait_for_log(&line, Duration::from_secs(15)),
        "{line} in the broker's log:\n{}",
        broker.log()
    );
}

/// A device publishing straight to the broker.
fn broker_device(broker: &Mosquitto, id: &str) -> Device {
    Device::connect(broker.addr(), id)
}

async fn publish(device: &Device, name: &str, n: u64) {
    device
        .client
        .publish(topic(name), QoS::AtLeastOnce, false, reading(name, n))
        .await
        .unwrap();
}

fn stored(eliot: &Eliot) -> i64 {
    eliot
        .db()
        .query_row("SELECT count(*) FROM readings", [], |r| r.get(0))
        .unwrap()
}

async fn wait_stored(eliot: &Eliot, count: i64, within: Duration) -> bool {
    eventually(within, || stored(eliot) >= count).await
}

/// The first upstream connection's health, once `check` holds (at most `within`).
async fn link_when(
    eliot: &Eliot,
    within: Duration,
    check: impl Fn(&LinkHealth) -> bool,
) -> LinkHealth {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let health = eliot.health().await;
        let link = health.upstream.first().cloned();
        let late = tokio::time::Instant::now() >= deadline;
        match link {
            Some(link) if check(&link) || late => return link,
            None if late => panic!("no upstream link in health: {health:?}"),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
