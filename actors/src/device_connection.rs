//! `DeviceConnection`: one actor per connected device, owning its MQTT session.
//!
//! Reading: packets come in as an actor stream. Each PUBLISH takes a slot in the
//! connection's in-flight window, and its payload's size from the in-flight byte budget
//! all connections share, before the next packet is read; so when the store is slow the
//! window or the budget fills and Eliot stops reading sockets (TCP backpressure).
//!
//! Acking: the PUBLISHes read in one turn of the actor go down the pipeline together (one
//! processor message, one store request; batches run concurrently). A PUBACK (QoS 1) or
//! PUBREC (QoS 2) is written only once its outcome is committed, and acks leave in the
//! order the PUBLISHes arrived.
//!
//! Closing: whatever the reason, the connection stops taking packets, lets every message
//! it already read reach the store, writes the last acks (and a v5 DISCONNECT with the
//! reason), closes its sending side, and keeps reading and discarding until the device
//! closes too (or a grace period passes), so the device is not reset before it has read
//! the last acks. The will is published unless the device said DISCONNECT (or the
//! server is shutting down).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::io::{FramedWrite, WriteHandler};
use actix::prelude::*;
use futures_util::{Stream, StreamExt};
use slog::Logger;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::FramedRead;

use crate::device_endpoint::{Closed, DeviceEndpoint};
use crate::device_guard::{DeviceGuard, Rejected};
use crate::events::Event;
use crate::mqtt::codec::{CodecError, MqttCodec};
use crate::mqtt::packet::*;
use crate::pipeline::{Ingested, Pipeline};
use crate::processor::Message;
use crate::store_writer::NotStored;
use crate::supervision::catch_panic;

/// How long a closing connection waits for the device to close its side, after the last
/// packets were written, before the socket is dropped anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// One packet read from the device; a PUBLISH carries its admission.
type Received = Result<(Inbound, Option<Admission>), CodecError>;

/// A PUBLISH's share of the limits, given back when it is acked (dropped).
pub struct Admission {
    _slot: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

/// Everything a new connection needs, handed over by the endpoint after the CONNECT.
pub struct Accepted {
    pub id: u64,
    pub connect: Connect,
    pub peer: SocketAddr,
    pub reader: FramedRead<OwnedReadHalf, MqttCodec>,
    pub writer: OwnedWriteHalf,
    pub session_present: bool,
    pub assigned_client_id: Option<String>,
    pub limits: ServerLimits,
    pub pipeline: Pipeline,
    pub budget: ByteBudget,
    pub guard: Addr<DeviceGuard>,
    pub endpoint: Addr<DeviceEndpoint>,
    pub log: Logger,
}

/// The endpoint replaces this connection: a new one came with the same client id.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TakenOver;

/// Server shutdown: finish what was read, ack it, close. `done` is dropped with the actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain {
    pub done: oneshot::Sender<()>,
}

/// A PUBLISH on its way to the store.
struct InFlight {
    /// The ack to send once stored (`None` for QoS 0).
    ack: Option<Outbound>,
    state: Progress,
    /// Returned to the window and the budget when the ack has been written.
    _admission: Option<Admission>,
}

#[derive(PartialEq)]
enum Progress {
    Pending,
    Stored,
    Failed,
}

/// Why the connection is closing, and what that implies.
struct Closing {
    reason: String,
    /// Sent (v5 only) once every in-flight ack has been written.
    disconnect: Option<CloseReason>,
    publish_will: bool,
}

