//! One connection of the field load: an MQTT 3.1.1 connection publishing QoS 1 readings for
//! many devices in turn, pipelined (up to a window of unacked PUBLISHes, written in batches),
//! either as fast as the acks come back or paced at a fixed rate; it times each message from
//! its PUBLISH written to its PUBACK read.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;

use crate::in_flight::InFlight;
use crate::load_shared::Shared;
use crate::mqtt_wire::{self, Incoming};
use crate::pacer::Pacer;
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
    pub error: Option<String>,
}

/// Connects to `addr` and publishes until the shared budget or time is used up, then waits
/// for the last acks and disconnects.
pub async fn run(
    addr: std::net::SocketAddr,
    mut plan: ConnectionPlan,
    shared: &Shared,
) -> ConnectionOutcome {
    let mut outcome = ConnectionOutcome::default();
    if let Err(error) = drive(addr, &mut plan, shared, &mut outcome).await {
        outcome.error = Some(format!("{}: {error}", plan.client_id));
    }
    outcome
}

async fn drive(
    addr: std::net::SocketAddr,
    plan: &mut ConnectionPlan,
    shared: &Shared,
    outcome: &mut ConnectionOutcome,
) -> Result<(), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut reader, mut writer) = stream.into_split();
    let mut out = Vec::with_capacity(64 * 1024);
    mqtt_wire::connect(&mut out, &plan.client_id, KEEP_ALIVE_S);
    writer.write_all(&out).await.map_err(|e| e.to_string())?;
    out.clear();
    let mut incoming = BytesMut::with_capacity(64 * 1024);
    tokio::time::timeout(CONNECT_LIMIT, connack(&mut reader, &mut incoming))
        .await
        .map_err(|_| "no CONNACK".to_owned())??;

    let mut in_flight = InFlight::new(plan.window);
    let connected = Instant::now();
    let mut pacer = plan
        .pace
        .map(|(rate, offset)| Pacer::new(rate, connected + offset));
    let mut rota = Rota::new(std::mem::take(&mut plan.devices));
    let mut drain_until: Option<Instant> = None;
    loop {
        if drain_until.is_none() {
            let now = Instant::now();
            let room = (plan.window - in_flight.len()) as u64;
            let wanted = match &mut pacer {
                Some(pacer) => pacer.release(now).min(room),
                // Refill in batches: fewer, larger writes cost both sides fewer syscalls.
                None if room >= (plan.window as u64 / REFILL_FRACTION).max(1) => room,
                None => 0,
            };
            let n = shared.claim(wanted.min(MAX_BATCH), now);
            if let Some(pacer) = &mut pacer {
                outcome.max_late = outcome.max_late.max(pacer.take(n, now));
            }
            for _ in 0..n {
                rota.publish_next(in_flight.insert(now), &mut out);
            }
            if n > 0 {
                writer.write_all(&out).await.map_err(|e| e.to_string())?;
                out.clear();
                outcome.sent += n;
            }
            if shared.finished(now) {
                drain_until = Some(now + DRAIN_LIMIT);
            }
        }
        if drain_until.is_some() && in_flight.len() == 0 {
            break;
        }
        let wake = match (drain_until, &pacer) {
            (Some(drain_until), _) => Some(drain_until),
            (None, Some(pacer)) => Some(pacer.next_due),
            (None, None) => shared.until(),
        };
        let wake = wake.unwrap_or_else(|| Instant::now() + DRAIN_LIMIT);
        tokio::select! {
            read = reader.read_buf(&mut incoming) => {
                match read {
                    Ok(0) => return Err("the server closed the connection".into()),
                    Ok(_) => take_acks(&mut incoming, &mut in_flight, plan, shared, outcome)?,
                    Err(e) => return Err(e.to_string()),
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                if drain_until.is_some_and(|d| Instant::now() >= d) {
                    return Err(format!("{} messages never acked", in_flight.len()));
                }
            }
        }
    }
    mqtt_wire::disconnect(&mut out);
    let _ = writer.write_all(&out).await;
    let _ = writer.shutdown().await;
    Ok(())
}

async fn connack(reader: &mut OwnedReadHalf, incoming: &mut BytesMut) -> Result<(), String> {
    loop {
        match mqtt_wire::next_packet(incoming)? {
            Some(Incoming::ConnAck(0)) => return Ok(()),
            Some(Incoming::ConnAck(code)) => return Err(format!("CONNECT refused: {code}")),
            Some(_) => continue,
            None => {}
        }
        match reader.read_buf(incoming).await {
            Ok(0) => return Err("closed before CONNACK".into()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
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
