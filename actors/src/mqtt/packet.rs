//! The packets Eliot's session logic speaks, the same for MQTT 3.1.1 and 5.
//!
//! The codec turns rumqttc's v4 and v5 packet structs into these and back, so the
//! session logic in `device_connection.rs` is written once.

use bytes::Bytes;

/// The protocol a connection negotiated in its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V4,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl Version {
    pub fn name(self) -> &'static str {
        match self {
            Version::V4 => "3.1.1",
            Version::V5 => "5.0",
        }
    }
}

/// The delivery guarantee, named as the MQTT specification names it.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QoS {
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

/// A CONNECT, reduced to what the session needs. The password is never kept: there is
/// nothing to leak into a log or a `Debug` print.
#[derive(Debug, Clone, PartialEq)]
pub struct Connect {
    pub version: Version,
    pub client_id: String,
    /// Clean session (3.1.1) or clean start (5).
    pub clean_start: bool,
    /// Seconds; 0 disables the keep-alive check.
    pub keep_alive: u16,
    pub will: Option<Will>,
    pub username: Option<String>,
    /// Never logged: `Secret`'s `Debug` shows nothing of it.
    pub password: Option<crate::secret::Secret>,
    /// v5 Session Expiry Interval, seconds.
    pub session_expiry: Option<u32>,
    /// v5 Authentication Method: Eliot supports none, so a CONNECT naming one is refused.
    pub authentication_method: Option<String>,
    /// What the client asked of the packets Eliot sends it (v5).
    pub peer: PeerLimits,
}

/// A v5 client's limits on what it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerLimits {
    /// Largest packet it accepts; a larger one must not be sent [MQTT-3.1.2-24].
    pub max_packet_size: Option<u32>,
    /// False when it sent Request Problem Information = 0: no reason strings, except on a
    /// CONNACK or DISCONNECT [MQTT-3.1.2-29].
    pub problem_information: bool,
}

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits {
            max_packet_size: None,
            problem_information: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Will {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// v5 Will Delay Interval, seconds (0: at once).
    pub delay: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    /// Packet identifier; 0 for QoS 0.
    pub pkid: u16,
    pub dup: bool,
    pub retain: bool,
}

/// A packet a device sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Connect(Connect),
    Publish(Publish),
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    Subscribe {
        pkid: u16,
        filters: usize,
    },
    Unsubscribe {
        pkid: u16,
        filters: usize,
    },
    PingReq,
    /// `with_will`: a v5 DISCONNECT with any reason but 0x00 (Normal disconnection) keeps
    /// the will, which is then published (0x04 asks for it by name; §3.14.4).
    Disconnect {
        with_will: bool,
        /// v5: a new Session Expiry Interval for the session, from now on.
        session_expiry: Option<u32>,
    },
    /// A packet over the size limit, announced by its header; the codec discards its
    /// bytes instead of reading them into memory.
    TooLarge {
        size: usize,
        max: usize,
    },
    /// A packet only a server may send (CONNACK, SUBACK, ...) or v5 AUTH, which Eliot
    /// does not support: a protocol error.
    Unexpected(&'static str),
    /// A PUBLISH the protocol forbids, whatever its payload: what is wrong, and the close
    /// it calls for (an empty or wildcard topic, 0x90; a topic alias, 0x94).
    InvalidPublish {
        problem: &'static str,
        close: CloseReason,
    },
}

/// The CONNACK verdict, mapped to the right code for each protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectCode {
    Accepted,
    UnsupportedProtocol,
    ClientIdRejected,
    ServerUnavailable,
    /// The device's breaker is open (v5: 0x97 Quota exceeded; 3.1.1: 0x03 Server
    /// unavailable, the closest it has).
    QuotaExceeded,
    /// v5 enhanced authentication, which Eliot does not support (0x8C).
    BadAuthenticationMethod,
    /// A wrong secret, or an unknown device (v5 0x86, 3.1.1 0x04).
    BadCredentials,
    /// No acceptable credentials, or a certificate naming another device (v5 0x87,
    /// 3.1.1 0x05).
    NotAuthorized,
}

impl ConnectCode {
    /// A stable name, for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            ConnectCode::Accepted => "accepted",
            ConnectCode::UnsupportedProtocol => "unsupported_protocol",
            ConnectCode::ClientIdRejected => "client_id_rejected",
            ConnectCode::ServerUnavailable => "server_unavailable",
            ConnectCode::QuotaExceeded => "quota_exceeded",
            ConnectCode::BadAuthenticationMethod => "bad_authentication_method",
            ConnectCode::BadCredentials => "bad_credentials",
            ConnectCode::NotAuthorized => "not_authorized",
        }
    }
}

/// Why the server closes a connection (sent as a v5 DISCONNECT; 3.1.1 just closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ProtocolError,
    MalformedPacket,
    PacketTooLarge,
    KeepAliveTimeout,
    SessionTakenOver,
    ServerShuttingDown,
    ServerBusy,
    /// The device's breaker tripped (too many rejected messages).
    QuotaExceeded,
    /// A PUBLISH topic that is empty or holds a wildcard (one holding U+0000 is a
    /// malformed packet).
    TopicNameInvalid,
    /// A topic alias: this server allows none.
    TopicAliasInvalid,
    /// The device's credentials were revoked (its secret rotated, or it was removed).
    NotAuthorized,
}

/// What a v5 CONNACK tells the client about this server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub receive_maximum: u16,
    pub max_packet_size: u32,
}

/// A packet Eliot sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    ConnAck {
        code: ConnectCode,
        session_present: bool,
        /// Set when the client sent an empty client id and the server chose one (v5).
        assigned_client_id: Option<String>,
        limits: ServerLimits,
        /// Why a refusal (v5 reason string; 3.1.1 has nowhere to say it).
        reason: Option<String>,
    },
    PubAck(u16),
    PubRec(u16),
    PubComp(u16),
    /// Eliot is not a broker: every subscription is refused with a failure code.
    SubAckRefused {
        pkid: u16,
        filters: usize,
        /// Say why (a v5 reason string): on a connection's first SUBACK only, so that a
        /// 9-byte SUBSCRIBE never buys more than a few bytes of reply.
        explain: bool,
    },
    UnsubAck {
        pkid: u16,
        filters: usize,
    },
    PingResp,
    Disconnect(CloseReason),
}