pub struct DeviceConnection {
    /// The endpoint's id for this connection, so a late `Closed` from a replaced
    /// connection does not unregister its successor.
    id: u64,
    connect: Connect,
    peer: SocketAddr,
    /// `None` once the writer finished (flushed and closed, or failed): dropping it
    /// drops the socket's sending half, which sends the device a FIN.
    writer: Option<FramedWrite<Outbound, OwnedWriteHalf, MqttCodec>>,
    /// PUBLISHes read and not yet acked, in arrival order.
    in_flight: VecDeque<InFlight>,
    /// Sequence number of `in_flight[0]`; a PUBLISH's sequence number finds its slot.
    first_seq: u64,
    /// Entries of `in_flight` still `Pending`.
    pending: usize,
    /// PUBLISHes read this turn, not yet sent down the pipeline (the newest `Pending`s).
    unsent: Vec<Message>,
    /// True while the read stream waits for room (window or byte budget) for a PUBLISH
    /// it has read: Eliot has stopped reading, so the device's silence is Eliot's doing.
    admission_waiting: Arc<AtomicBool>,
    last_heard: Instant,
    /// False once the device closed its side (or reading failed).
    readable: bool,
    closing: Option<Closing>,
    /// Held until the actor is dropped: a drain waits on the other end.
    drained: Vec<oneshot::Sender<()>>,
    pipeline: Pipeline,
    /// Told of each rejected message; may trip this device's breaker.
    guard: Addr<DeviceGuard>,
    endpoint: Addr<DeviceEndpoint>,
    log: Logger,
}

impl DeviceConnection {
    pub fn start(a: Accepted) -> Addr<DeviceConnection> {
        DeviceConnection::create(move |ctx| {
            let window = Arc::new(Semaphore::new(usize::from(a.limits.receive_maximum)));
            let admission_waiting = Arc::new(AtomicBool::new(false));
            ctx.add_stream(gated(a.reader, window, a.budget, admission_waiting.clone()));
            let codec =
                MqttCodec::for_version(a.connect.version, a.limits.max_packet_size as usize);
            let mut writer = FramedWrite::new(a.writer, codec, ctx);
            writer.write(Outbound::ConnAck {
                code: ConnectCode::Accepted,
                session_present: a.session_present,
                assigned_client_id: a.assigned_client_id,
                limits: a.limits,
                reason: None,
            });
            let log = a.log.new(slog::o!("actor" => "device_connection"));
            DeviceConnection {
                id: a.id,
                connect: a.connect,
                peer: a.peer,
                writer: Some(writer),
                in_flight: VecDeque::new(),
                first_seq: 0,
                pending: 0,
                unsent: Vec::new(),
                admission_waiting,
                last_heard: Instant::now(),
                readable: true,
                closing: None,
                drained: Vec::new(),
                pipeline: a.pipeline,
                guard: a.guard,
                endpoint: a.endpoint,
                log,
            }
        })
    }

    fn send(&mut self, packet: Outbound) {
        if let Some(writer) = &mut self.writer {
            writer.write(packet);
        }
    }

