//! Eliot's outbound packets, written with rumqttc's v4 and v5 encoders.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

use super::packet::*;

pub(super) fn encode_v4(packet: Outbound, dst: &mut BytesMut) -> Result<(), String> {
    let written = match packet {
        Outbound::ConnAck {
            code,
            session_present,
            ..
        } => {
            let code = match code {
                ConnectCode::Accepted => v4::ConnectReturnCode::Success,
                ConnectCode::UnsupportedProtocol => v4::ConnectReturnCode::RefusedProtocolVersion,
                ConnectCode::ClientIdRejected => v4::ConnectReturnCode::BadClientId,
                ConnectCode::BadCredentials => v4::ConnectReturnCode::BadUserNamePassword,
                ConnectCode::NotAuthorized => v4::ConnectReturnCode::NotAuthorized,
                // 3.1.1 has no authentication method: the refusal cannot happen there.
                ConnectCode::ServerUnavailable
                | ConnectCode::QuotaExceeded
                | ConnectCode::BadAuthenticationMethod => v4::ConnectReturnCode::ServiceUnavailable,
            };
            v4::ConnAck::new(code, session_present).write(dst)
        }
        Outbound::PubAck(pkid) => v4::PubAck::new(pkid).write(dst),
        Outbound::PubRec(pkid) => v4::PubRec::new(pkid).write(dst),
        Outbound::PubComp(pkid) => v4::PubComp::new(pkid).write(dst),
        Outbound::SubAckRefused { pkid, filters, .. } => {
            v4::SubAck::new(pkid, vec![v4::SubscribeReasonCode::Failure; filters]).write(dst)
        }
        Outbound::UnsubAck { pkid, .. } => v4::UnsubAck::new(pkid).write(dst),
        Outbound::PingResp => v4::PingResp.write(dst),
        // MQTT 3.1.1 has no server-sent DISCONNECT: the server just closes.
        Outbound::Disconnect(_) => Ok(0),
    };
    written.map(drop).map_err(|e| e.to_string())
}

/// Writes `packet` as the v5 peer allows: without a reason string when it is too large
/// with one, and not at all when it is too large even so (§3.1.2.11.4: "discard it").
pub(super) fn encode_v5(
    packet: Outbound,
    dst: &mut BytesMut,
    peer: PeerLimits,
) -> Result<(), String> {
    let mut scratch = BytesMut::new();
    write_v5(packet.clone(), &mut scratch, peer.problem_information)?;
    let fits = |len: usize| peer.max_packet_size.is_none_or(|max| len <= max as usize);
    if !fits(scratch.len()) {
        scratch.clear();
        write_v5(packet, &mut scratch, false)?;
        if !fits(scratch.len()) {
            return Ok(());
        }
    }
    dst.extend_from_slice(&scratch);
    Ok(())
}

