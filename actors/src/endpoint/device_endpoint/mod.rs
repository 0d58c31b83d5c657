//! `DeviceEndpoint`: accepts device sockets, reads each one's CONNECT, runs admission,
//! and starts a `DeviceConnection` actor per admitted device.
//!
//! It keeps the registry of connected client ids (a second connection with the same id
//! takes the session over) and drains every connection on shutdown. From the CONNECT on
//! it works on a `Transport`, whatever the socket: the `TlsListener` (and a test) hands it
//! streams through its `Adopter`.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use actix::prelude::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::codec::FramedRead;

use super::admission::Session;
use super::awaiting_connect::AwaitingConnect;
use super::device_connection::{Accepted, Closed, DeviceConnection, Drain, TakenOver};
use super::revoking::Revocations;
use super::settings::EndpointSettings;
use super::transport::{DeviceReader, DeviceWriter, Transport};
use super::will::{self, PendingWills};
use crate::identity::credentials::LogPosition;
use crate::identity::{AddressLimits, AuthSettings, Authenticator, DeviceRate, LoginAttempts};
use crate::mqtt::packet::*;
use crate::mqtt::MqttCodec;
use crate::observe::{Event, Telemetry};
use crate::pipeline::{ByteBudget, Pipeline};
use crate::store::{Sessions, SESSION_REFRESH};
use crate::supervision::{DeviceGuard, Restarts};

mod handshake;

pub const NAME: &str = "device_endpoint";

/// How long accepts pause after a failed accept (out of descriptors, typically), so that
/// retrying does not spin: at most ten failures (and log records) a second.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// After a failed accept, a listener (this endpoint's, the TLS listener's) logs it and
/// takes no message, its accepts included, for `ACCEPT_PAUSE`.
pub fn pause_after_failed_accept<A>(
    error: &std::io::Error,
    telemetry: &Telemetry,
    ctx: &mut Context<A>,
) where
    A: Actor<Context = Context<A>>,
{
    Event::AcceptFailed {
        error: &error.to_string(),
        pause: ACCEPT_PAUSE,
    }
    .emit(telemetry);
    ctx.wait(actix::fut::wrap_future::<_, A>(actix::clock::sleep(
        ACCEPT_PAUSE,
    )));
}

/// Stop accepting and drain every connection. Answers with one receiver per
/// connection, each resolved when that connection is gone.
#[derive(Message)]
#[rtype(result = "Vec<oneshot::Receiver<()>>")]
pub struct StopIntake;

/// Serve a device that connected over some other byte stream (a TLS acceptor's, an
/// in-memory pipe's): from its CONNECT on, it is served like a TCP device.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Adopt(pub Transport);

/// Hands the endpoint devices connected over other byte streams; cheap to clone, usable
/// from any thread.
#[derive(Clone)]
pub struct Adopter(Addr<DeviceEndpoint>);

impl Adopter {
    pub fn new(endpoint: Addr<DeviceEndpoint>) -> Self {
        Adopter(endpoint)
    }

    pub fn adopt(&self, transport: Transport) {
        // A new connection is a control event, not a data-path message: `do_send` is fine.
        self.0.do_send(Adopt(transport));
    }
}

/// How many devices are connected now.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct ConnectionCount;

type Accept = io::Result<(TcpStream, SocketAddr)>;

/// What the endpoint hands every connection it starts.
#[derive(Clone)]
pub struct EndpointLinks {
    pub pipeline: Pipeline,
    pub sessions: Sessions,
    /// The per-device breakers: asked at CONNECT, told of rejected messages.
    pub guard: Addr<DeviceGuard>,
    /// Who a client is, as `auth.mode` requires.
    pub authenticator: Authenticator,
    /// The `[auth]` limits: per address, and each device's rate.
    pub auth: AuthSettings,
    /// Payload bytes read and not yet acked, shared with the upstream connections.
    pub budget: ByteBudget,
}

