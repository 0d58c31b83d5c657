//! The MQTT session as devices see it on the wire: handshakes, keep-alive, wills,
//! acks and their order, refused subscriptions, session takeover, and broken packets.
//! Mostly scripted devices (`common::scripted`), which send exactly the bytes a test
//! chooses and see exactly what the server answers and when it closes.
//!
//! One file per part of the session; the helpers they share are here.

#[path = "../common/mod.rs"]
mod common;

mod acks;
mod codec_edges;
mod handshake;
mod keep_alive;
mod malformed;
mod subscriptions;
mod takeover;
mod wills;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::scripted::{connect4, connect5, Next, Raw4, Raw5, PATIENCE};
use common::*;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::{v5, QoS as Q5};
use rumqttc::{Event, Packet, QoS};

/// The `data` column of every stored reading of `device`.
fn stored_data(eliot: &Eliot, device: &str) -> Vec<serde_json::Value> {
    let db = eliot.db();
    let mut stmt = db
        .prepare("SELECT data FROM readings WHERE device_id = ?1 ORDER BY ts")
        .unwrap();
    stmt.query_map([device], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|data| serde_json::from_str(&data.unwrap()).unwrap())
        .collect()
}

fn will4(device: &str, n: u64) -> v4::LastWill {
    v4::LastWill::new(topic(device), reading(device, n), QoS::AtLeastOnce, false)
}

fn will5(device: &str, n: u64) -> v5::LastWill {
    v5::LastWill::new(
        topic(device),
        reading(device, n),
        Q5::AtLeastOnce,
        false,
        None,
    )
}

fn disconnect_reason(packet: &v5::Packet) -> Option<v5::DisconnectReasonCode> {
    match packet {
        v5::Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    }
}
