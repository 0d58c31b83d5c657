//! The few MQTT 3.1.1 packets the field load needs, as bytes: CONNECT, QoS 1 PUBLISH and
//! DISCONNECT out; CONNACK and PUBACK in (and the other way round for the ack sink). Written
//! by hand rather than through a client library so that one task can pipeline hundreds of
//! PUBLISHes in one write and read the PUBACKs in bulk (the load generator must not be what
//! limits a 100,000 msg/s run), and so that a connection can cut its writes where it likes
//! (`packet_writer.rs`: one byte into a packet).

/// MQTT 3.1.1's protocol level.
const PROTOCOL_LEVEL: u8 = 4;
/// CONNECT flags: clean session (else a persistent one), no will, no credentials.
const CLEAN_SESSION: u8 = 0x02;
/// The DUP flag of a PUBLISH's first byte: a re-sent message.
const DUP: u8 = 0x08;

/// A packet read, as far as the load (or the ack sink) cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// CONNACK with its return code (0: accepted).
    ConnAck(u8),
    /// PUBACK of this packet id.
    PubAck(u16),
    Connect,
    /// PUBLISH, with its packet id at QoS 1 or 2.
    Publish(Option<u16>),
    Disconnect,
    /// Anything else (PINGRESP): ignored.
    Other,
}

/// Appends CONNECT for `client_id` (`keep_alive_s` 0 disables keep-alive); a clean session,
/// or one the server keeps across connections.
pub fn connect(out: &mut Vec<u8>, client_id: &str, keep_alive_s: u16, clean: bool) {
    let body_len = 2 + 4 + 1 + 1 + 2 + 2 + client_id.len();
    out.push(0x10);
    remaining_length(out, body_len);
    string(out, "MQTT");
    let flags = if clean { CLEAN_SESSION } else { 0 };
    out.extend_from_slice(&[PROTOCOL_LEVEL, flags]);
    out.extend_from_slice(&keep_alive_s.to_be_bytes());
    string(out, client_id);
}

/// Appends a QoS 1 PUBLISH of `payload` on `topic` with packet id `pkid` (not 0).
pub fn publish_qos1(out: &mut Vec<u8>, topic: &str, pkid: u16, payload: &[u8]) {
    debug_assert_ne!(pkid, 0, "packet id 0 is not allowed at QoS 1");
    out.push(0x32);
    remaining_length(out, 2 + topic.len() + 2 + payload.len());
    string(out, topic);
    out.extend_from_slice(&pkid.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Appends `publish` (one whole PUBLISH packet) with its DUP flag set: sent again.
pub fn publish_again(out: &mut Vec<u8>, publish: &[u8]) {
    out.push(publish[0] | DUP);
    out.extend_from_slice(&publish[1..]);
}

pub fn disconnect(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xE0, 0x00]);
}

/// Appends CONNACK (accepted, no session).
pub fn connack(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x20, 0x02, 0x00, 0x00]);
}

pub fn puback(out: &mut Vec<u8>, pkid: u16) {
    out.extend_from_slice(&[0x40, 0x02]);
    out.extend_from_slice(&pkid.to_be_bytes());
}

fn string(out: &mut Vec<u8>, text: &str) {
    let len = u16::try_from(text.len()).expect("an MQTT string is at most 65,535 bytes");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn remaining_length(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            return;
        }
    }
}

/// The fixed header's length and the remaining length of the packet `bytes` start with;
/// `None` while the remaining length is not all there. `Err` for a malformed length (the
/// peer is not speaking MQTT).
fn header_and_body(bytes: &[u8]) -> Result<Option<(usize, usize)>, String> {
    let (mut len, mut shift, mut header) = (0usize, 0u32, 1usize);
    loop {
        let Some(&byte) = bytes.get(header) else {
            return Ok(None);
        };
        len |= usize::from(byte & 0x7F) << shift;
        header += 1;
        if byte & 0x80 == 0 {
            return Ok(Some((header, len)));
        }
        shift += 7;
        if shift > 21 {
            return Err("a remaining length over 4 bytes".into());
        }
    }
}

