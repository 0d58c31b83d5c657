//! The drill device: an MQTT 3.1.1 client written out here in full, so that the checker
//! knows exactly which reading every PUBACK acknowledges.
//!
//! The drills first used rumqttc and numbered readings by the order of its outgoing
//! PUBLISH events. rumqttc 0.25 silently drops a message in one case: a PUBLISH waiting
//! for a busy packet id (a "collision") is overwritten when a message re-sent after a
//! reconnect collides too, since re-sent messages bypass the gate that holds new ones back
//! (`MqttState::outgoing_publish`; see rumqtt issues #1014 and #1056 for the same state
//! kept across reconnects). The dropped reading was never sent, every later one was
//! numbered one too low, and the checker reported acked readings as lost: "lost 2" in a
//! CI run of the kill -9 drill, 2,588 under three drills at once on two cores. Here each
//! packet id maps to its reading, so a PUBACK names the reading it acks.
//!
//! The device keeps a persistent session (clean session 0), keeps at most `window`
//! readings in flight, and after any disconnection reconnects and sends again every
//! reading not acked: with the DUP flag when the session was present, as new messages when
//! it was not (the device's application keeps its promise either way). It checks what a
//! server must do: PUBACKs in the order of the PUBLISHes [MQTT-4.6.0-2], no PUBACK for a
//! packet id not in flight. With `split`, every write ends one byte into the next packet
//! (the rest follows with the next packet, or within 5 ms), as TCP may deliver any stream.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
use rumqttc::mqttbytes::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};

use super::checker::{Ledger, Pace};
use super::{reading, topic};

/// How long the tail of a split write waits for the next packet before it is sent alone.
const SPLIT_FLUSH: Duration = Duration::from_millis(5);
/// Between a disconnection and the next attempt.
const RECONNECT_AFTER: Duration = Duration::from_millis(100);
/// For the TCP connect and for the CONNACK.
const HANDSHAKE: Duration = Duration::from_secs(5);

/// How a drill device behaves.
#[derive(Debug, Clone)]
pub struct DrillDevice {
    pub addr: SocketAddr,
    pub device: String,
    pub pace: Pace,
    /// Readings in flight at most (unacked).
    pub window: usize,
    /// Seconds; a PINGREQ goes out when nothing was written for half of it.
    pub keep_alive: u16,
    /// Writes end one byte into the next packet.
    pub split: bool,
    /// Reconnect after a disconnection (else `run` ends with the first connection).
    pub reconnect: bool,
    /// The payload of reading `n` (`common::reading` by default); the checker finds it by
    /// its timestamp, which must be `reading`'s.
    pub payload: fn(&str, u64) -> String,
    /// Once set, no new reading is published: the device waits for its acks and ends, as
    /// if its count were reached (for a test that needs a load until it is done).
    pub stop: Option<Arc<AtomicBool>>,
}

/// What a drill device saw, beside the ledger.
#[derive(Debug, Clone, Default)]
pub struct DeviceReport {
    pub device: String,
    /// Readings acked, once each.
    pub acked: u64,
    /// Connections accepted (CONNACK 0).
    pub connections: u32,
    /// Connections that ended without the device ending them: why, and when (since the
    /// device started).
    pub closed_by_server: Vec<(Duration, String)>,
    /// CONNACKs with Session Present 0 after the first connection.
    pub sessions_lost: u32,
    /// PUBACKs for a reading that was not the oldest in flight.
    pub acks_out_of_order: u32,
    /// PUBACKs for a packet id not in flight.
    pub unknown_acks: u32,
}

/// A reading in flight: its packet id and number.
struct InFlight {
    pkid: u16,
    n: u64,
}

/// One connection's writing side, splitting writes if asked.
struct Writer {
    half: OwnedWriteHalf,
    split: bool,
    /// The tail of the last packet, not written yet (split writes).
    held: Vec<u8>,
    /// When `held` must go out alone.
    flush_at: Option<Instant>,
    last_write: Instant,
}

