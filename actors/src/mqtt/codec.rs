//! Framing: bytes ⇄ [`Inbound`]/[`Outbound`], using rumqttc's v4 and v5 packet codecs.
//!
//! The first packet decides the protocol version: its CONNECT's protocol level is read
//! before the packet is handed to the matching codec.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;
use tokio_util::codec::{Decoder, Encoder};

use super::decode::{from_v4, from_v5, short_v5_disconnect};
use super::encode::{encode_v4, encode_v5};
use super::packet::*;
use super::properties::check_connect_properties;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("packet of {size} bytes is larger than the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("unsupported protocol `{name}` level {level} (Eliot speaks MQTT 3.1.1 and 5.0)")]
    UnsupportedProtocol { name: String, level: u8 },
    #[error("the first packet must be CONNECT, got packet type {0}")]
    NotConnect(u8),
    #[error("malformed packet: {0}")]
    Malformed(String),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
}

/// One codec per connection: it learns the version from the CONNECT and keeps it.
#[derive(Debug, Clone)]
pub struct MqttCodec {
    version: Option<Version>,
    /// Largest packet accepted from a device, in bytes, fixed header included (as MQTT 5's
    /// Maximum Packet Size, which the CONNACK announces with this value).
    max_packet_size: usize,
    /// Bytes of a refused oversized packet still to skip. They are read and dropped
    /// (not left unread) so that closing the socket does not reset the connection
    /// before the device has read why.
    discarding: usize,
    /// Since when the packet at the front has been arriving without being whole, for the
    /// connection's packet timeout (a device must not hold a buffer half-filled for ever).
    partial: PartialSince,
    /// What the device accepts of the packets sent to it.
    peer: PeerLimits,
}

/// When the packet now arriving on a connection started to arrive, if one is; shared by
/// the codec, which sets it, and the connection, which times it out.
#[derive(Debug, Clone, Default)]
pub struct PartialSince(Arc<AtomicU64>);

impl PartialSince {
    /// Milliseconds since a process-wide epoch, plus one (0 means "no partial packet").
    fn now() -> u64 {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        let elapsed = EPOCH.get_or_init(Instant::now).elapsed();
        u64::try_from(elapsed.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    fn mark(&self) {
        let _ = self
            .0
            .compare_exchange(0, Self::now(), Ordering::Relaxed, Ordering::Relaxed);
    }

    fn clear(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// How long the current packet has been arriving; `None` when none is.
    pub fn age(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            since => Some(Duration::from_millis(Self::now().saturating_sub(since))),
        }
    }
}

impl MqttCodec {
    pub fn new(max_packet_size: usize) -> Self {
        MqttCodec {
            version: None,
            max_packet_size,
            discarding: 0,
            partial: PartialSince::default(),
            peer: PeerLimits::default(),
        }
    }

    /// A codec past a CONNECT of `version`, with no limits of the peer's: where the
    /// tests of encoding and decoding start.
    #[cfg(test)]
    pub(crate) fn for_version(version: Version, max_packet_size: usize) -> Self {
        MqttCodec::for_peer(version, max_packet_size, PeerLimits::default())
    }

    /// The codec of an accepted connection: it also keeps to what the device asked for.
    pub(crate) fn for_peer(version: Version, max_packet_size: usize, peer: PeerLimits) -> Self {
        MqttCodec {
            version: Some(version),
            max_packet_size,
            discarding: 0,
            partial: PartialSince::default(),
            peer,
        }
    }

    /// Since when a packet has been arriving half way, shared with whoever times it out.
    pub(crate) fn partial_since(&self) -> PartialSince {
        self.partial.clone()
    }

    /// The version learnt from the CONNECT, once it has been decoded.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// Reads the protocol name and level of the CONNECT framed at the front of `src`.
    fn detect_version(&mut self, frame: &[u8], header_len: usize) -> Result<Version, CodecError> {
        if frame[0] >> 4 != 1 {
            return Err(CodecError::NotConnect(frame[0] >> 4));
        }
        let mut variable = &frame[header_len..];
        let malformed = || CodecError::Malformed("CONNECT too short".into());
        if variable.len() < 2 {
            return Err(malformed());
        }
        let name_len = variable.get_u16() as usize;
        if variable.len() < name_len + 1 {
            return Err(malformed());
        }
        let name = String::from_utf8_lossy(&variable[..name_len]).into_owned();
        let level = variable[name_len];
        let version = match (name.as_str(), level) {
            ("MQTT", 4) => Version::V4,
            ("MQTT", 5) => Version::V5,
            _ => return Err(CodecError::UnsupportedProtocol { name, level }),
        };
        let flags = *variable.get(name_len + 1).ok_or_else(malformed)?;
        check_connect_flags(flags, version)?;
        if version == Version::V5 {
            // After the flags, the keep-alive (2 bytes), then the properties.
            let properties = variable.get(name_len + 4..).unwrap_or_default();
            check_connect_properties(properties).map_err(CodecError::Malformed)?;
        }
        self.version = Some(version);
        Ok(version)
    }
}

/// The CONNECT flags rumqttc does not check: the reserved bit must be 0
/// [MQTT-3.1.2-3]; in 3.1.1 a password needs a user name [MQTT-3.1.2-22].
fn check_connect_flags(flags: u8, version: Version) -> Result<(), CodecError> {
    const RESERVED: u8 = 0x01;
    const PASSWORD: u8 = 0x40;
    const USERNAME: u8 = 0x80;
    if flags & RESERVED != 0 {
        return Err(CodecError::Malformed(
            "CONNECT with its reserved flag set".into(),
        ));
    }
    if version == Version::V4 && flags & PASSWORD != 0 && flags & USERNAME == 0 {
        return Err(CodecError::Malformed(
            "CONNECT with a password but no user name".into(),
        ));
    }
    Ok(())
}

/// Where the next packet ends, read from its fixed header.
enum Frame {
    /// More bytes are needed to know.
    Incomplete,
    /// The whole packet (`len` bytes, the first `header_len` the fixed header) is there.
    Complete { len: usize, header_len: usize },
    /// The packet's whole size (fixed header included, as MQTT 5's Maximum Packet Size
    /// counts it) is `len`, over the limit.
    TooLarge { len: usize },
}

/// Frames the packet at the front of `src` without parsing it.
fn frame(src: &[u8], max: usize) -> Result<Frame, CodecError> {
    let mut remaining = 0usize;
    for i in 0..4 {
        let Some(&byte) = src.get(1 + i) else {
            return Ok(Frame::Incomplete);
        };
        remaining |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let header_len = 2 + i;
            let len = header_len + remaining;
            return Ok(if len > max {
                Frame::TooLarge { len }
            } else if src.len() < len {
                Frame::Incomplete
            } else {
                Frame::Complete { len, header_len }
            });
        }
    }
    Err(CodecError::Malformed(
        "remaining length longer than 4 bytes".into(),
    ))
}

/// MQTT fixes the low 4 bits of the first byte for every packet type but PUBLISH
/// (3.1.1 and 5.0, §2.1.3 / §2.2.2): SUBSCRIBE, UNSUBSCRIBE and PUBREL carry 0b0010,
/// the others 0. A packet with other bits is malformed.
fn check_reserved_flags(first: u8) -> Result<(), CodecError> {
    let (kind, flags) = (first >> 4, first & 0x0F);
    let expected = match kind {
        3 => return Ok(()),
        6 | 8 | 10 => 0b0010,
        _ => 0,
    };
    if flags == expected {
        Ok(())
    } else {
        Err(CodecError::Malformed(format!(
            "packet type {kind} with reserved flags {flags:#06b}, expected {expected:#06b}"
        )))
    }
}

impl Decoder for MqttCodec {
    type Item = Inbound;
    type Error = CodecError;