/// Where the last packet of `packets` (whole packets, one after the other, as this module
/// writes them) starts.
pub fn last_packet_start(packets: &[u8]) -> usize {
    let mut start = 0;
    while let Ok(Some((header, body))) = header_and_body(&packets[start..]) {
        let next = start + header + body;
        if next >= packets.len() {
            break;
        }
        start = next;
    }
    start
}

/// Takes the first whole packet off the front of `buffer`, if it holds one. `Err` for a
/// malformed length (the server is not speaking MQTT).
pub fn next_packet(buffer: &mut bytes::BytesMut) -> Result<Option<Incoming>, String> {
    let Some(&first) = buffer.first() else {
        return Ok(None);
    };
    let Some((header, len)) = header_and_body(buffer)? else {
        return Ok(None);
    };
    if buffer.len() < header + len {
        return Ok(None);
    }
    let packet = buffer.split_to(header + len);
    let body = &packet[header..];
    let malformed = || format!("a malformed packet of type {}", first >> 4);
    Ok(Some(match (first >> 4, body) {
        (1, _) => Incoming::Connect,
        (2, [_, code]) => Incoming::ConnAck(*code),
        (3, [high, low, rest @ ..]) => {
            let topic_len = usize::from(u16::from_be_bytes([*high, *low]));
            let pkid = match (first >> 1) & 0x03 {
                0 => None,
                _ => match rest.get(topic_len..topic_len + 2) {
                    Some(&[h, l]) => Some(u16::from_be_bytes([h, l])),
                    _ => return Err(malformed()),
                },
            };
            Incoming::Publish(pkid)
        }
        (4, [high, low]) => Incoming::PubAck(u16::from_be_bytes([*high, *low])),
        (14, _) => Incoming::Disconnect,
        (2..=4, _) => return Err(malformed()),
        _ => Incoming::Other,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_reads_back_as_its_parts() {
        let mut out = Vec::new();
        publish_qos1(&mut out, "devices/a/telemetry", 7, &[b'x'; 200]);
        assert_eq!(out[0], 0x32);
        // 200 + 2 + 19 + 2 = 223: two length bytes.
        assert_eq!(&out[1..3], &[0xDF, 0x01]);
        assert_eq!(out.len(), 3 + 223);
    }

    #[test]
    fn a_publish_sent_again_differs_only_by_its_dup_flag() {
        let mut first = Vec::new();
        publish_qos1(&mut first, "devices/a/telemetry", 7, b"{}");
        let mut again = Vec::new();
        publish_again(&mut again, &first);
        assert_eq!(again[0], 0x3A);
        assert_eq!(again[1..], first[1..]);
    }

    #[test]
    fn a_publish_is_parsed_back_to_its_packet_id() {
        let mut out = Vec::new();
        publish_qos1(&mut out, "devices/a/telemetry", 513, b"{}");
        let mut buffer = bytes::BytesMut::from(&out[..]);
        assert_eq!(
            next_packet(&mut buffer),
            Ok(Some(Incoming::Publish(Some(513))))
        );
    }

    #[test]
    fn the_last_packet_is_found_after_whole_ones() {
        let mut out = Vec::new();
        publish_qos1(&mut out, "devices/a/telemetry", 1, &[b'x'; 200]);
        let second = out.len();
        publish_qos1(&mut out, "devices/a/telemetry", 2, b"{}");
        let third = out.len();
        disconnect(&mut out);
        assert_eq!(last_packet_start(&out), third);
        assert_eq!(last_packet_start(&out[..third]), second);
        assert_eq!(last_packet_start(&out[..second]), 0);
    }

    #[test]
    fn acks_are_taken_one_by_one_and_partial_ones_wait() {
        let mut buffer = bytes::BytesMut::from(&[0x20, 2, 0, 0, 0x40, 2, 1, 2, 0x40, 2][..]);
        assert_eq!(next_packet(&mut buffer), Ok(Some(Incoming::ConnAck(0))));
        assert_eq!(next_packet(&mut buffer), Ok(Some(Incoming::PubAck(258))));
        assert_eq!(next_packet(&mut buffer), Ok(None));
        buffer.extend_from_slice(&[0, 9]);
        assert_eq!(next_packet(&mut buffer), Ok(Some(Incoming::PubAck(9))));
    }
}
