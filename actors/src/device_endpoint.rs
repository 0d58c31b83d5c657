//! `DeviceEndpoint`: accepts device sockets, reads each one's CONNECT, and starts a
//! `DeviceConnection` actor per accepted device.
//!
//! It keeps the registry of connected client ids (a second connection with the same id
//! takes the session over) and drains every connection on shutdown.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::prelude::*;
use bytes::BytesMut;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use slog::Logger;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::codec::{Encoder, FramedRead};

use crate::device_connection::{Accepted, ByteBudget, DeviceConnection, Drain, TakenOver};
use crate::device_guard::{DeviceGuard, MayConnect, Refusal};
use crate::events::Event;
use crate::mqtt::codec::{CodecError, MqttCodec};
use crate::mqtt::packet::*;
use crate::pipeline::Pipeline;
use crate::restart::Restarts;
use crate::store::SessionRequest;

pub const NAME: &str = "device_endpoint";

/// The `[mqtt]` section: Eliot's own MQTT listener for devices.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    /// Address the device endpoint listens on.
    pub listen: SocketAddr,
    /// Largest packet a device may send, in bytes, fixed header included (MQTT 5's Maximum
    /// Packet Size); larger packets are refused and the connection closed (v5: DISCONNECT
    /// 0x95 first).
    pub max_packet_size: u32,
    /// PUBLISHes one connection may have unacked; also sent as the v5 Receive Maximum.
    /// When it is full, Eliot stops reading that socket until an ack goes out.
    pub max_in_flight: u16,
    /// Payload bytes all connections together may have read and not yet acked. When it
    /// is used up, Eliot stops reading sockets until acks go out: with
    /// `max_connections` and `max_packet_size`, it bounds Eliot's memory.
    pub max_in_flight_bytes: u32,
    /// Most simultaneous device connections; more are closed on accept.
    pub max_connections: usize,
    /// How long a new socket may take to send its CONNECT.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

/// A connection ended; sent by the connection itself as it stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Closed {
    pub client_id: String,
    pub id: u64,
}

/// Stop accepting and drain every connection. Answers with one receiver per
/// connection, each resolved when that connection is gone.
#[derive(Message)]
#[rtype(result = "Vec<oneshot::Receiver<()>>")]
pub struct StopIntake;

/// How many devices are connected now.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct ConnectionCount;

type Accept = io::Result<(TcpStream, SocketAddr)>;

pub struct DeviceEndpoint {
    settings: EndpointSettings,
    /// Shared with the accept stream; dropped on shutdown so the port closes.
    listener: Option<Rc<TcpListener>>,
    accepting: Option<SpawnHandle>,
    /// Connected devices by client id, with the connection's id.
    connections: HashMap<String, (u64, Addr<DeviceConnection>)>,
    /// Sockets accepted whose CONNECT has not arrived yet (count toward the limit).
    handshaking: usize,
    draining: bool,
    pipeline: Pipeline,
    budget: ByteBudget,
    /// The per-device breakers: asked at CONNECT, told of rejected messages.
    guard: Addr<DeviceGuard>,
    restarts: Restarts,
    log: Logger,
    /// Connections get their own `actor` key, so they log from the root logger.
    root_log: Logger,
}