    fn publish(&mut self, p: Publish, admission: Option<Admission>, ctx: &mut Context<Self>) {
        let ack = match p.qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce => Some(Outbound::PubAck(p.pkid)),
            QoS::ExactlyOnce => Some(Outbound::PubRec(p.pkid)),
        };
        self.in_flight.push_back(InFlight {
            ack,
            state: Progress::Pending,
            _admission: admission,
        });
        self.pending += 1;
        let client_id = self.connect.client_id.clone();
        self.unsent
            .push(Pipeline::message(p.topic, p.payload, client_id));
        if self.unsent.len() == 1 {
            // Runs once this turn's packets are handled: they go down the pipeline together.
            ctx.spawn(actix::fut::ready(()).map(|(), conn: &mut Self, ctx| conn.flush(ctx)));
        }
    }

    /// Sends the PUBLISHes read this turn down the pipeline, as one batch.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        let messages = std::mem::take(&mut self.unsent);
        let count = messages.len() as u64;
        // The unsent messages are the newest entries of the in-flight queue.
        let first = self.first_seq + self.in_flight.len() as u64 - count;
        ctx.spawn(
            self.pipeline
                .ingest(messages)
                .into_actor(self)
                .map(move |committed, conn, ctx| conn.on_committed(first, count, committed, ctx)),
        );
    }

    /// Settles the `count` in-flight entries from sequence number `first`.
    fn on_committed(
        &mut self,
        first: u64,
        count: u64,
        committed: Result<Vec<Ingested>, NotStored>,
        ctx: &mut Context<Self>,
    ) {
        self.pending -= count as usize;
        self.last_heard = Instant::now();
        let slots = (first - self.first_seq) as usize..(first - self.first_seq + count) as usize;
        match committed {
            Ok(ingested) => {
                let mut rejections = 0;
                for (slot, how) in slots.zip(ingested) {
                    self.in_flight[slot].state = Progress::Stored;
                    rejections += usize::from(how == Ingested::DeadLettered);
                }
                for _ in 0..rejections {
                    self.count_rejection(ctx);
                }
            }
            Err(not_stored) => {
                for slot in slots {
                    self.in_flight[slot].state = Progress::Failed;
                }
                self.begin_close(
                    format!("message not stored: {not_stored}"),
                    Some(CloseReason::ServerBusy),
                    true,
                    ctx,
                );
            }
        }
        // Acks leave in arrival order: only the stored prefix of the queue is acked.
        while self
            .in_flight
            .front()
            .is_some_and(|f| f.state == Progress::Stored)
        {
            let done = self.in_flight.pop_front().expect("front exists");
            self.first_seq += 1;
            if let Some(ack) = done.ack {
                self.send(ack);
            }
        }
        self.finish_if_drained(ctx);
    }

    /// Tells the device guard; if the device's breaker trips, the connection closes.
    fn count_rejection(&mut self, ctx: &mut Context<Self>) {
        let rejected = Rejected {
            client_id: self.connect.client_id.clone(),
        };
        self.guard
            .send(rejected)
            .into_actor(self)
            .map(|tripped, conn, ctx| {
                if let Ok(Some(cooldown)) = tripped {
                    let reason = format!("too many rejected messages: refused for {cooldown:?}");
                    conn.begin_close(reason, Some(CloseReason::QuotaExceeded), true, ctx);
                }
            })
            .spawn(ctx);
    }

    fn on_packet(
        &mut self,
        packet: Inbound,
        admission: Option<Admission>,
        ctx: &mut Context<Self>,
    ) {
        self.last_heard = Instant::now();
        if self.closing.is_some() {
            // Read only to be discarded: see "Closing" above.
            return;
        }
        match packet {
            Inbound::Publish(p) => self.publish(p, admission, ctx),
            Inbound::PingReq => self.send(Outbound::PingResp),
            Inbound::PubRel(pkid) => self.send(Outbound::PubComp(pkid)),
            Inbound::Subscribe { pkid, filters } => {
                self.send(Outbound::SubAckRefused { pkid, filters })
            }
            Inbound::Unsubscribe { pkid, filters } => {
                self.send(Outbound::UnsubAck { pkid, filters })
            }
            // Eliot never publishes to devices, so there is nothing for these to ack.
            Inbound::PubAck(_) | Inbound::PubRec(_) | Inbound::PubComp(_) => {}
            Inbound::Disconnect { with_will } => {
                self.begin_close("device sent DISCONNECT".into(), None, with_will, ctx)
            }
            Inbound::TooLarge { size, max } => {
                let error = format!("packet of {size} bytes refused: the limit is {max} bytes");
                self.close_for(error, CloseReason::PacketTooLarge, ctx);
            }
            Inbound::Connect(_) => self.close_for(
                "a second CONNECT on one connection".into(),
                CloseReason::ProtocolError,
                ctx,
            ),
            Inbound::Unexpected(kind) => self.close_for(
                format!("a device may not send {kind}"),
                CloseReason::ProtocolError,
                ctx,
            ),
        }
    }

    /// Closes because the device broke the protocol; logged as a protocol error.
    fn close_for(&mut self, error: String, reason: CloseReason, ctx: &mut Context<Self>) {
        Event::ProtocolError {
            client_id: &self.connect.client_id,
            error: &error,
        }
        .emit(&self.log);
        self.begin_close(error, Some(reason), true, ctx);
    }

    /// Stops taking packets and closes once every message already read is stored and acked.
    fn begin_close(
        &mut self,
        reason: String,
        disconnect: Option<CloseReason>,
        publish_will: bool,
        ctx: &mut Context<Self>,
    ) {
        if self.closing.is_some() {
            return;
        }
        self.closing = Some(Closing {
            reason,
            disconnect,
            publish_will,
        });
        self.finish_if_drained(ctx);
    }

    fn finish_if_drained(&mut self, ctx: &mut Context<Self>) {
        let Some(closing) = &mut self.closing else {
            return;
        };
        if self.pending > 0 {
            return;
        }
        if let Some(reason) = closing.disconnect.take() {
            self.send(Outbound::Disconnect(reason));
        }
        if let Some(writer) = &mut self.writer {
            // The writer flushes, then calls `finished`, which drops it.
            writer.close();
            ctx.run_later(CLOSE_GRACE, |_, ctx| ctx.stop());
        }
        self.stop_if_done(ctx);
    }

    fn stop_if_done(&mut self, ctx: &mut Context<Self>) {
        if self.closing.is_some() && self.pending == 0 && self.writer.is_none() && !self.readable {
            ctx.stop();
        }
    }

    fn check_keep_alive(&mut self, ctx: &mut Context<Self>) {
        let limit = Duration::from_millis(u64::from(self.connect.keep_alive) * 1500);
        // While Eliot is not reading, the device's silence is Eliot's doing.
        let backpressure = self.admission_waiting.load(Ordering::Relaxed);
        if !backpressure && self.closing.is_none() && self.last_heard.elapsed() > limit {
            self.begin_close(
                format!("keep-alive expired: nothing heard for {limit:?}"),
                Some(CloseReason::KeepAliveTimeout),
                true,
                ctx,
            );
        }
    }

    fn publish_will(&self) {
        let Some(will) = self.connect.will.clone() else {
            return;
        };
        Event::WillPublished {
            client_id: &self.connect.client_id,
            topic: &will.topic,
        }
        .emit(&self.log);
        let will = Pipeline::message(will.topic, will.payload, self.connect.client_id.clone());
        let stored = self.pipeline.ingest(vec![will]);
        let log = self.log.clone();
        actix_rt::spawn(async move {
            if let Err(not_stored) = stored.await {
                Event::StoreFailed {
                    error: &format!("will message: {not_stored}"),
                    requests: 1,
                }
                .emit(&log);
            }
        });
    }
}

