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
//! order the PUBLISHes arrived: the `AckQueue` keeps those rules (`acking`).
//!
//! Closing (`closing`): whatever the reason, the connection finishes what it read, acks
//! it, and closes without resetting the device. The will is published unless the device
//! said DISCONNECT (or the server is shutting down).
//!
//! The connection reads and writes a `Transport`'s halves: it does not know TCP from TLS.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::io::FramedWrite;
use actix::prelude::*;
use tokio::sync::{oneshot, Semaphore};
use tokio_util::codec::FramedRead;

mod acking;
mod closing;

use closing::Closing;

use super::ack_queue::AckQueue;
use super::admission::Session;
use super::backlog::{Backlog, Counted, CountingWriter};
use super::intake::{gated, Limits, Permit, Received};
use super::transport::{DeviceReader, DeviceWriter};
use super::will::DelayedWill;
use crate::fleet::{Carrier, Source};
use crate::identity::credentials::LogPosition;
use crate::identity::DeviceRate;
use crate::ingest::Message;
use crate::mqtt::packet::*;
use crate::mqtt::{CodecError, MqttCodec, PartialSince};
use crate::observe::{Event, Telemetry};
use crate::pipeline::{ByteBudget, Pipeline};
use crate::store::Sessions;
use crate::supervision::{catch_panic, Rejected};

/// How long a closing connection waits for the device to close its side, after the last
/// packets were written, before the socket is dropped anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Everything a new connection needs, handed over by the endpoint after admission.
pub struct Accepted {
    pub connect: Connect,
    /// What admission settled: the connection's id, Session Present, an assigned client
    /// id, and whether the session outlives the connection.
    pub session: Session,
    pub peer: SocketAddr,
    pub reader: FramedRead<DeviceReader, MqttCodec>,
    pub writer: DeviceWriter,
    pub limits: ServerLimits,
    /// `mqtt.packet_timeout`.
    pub packet_timeout: Duration,
    pub pipeline: Pipeline,
    pub sessions: Sessions,
    pub budget: ByteBudget,
    /// The device's rate limits (`auth.device_*_per_second`), if any.
    pub rate: Option<DeviceRate>,
    /// The device guard, told of each rejected message.
    pub guard: Recipient<Rejected>,
    /// The endpoint, told when this connection is gone.
    pub endpoint: Recipient<Closed>,
    /// The endpoint, which publishes a will with a delay.
    pub wills: Recipient<DelayedWill>,
    pub telemetry: Telemetry,
}

/// This connection ended; sent to the endpoint as the connection stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Closed {
    pub client_id: String,
    pub id: u64,
}

/// The endpoint replaces this connection: a new one came with the same client id.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TakenOver;

/// The device's credentials were revoked (`why`): close with v5 DISCONNECT 0x87.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CredentialsRevoked {
    pub why: &'static str,
}

/// Server shutdown: finish what was read, ack it, close. `done` is dropped with the actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain {
    pub done: oneshot::Sender<()>,
}