/// Ids for connections and for client ids Eliot assigns; unique per process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl DeviceEndpoint {
    pub fn new(
        settings: EndpointSettings,
        listener: TcpListener,
        pipeline: Pipeline,
        guard: Addr<DeviceGuard>,
        restarts: Restarts,
        log: &Logger,
    ) -> Self {
        DeviceEndpoint {
            budget: ByteBudget::new(settings.max_in_flight_bytes),
            settings,
            listener: Some(Rc::new(listener)),
            accepting: None,
            connections: HashMap::new(),
            handshaking: 0,
            draining: false,
            pipeline,
            guard,
            restarts,
            log: log.new(slog::o!("actor" => NAME)),
            root_log: log.clone(),
        }
    }

    fn limits(&self) -> ServerLimits {
        ServerLimits {
            receive_maximum: self.settings.max_in_flight,
            max_packet_size: self.settings.max_packet_size,
        }
    }

    fn refuse(&self, peer: SocketAddr, reason: &str) {
        Event::ConnectionRefused { peer, reason }.emit(&self.log);
    }

    fn accept(&mut self, socket: TcpStream, peer: SocketAddr, ctx: &mut Context<Self>) {
        if self.draining {
            return self.refuse(peer, "server shutting down");
        }
        if self.connections.len() + self.handshaking >= self.settings.max_connections {
            return self.refuse(peer, "connection limit reached (mqtt.max_connections)");
        }
        // Acks are tiny and latency matters more than packet count.
        let _ = socket.set_nodelay(true);
        let (read, write) = socket.into_split();
        let mut reader =
            FramedRead::new(read, MqttCodec::new(self.settings.max_packet_size as usize));
        let timeout = self.settings.connect_timeout;
        self.handshaking += 1;
        async move {
            let first = tokio::time::timeout(timeout, reader.next()).await;
            (first, reader, write)
        }
        .into_actor(self)
        .map(move |(first, reader, write), endpoint, ctx| {
            endpoint.handshaking -= 1;
            match first {
                Err(_) => endpoint.refuse(peer, &format!("no CONNECT within {timeout:?}")),
                Ok(None) => endpoint.refuse(peer, "closed before sending CONNECT"),
                Ok(Some(Ok(Inbound::Connect(connect)))) => {
                    endpoint.on_connect(connect, peer, reader, write, ctx)
                }
                Ok(Some(Ok(_))) => endpoint.refuse(peer, "the first packet must be CONNECT"),
                Ok(Some(Err(CodecError::UnsupportedProtocol { name, level }))) => {
                    endpoint.refuse(
                        peer,
                        &format!("unsupported protocol `{name}` level {level}"),
                    );
                    // 3.1.1 §3.2.2.3: answer return code 0x01, then close.
                    refuse_connect(
                        write,
                        Version::V4,
                        ConnectCode::UnsupportedProtocol,
                        endpoint.limits(),
                        None,
                    );
                }
                Ok(Some(Err(e))) => endpoint.refuse(peer, &e.to_string()),
            }
        })
        .spawn(ctx);
    }

    fn on_connect(
        &mut self,
        mut connect: Connect,
        peer: SocketAddr,
        reader: FramedRead<tokio::net::tcp::OwnedReadHalf, MqttCodec>,
        write: OwnedWriteHalf,
        ctx: &mut Context<Self>,
    ) {
        if self.draining {
            self.refuse(peer, "server shutting down");
            return refuse_connect(
                write,
                connect.version,
                ConnectCode::ServerUnavailable,
                self.limits(),
                None,
            );
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut assigned_client_id = None;
        if connect.client_id.is_empty() {
            // 3.1.1 §3.1.3.1: an empty id needs a clean session; 5.0 lets the server pick.
            if connect.version == Version::V4 && !connect.clean_start {
                self.refuse(peer, "empty client id with a persistent session");
                return refuse_connect(
                    write,
                    connect.version,
                    ConnectCode::ClientIdRejected,
                    self.limits(),
                    None,
                );
            }
            connect.client_id = format!("eliot-{id}");
            if connect.version == Version::V5 {
                assigned_client_id = Some(connect.client_id.clone());
            }
        }
        // A device whose breaker is open is refused; otherwise its session is recorded
        // before the CONNACK, so that Session Present survives a crash.
        self.handshaking += 1;
        let request = session_request(&connect);
        let (guard, pipeline) = (self.guard.clone(), self.pipeline.clone());
        let client_id = connect.client_id.clone();
        async move {
            match guard.send(MayConnect { client_id }).await {
                Ok(Err(refusal)) => return Err(Refused::Device(refusal)),
                Err(e) => return Err(Refused::Other(format!("device guard unavailable: {e}"))),
                Ok(Ok(())) => {}
            }
            pipeline
                .open_session(request)
                .await
                .map_err(|e| Refused::Other(format!("cannot record the session: {e}")))
        }
        .into_actor(self)
        .map(move |present, endpoint, ctx| {
            endpoint.handshaking -= 1;
            let limits = endpoint.limits();
            let present = match present {
                _ if endpoint.draining => Err(Refused::Other("server shutting down".into())),
                other => other,
            };
            match present {
                Ok(present) => {
                    let session = Session {
                        id,
                        present,
                        assigned_client_id,
                    };
                    endpoint.start_connection(connect, session, peer, reader, write, ctx);
                }
                Err(Refused::Device(refusal)) => {
                    Event::DeviceRefused {
                        client_id: &connect.client_id,
                        reason: &refusal.reason,
                        retry_after: refusal.retry_after,
                    }
                    .emit(&endpoint.log);
                    let why = format!(
                        "refused for {} s more: {}",
                        refusal.retry_after.as_secs_f64().ceil(),
                        refusal.reason
                    );
                    let code = ConnectCode::QuotaExceeded;
                    refuse_connect(write, connect.version, code, limits, Some(why));
                }
                Err(Refused::Other(reason)) => {
                    endpoint.refuse(peer, &reason);
                    let code = ConnectCode::ServerUnavailable;
                    refuse_connect(write, connect.version, code, limits, None);
                }
            }
        })
        .spawn(ctx);
    }

    fn start_connection(
        &mut self,
        connect: Connect,
        session: Session,
        peer: SocketAddr,
        reader: FramedRead<tokio::net::tcp::OwnedReadHalf, MqttCodec>,
        write: OwnedWriteHalf,
        ctx: &mut Context<Self>,
    ) {
        if let Some((_, previous)) = self.connections.get(&connect.client_id) {
            previous.do_send(TakenOver);
        }
        let client_id = connect.client_id.clone();
        let addr = DeviceConnection::start(Accepted {
            id: session.id,
            connect,
            peer,
            reader,
            writer: write,
            session_present: session.present,
            assigned_client_id: session.assigned_client_id,
            limits: self.limits(),
            pipeline: self.pipeline.clone(),
            budget: self.budget.clone(),
            guard: self.guard.clone(),
            endpoint: ctx.address(),
            log: self.root_log.clone(),
        });
        self.connections.insert(client_id, (session.id, addr));
    }
}

