//! The `[mqtt]` section: the device endpoint's limits.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::settings::Problems;

/// The `[mqtt]` section: Eliot's own MQTT listener for devices.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    /// False: no device endpoint (the upstream broker mode alone).
    pub enabled: bool,
    /// Address the device endpoint listens on.
    pub listen: SocketAddr,
    /// Largest packet a device may send, in bytes, fixed header included (MQTT 5's Maximum
    /// Packet Size); larger packets are refused and the connection closed (v5: DISCONNECT
    /// 0x95 first).
    pub max_packet_size: u32,
    /// PUBLISHes one connection may have unacked; also sent as the v5 Receive Maximum.
    /// When it is full, Eliot stops reading that socket until an ack goes out.
    pub max_in_flight: u16,
    /// Payload bytes all connections together may have read and not yet acked. When it
    /// is used up, Eliot stops reading sockets until acks go out: with
    /// `max_connections` and `max_packet_size`, it bounds Eliot's memory.
    pub max_in_flight_bytes: u32,
    /// Most simultaneous device connections; more are closed on accept.
    pub max_connections: usize,
    /// Longest client id accepted, in bytes; a longer one is refused at CONNECT (v5: 0x85,
    /// 3.1.1: 0x02), so that no id fills logs, registries or the sessions table.
    pub max_client_id_len: usize,
    /// Longest a packet may take to arrive whole once it has started; a device that stops
    /// half way is closed, even with a keep-alive of 0 (it would hold a buffer for ever).
    #[serde(with = "humantime_serde")]
    pub packet_timeout: Duration,
    /// Silence after which the OS starts probing a device's socket (TCP keepalive).
    #[serde(with = "humantime_serde")]
    pub tcp_keepalive: Duration,
    /// How long a new socket may take to send its CONNECT, and then admission to answer
    /// it (a stuck store cannot hold a handshake open).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long a new socket may stay silent: one that has not sent a byte of its CONNECT
    /// by then is closed (an idle socket holds a slot of `max_connections`). At most
    /// `connect_timeout` in effect.
    #[serde(with = "humantime_serde")]
    pub first_byte_timeout: Duration,
    /// Sockets from one address yet to send their CONNECT, at most; more are closed at
    /// once.
    pub max_pending_per_address: u32,
}

impl EndpointSettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.at_least("max_packet_size", self.max_packet_size, 1024);
        problems.at_least("max_in_flight", self.max_in_flight, 1);
        problems.at_least("max_in_flight_bytes", self.max_in_flight_bytes, 1);
        problems.at_least("max_connections", self.max_connections, 1);
        problems.check(
            (23..=65_535).contains(&self.max_client_id_len),
            "max_client_id_len",
            "expected 23 (what MQTT requires servers to accept) to 65535",
        );
        problems.positive("connect_timeout", self.connect_timeout);
        problems.at_least("max_pending_per_address", self.max_pending_per_address, 1);
        // Longer than connect_timeout, it is that (the CONNECT's own deadline comes first).
        problems.positive("first_byte_timeout", self.first_byte_timeout);
        problems.positive("packet_timeout", self.packet_timeout);
        problems.check(
            self.tcp_keepalive >= Duration::from_secs(1),
            "tcp_keepalive",
            "expected at least 1s",
        );
    }
}
