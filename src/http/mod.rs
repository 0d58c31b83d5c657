//! The operations endpoints: `GET /health` (liveness), `GET /ready` (readiness) and
//! `GET /metrics` (Prometheus), and the read API (`GET /devices/{id}/...`, in `readings`),
//! served by actix-web in Eliot's actix system, as a child of the supervision tree
//! (`HttpApi`).
//!
//! actix-web answers on worker threads of its own (`http.workers`), each taking at most
//! `http.max_connections` connections and closing a request that is not read within
//! `http.request_timeout`: a slow or flooding HTTP client costs those workers, not the
//! threads that serve devices. The operations endpoints expose no payload, device id or
//! secret; the read API serves stored readings, to whoever can reach `http.listen`: so
//! only on a loopback address, unless `http.reads_off_loopback` says otherwise.

mod readings;
mod routes;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::dev::ServerHandle;
use eliot_actors::{Event, HealthProbe, Metrics, Problems, Reader, Restarts, Telemetry};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "http";

/// The `[http]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Where the operations endpoints and the read API (`/devices/...`) are served.
    pub listen: SocketAddr,
    /// Worker threads answering HTTP.
    pub workers: usize,
    /// Connections each worker takes at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a client may take to send its request head before it is closed.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// `/ready` fails when rows have waited longer than this for a commit.
    #[serde(with = "humantime_serde")]
    pub ready_max_backlog_age: Duration,
    /// Serve the read API (`/devices/...`), which has no authentication, on a `listen`
    /// address other than loopback too. Off: there it answers 403, and only the probes
    /// and metrics are served.
    pub reads_off_loopback: bool,
}

impl HttpSettings {
    /// Whether `/devices/...` is served: every device's readings, to whoever reaches
    /// `listen`.
    pub fn serves_reads(&self) -> bool {
        self.listen.ip().is_loopback() || self.reads_off_loopback
    }

    pub fn validate(&self, problems: &mut Problems) {
        problems.check(
            (1..=16).contains(&self.workers),
            "workers",
            "expected 1 to 16",
        );
        problems.at_least("max_connections", self.max_connections, 1);
        problems.positive("request_timeout", self.request_timeout);
        problems.positive("ready_max_backlog_age", self.ready_max_backlog_age);
    }
}

/// What the handlers read; shared by every worker.
#[derive(Clone)]
pub struct ApiState {
    pub probe: HealthProbe,
    pub metrics: Arc<Metrics>,
    /// Set as soon as intake stops: `/ready` answers 503 from then on.
    pub shutting_down: Arc<AtomicBool>,
    pub ready_max_backlog_age: Duration,
    /// `mqtt.max_connections`: `/ready` answers 503 while it is reached.
    pub max_connections: usize,
    /// The store's read API, for `/devices/...`.
    pub reader: Reader,
}

/// Stop serving (the last phase of a shutdown). Answered once the server has stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopServing;

/// The HTTP server as a supervised child: if it fails to start or stops on its own, the
/// actor stops and is restarted (after its backoff) on the same listening socket.
pub struct HttpApi {
    settings: HttpSettings,
    /// Bound before the tree started, so a port in use fails the start, not a restart.
    listener: std::net::TcpListener,
    state: ApiState,
    server: Option<ServerHandle>,
    /// True once asked to stop: the server's end is then not a failure.
    stopping: bool,
    /// Why the server failed, for the restart's reason.
    last_failure: Option<String>,
    restarts: Restarts,
    telemetry: Telemetry,
}

impl HttpApi {
    pub fn new(
        settings: HttpSettings,
        listener: std::net::TcpListener,
        state: ApiState,
        restarts: Restarts,
        telemetry: &Telemetry,
    ) -> Self {
        HttpApi {
            settings,
            listener,
            state,
            server: None,
            stopping: false,
            last_failure: None,
            restarts,
            telemetry: telemetry.for_actor(NAME),
        }
    }

    fn fail(&mut self, error: &str, ctx: &mut Context<Self>) {
        Event::HttpFailed { error }.emit(&self.telemetry);
        self.last_failure = Some(error.to_owned());
        ctx.stop();
    }

    fn serve(&mut self, ctx: &mut Context<Self>) {
        let listener = match self.listener.try_clone() {
            Ok(listener) => listener,
            Err(e) => return self.fail(&format!("cannot use the HTTP socket: {e}"), ctx),
        };
        let state = self.state.clone();
        let reads = match self.settings.serves_reads() {
            true => readings::configure,
            false => readings::refuse,
        };
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(actix_web::web::Data::new(state.clone()))
                .configure(routes::configure)
                .configure(reads)
                .default_service(actix_web::web::to(routes::not_found))
        })
        .workers(self.settings.workers)
        .max_connections(self.settings.max_connections)
        .client_request_timeout(self.settings.request_timeout)
        .client_disconnect_timeout(Duration::from_secs(1))
        .shutdown_timeout(1)
        // Eliot's own shutdown stops this server, last.
        .disable_signals()
        .listen(listener);
        let server = match server {
            Ok(server) => server,
            Err(e) => return self.fail(&format!("cannot listen for HTTP: {e}"), ctx),
        };
        if let Ok(addr) = self.listener.local_addr() {
            Event::HttpListening { addr }.emit(&self.telemetry);
        }
        let server = server.run();
        self.server = Some(server.handle());
        server
            .into_actor(self)
            .map(|ended, api, ctx| {
                if !api.stopping {
                    let why = match ended {
                        Ok(()) => "the server stopped on its own".to_owned(),
                        Err(e) => e.to_string(),
                    };
                    api.fail(&why, ctx);
                }
            })
            .spawn(ctx);
    }
}

impl Actor for HttpApi {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.restarts.start(ctx, Self::serve);
    }
}

impl Supervised for HttpApi {
    fn restarting(&mut self, _: &mut Context<Self>) {
        if let Some(server) = self.server.take() {
            // Its workers must let go of the socket before the next start.
            actix_rt::spawn(server.stop(false));
        }
        let reason = self.last_failure.take().unwrap_or_else(|| "stopped".into());
        self.restarts.restarting(reason);
    }
}

eliot_actors::answers_pings!(HttpApi);

impl Handler<StopServing> for HttpApi {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopServing, _: &mut Context<Self>) -> Self::Result {
        self.stopping = true;
        // Stopping on purpose is no failure: the gauge is set here, not by an event.
        self.telemetry.metrics().http_listening.set(0);
        let server = self.server.take();
        Box::pin(async move {
            if let Some(server) = server {
                server.stop(true).await;
            }
        })
    }
}