/// Why a CONNECT that parsed is refused.
enum Refused {
    /// The device's breaker is open.
    Device(Refusal),
    Other(String),
}

/// What the endpoint settled about a connection's session before starting it.
struct Session {
    id: u64,
    present: bool,
    assigned_client_id: Option<String>,
}

/// The session a CONNECT asks for: 3.1.1 keeps it for ever unless clean session is set;
/// 5 keeps it for the Session Expiry Interval (0, the default: not past this connection;
/// 0xFFFFFFFF: for ever).
pub fn session_request(connect: &Connect) -> SessionRequest {
    let keep = match connect.version {
        Version::V4 if connect.clean_start => None,
        Version::V4 => Some(None),
        Version::V5 => match connect.session_expiry.unwrap_or(0) {
            0 => None,
            u32::MAX => Some(None),
            seconds => Some(Some(seconds)),
        },
    };
    SessionRequest {
        client_id: connect.client_id.clone(),
        clean_start: connect.clean_start,
        keep,
    }
}

/// Answers a CONNECT with a refusal code (and, in v5, the reason), then closes the socket.
fn refuse_connect(
    mut write: OwnedWriteHalf,
    version: Version,
    code: ConnectCode,
    limits: ServerLimits,
    reason: Option<String>,
) {
    let mut buf = BytesMut::new();
    let connack = Outbound::ConnAck {
        code,
        session_present: false,
        assigned_client_id: None,
        limits,
        reason,
    };
    if MqttCodec::for_version(version, 0)
        .encode(connack, &mut buf)
        .is_ok()
    {
        actix_rt::spawn(async move {
            let _ = write.write_all(&buf).await;
            let _ = write.shutdown().await;
        });
    }
}

fn accept_stream(listener: Rc<TcpListener>) -> impl futures_util::Stream<Item = Accept> {
    futures_util::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await;
        Some((accepted, listener))
    })
}

impl Actor for DeviceEndpoint {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.restarts.start(ctx, Self::listen);
    }
}

impl DeviceEndpoint {
    fn listen(&mut self, ctx: &mut Context<Self>) {
        if let Some(listener) = &self.listener {
            if let Ok(addr) = listener.local_addr() {
                Event::Listening { addr }.emit(&self.log);
            }
            self.accepting = Some(ctx.add_stream(accept_stream(listener.clone())));
        }
    }
}

impl Supervised for DeviceEndpoint {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // The handshakes in progress were futures of the stopped context: they are gone.
        self.handshaking = 0;
        self.restarts.restarting("stopped".into());
    }
}

crate::answers_pings!(DeviceEndpoint);

impl StreamHandler<Accept> for DeviceEndpoint {
    fn handle(&mut self, accepted: Accept, ctx: &mut Context<Self>) {
        match accepted {
            Ok((socket, peer)) => self.accept(socket, peer, ctx),
            Err(e) => {
                slog::error!(self.log, "accept failed, pausing accepts for 100ms";
                    "event" => "accept_failed", "error" => %e);
                // Out of file descriptors, typically: retrying at once would spin.
                ctx.wait(actix::clock::sleep(Duration::from_millis(100)).into_actor(self));
            }
        }
    }

    /// The accept stream never ends on its own; it is cancelled on shutdown.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<Closed> for DeviceEndpoint {
    type Result = ();

    fn handle(&mut self, msg: Closed, _: &mut Context<Self>) {
        // A replaced connection reports late: keep its successor registered.
        if self
            .connections
            .get(&msg.client_id)
            .is_some_and(|(id, _)| *id == msg.id)
        {
            self.connections.remove(&msg.client_id);
        }
    }
}

impl Handler<StopIntake> for DeviceEndpoint {
    type Result = MessageResult<StopIntake>;

    fn handle(&mut self, _: StopIntake, ctx: &mut Context<Self>) -> Self::Result {
        self.draining = true;
        if let Some(accepting) = self.accepting.take() {
            ctx.cancel_future(accepting);
        }
        self.listener = None;
        let drained = self
            .connections
            .values()
            .map(|(_, conn)| {
                let (done, drained) = oneshot::channel();
                conn.do_send(Drain { done });
                drained
            })
            .collect();
        MessageResult(drained)
    }
}

impl Handler<ConnectionCount> for DeviceEndpoint {
    type Result = usize;

    fn handle(&mut self, _: ConnectionCount, _: &mut Context<Self>) -> usize {
        self.connections.len()
    }
}
