//! What a hostile client sends, and what Eliot does about it: the input is refused or
//! kept as a dead letter with a short reason, and nothing else is disturbed. Each test
//! states the attack it plays; one file per family.

#[path = "../common/mod.rs"]
mod common;

#[path = "../../actors/tests/fuzz_support/mod.rs"]
mod fuzz_support;

// The benchmark's reading of a process's CPU time, for the test of a listener that must not spin.
#[path = "../../examples/benchmark/sampling.rs"]
#[allow(dead_code)]
mod sampling;

mod crash;
mod exhaust;
mod lies;
mod mqtt;
mod slots;
mod store;
mod wills;

use std::time::{Duration, Instant};

use common::scripted::{connect4, connect5, Raw4, Raw5};
use common::*;
use rumqttc::mqttbytes::{self as m4, v4};
use rumqttc::v5::mqttbytes::{self as m5, v5};
use rumqttc::QoS;

/// Nothing restarted, health is not `failed`, and a well-behaved device is still served.
/// A device no attack used: one that did (the fuzz corpus's `robot_001`) may rightly be in
/// a cool-down, its breaker tripped by what was sent in its name.
async fn still_serving(eliot: &Eliot) {
    let health = eliot.health().await;
    assert_ne!(health.status, eliot_actors::Status::Failed, "{health:?}");
    assert!(
        health.children.iter().all(|c| c.restarts == 0),
        "{health:?}"
    );
    let mut fine = Device::connect(eliot.addr, "robot_bystander");
    let stored = fine
        .publish_all(
            "robot_bystander",
            vec![reading("robot_bystander", 1)],
            QoS::AtLeastOnce,
        )
        .await;
    assert_eq!(stored, 1);
}

/// `payload` published at QoS 1 once from each of `count` connections; each is acked.
async fn from_each_connection(eliot: &Eliot, count: usize, payload: &str) {
    for n in 0..count {
        let mut device = Device::connect(eliot.addr, &format!("attacker_{n}"));
        let sent = device
            .publish_all("robot_666", vec![payload.to_owned()], QoS::AtLeastOnce)
            .await;
        assert_eq!(sent, 1, "acked, as a dead letter");
        device.disconnect().await;
    }
}

/// Lines of Eliot's JSON log at `log` that are the event `name`.
pub(crate) fn logged(log: &std::path::Path, name: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["event"] == name)
        .collect()
}