pub struct DeviceEndpoint {
    pub(super) settings: EndpointSettings,
    /// Shared with the accept stream; dropped on shutdown so the port closes.
    listener: Option<Rc<TcpListener>>,
    accepting: Option<SpawnHandle>,
    /// Connected devices by client id, with the connection's id.
    pub(super) connections: HashMap<String, Registered>,
    /// Sockets accepted whose CONNECT has not been answered yet (count toward the limit).
    handshaking: usize,
    /// Of those, the ones whose CONNECT has not arrived yet, per address.
    awaiting_connect: AwaitingConnect,
    /// Wills waiting for their delay, by client id (at most `max_connections`, and
    /// `will::PENDING_WILLS_MAX_BYTES`).
    pub(super) pending_wills: PendingWills,
    draining: bool,
    pub(super) links: EndpointLinks,
    budget: ByteBudget,
    /// New connections, per remote address.
    addresses: AddressLimits,
    /// Failed logins, per remote address and claimed device.
    logins: LoginAttempts,
    restarts: Restarts,
    /// Where it is in the revocation log: connections of revoked devices are closed.
    pub(super) revocations: Revocations,
    pub(super) telemetry: Telemetry,
    /// Connections get their own `actor` key, so they log from the tree's telemetry.
    root_telemetry: Telemetry,
}

/// A connected device, as the registry knows it.
pub(super) struct Registered {
    /// The connection's id: a late `Closed` from a replaced connection carries another.
    id: u64,
    pub(super) addr: Addr<DeviceConnection>,
    /// The revocation log's position when its credentials were checked: a revocation
    /// past it closes the connection (`revoking`).
    pub(super) checked_at: LogPosition,
    /// Whether its session outlives the connection (and so is refreshed while connected).
    session_kept: bool,
    /// Whether its CONNECT ended any earlier session (clean start / clean session).
    clean_start: bool,
}

/// What became of a connection's session after a later connection took its client id.
pub(super) enum Successor {
    ContinuedSession,
    StartedClean,
}