pub struct DeviceConnection {
    /// The endpoint's id for this connection, so a late `Closed` from a replaced
    /// connection does not unregister its successor.
    id: u64,
    /// The device the client authenticated as (then also its client id): every message
    /// it sends must name it.
    identity: Option<Arc<str>>,
    /// The revocation log's position when its credentials were checked (`Session`).
    checked_at: LogPosition,
    /// What the device guard counts this client's rejections under (`Session::guard_key`).
    guard_key: String,
    connect: Connect,
    /// True when the session outlives the connection: its end is recorded.
    session_kept: bool,
    /// A v5 DISCONNECT's new Session Expiry Interval, applied as the session ends.
    expiry_at_end: Option<u32>,
    peer: SocketAddr,
    /// `None` once the writer finished (flushed and closed, or failed): dropping it
    /// drops the transport's sending half, which sends the device a FIN.
    writer: Option<FramedWrite<Outbound, CountingWriter, Counted<MqttCodec>>>,
    /// What the writer holds that the socket has not taken.
    replies: Arc<Backlog>,
    /// True once a SUBACK said why Eliot refuses subscriptions: later ones just refuse.
    refused_a_subscription: bool,
    /// PUBLISHes read and not yet acked, in arrival order, each holding its permit.
    acks: AckQueue<Option<Permit>>,
    /// PUBLISHes read this turn, not yet sent down the pipeline (the newest pending
    /// entries of `acks`), and the sequence number of the first.
    unsent: Vec<Message>,
    unsent_from: u64,
    /// When the first of them was read.
    unsent_since: Instant,
    /// True while the read stream waits for room (window or byte budget) for a PUBLISH
    /// it has read: Eliot has stopped reading, so the device's silence is Eliot's doing.
    waiting_for_room: Arc<AtomicBool>,
    last_heard: Instant,
    /// False once the device closed its side (or reading failed).
    readable: bool,
    /// Since when a packet has been arriving half way (set by the codec).
    partial: PartialSince,
    packet_timeout: Duration,
    closing: Option<Closing>,
    /// Held until the actor is dropped: a drain waits on the other end.
    drained: Vec<oneshot::Sender<()>>,
    pipeline: Pipeline,
    sessions: Sessions,
    guard: Recipient<Rejected>,
    endpoint: Recipient<Closed>,
    wills: Recipient<DelayedWill>,
    telemetry: Telemetry,
}

impl DeviceConnection {
    pub fn start(a: Accepted) -> Addr<DeviceConnection> {
        DeviceConnection::create(move |ctx| {
            let window = usize::from(a.limits.receive_maximum);
            let waiting_for_room = Arc::new(AtomicBool::new(false));
            let slots = Arc::new(Semaphore::new(window));
            let partial = a.reader.decoder().partial_since();
            let replies = Arc::new(Backlog::default());
            let limits = Limits {
                window: slots,
                budget: a.budget,
                rate: a.rate.map(Arc::new),
                replies: replies.clone(),
            };
            ctx.add_stream(gated(a.reader, limits, waiting_for_room.clone()));
            let codec = Counted {
                encoder: MqttCodec::for_peer(
                    a.connect.version,
                    a.limits.max_packet_size as usize,
                    a.connect.peer,
                ),
                backlog: replies.clone(),
            };
            let socket = CountingWriter {
                inner: a.writer,
                backlog: replies.clone(),
            };
            let mut writer = FramedWrite::new(socket, codec, ctx);
            // The fleet knows this connection by its id, and may close it (a device
            // rotated or deleted); the devices it carries are online while it is up.
            let carrier = Arc::new(Carrier {
                connection: a.session.id,
                peer: a.peer,
                protocol: match a.connect.version {
                    Version::V4 => "mqtt-3.1.1",
                    Version::V5 => "mqtt-5",
                },
                closer: ctx.address().recipient(),
            });
            if let (Some(fleet), Some(identity)) = (a.pipeline.fleet(), &a.session.identity) {
                fleet.connected(identity, carrier.clone());
            }
            let pipeline = a.pipeline.with_source(Source::Connection(carrier));
            writer.write(Outbound::ConnAck {
                code: ConnectCode::Accepted,
                session_present: a.session.present,
                assigned_client_id: a.session.assigned_client_id,
                limits: a.limits,
                reason: None,
            });
            DeviceConnection {
                id: a.session.id,
                identity: a.session.identity.map(Arc::from),
                checked_at: a.session.checked_at,
                guard_key: a.session.guard_key,
                connect: a.connect,
                session_kept: a.session.kept,
                expiry_at_end: None,
                peer: a.peer,
                writer: Some(writer),
                replies,
                refused_a_subscription: false,
                acks: AckQueue::new(window),
                unsent: Vec::new(),
                unsent_from: 0,
                unsent_since: Instant::now(),
                waiting_for_room,
                last_heard: Instant::now(),
                readable: true,
                partial,
                packet_timeout: a.packet_timeout,
                closing: None,
                drained: Vec::new(),
                pipeline,
                sessions: a.sessions,
                guard: a.guard,
                endpoint: a.endpoint,
                wills: a.wills,
                telemetry: a.telemetry.for_actor("device_connection"),
            }
        })
    }

