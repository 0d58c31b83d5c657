//! The codec, packet by packet: split writes, limits, and what it refuses.

use super::*;

fn connect_bytes(version: u8) -> BytesMut {
    let mut buf = BytesMut::new();
    if version == 5 {
        let mut c = v5::Connect {
            keep_alive: 30,
            client_id: "dev-1".into(),
            clean_start: true,
            properties: None,
        };
        c.clean_start = false;
        v5::Packet::Connect(c, None, None)
            .write(&mut buf, None)
            .unwrap();
    } else {
        v4::Connect::new("dev-1").write(&mut buf).unwrap();
    }
    buf
}

#[test]
fn the_connect_decides_the_version() {
    for (level, version) in [(4, Version::V4), (5, Version::V5)] {
        let mut codec = MqttCodec::new(1024);
        let mut buf = connect_bytes(level);
        let Some(Inbound::Connect(c)) = codec.decode(&mut buf).unwrap() else {
            panic!("expected a CONNECT");
        };
        assert_eq!((c.version, c.client_id.as_str()), (version, "dev-1"));
        assert_eq!(codec.version(), Some(version));
        assert!(buf.is_empty());
    }
}

#[test]
fn a_payload_does_not_hold_on_to_the_read_buffer() {
    let mut buf = connect_bytes(4);
    let mut publish = v4::Publish::new(
        "devices/d/telemetry",
        rumqttc::mqttbytes::QoS::AtLeastOnce,
        "{}",
    );
    publish.pkid = 1;
    v4::Packet::Publish(publish)
        .write(&mut buf, usize::MAX)
        .unwrap();
    buf.extend_from_slice(&[0u8; 64 * 1024]);
    let buffer = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.capacity();
    let mut codec = MqttCodec::new(1024);
    codec.decode(&mut buf).unwrap();
    let Some(Inbound::Publish(p)) = codec.decode(&mut buf).unwrap() else {
        panic!("a PUBLISH")
    };
    assert_eq!(&p.payload[..], b"{}");
    assert!(
        !buffer.contains(&(p.payload.as_ptr() as usize)),
        "the payload is a copy, not a slice of the 64 KiB buffer"
    );
}

#[test]
fn a_partial_packet_waits_for_more_bytes() {
    let mut codec = MqttCodec::new(1024);
    let full = connect_bytes(4);
    let mut buf = BytesMut::from(&full[..5]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(&full[5..]);
    assert!(codec.decode(&mut buf).unwrap().is_some());
}

/// A device whose writes end a byte into the next packet always has a partial packet
/// buffered: each packet is timed on its own, not "since the buffer was last empty".
#[test]
fn each_packet_is_timed_from_its_own_first_bytes() {
    let mut codec = MqttCodec::for_version(Version::V4, 1024);
    let partial = codec.partial_since();
    let ping = [0xC0u8, 0x00];
    let mut buf = BytesMut::from(&[ping[0]][..]);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert!(partial.age().is_some(), "half a PINGREQ is being timed");
    for _ in 0..3 {
        // The rest of this PINGREQ and the first byte of the next, in one read.
        buf.extend_from_slice(&[ping[1], ping[0]]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(Inbound::PingReq));
        assert_eq!(partial.age(), None, "the packet decoded, its timer stops");
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(partial.age().is_some(), "the next one is timed from now");
    }
    buf.extend_from_slice(&[ping[1]]);
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(Inbound::PingReq));
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(partial.age(), None, "nothing buffered, nothing timed");
}

#[test]
fn mqtt_3_1_is_refused_as_unsupported() {
    // CONNECT, protocol name "MQIsdp", level 3.
    let mut buf = BytesMut::from(
        &[
            0x10, 12, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 2, 0, 60,
        ][..],
    );
    let err = MqttCodec::new(1024).decode(&mut buf).unwrap_err();
    assert!(
        matches!(err, CodecError::UnsupportedProtocol { level: 3, .. }),
        "{err}"
    );
}

#[test]
fn an_oversized_packet_is_refused_from_its_header_and_skipped() {
    let mut codec = MqttCodec::for_version(Version::V4, 100);
    // PUBLISH announcing 200 bytes; only the header and 10 bytes have arrived.
    let mut buf = BytesMut::from(&[0x30, 0xC8, 0x01][..]);
    buf.extend_from_slice(&[0; 10]);
    let refused = codec.decode(&mut buf).unwrap();
    assert_eq!(
        refused,
        Some(Inbound::TooLarge {
            size: 203,
            max: 100
        })
    );
    // The other 190 bytes are skipped; the PINGREQ after them is read.
    buf.extend_from_slice(&[0; 190]);
    buf.extend_from_slice(&[0xC0, 0x00]);
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(Inbound::PingReq));
}

#[test]
fn a_bare_v5_disconnect_is_a_normal_disconnection() {
    let mut codec = MqttCodec::for_version(Version::V5, 100);
    let mut buf = BytesMut::from(&[0xE0, 0x00][..]);
    assert_eq!(
        codec.decode(&mut buf).unwrap(),
        Some(Inbound::Disconnect {
            with_will: false,
            session_expiry: None
        })
    );
}
