//! rumqttc's v4 and v5 packets, turned into Eliot's one packet vocabulary.

use bytes::Bytes;
use rumqttc::mqttbytes::{self as m, v4};
use rumqttc::v5::mqttbytes::{self as m5, v5};

use super::codec::CodecError;
use super::packet::*;

/// A v5 DISCONNECT of 0 or 1 bytes after its fixed header, which MQTT 5 allows
/// (§3.14.2.1: no reason code means 0x00; §3.14.2.2.1: no property length means none)
/// and rumqttc's reader refuses. Longer ones go to rumqttc.
pub(super) fn short_v5_disconnect(frame: &[u8]) -> Option<Inbound> {
    match frame {
        [0xE0, 0x00] => Some(Inbound::Disconnect {
            with_will: false,
            session_expiry: None,
        }),
        [0xE0, 0x01, reason] => Some(Inbound::Disconnect {
            // §3.14.4: only Normal disconnection (0x00) discards the will.
            with_will: *reason != v5::DisconnectReasonCode::NormalDisconnection as u8,
            session_expiry: None,
        }),
        _ => None,
    }
}

fn qos_v4(q: m::QoS) -> QoS {
    match q {
        m::QoS::AtMostOnce => QoS::AtMostOnce,
        m::QoS::AtLeastOnce => QoS::AtLeastOnce,
        m::QoS::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn qos_v5(q: m5::QoS) -> QoS {
    match q {
        m5::QoS::AtMostOnce => QoS::AtMostOnce,
        m5::QoS::AtLeastOnce => QoS::AtLeastOnce,
        m5::QoS::ExactlyOnce => QoS::ExactlyOnce,
    }
}

pub(super) fn from_v4(packet: v4::Packet) -> Result<Inbound, CodecError> {
    Ok(match packet {
        v4::Packet::Connect(c) => Inbound::Connect(Connect {
            version: Version::V4,
            client_id: c.client_id,
            clean_start: c.clean_session,
            keep_alive: c.keep_alive,
            will: c.last_will.map(|w| Will {
                topic: w.topic,
                payload: own(w.message),
                qos: qos_v4(w.qos),
                retain: w.retain,
                delay: 0,
            }),
            password: c
                .login
                .as_ref()
                .map(|l| crate::secret::Secret::new(l.password.clone())),
            username: c.login.map(|l| l.username),
            session_expiry: None,
            authentication_method: None,
            peer: PeerLimits::default(),
        }),
        v4::Packet::Publish(p) => match topic_problem(&p.topic) {
            Some(invalid) => invalid,
            None => Inbound::Publish(Publish {
                topic: p.topic,
                payload: own(p.payload),
                qos: qos_v4(p.qos),
                pkid: p.pkid,
                dup: p.dup,
                retain: p.retain,
            }),
        },
        v4::Packet::PubAck(p) => Inbound::PubAck(p.pkid),
        v4::Packet::PubRec(p) => Inbound::PubRec(p.pkid),
        v4::Packet::PubRel(p) => Inbound::PubRel(p.pkid),
        v4::Packet::PubComp(p) => Inbound::PubComp(p.pkid),
        v4::Packet::Subscribe(s) => Inbound::Subscribe {
            pkid: s.pkid,
            filters: s.filters.len(),
        },
        v4::Packet::Unsubscribe(u) => Inbound::Unsubscribe {
            pkid: u.pkid,
            filters: u.topics.len(),
        },
        v4::Packet::PingReq => Inbound::PingReq,
        v4::Packet::Disconnect => Inbound::Disconnect {
            with_will: false,
            session_expiry: None,
        },
        v4::Packet::ConnAck(_) => Inbound::Unexpected("CONNACK"),
        v4::Packet::SubAck(_) => Inbound::Unexpected("SUBACK"),
        v4::Packet::UnsubAck(_) => Inbound::Unexpected("UNSUBACK"),
        v4::Packet::PingResp => Inbound::Unexpected("PINGRESP"),
    })
}

/// A payload in an allocation of its own. rumqttc's is a slice of the connection's read
/// buffer, which it would keep whole for as long as the message waits for its commit: a
/// flood of tiny messages during a store stall would pin a buffer each. The copy is the
/// size of the payload, and the byte budget counts exactly that.
fn own(payload: Bytes) -> Bytes {
    Bytes::copy_from_slice(&payload)
}

/// A v5 CONNECT's Receive Maximum and Maximum Packet Size of 0 are protocol errors
/// (§3.1.2.11.3, §3.1.2.11.4): a client could not receive a thing.
fn check_connect_properties(properties: Option<&v5::ConnectProperties>) -> Result<(), CodecError> {
    let Some(p) = properties else {
        return Ok(());
    };
    if p.receive_maximum == Some(0) {
        return Err(CodecError::Malformed(
            "CONNECT with a Receive Maximum of 0".into(),
        ));
    }
    if p.max_packet_size == Some(0) {
        return Err(CodecError::Malformed(
            "CONNECT with a Maximum Packet Size of 0".into(),
        ));
    }
    Ok(())
}

/// A PUBLISH topic must be at least one character, hold no wildcard ([MQTT-3.3.2-1],
/// [MQTT-3.3.2-2]) and no U+0000 ([MQTT-1.5.3-2] in 3.1.1, where the connection must be
/// closed; a malformed packet in 5.0, [MQTT-1.5.4-2]). What a device sent and why it
/// is closed for it, else `None`.
fn topic_problem(topic: &str) -> Option<Inbound> {
    let (problem, close) = if topic.is_empty() {
        (
            "a PUBLISH with an empty topic",
            CloseReason::TopicNameInvalid,
        )
    } else if topic.contains(['+', '#']) {
        (
            "a PUBLISH whose topic holds a wildcard (+ or #)",
            CloseReason::TopicNameInvalid,
        )
    } else if topic.contains('\0') {
        (
            "a PUBLISH whose topic holds U+0000",
            CloseReason::MalformedPacket,
        )
    } else {
        return None;
    };
    Some(Inbound::InvalidPublish { problem, close })
}

/// What a client may not put in a v5 PUBLISH's properties: a Subscription Identifier
/// ([MQTT-3.3.4-6]: only a server sends one), a Response Topic with a wildcard
/// ([MQTT-3.3.2-14]), or a topic alias (Eliot's CONNACK allows none: Topic Alias Maximum
/// absent is 0). Each is a protocol error.
fn publish_properties_problem(properties: Option<&v5::PublishProperties>) -> Option<Inbound> {
    let p = properties?;
    let (problem, close) = if p.topic_alias.is_some() {
        (
            "a topic alias, but this server allows none",
            CloseReason::TopicAliasInvalid,
        )
    } else if !p.subscription_identifiers.is_empty() {
        (
            "a PUBLISH from a client with a Subscription Identifier",
            CloseReason::ProtocolError,
        )
    } else if p
        .response_topic
        .as_ref()
        .is_some_and(|topic| topic.contains(['+', '#']))
    {
        (
            "a PUBLISH whose Response Topic holds a wildcard (+ or #)",
            CloseReason::ProtocolError,
        )
    } else {
        return None;
    };
    Some(Inbound::InvalidPublish { problem, close })
}

fn utf8(bytes: bytes::Bytes, what: &str) -> Result<String, CodecError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| CodecError::Malformed(format!("{what} is not UTF-8")))
}

