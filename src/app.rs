//! Runs the supervision tree until a shutdown request, then shuts it down in phases. The
//! binary, the integration tests and the examples all start Eliot through `Server`, so
//! the tests run what users run.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::Addr;

use eliot_actors::{
    Adopter, Escalation, Event, HealthProbe, Provisioning, Purger, Replayer, ShutdownReport,
    StartError, Telemetry, Tree,
};

use crate::config::Config;
use crate::http::{self, ApiState, HttpApi, StopServing};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("{} restarted {} times within {:?}: restart intensity exceeded", .0.child, .0.restarts, .0.window)]
    Escalated(Escalation),
}

/// Why a run ended.
#[derive(Debug)]
pub enum Ending<T> {
    /// The shutdown future resolved, with this.
    Requested(T),
    /// A child exceeded its restart intensity.
    Escalated(Escalation),
}

/// The longest the last phase of a shutdown waits for the HTTP server to stop.
const HTTP_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The sockets Eliot serves, bound by the caller (so that a port in use is a clear start
/// failure, and tests can ask for port 0).
pub struct Listeners {
    /// The device endpoint (MQTT); `None` when `mqtt.enabled = false`.
    pub devices: Option<std::net::TcpListener>,
    /// Devices over TLS; `None` unless `tls.enabled`.
    pub tls: Option<std::net::TcpListener>,
    /// The HTTP server: the operations endpoints and the API v1.
    pub http: std::net::TcpListener,
}

impl Listeners {
    /// Binds the addresses of `config`: HTTP always, devices and TLS where enabled.
    pub fn bind(config: &Config) -> std::io::Result<Listeners> {
        let bind = |addr: SocketAddr, what: &str| {
            std::net::TcpListener::bind(addr).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen {what} on {addr}: {e}"))
            })
        };
        Ok(Listeners {
            devices: match config.mqtt.enabled {
                true => Some(bind(config.mqtt.listen, "for devices")?),
                false => None,
            },
            tls: match config.tls.enabled {
                true => Some(bind(config.tls.listen, "for devices over TLS")?),
                false => None,
            },
            http: bind(config.http.listen, "for HTTP")?,
        })
    }
}

/// A started Eliot. Must be started and run inside an actix `System`.
pub struct Server {
    tree: Tree,
    http: Addr<HttpApi>,
    http_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    /// Set when intake stops, so that `/ready` answers 503 from the first phase on.
    shutting_down: Arc<AtomicBool>,
    /// How long the drain after a shutdown request may take.
    deadline: std::time::Duration,
    telemetry: Telemetry,
}

impl Server {
    /// Opens the store and starts the tree, then the HTTP server under its supervision.
    pub fn start(
        config: &Config,
        listeners: Listeners,
        telemetry: &Telemetry,
    ) -> Result<Server, StartError> {
        let http_addr = listeners
            .http
            .local_addr()
            .map_err(StartError::ListenHttp)?;
        let tls_addr = listeners.tls.as_ref().and_then(|l| l.local_addr().ok());
        let tree = Tree::start(config.tree(), (listeners.devices, listeners.tls), telemetry)?;
        let shutting_down = Arc::new(AtomicBool::new(false));
        let gate = http::v1::Gate::new(
            http::v1::tokens::Tokens::new(config.api.tokens.clone()),
            (config.api.bad_tokens_per_minute, config.api.bad_token_burst),
        );

        let v1 = http::v1::V1State {
            reader: tree.reader.clone(),
            cursors: http::v1::CursorKey::random(),
            fleet: tree.fleet(),
            provisioning: Provisioning::new(&config.store),
            purger: tree.purger(),
            replayer: tree.replayer.clone(),
            alerts: tree.alerts(),
        };
        let dashboard = http::dashboard::Dashboard::new(
            gate.clone(),
            &v1,
            telemetry.metrics().clone(),
            tree.health_probe(),
            &config.http,
        );
        let state = ApiState {
            probe: tree.health_probe(),
            metrics: telemetry.metrics().clone(),
            shutting_down: shutting_down.clone(),
            ready_max_backlog_age: config.http.ready_max_backlog_age,
            max_connections: config.mqtt.max_connections,
            v1,
            gate,
            api_tokens: config.api.tokens.len(),
            dashboard,
        };
        let (settings, t) = (config.http.clone(), telemetry.clone());
        let http = tree.supervise(http::NAME, move |restarts| {
            HttpApi::new(settings, listeners.http, state, restarts, &t)
        });
        Ok(Server {
            tree,
            http,
            http_addr,
            tls_addr,
            shutting_down,
            deadline: config.shutdown.deadline,
            telemetry: telemetry.clone(),
        })
    }

