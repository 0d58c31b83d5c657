//! One connection of the field load: an MQTT 3.1.1 connection publishing QoS 1 readings for
//! many devices in turn, pipelined (up to a window of unacked PUBLISHes, written in batches),
//! either as fast as the acks come back or paced at a fixed rate; it times each message from
//! its PUBLISH written to its PUBACK read. Its writes carry whole packets, or end one byte
//! into the next packet (`packet_writer.rs`). Whenever the server ends the connection (EOF,
//! reset, any I/O error) while the load still runs, it records when and why.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;

use crate::in_flight::InFlight;
use crate::load_shared::Shared;
use crate::mqtt_wire::{self, Incoming};
use crate::pacer::Pacer;
use crate::packet_writer::PacketWriter;
use crate::telemetry::{Device, Rota};

/// Keep-alive asked for: generous, since a loaded connection is never silent.
const KEEP_ALIVE_S: u16 = 300;
/// Longest the server may take to answer CONNECT.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);
/// How long the end of the run waits for the last acks.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// PUBLISHes written at most in one write.
const MAX_BATCH: u64 = 256;
/// Unpaced, a connection waits for this fraction of its window to be free before refilling.
const REFILL_FRACTION: u64 = 4;

/// What one connection does.
pub struct ConnectionPlan {
    pub client_id: String,
    /// The devices it publishes for, in turn.
    pub devices: Vec<Device>,
    /// Unacked PUBLISHes at most.
    pub window: usize,
    /// Its share of a paced load, msg/s, and how long after CONNACK its first message is
    /// due (connections are staggered, so that together they send evenly); `None`: as fast
    /// as acks allow.
    pub pace: Option<(f64, Duration)>,
    /// Whether to keep every message's publish→PUBACK latency.
    pub record_latency: bool,
    /// Whether to keep a session and connect again whenever the connection is lost, sending
    /// every PUBLISH not acked again (DUP): the load of a kill drill.
    pub reconnects: bool,
    /// Whether each write ends one byte into the next packet (`PacketWriter`), as a device's
    /// TCP writes may: the server must time each packet from its own first byte.
    pub split_writes: bool,
}

/// What one connection did.
#[derive(Default)]
pub struct ConnectionOutcome {
    pub sent: u64,
    pub acked: u64,
    /// publish→PUBACK of every acked message, µs (with `record_latency`).
    pub latencies_us: Vec<u32>,
    /// Most a paced message went out after it was due: a large value means the load did not
    /// offer what it was asked to (the window was full, or the generator fell behind).
    pub max_late: Duration,
    /// When its last PUBACK arrived.
    pub last_ack: Option<Instant>,
    /// Connections made again after one was lost (each sent again what was not acked).
    pub reconnects: u64,
    /// When and why the server ended each connection made (EOF, reset, any I/O error) while
    /// the load still ran, the ones a reconnecting connection got over included: none is
    /// expected but at a kill, so each is reported.
    pub disconnects: Vec<(Instant, String)>,
    /// Why the connection failed otherwise: it could not be made, the server broke the
    /// protocol or never acked, or a reconnecting one gave up.
    pub error: Option<String>,
}

/// How long a reconnecting connection keeps trying after it lost the server (a restarted
/// Eliot opens a large store first).
const RECONNECT_FOR: Duration = Duration::from_secs(120);
/// Between two attempts to connect again.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

/// Why a connection stopped.
enum Failure {
    /// No connection was made (refused, unanswered, or CONNACK 3: not available for now): a
    /// reconnecting plan tries again.
    Unreachable(String),
    /// The server ended the connection made (EOF, reset, any I/O error): recorded; a
    /// reconnecting plan connects again.
    Disconnected(String),
    /// The server broke the protocol, or never acked: connecting again would not help.
    Fatal(String),
}

/// What a connection carries from one of its connections to the next.
struct Stream {
    in_flight: InFlight,
    rota: Rota,
    pacer: Option<Pacer>,
    /// Once the readings are all made: when the last acks stop being awaited.
    drain_until: Option<Instant>,
    /// Whether a connection was made before: the next one is a reconnection.
    connected_before: bool,
    /// Since when no connection is up, while reconnecting.
    lost_since: Option<Instant>,
}