    /// Also times the packet at the front: from the first call that finds it incomplete
    /// (its first bytes were just read) until it is decoded. A call comes only while Eliot
    /// reads the connection, so time spent not reading it (backpressure) is not counted.
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, CodecError> {
        let decoded = self.decode_frame(src);
        match decoded {
            Ok(None) if !src.is_empty() || self.discarding > 0 => self.partial.mark(),
            // A packet was decoded, or nothing is buffered: bytes after it belong to the
            // next packet, timed from the next call that finds it incomplete.
            _ => self.partial.clear(),
        }
        decoded
    }
}

impl MqttCodec {
    /// Decodes the packet at the front of `src`, if it is whole.
    fn decode_frame(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, CodecError> {
        if self.discarding > 0 {
            let skip = self.discarding.min(src.len());
            src.advance(skip);
            self.discarding -= skip;
            if self.discarding > 0 {
                return Ok(None);
            }
        }
        let (len, header_len) = match frame(src, self.max_packet_size)? {
            Frame::Incomplete => return Ok(None),
            Frame::Complete { len, header_len } => (len, header_len),
            // Before the CONNECT nothing is known of the device: just refuse.
            Frame::TooLarge { len } if self.version.is_none() => {
                return Err(CodecError::TooLarge {
                    size: len,
                    max: self.max_packet_size,
                })
            }
            Frame::TooLarge { len } => {
                // Read and drop it rather than hold it: see `discarding`.
                let skip = len.min(src.len());
                src.advance(skip);
                self.discarding = len - skip;
                return Ok(Some(Inbound::TooLarge {
                    size: len,
                    max: self.max_packet_size,
                }));
            }
        };
        check_reserved_flags(src[0])?;
        let version = match self.version {
            Some(v) => v,
            None => self.detect_version(&src[..len], header_len)?,
        };
        // rumqttc parses exactly this frame: a parse error is a malformed packet, never
        // "more bytes needed" (which would silently drop what it consumed).
        let mut packet = src.split_to(len);
        let malformed = |e: &dyn std::fmt::Display| CodecError::Malformed(e.to_string());
        match version {
            Version::V4 => v4::Packet::read(&mut packet, len)
                .map_err(|e| malformed(&e))
                .and_then(from_v4)
                .map(Some),
            Version::V5 => match short_v5_disconnect(&packet) {
                Some(disconnect) => Ok(Some(disconnect)),
                None => v5::Packet::read(&mut packet, None)
                    .map_err(|e| malformed(&e))
                    .and_then(from_v5)
                    .map(Some),
            },
        }
    }
}

impl Encoder<Outbound> for MqttCodec {
    type Error = CodecError;

    fn encode(&mut self, packet: Outbound, dst: &mut BytesMut) -> Result<(), CodecError> {
        let written = match self.version.unwrap_or(Version::V4) {
            Version::V4 => encode_v4(packet, dst),
            Version::V5 => encode_v5(packet, dst, self.peer),
        };
        written.map_err(CodecError::Malformed)
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