impl Writer {
    async fn packet(&mut self, packet: v4::Packet) -> std::io::Result<()> {
        let mut bytes = BytesMut::new();
        packet
            .write(&mut bytes, usize::MAX)
            .expect("the packet encodes");
        let mut out = std::mem::take(&mut self.held);
        if self.split && bytes.len() > 1 {
            out.extend_from_slice(&bytes[..1]);
            self.held = bytes[1..].to_vec();
            self.flush_at = Some(Instant::now() + SPLIT_FLUSH);
        } else {
            out.extend_from_slice(&bytes);
            self.flush_at = None;
        }
        self.last_write = Instant::now();
        self.half.write_all(&out).await
    }

    async fn flush_held(&mut self) -> std::io::Result<()> {
        self.flush_at = None;
        let held = std::mem::take(&mut self.held);
        self.half.write_all(&held).await
    }
}

impl DrillDevice {
    fn publish(&self, pkid: u16, n: u64, dup: bool) -> v4::Packet {
        let payload = (self.payload)(&self.device, n);
        let mut publish = v4::Publish::new(topic(&self.device), QoS::AtLeastOnce, payload);
        publish.pkid = pkid;
        publish.dup = dup;
        v4::Packet::Publish(publish)
    }
}

impl DrillDevice {
    /// A device of the drills: whole writes, 64 in flight, keep-alive 5 s.
    pub fn new(addr: SocketAddr, device: impl Into<String>, pace: Pace) -> Self {
        DrillDevice {
            addr,
            device: device.into(),
            pace,
            window: 64,
            keep_alive: 5,
            split: false,
            reconnect: true,
            payload: reading,
            stop: None,
        }
    }