/// Writes `packet`; `reasons` says whether reason strings may go along.
fn write_v5(packet: Outbound, dst: &mut BytesMut, reasons: bool) -> Result<(), String> {
    let written = match packet {
        Outbound::ConnAck {
            code,
            session_present,
            assigned_client_id,
            limits,
            reason,
        } => {
            let code = match code {
                ConnectCode::Accepted => v5::ConnectReturnCode::Success,
                ConnectCode::UnsupportedProtocol => {
                    v5::ConnectReturnCode::UnsupportedProtocolVersion
                }
                ConnectCode::ClientIdRejected => v5::ConnectReturnCode::ClientIdentifierNotValid,
                ConnectCode::ServerUnavailable => v5::ConnectReturnCode::ServerUnavailable,
                ConnectCode::QuotaExceeded => v5::ConnectReturnCode::QuotaExceeded,
                ConnectCode::BadCredentials => v5::ConnectReturnCode::BadUserNamePassword,
                ConnectCode::NotAuthorized => v5::ConnectReturnCode::NotAuthorized,
                ConnectCode::BadAuthenticationMethod => {
                    v5::ConnectReturnCode::BadAuthenticationMethod
                }
            };
            let accepted = code == v5::ConnectReturnCode::Success;
            // An accepted connection learns the limits; a refused one only why.
            let properties = (accepted || reason.is_some()).then(|| v5::ConnAckProperties {
                session_expiry_interval: None,
                receive_max: accepted.then_some(limits.receive_maximum),
                max_qos: None,
                retain_available: None,
                max_packet_size: accepted.then_some(limits.max_packet_size),
                assigned_client_identifier: assigned_client_id,
                topic_alias_max: None,
                reason_string: reason.filter(|_| reasons),
                user_properties: Vec::new(),
                wildcard_subscription_available: accepted.then_some(0),
                subscription_identifiers_available: accepted.then_some(0),
                shared_subscription_available: accepted.then_some(0),
                server_keep_alive: None,
                response_information: None,
                server_reference: None,
                authentication_method: None,
                authentication_data: None,
            });
            v5::ConnAck {
                session_present,
                code,
                properties,
            }
            .write(dst)
        }
        Outbound::PubAck(pkid) => v5::PubAck::new(pkid, None).write(dst),
        Outbound::PubRec(pkid) => v5::PubRec::new(pkid, None).write(dst),
        Outbound::PubComp(pkid) => v5::PubComp::new(pkid, None).write(dst),
        Outbound::SubAckRefused {
            pkid,
            filters,
            explain,
        } => v5::SubAck {
            pkid,
            return_codes: vec![v5::SubscribeReasonCode::ImplementationSpecific; filters],
            properties: (reasons && explain).then(|| v5::SubAckProperties {
                reason_string: Some(
                    "Eliot ingests telemetry; it does not deliver messages to subscribers".into(),
                ),
                user_properties: Vec::new(),
            }),
        }
        .write(dst),
        Outbound::UnsubAck { pkid, filters } => v5::UnsubAck {
            pkid,
            reasons: vec![v5::UnsubAckReason::NoSubscriptionExisted; filters],
            properties: None,
        }
        .write(dst),
        Outbound::PingResp => v5::PingResp::write(dst),
        Outbound::Disconnect(reason) => {
            use v5::DisconnectReasonCode as R;
            let (code, why) = match reason {
                CloseReason::ProtocolError => (R::ProtocolError, "protocol error"),
                CloseReason::MalformedPacket => (R::MalformedPacket, "malformed packet"),
                CloseReason::PacketTooLarge => (
                    R::PacketTooLarge,
                    "packet larger than the Maximum Packet Size",
                ),
                CloseReason::KeepAliveTimeout => (
                    R::KeepAliveTimeout,
                    "nothing received for 1.5 times the keep-alive",
                ),
                CloseReason::SessionTakenOver => (
                    R::SessionTakenOver,
                    "another connection took this client id",
                ),
                CloseReason::ServerShuttingDown => (R::ServerShuttingDown, "server shutting down"),
                CloseReason::ServerBusy => (R::ServerBusy, "a message could not be stored"),
                CloseReason::QuotaExceeded => (R::QuotaExceeded, "too many rejected messages"),
                CloseReason::TopicNameInvalid => (R::TopicNameInvalid, "invalid topic name"),
                CloseReason::TopicAliasInvalid => {
                    (R::TopicAliasInvalid, "topic aliases are not allowed")
                }
                CloseReason::NotAuthorized => {
                    (R::NotAuthorized, "this device's credentials were revoked")
                }
            };
            // The reason string also keeps rumqttc's writer on its consistent path: it
            // miscounts a DISCONNECT without properties, and writes one whose length
            // happens to be 2 as a bare DISCONNECT.
            v5::Disconnect {
                reason_code: code,
                properties: Some(v5::DisconnectProperties {
                    session_expiry_interval: None,
                    reason_string: Some(why.to_owned()),
                    user_properties: Vec::new(),
                    server_reference: None,
                }),
            }
            .write(dst)
        }
    };
    written.map(drop).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::codec::MqttCodec;
    use tokio_util::codec::Encoder;

    #[test]
    fn a_v5_disconnect_round_trips_with_its_reason() {
        let mut codec = MqttCodec::for_version(Version::V5, 1024);
        let mut buf = BytesMut::new();
        codec
            .encode(Outbound::Disconnect(CloseReason::PacketTooLarge), &mut buf)
            .unwrap();
        let packet = v5::Packet::read(&mut buf, None).unwrap();
        let v5::Packet::Disconnect(d) = packet else {
            panic!("{packet:?}")
        };
        assert_eq!(d.reason_code, v5::DisconnectReasonCode::PacketTooLarge);
    }
}
