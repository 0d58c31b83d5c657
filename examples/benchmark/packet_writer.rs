//! How a field-load connection writes its packets: whole, or split the way a device's TCP
//! writes may split them, every write ending one byte into the next packet. MQTT runs on a
//! byte stream, so a server must take packets however the writes cut them, and time each
//! from its own first byte: an Eliot that timed a packet from when its read buffer was last
//! empty closed such a device every `mqtt.packet_timeout` (30 s), however fast each of its
//! packets completed.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;

use crate::mqtt_wire;

/// Longest a splitting connection holds back the tail of its last packet when it has
/// nothing more to write: every packet is whole within this, as a well-behaved device's are.
pub const HOLD_AT_MOST: Duration = Duration::from_millis(5);

/// The write half of a connection, writing packets whole or split.
pub struct PacketWriter {
    half: OwnedWriteHalf,
    /// `Some` when writes end one byte into a packet: what is held back until the next.
    held: Option<HeldTail>,
    /// What the next split write carries, built here to reuse its allocation.
    write: Vec<u8>,
}

impl PacketWriter {
    /// Writes on `half`, each write ending one byte into a packet if `split`.
    pub fn new(half: OwnedWriteHalf, split: bool) -> PacketWriter {
        PacketWriter {
            half,
            held: split.then(HeldTail::default),
            write: Vec::new(),
        }
    }

    /// Writes `packets` (whole packets, one after the other). Split: the tail held back from
    /// the last write, then all of `packets` but the last one's tail, which is held back in
    /// turn until the next write or `HOLD_AT_MOST`.
    pub async fn write(&mut self, packets: &[u8]) -> std::io::Result<()> {
        let Some(held) = &mut self.held else {
            return self.half.write_all(packets).await;
        };
        self.write.clear();
        held.split(packets, Instant::now(), &mut self.write);
        self.half.write_all(&self.write).await
    }

    /// Writes `packets` whole, after the tail held back if there is one: what a device
    /// waits on an answer to (CONNECT) or sends last (DISCONNECT).
    pub async fn write_whole(&mut self, packets: &[u8]) -> std::io::Result<()> {
        if let Some(held) = &mut self.held {
            self.write.clear();
            held.take(&mut self.write);
            self.write.extend_from_slice(packets);
            return self.half.write_all(&self.write).await;
        }
        self.half.write_all(packets).await
    }

    /// When the tail held back must be written, alone if nothing more was by then.
    pub fn due(&self) -> Option<Instant> {
        self.held.as_ref().and_then(|held| held.until)
    }

    /// Writes the tail held back, alone, if it is due by `now`.
    pub async fn write_tail_if_due(&mut self, now: Instant) -> std::io::Result<()> {
        if self.due().is_some_and(|due| due <= now) {
            self.write_whole(&[]).await?;
        }
        Ok(())
    }

    /// Writes `last` whole (after the tail held back) and shuts the write half down.
    pub async fn close(mut self, last: &[u8]) -> std::io::Result<()> {
        self.write_whole(last).await?;
        self.half.shutdown().await
    }
}

/// The tail of the last packet a splitting connection wrote: all of it but its first byte.
#[derive(Default)]
struct HeldTail {
    tail: Vec<u8>,
    /// When it must be written at the latest (`None`: nothing is held).
    until: Option<Instant>,
}

impl HeldTail {
    /// Appends to `write` what a write of `packets` at `now` carries: the tail held so far,
    /// the packets before the last whole, and the first byte of the last, whose rest is
    /// held from now on.
    fn split(&mut self, packets: &[u8], now: Instant, write: &mut Vec<u8>) {
        if packets.is_empty() {
            return;
        }
        self.take(write);
        let cut = mqtt_wire::last_packet_start(packets) + 1;
        write.extend_from_slice(&packets[..cut]);
        self.tail.extend_from_slice(&packets[cut..]);
        self.until = Some(now + HOLD_AT_MOST);
    }

    /// Appends the tail held to `write`: nothing is held any more.
    fn take(&mut self, write: &mut Vec<u8>) {
        write.append(&mut self.tail);
        self.until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publishes(pkids: std::ops::Range<u16>) -> Vec<u8> {
        let mut out = Vec::new();
        for pkid in pkids {
            mqtt_wire::publish_qos1(&mut out, "devices/a/telemetry", pkid, b"{}");
        }
        out
    }

    #[test]
    fn each_write_ends_one_byte_into_its_last_packet_and_carries_the_rest_next() {
        let (first, second) = (publishes(1..4), publishes(4..6));
        let last_start = mqtt_wire::last_packet_start(&first);
        let mut held = HeldTail::default();
        let now = Instant::now();

        let mut write = Vec::new();
        held.split(&first, now, &mut write);
        assert_eq!(write, first[..=last_start]);
        assert_eq!(held.until, Some(now + HOLD_AT_MOST));

        let mut next = Vec::new();
        held.split(&second, now, &mut next);
        let cut = mqtt_wire::last_packet_start(&second) + 1;
        assert_eq!(next[..first.len() - write.len()], first[last_start + 1..]);
        assert_eq!(next[first.len() - write.len()..], second[..cut]);

        let mut rest = Vec::new();
        held.take(&mut rest);
        assert_eq!(rest, second[cut..]);
        assert_eq!(held.until, None);
    }
}