/// The in-flight byte budget all connections share: PUBLISH payloads read and not yet
/// acked never add up to more than its total.
#[derive(Clone)]
pub struct ByteBudget {
    bytes: Arc<Semaphore>,
    total: u32,
}

impl ByteBudget {
    pub fn new(total: u32) -> Self {
        ByteBudget {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Waits until `size` bytes are free (a payload larger than the whole budget takes
    /// all of it).
    async fn admit(&self, size: usize) -> Option<OwnedSemaphorePermit> {
        let size = u32::try_from(size).unwrap_or(u32::MAX).clamp(1, self.total);
        self.bytes.clone().acquire_many_owned(size).await.ok()
    }
}

/// The packet stream of one connection, where each PUBLISH first waits for a slot of the
/// window and for its size in the shared byte budget.
fn gated(
    reader: FramedRead<OwnedReadHalf, MqttCodec>,
    window: Arc<Semaphore>,
    budget: ByteBudget,
    waiting: Arc<AtomicBool>,
) -> impl Stream<Item = Received> {
    let state = (reader, window, budget, waiting);
    futures_util::stream::unfold(state, |(mut reader, window, budget, waiting)| async move {
        let received = match reader.next().await? {
            Ok(Inbound::Publish(p)) => {
                let size = p.payload.len();
                let admitted = async {
                    let slot = window.clone().acquire_owned().await.ok()?;
                    let bytes = budget.admit(size).await?;
                    Some(Admission {
                        _slot: slot,
                        _bytes: bytes,
                    })
                };
                waiting.store(true, Ordering::Relaxed);
                let admission = admitted.await;
                waiting.store(false, Ordering::Relaxed);
                Ok((Inbound::Publish(p), admission))
            }
            Ok(other) => Ok((other, None)),
            Err(e) => Err(e),
        };
        Some((received, (reader, window, budget, waiting)))
    })
}

impl Actor for DeviceConnection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        Event::DeviceConnected {
            client_id: &self.connect.client_id,
            peer: self.peer,
            protocol: self.connect.version.name(),
            keep_alive: self.connect.keep_alive,
            clean_start: self.connect.clean_start,
        }
        .emit(&self.log);
        if self.connect.keep_alive > 0 {
            let every = Duration::from_millis(u64::from(self.connect.keep_alive) * 250)
                .clamp(Duration::from_millis(250), Duration::from_secs(5));
            ctx.run_interval(every, |conn, ctx| conn.check_keep_alive(ctx));
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        let closing = self.closing.take();
        let reason = closing
            .as_ref()
            .map_or("connection dropped", |c| c.reason.as_str());
        Event::DeviceDisconnected {
            client_id: &self.connect.client_id,
            reason,
        }
        .emit(&self.log);
        if closing.as_ref().is_none_or(|c| c.publish_will) {
            self.publish_will();
        }
        if crate::device_endpoint::session_request(&self.connect)
            .keep
            .is_some()
        {
            self.pipeline.end_session(self.connect.client_id.clone());
        }
        self.endpoint.do_send(Closed {
            client_id: self.connect.client_id.clone(),
            id: self.id,
        });
    }
}

impl StreamHandler<Received> for DeviceConnection {
    fn handle(&mut self, received: Received, ctx: &mut Context<Self>) {
        match received {
            Ok((packet, admission)) => {
                // A connection is "restarted" by closing it: the device reconnects, and
                // what it had not got acked it sends again.
                let handled = catch_panic(|| {
                    fail::fail_point!("connection::packet");
                    self.on_packet(packet, admission, ctx)
                });
                if let Err(panic) = handled {
                    Event::ActorPanicked { panic: &panic }.emit(&self.log);
                    self.begin_close(
                        format!("panic: {panic}"),
                        Some(CloseReason::ServerBusy),
                        true,
                        ctx,
                    );
                }
            }
            Err(CodecError::Io(e)) => {
                self.readable = false;
                self.begin_close(format!("connection lost: {e}"), None, true, ctx);
                self.stop_if_done(ctx);
            }
            // The codec cannot resynchronise after a malformed packet: reading ends here.
            Err(e) => {
                self.readable = false;
                self.close_for(e.to_string(), CloseReason::MalformedPacket, ctx);
                self.stop_if_done(ctx);
            }
        }
    }

    /// The device closed its side: finish what it sent, then close ours.
    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.readable = false;
        self.begin_close("connection closed by the device".into(), None, true, ctx);
        self.stop_if_done(ctx);
    }
}

impl WriteHandler<CodecError> for DeviceConnection {
    /// Nothing more can reach the device; what it already sent still goes to the store.
    fn error(&mut self, err: CodecError, ctx: &mut Context<Self>) -> Running {
        self.begin_close(format!("write failed: {err}"), None, true, ctx);
        // `Stop` ends the writer (retrying the same failed write would spin), not the actor.
        Running::Stop
    }