    /// Where devices connect; `None` without a device endpoint.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.tree.local_addr()
    }

    /// Where devices connect over TLS; `None` without the TLS listener.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Where the HTTP server (operations endpoints and API v1) is served.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn health_probe(&self) -> HealthProbe {
        self.tree.health_probe()
    }

    /// Purges devices' readings (usable from any thread).
    pub fn purger(&self) -> Purger {
        self.tree.purger()
    }

    /// Replays dead letters through today's rules (usable from any thread).
    pub fn replayer(&self) -> Replayer {
        self.tree.replayer.clone()
    }

    /// Serves devices connected over any byte stream (see `Transport`); `None` without a
    /// device endpoint.
    pub fn adopter(&self) -> Option<Adopter> {
        self.tree.adopter()
    }

    /// Runs until `shutdown` resolves or a child exceeds its restart intensity (logged as
    /// `escalated`). Then, in phases: `/ready` turns 503, intake stops and the tree
    /// drains within the configured deadline, and the HTTP server stops last.
    pub async fn run<T>(
        mut self,
        shutdown: impl Future<Output = T>,
    ) -> (Ending<T>, ShutdownReport) {
        let ending = tokio::select! {
            requested = shutdown => Ending::Requested(requested),
            escalation = self.tree.escalation() => Ending::Escalated(escalation),
        };
        if let Ending::Escalated(e) = &ending {
            Event::Escalated {
                actor: &e.child,
                restarts: e.restarts,
                window: e.window,
            }
            .emit(&self.telemetry);
        }
        self.shutting_down.store(true, Ordering::Relaxed);
        let report = self.tree.shutdown(self.deadline).await;
        // An HTTP child that escalated answers nothing: it must not hold the exit up.
        let _ = tokio::time::timeout(HTTP_STOP_WAIT, self.http.send(StopServing)).await;
        (ending, report)
    }
}

/// Starts Eliot on `listeners` and runs it until `shutdown` resolves (a clean stop) or a
/// child exceeds its restart intensity (an escalation). Must run inside an actix `System`.
pub async fn serve(
    config: &Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    telemetry: &Telemetry,
) -> Result<ShutdownReport, ServeError> {
    let server = Server::start(config, listeners, telemetry)?;
    match server.run(shutdown).await {
        (Ending::Requested(()), report) => Ok(report),
        (Ending::Escalated(e), _) => Err(ServeError::Escalated(e)),
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM. A SIGHUP, whose default action would
/// end Eliot at once, without a drain, is logged and Eliot goes on: the TLS listener (when
/// `tls` is on) reads its files again on it. The signals are taken over when this is
/// called, not when the future is first polled: a SIGHUP sent as Eliot starts does not
/// kill it either. Must be called inside the runtime.
pub fn shutdown_signal(telemetry: Telemetry, tls: bool) -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let terminate = signal(SignalKind::terminate());
        let hangup = signal(SignalKind::hangup());
        async move {
            let interrupt = tokio::signal::ctrl_c();
            tokio::pin!(interrupt);
            let (Ok(mut terminate), Ok(mut hangup)) = (terminate, hangup) else {
                let _ = interrupt.await;
                return;
            };
            loop {
                tokio::select! {
                    _ = &mut interrupt => return,
                    _ = terminate.recv() => return,
                    _ = hangup.recv() => Event::Hangup { tls }.emit(&telemetry),
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (telemetry, tls);
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