/// Ids for connections and for client ids Eliot assigns; unique per process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl DeviceEndpoint {
    pub fn new(
        settings: EndpointSettings,
        listener: TcpListener,
        links: EndpointLinks,
        restarts: Restarts,
        telemetry: &Telemetry,
    ) -> Self {
        DeviceEndpoint {
            budget: links.budget.clone(),
            addresses: AddressLimits::new(&links.auth),
            awaiting_connect: AwaitingConnect::new(settings.max_pending_per_address),
            logins: LoginAttempts::new(&links.auth),
            settings,
            listener: Some(Rc::new(listener)),
            accepting: None,
            connections: HashMap::new(),
            handshaking: 0,
            pending_wills: PendingWills::default(),
            draining: false,
            links,
            restarts,
            revocations: Revocations::default(),
            telemetry: telemetry.for_actor(NAME),
            root_telemetry: telemetry.clone(),
        }
    }

    fn limits(&self) -> ServerLimits {
        ServerLimits {
            receive_maximum: self.settings.max_in_flight,
            max_packet_size: self.settings.max_packet_size,
        }
    }

    /// Logs and counts a refusal; `code` is the CONNACK code sent, if any.
    fn refuse(&self, peer: SocketAddr, code: Option<ConnectCode>, reason: &str) {
        let code = code.map_or("none", ConnectCode::name);
        Event::ConnectionRefused { peer, code, reason }.emit(&self.telemetry);
    }

    /// Takes a new transport on, within the limits; refused ones are just dropped (closed).
    fn accept(&mut self, transport: Transport, ctx: &mut Context<Self>) {
        if self.draining {
            return self.refuse(transport.peer, None, "server shutting down");
        }
        if self.connections.len() + self.handshaking >= self.settings.max_connections {
            let reason = "connection limit reached (mqtt.max_connections)";
            return self.refuse(transport.peer, None, reason);
        }
        if !self.addresses.may_connect(transport.peer.ip()) {
            let reason =
                "too many new connections from this address (auth.new_connections_per_second)";
            return self.refuse(transport.peer, None, reason);
        }
        if !self.awaiting_connect.enter(transport.peer.ip()) {
            let reason = "too many sockets from this address yet to send their CONNECT";
            return self.refuse(transport.peer, None, reason);
        }
        self.handshake(transport, ctx);
    }

    /// Sockets accepted and not yet answered change by `delta`; `/ready` and `/metrics`
    /// see them.
    fn count_handshakes(&mut self, delta: isize) {
        self.handshaking = self.handshaking.saturating_add_signed(delta);
        let pending = i64::try_from(self.handshaking).unwrap_or(i64::MAX);
        self.telemetry.metrics().connections_pending.set(pending);
    }

    fn start_connection(
        &mut self,
        connect: Connect,
        session: Session,
        (reader, writer, peer): (
            FramedRead<DeviceReader, MqttCodec>,
            DeviceWriter,
            SocketAddr,
        ),
        ctx: &mut Context<Self>,
    ) {
        if let Some(previous) = self.connections.get(&connect.client_id) {
            previous.addr.do_send(TakenOver);
        }
        if let Some(pending) = self.pending_wills.take(&connect.client_id, ctx) {
            // Back to its session: the will is dropped; a clean start ends the session,
            // which publishes it now.
            if connect.clean_start {
                let pipeline = &self.links.pipeline;
                let from = (connect.client_id.as_str(), pending.identity);
                will::publish(pipeline, &self.telemetry, from, pending.will);
            }
        }
        let client_id = connect.client_id.clone();
        let (id, session_kept, clean_start) = (session.id, session.kept, connect.clean_start);
        let checked_at = session.checked_at;
        let addr = DeviceConnection::start(Accepted {
            connect,
            session,
            peer,
            reader,
            writer,
            limits: self.limits(),
            packet_timeout: self.settings.packet_timeout,
            pipeline: self.links.pipeline.clone(),
            sessions: self.links.sessions.clone(),
            budget: self.budget.clone(),
            rate: DeviceRate::new(
                &self.links.auth,
                self.settings.max_packet_size,
                self.telemetry.metrics().rate_limited.clone(),
            ),
            guard: self.links.guard.clone().recipient(),
            endpoint: ctx.address().recipient(),
            wills: ctx.address().recipient(),
            telemetry: self.root_telemetry.clone(),
        });
        let registered = Registered {
            id,
            addr,
            checked_at,
            session_kept,
            clean_start,
        };
        self.connections.insert(client_id, registered);
    }

    fn listen(&mut self, ctx: &mut Context<Self>) {
        self.watch_revocations(ctx);
        if let Some(listener) = &self.listener {
            if let Ok(addr) = listener.local_addr() {
                Event::Listening { addr }.emit(&self.telemetry);
            }
            self.accepting = Some(ctx.add_stream(accept_stream(listener.clone())));
        }
        ctx.run_interval(SESSION_REFRESH, |endpoint, _| endpoint.refresh_sessions());
    }

    /// The connection that holds `client_id` now, if it is not `connection` (which it
    /// took over): whether it continued the session or started clean.
    pub(super) fn successor(&self, client_id: &str, connection: u64) -> Option<Successor> {
        let now = self
            .connections
            .get(client_id)
            .filter(|c| c.id != connection)?;
        Some(match now.clean_start {
            true => Successor::StartedClean,
            false => Successor::ContinuedSession,
        })
    }

    /// Marks the kept sessions of connected devices seen, so that their expiry counts from
    /// when the device was last seen, even across a crash; the store purges expired ones.
    fn refresh_sessions(&self) {
        let connected = self
            .connections
            .iter()
            .filter(|(_, c)| c.session_kept)
            .map(|(client_id, _)| client_id.clone())
            .collect();
        self.links.sessions.refresh(connected);
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

impl Supervised for DeviceEndpoint {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // The handshakes in progress were futures of the stopped context: they are gone.
        self.handshaking = 0;
        self.telemetry.metrics().connections_pending.set(0);
        self.awaiting_connect.clear();
        self.revocations.restarting();
        // Not listening until `listen` runs again, after the backoff.
        self.telemetry.metrics().listening.set(0);
        self.restarts.restarting("stopped".into());
    }
}

crate::answers_pings!(DeviceEndpoint);

impl StreamHandler<Accept> for DeviceEndpoint {
    fn handle(&mut self, accepted: Accept, ctx: &mut Context<Self>) {
        match accepted {
            Ok((socket, peer)) => {
                let keepalive = self.settings.tcp_keepalive;
                self.accept(Transport::tcp(socket, peer, keepalive), ctx)
            }
            Err(e) => pause_after_failed_accept(&e, &self.telemetry, ctx),
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
            .is_some_and(|c| c.id == msg.id)
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
            .map(|conn| {
                let (done, drained) = oneshot::channel();
                conn.addr.do_send(Drain { done });
                drained
            })
            .collect();
        MessageResult(drained)
    }
}

impl Handler<Adopt> for DeviceEndpoint {
    type Result = ();

    fn handle(&mut self, msg: Adopt, ctx: &mut Context<Self>) {
        self.accept(msg.0, ctx);
    }
}

impl Handler<ConnectionCount> for DeviceEndpoint {
    type Result = usize;

    fn handle(&mut self, _: ConnectionCount, _: &mut Context<Self>) -> usize {
        self.connections.len()
    }
}