pub(super) fn from_v5(packet: v5::Packet) -> Result<Inbound, CodecError> {
    if let v5::Packet::Connect(c, ..) = &packet {
        check_connect_properties(c.properties.as_ref())?;
    }
    Ok(match packet {
        v5::Packet::Connect(c, will, login) => Inbound::Connect(Connect {
            version: Version::V5,
            client_id: c.client_id,
            clean_start: c.clean_start,
            keep_alive: c.keep_alive,
            will: will
                .map(|w| {
                    Ok::<_, CodecError>(Will {
                        topic: utf8(w.topic, "will topic")?,
                        payload: own(w.message),
                        qos: qos_v5(w.qos),
                        retain: w.retain,
                        delay: w.properties.and_then(|p| p.delay_interval).unwrap_or(0),
                    })
                })
                .transpose()?,
            password: login
                .as_ref()
                .map(|l| crate::secret::Secret::new(l.password.clone())),
            username: login.map(|l| l.username),
            session_expiry: c
                .properties
                .as_ref()
                .and_then(|p| p.session_expiry_interval),
            peer: PeerLimits {
                max_packet_size: c.properties.as_ref().and_then(|p| p.max_packet_size),
                problem_information: c.properties.as_ref().and_then(|p| p.request_problem_info)
                    != Some(0),
            },
            authentication_method: c.properties.and_then(|p| p.authentication_method),
        }),
        v5::Packet::Publish(p) => {
            if let Some(invalid) = publish_properties_problem(p.properties.as_ref()) {
                return Ok(invalid);
            }
            let topic = utf8(p.topic, "topic")?;
            if let Some(invalid) = topic_problem(&topic) {
                return Ok(invalid);
            }
            Inbound::Publish(Publish {
                topic,
                payload: own(p.payload),
                qos: qos_v5(p.qos),
                pkid: p.pkid,
                dup: p.dup,
                retain: p.retain,
            })
        }
        v5::Packet::PubAck(p) => Inbound::PubAck(p.pkid),
        v5::Packet::PubRec(p) => Inbound::PubRec(p.pkid),
        v5::Packet::PubRel(p) => Inbound::PubRel(p.pkid),
        v5::Packet::PubComp(p) => Inbound::PubComp(p.pkid),
        v5::Packet::Subscribe(s) => Inbound::Subscribe {
            pkid: s.pkid,
            filters: s.filters.len(),
        },
        v5::Packet::Unsubscribe(u) => Inbound::Unsubscribe {
            pkid: u.pkid,
            filters: u.filters.len(),
        },
        v5::Packet::PingReq(_) => Inbound::PingReq,
        v5::Packet::Disconnect(d) => Inbound::Disconnect {
            with_will: d.reason_code != v5::DisconnectReasonCode::NormalDisconnection,
            session_expiry: d.properties.and_then(|p| p.session_expiry_interval),
        },
        v5::Packet::Auth(_) => Inbound::Unexpected("AUTH"),
        v5::Packet::ConnAck(_) => Inbound::Unexpected("CONNACK"),
        v5::Packet::SubAck(_) => Inbound::Unexpected("SUBACK"),
        v5::Packet::UnsubAck(_) => Inbound::Unexpected("UNSUBACK"),
        v5::Packet::PingResp(_) => Inbound::Unexpected("PINGRESP"),
    })
}
