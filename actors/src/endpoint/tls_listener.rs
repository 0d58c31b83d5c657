//! `TlsListener`: devices over TLS (rustls), on a port of their own. It accepts a socket,
//! runs the handshake (bounded in time and in how many run at once), reads the names of
//! the client certificate the handshake verified, and hands the stream to the device
//! endpoint, which serves it exactly as a TCP device from its CONNECT on.
//!
//! The certificate, key and client CA are read again on SIGHUP: new handshakes use them,
//! and connections already open keep theirs. A bad file there is logged and changes
//! nothing.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::{Arc, RwLock};

use actix::prelude::*;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::device_endpoint::{pause_after_failed_accept, Adopter};
use super::transport::Transport;
use crate::identity::{certificate_names, server_config, AuthMode, TlsSettings};
use crate::observe::{Event, Telemetry};
use crate::supervision::Restarts;

pub const NAME: &str = "tls_listener";

/// Handshakes in progress at most, in all and from one address: each costs a socket and
/// CPU before anyone has proved anything, and idle sockets from one address (a slowloris)
/// must not hold every turn and lock the other devices out until their timeout.
const HANDSHAKES_AT_ONCE: usize = 1024;
const HANDSHAKES_PER_ADDRESS: usize = 16;

/// One handshake's turn, given back when dropped.
struct Turn {
    _global: tokio::sync::OwnedSemaphorePermit,
    address: IpAddr,
    per_address: Rc<RefCell<HashMap<IpAddr, usize>>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut counts = self.per_address.borrow_mut();
        if let Some(n) = counts.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

pub struct TlsListener {
    settings: TlsSettings,
    mode: AuthMode,
    listener: Option<Arc<TcpListener>>,
    accepting: Option<SpawnHandle>,
    /// What new handshakes use; replaced on SIGHUP.
    config: Arc<RwLock<Arc<ServerConfig>>>,
    handshakes: Arc<Semaphore>,
    /// Handshakes in progress by address (only addresses with one).
    per_address: Rc<RefCell<HashMap<IpAddr, usize>>>,
    adopter: Adopter,
    restarts: Restarts,
    telemetry: Telemetry,
}

impl TlsListener {
    pub fn new(
        settings: TlsSettings,
        mode: AuthMode,
        (listener, config): (TcpListener, Arc<ServerConfig>),
        adopter: Adopter,
        restarts: Restarts,
        telemetry: &Telemetry,
    ) -> Self {
        TlsListener {
            settings,
            mode,
            listener: Some(Arc::new(listener)),
            accepting: None,
            config: Arc::new(RwLock::new(config)),
            handshakes: Arc::new(Semaphore::new(HANDSHAKES_AT_ONCE)),
            per_address: Rc::default(),
            adopter,
            restarts,
            telemetry: telemetry.for_actor(NAME),
        }
    }

    fn listen(&mut self, ctx: &mut Context<Self>) {
        let Some(listener) = self.listener.clone() else {
            return;
        };
        if let Ok(addr) = listener.local_addr() {
            Event::TlsListening { addr }.emit(&self.telemetry);
        }
        let accepted = futures_util::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await;
            Some((accepted, listener))
        });
        self.accepting = Some(ctx.add_stream(accepted));
        self.reload_on_sighup(ctx);
    }

    #[cfg(unix)]
    fn reload_on_sighup(&mut self, ctx: &mut Context<Self>) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            return;
        };
        let hangups = futures_util::stream::poll_fn(move |cx| {
            hangups.poll_recv(cx).map(|o| o.map(|()| Reload))
        });
        ctx.add_stream(hangups);
    }

    #[cfg(not(unix))]
    fn reload_on_sighup(&mut self, _: &mut Context<Self>) {}

    fn take_turn(&self, address: IpAddr) -> Result<Turn, &'static str> {
        let mut counts = self.per_address.borrow_mut();
        if counts.get(&address).copied().unwrap_or(0) >= HANDSHAKES_PER_ADDRESS {
            return Err("too many TLS handshakes in progress from this address");
        }
        let global = self
            .handshakes
            .clone()
            .try_acquire_owned()
            .map_err(|_| "too many TLS handshakes in progress")?;
        *counts.entry(address).or_default() += 1;
        Ok(Turn {
            _global: global,
            address,
            per_address: self.per_address.clone(),
        })
    }

    fn handshake(&self, socket: tokio::net::TcpStream, peer: SocketAddr) {
        let acceptor = TlsAcceptor::from(self.config.read().expect("never poisoned").clone());
        let (adopter, telemetry) = (self.adopter.clone(), self.telemetry.clone());
        let turn = match self.take_turn(peer.ip()) {
            Ok(turn) => turn,
            Err(reason) => {
                Event::ConnectionRefused {
                    peer,
                    code: "none",
                    reason,
                }
                .emit(&telemetry);
                return;
            }
        };
        let timeout = self.settings.handshake_timeout;
        actix::spawn(async move {
            let _ = socket.set_nodelay(true);
            let done = tokio::time::timeout(timeout, acceptor.accept(socket)).await;
            drop(turn);
            match done {
                Ok(Ok(stream)) => {
                    let names = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(certificate_names)
                        .unwrap_or_default();
                    adopter.adopt(Transport::stream(stream, peer).certified(names));
                }
                Ok(Err(e)) => {
                    let reason = format!("TLS handshake failed: {e}");
                    Event::ConnectionRefused {
                        peer,
                        code: "none",
                        reason: &reason,
                    }
                    .emit(&telemetry);
                }
                Err(_) => {
                    let reason = format!("no TLS handshake within {timeout:?}");
                    Event::ConnectionRefused {
                        peer,
                        code: "none",
                        reason: &reason,
                    }
                    .emit(&telemetry);
                }
            }
        });
    }
}

/// Read the certificate, key and client CA again (a SIGHUP, as a stream item).
pub struct Reload;

impl Actor for TlsListener {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.restarts
            .start(ctx, |listener, ctx| listener.listen(ctx));
    }
}

impl Supervised for TlsListener {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts.restarting("stopped".into());
    }
}

crate::answers_pings!(TlsListener);

impl StreamHandler<std::io::Result<(tokio::net::TcpStream, SocketAddr)>> for TlsListener {
    fn handle(
        &mut self,
        accepted: std::io::Result<(tokio::net::TcpStream, SocketAddr)>,
        ctx: &mut Context<Self>,
    ) {
        match accepted {
            Ok((socket, peer)) => self.handshake(socket, peer),
            // Out of descriptors, typically: retrying at once would spin (and flood the
            // log) until one is freed.
            Err(e) => pause_after_failed_accept(&e, &self.telemetry, ctx),
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl StreamHandler<Reload> for TlsListener {
    fn handle(&mut self, _: Reload, _: &mut Context<Self>) {
        match server_config(&self.settings, self.mode) {
            Ok(config) => {
                *self.config.write().expect("never poisoned") = config;
                Event::TlsReloaded { error: None }.emit(&self.telemetry);
            }
            Err(e) => Event::TlsReloaded {
                error: Some(&e.to_string()),
            }
            .emit(&self.telemetry),
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

/// Stop accepting (shutdown): the port closes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopTls;

impl Handler<StopTls> for TlsListener {
    type Result = ();

    fn handle(&mut self, _: StopTls, ctx: &mut Context<Self>) {
        self.listener = None;
        if let Some(accepting) = self.accepting.take() {
            ctx.cancel_future(accepting);
        }
    }
}