    /// Publishes readings `0..count` through every disconnection until all are acked or
    /// `within` passes.
    pub async fn run(self, ledger: Ledger) -> DeviceReport {
        let started = Instant::now();
        let deadline = started + self.pace.within;
        let mut report = DeviceReport {
            device: self.device.clone(),
            ..DeviceReport::default()
        };
        let mut unacked: VecDeque<InFlight> = VecDeque::new();
        let (mut next, mut next_pkid) = (0u64, 1u16);
        let mut next_publish = started;
        let ping_after = Duration::from_millis(u64::from(self.keep_alive) * 500);
        while (next < self.count(next) || !unacked.is_empty()) && Instant::now() < deadline {
            let Some((stream, present)) = self.handshake(deadline).await else {
                if !self.reconnect && report.connections == 0 {
                    break;
                }
                tokio::time::sleep(RECONNECT_AFTER).await;
                continue;
            };
            report.connections += 1;
            if !present && report.connections > 1 {
                report.sessions_lost += 1;
            }
            let (mut read, half) = stream.into_split();
            let mut writer = Writer {
                half,
                split: self.split,
                held: Vec::new(),
                flush_at: None,
                last_write: Instant::now(),
            };
            let mut inbuf = BytesMut::with_capacity(4096);
            // The connection's life: Ok(()) when done, Err(why) when it ended otherwise.
            let ended: Result<(), String> = async {
                for m in &unacked {
                    let again = self.publish(m.pkid, m.n, present);
                    writer.packet(again).await.map_err(|e| e.to_string())?;
                }
                loop {
                    if next >= self.count(next) && unacked.is_empty() {
                        return Ok(());
                    }
                    let can_publish = next < self.count(next) && unacked.len() < self.window;
                    let ping_at = writer.last_write + ping_after;
                    let mut wake = ping_at.min(deadline);
                    if can_publish {
                        wake = wake.min(next_publish);
                    }
                    if let Some(flush_at) = writer.flush_at {
                        wake = wake.min(flush_at);
                    }
                    tokio::select! {
                        read = read.read_buf(&mut inbuf) => match read {
                            Ok(0) => return Err("closed by the server".into()),
                            Ok(_) => {}
                            Err(e) => return Err(format!("connection lost: {e}")),
                        },
                        _ = sleep_until(wake) => {}
                    }
                    while let Some(packet) = decode(&mut inbuf)? {
                        match packet {
                            v4::Packet::PubAck(ack) => {
                                match unacked.iter().position(|m| m.pkid == ack.pkid) {
                                    None => report.unknown_acks += 1,
                                    Some(at) => {
                                        report.acks_out_of_order += u32::from(at != 0);
                                        let m = unacked.remove(at).expect("found");
                                        ledger.acked(&self.device, m.n);
                                        report.acked += 1;
                                    }
                                }
                            }
                            v4::Packet::PingResp => {}
                            other => return Err(format!("unexpected packet {other:?}")),
                        }
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(());
                    }
                    while next < self.count(next)
                        && unacked.len() < self.window
                        && next_publish <= now
                    {
                        let pkid = next_pkid;
                        next_pkid = next_pkid.checked_add(1).unwrap_or(1);
                        ledger.published(&self.device, next);
                        unacked.push_back(InFlight { pkid, n: next });
                        let packet = self.publish(pkid, next, false);
                        next += 1;
                        next_publish += self.pace.every;
                        writer.packet(packet).await.map_err(|e| e.to_string())?;
                    }
                    if writer.flush_at.is_some_and(|at| at <= Instant::now()) {
                        writer.flush_held().await.map_err(|e| e.to_string())?;
                    }
                    if writer.last_write + ping_after <= Instant::now() {
                        writer
                            .packet(v4::Packet::PingReq)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                }
            }
            .await;
            match ended {
                Ok(()) => {
                    let _ = writer.flush_held().await;
                    let _ = writer.half.write_all(&[0xE0, 0x00]).await;
                }
                Err(why) => {
                    report.closed_by_server.push((started.elapsed(), why));
                    if !self.reconnect {
                        break;
                    }
                    tokio::time::sleep(RECONNECT_AFTER).await;
                }
            }
            // A paced device that fell behind while disconnected does not burst to catch up.
            next_publish = next_publish.max(Instant::now());
        }
        report
    }

    /// How many readings the device publishes in all, as far as it knows once it has
    /// published `next`: its count, or `next` once told to stop.
    fn count(&self, next: u64) -> u64 {
        match &self.stop {
            Some(stop) if stop.load(Ordering::Relaxed) => next.min(self.pace.count),
            _ => self.pace.count,
        }
    }

    /// Connects and sends CONNECT (persistent session); the stream and Session Present
    /// once the CONNACK accepted it.
    async fn handshake(&self, deadline: Instant) -> Option<(TcpStream, bool)> {
        let patience = HANDSHAKE.min(deadline.saturating_duration_since(Instant::now()));
        let mut stream = timeout(patience, TcpStream::connect(self.addr))
            .await
            .ok()?
            .ok()?;
        stream.set_nodelay(true).ok()?;
        let mut connect = v4::Connect::new(self.device.as_str());
        connect.keep_alive = self.keep_alive;
        connect.clean_session = false;
        let mut bytes = BytesMut::new();
        v4::Packet::Connect(connect)
            .write(&mut bytes, usize::MAX)
            .expect("CONNECT encodes");
        stream.write_all(&bytes).await.ok()?;
        let mut inbuf = BytesMut::new();
        let connack = timeout(patience, async {
            loop {
                if let Some(packet) = decode(&mut inbuf).ok()? {
                    return Some(packet);
                }
                if stream.read_buf(&mut inbuf).await.ok()? == 0 {
                    return None;
                }
            }
        })
        .await
        .ok()??;
        match connack {
            v4::Packet::ConnAck(ack) if ack.code == v4::ConnectReturnCode::Success => {
                Some((stream, ack.session_present))
            }
            _ => None,
        }
    }
}

/// The next whole packet in `buf`, if there is one.
fn decode(buf: &mut BytesMut) -> Result<Option<v4::Packet>, String> {
    match v4::Packet::read(buf, usize::MAX) {
        Ok(packet) => Ok(Some(packet)),
        Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(format!("a malformed packet from the server: {e}")),
    }
}