/// Connects to `addr` and publishes until the shared budget or time is used up, then waits
/// for the last acks and disconnects. A plan that `reconnects` connects again whenever the
/// connection is lost, sending what was not acked again first, until every reading is acked.
pub async fn run(
    addr: std::net::SocketAddr,
    mut plan: ConnectionPlan,
    shared: &Shared,
) -> ConnectionOutcome {
    let mut outcome = ConnectionOutcome::default();
    let mut stream = Stream {
        in_flight: InFlight::new(plan.window),
        rota: Rota::new(std::mem::take(&mut plan.devices)),
        pacer: None,
        drain_until: None,
        connected_before: false,
        lost_since: None,
    };
    loop {
        let failure = match drive(addr, &plan, &mut stream, shared, &mut outcome).await {
            Ok(()) => return outcome,
            Err(failure) => failure,
        };
        if let Failure::Disconnected(reason) = &failure {
            outcome.disconnects.push((Instant::now(), reason.clone()));
        }
        let error = match failure {
            Failure::Unreachable(error) | Failure::Disconnected(error) if plan.reconnects => {
                let since = *stream.lost_since.get_or_insert_with(Instant::now);
                if since.elapsed() < RECONNECT_FOR {
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
                format!("no connection for {RECONNECT_FOR:?}, the last error: {error}")
            }
            // Recorded above, and the load goes on without it.
            Failure::Disconnected(_) => return outcome,
            Failure::Unreachable(error) | Failure::Fatal(error) => error,
        };
        outcome.error = Some(format!("{}: {error}", plan.client_id));
        return outcome;
    }
}

/// One connection: connects, sends again what is in flight, then publishes and reads acks
/// until done.
async fn drive(
    addr: std::net::SocketAddr,
    plan: &ConnectionPlan,
    stream: &mut Stream,
    shared: &Shared,
    outcome: &mut ConnectionOutcome,
) -> Result<(), Failure> {
    let lost = |e: std::io::Error| Failure::Disconnected(e.to_string());
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| Failure::Unreachable(format!("connect: {e}")))?;
    tcp.set_nodelay(true).map_err(lost)?;
    let (mut reader, writer) = tcp.into_split();
    let mut writer = PacketWriter::new(writer, plan.split_writes);
    let mut out = Vec::with_capacity(64 * 1024);
    mqtt_wire::connect(&mut out, &plan.client_id, KEEP_ALIVE_S, !plan.reconnects);
    writer.write_whole(&out).await.map_err(lost)?;
    out.clear();
    let mut incoming = BytesMut::with_capacity(64 * 1024);
    tokio::time::timeout(CONNECT_LIMIT, connack(&mut reader, &mut incoming))
        .await
        .map_err(|_| Failure::Unreachable("no CONNACK".to_owned()))??;

    let connected = Instant::now();
    stream.lost_since = None;
    if std::mem::replace(&mut stream.connected_before, true) {
        outcome.reconnects += 1;
    }
    let again = stream.in_flight.kept_in_order();
    if !again.is_empty() {
        for publish in again {
            mqtt_wire::publish_again(&mut out, publish);
        }
        writer.write(&out).await.map_err(lost)?;
        out.clear();
    }
    if stream.drain_until.is_some() {
        stream.drain_until = Some(connected + DRAIN_LIMIT);
    }
    let Stream {
        in_flight,
        rota,
        pacer,
        drain_until,
        ..
    } = stream;
    if pacer.is_none() {
        *pacer = plan
            .pace
            .map(|(rate, offset)| Pacer::new(rate, connected + offset));
    }
    loop {
        if drain_until.is_none() {
            let now = Instant::now();
            let room = (plan.window - in_flight.len()) as u64;
            let wanted = match pacer {
                Some(pacer) => pacer.release(now).min(room),
                // Refill in batches: fewer, larger writes cost both sides fewer syscalls.
                None if room >= (plan.window as u64 / REFILL_FRACTION).max(1) => room,
                None => 0,
            };
            let n = shared.claim(wanted.min(MAX_BATCH), now);
            if let Some(pacer) = pacer {
                outcome.max_late = outcome.max_late.max(pacer.take(n, now));
            }
            for _ in 0..n {
                let start = out.len();
                let pkid = in_flight.insert(now);
                rota.publish_next(pkid, &mut out);
                if plan.reconnects {
                    in_flight.keep(pkid, &out[start..]);
                }
            }
            if n > 0 {
                // Made and in flight, whether or not the write gets through.
                outcome.sent += n;
                writer.write(&out).await.map_err(lost)?;
                out.clear();
            }
            if shared.finished(now) {
                *drain_until = Some(now + DRAIN_LIMIT);
            }
        }
        if drain_until.is_some() && in_flight.len() == 0 {
            break;
        }
        // After the PUBLISHes, which carry the tail held back if there were any.
        writer
            .write_tail_if_due(Instant::now())
            .await
            .map_err(lost)?;
        let wake = match (*drain_until, &pacer) {
            (Some(drain_until), _) => Some(drain_until),
            (None, Some(pacer)) => Some(pacer.next_due),
            (None, None) => shared.until(),
        };
        let wake = wake.unwrap_or_else(|| Instant::now() + DRAIN_LIMIT);
        let wake = writer.due().map_or(wake, |due| due.min(wake));
        tokio::select! {
            read = reader.read_buf(&mut incoming) => {
                match read {
                    Ok(0) => return Err(Failure::Disconnected("closed by the server".into())),
                    Ok(_) => take_acks(&mut incoming, in_flight, plan, shared, outcome)
                        .map_err(Failure::Fatal)?,
                    Err(e) => return Err(lost(e)),
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                if drain_until.is_some_and(|d| Instant::now() >= d) {
                    let never = format!("{} messages never acked", in_flight.len());
                    return Err(Failure::Fatal(never));
                }
            }
        }
    }
    mqtt_wire::disconnect(&mut out);
    let _ = writer.close(&out).await;
    Ok(())
}

async fn connack(reader: &mut OwnedReadHalf, incoming: &mut BytesMut) -> Result<(), Failure> {
    loop {
        match mqtt_wire::next_packet(incoming).map_err(Failure::Fatal)? {
            Some(Incoming::ConnAck(0)) => return Ok(()),
            // 3: server unavailable, for now (a restarted server still opening its store).
            Some(Incoming::ConnAck(3)) => {
                return Err(Failure::Unreachable("CONNECT refused: 3".into()))
            }
            Some(Incoming::ConnAck(code)) => {
                return Err(Failure::Fatal(format!("CONNECT refused: {code}")))
            }
            Some(_) => continue,
            None => {}
        }
        match reader.read_buf(incoming).await {
            Ok(0) => return Err(Failure::Disconnected("closed before CONNACK".into())),
            Ok(_) => {}
            Err(e) => return Err(Failure::Disconnected(e.to_string())),
        }
    }
}

/// Handles every whole packet read so far.
fn take_acks(
    incoming: &mut BytesMut,
    in_flight: &mut InFlight,
    plan: &ConnectionPlan,
    shared: &Shared,
    outcome: &mut ConnectionOutcome,
) -> Result<(), String> {
    let now = Instant::now();
    let mut acked = 0;
    while let Some(packet) = mqtt_wire::next_packet(incoming)? {
        let Incoming::PubAck(pkid) = packet else {
            continue;
        };
        let Some(sent_at) = in_flight.remove(pkid) else {
            return Err(format!("a PUBACK for packet id {pkid}, not in flight"));
        };
        if plan.record_latency {
            let us = now.saturating_duration_since(sent_at).as_micros();
            outcome
                .latencies_us
                .push(u32::try_from(us).unwrap_or(u32::MAX));
        }
        acked += 1;
    }
    if acked > 0 {
        outcome.acked += acked;
        outcome.last_ack = Some(now);
        shared.count_acked(acked, now);
    }
    Ok(())
}