    fn send(&mut self, packet: Outbound) {
        if let Some(writer) = &mut self.writer {
            writer.write(packet);
        }
    }

    fn on_packet(&mut self, packet: Inbound, permit: Option<Permit>, ctx: &mut Context<Self>) {
        self.last_heard = Instant::now();
        if self.closing.is_some() {
            // Read only to be discarded: see `closing`.
            return;
        }
        match packet {
            Inbound::Publish(p) => self.publish(p, permit, ctx),
            Inbound::PingReq => self.send(Outbound::PingResp),
            Inbound::PubRel(pkid) => {
                // Known or not (a resend after a reconnect), the exchange ends here.
                self.acks.release(pkid);
                self.send(Outbound::PubComp(pkid));
            }
            Inbound::Subscribe { pkid, filters } => {
                let explain = !self.refused_a_subscription;
                self.refused_a_subscription = true;
                self.send(Outbound::SubAckRefused {
                    pkid,
                    filters,
                    explain,
                })
            }
            Inbound::Unsubscribe { pkid, filters } => {
                self.send(Outbound::UnsubAck { pkid, filters })
            }
            // Eliot never publishes to devices, so there is nothing for these to ack.
            Inbound::PubAck(_) | Inbound::PubRec(_) | Inbound::PubComp(_) => {}
            Inbound::Disconnect {
                with_will,
                session_expiry,
            } => {
                // [MQTT-3.14.2-2]: a session that was not kept cannot be kept now.
                if session_expiry.is_some_and(|e| e > 0) && !self.session_kept {
                    let error =
                        "a DISCONNECT setting a Session Expiry Interval the CONNECT did not";
                    return self.close_for(error.into(), CloseReason::ProtocolError, ctx);
                }
                self.expiry_at_end = session_expiry;
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
            Inbound::InvalidPublish { problem, close } => {
                self.close_for(problem.to_owned(), close, ctx)
            }
            Inbound::Unexpected(kind) => self.close_for(
                format!("a device may not send {kind}"),
                CloseReason::ProtocolError,
                ctx,
            ),
        }
    }
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
        .emit(&self.telemetry);
        // One timer per connection serves both deadlines: a quarter of the keep-alive (if
        // any), at most half the packet timeout.
        let mut every = self.packet_timeout / 2;
        if self.connect.keep_alive > 0 {
            every = every.min(Duration::from_millis(
                u64::from(self.connect.keep_alive) * 250,
            ));
        }
        let every = every.clamp(Duration::from_millis(250), Duration::from_secs(5));
        ctx.run_interval(every, |conn, ctx| conn.check_deadlines(ctx));
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
        .emit(&self.telemetry);
        // Before the will: the devices it carried are offline, whatever the will says.
        if let Some(fleet) = self.pipeline.fleet() {
            fleet.disconnected(self.id, reason);
        }
        if closing.as_ref().is_none_or(|c| c.publish_will) {
            self.publish_will();
        }
        if self.session_kept {
            let ended = (self.connect.client_id.clone(), self.id);
            self.sessions.end(ended, self.expiry_at_end);
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
            Ok((packet, permit)) => {
                // A connection is "restarted" by closing it: the device reconnects, and
                // what it had not got acked it sends again.
                let handled = catch_panic(|| {
                    fail::fail_point!("connection::packet");
                    self.on_packet(packet, permit, ctx)
                });
                if let Err(panic) = handled {
                    Event::ActorPanicked { panic: &panic }.emit(&self.telemetry);
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