    /// The writer is done (flushed after `close`, or failed).
    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The writer's own future is still running this call (and borrowing the socket):
        // drop the writer on the next turn of the actor, not from inside it.
        ctx.spawn(actix::fut::ready(()).map(|(), conn: &mut Self, ctx| {
            conn.writer = None;
            conn.stop_if_done(ctx);
        }));
    }
}

impl Handler<TakenOver> for DeviceConnection {
    type Result = ();

    fn handle(&mut self, _: TakenOver, ctx: &mut Context<Self>) {
        self.begin_close(
            "a new connection took over this client id".into(),
            Some(CloseReason::SessionTakenOver),
            true,
            ctx,
        );
    }
}

impl Handler<Drain> for DeviceConnection {
    type Result = ();

    fn handle(&mut self, msg: Drain, ctx: &mut Context<Self>) {
        self.drained.push(msg.done);
        self.begin_close(
            "server shutting down".into(),
            Some(CloseReason::ServerShuttingDown),
            false,
            ctx,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn the_byte_budget_makes_readers_wait_until_acks_give_bytes_back() {
        let budget = ByteBudget::new(100);
        let first = budget.admit(60).await.unwrap();
        let second = budget.admit(60);
        tokio::pin!(second);
        let waited = tokio::time::timeout(Duration::from_millis(50), &mut second).await;
        assert!(waited.is_err(), "60 + 60 bytes do not fit in 100");
        drop(first);
        let second = tokio::time::timeout(Duration::from_millis(50), second).await;
        assert!(
            second.unwrap().is_some(),
            "admitted once the first was acked"
        );
        // A payload larger than the whole budget waits for all of it, not for ever.
        let whole =
            tokio::time::timeout(Duration::from_millis(50), ByteBudget::new(10).admit(1_000)).await;
        assert!(whole.unwrap().is_some());
    }
}
