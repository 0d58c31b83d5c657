//! The operations endpoints: `GET /health` (liveness), `GET /ready` (readiness) and
//! `GET /metrics` (Prometheus), in `routes`, the API v1 under `/api/v1` (`v1`), and the
//! dashboard at `/` (`dashboard`, behind the API's tokens), served by actix-web in Eliot's actix system, as a child of the supervision tree
//! (`HttpApi`).
//!
//! actix-web answers on worker threads of its own (`http.workers`), each taking at most
//! `http.max_connections` connections and closing a request that is not read within
//! `http.request_timeout`: a slow or flooding HTTP client costs those workers, not the
//! threads that serve devices. The operations endpoints expose no payload, device id or
//! secret, and are open; the API v1 serves device data, to bearer tokens (`[api] tokens`,
//! `ELIOT_API_TOKENS`), or without tokens on a loopback `http.listen` only: another
//! address without tokens is refused by the configuration.

pub mod dashboard;
mod routes;
pub mod v1;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::dev::ServerHandle;
use eliot_actors::{Event, HealthProbe, Metrics, Problems, Restarts, Telemetry};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "http";

/// The `[http]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Where the operations endpoints and the API v1 (`/api/v1`) are served.
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
    /// Removed: the API authenticates with tokens now (`[api] tokens`). Read only to
    /// say so, rather than "unknown field".
    #[serde(default, skip_serializing)]
    pub reads_off_loopback: Option<toml::Value>,
}

/// The `[api]` section: who may call the API v1.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// The kept tokens (hashes), with `ELIOT_API_TOKENS`'s added as they are read.
    pub tokens: Vec<v1::tokens::HashedToken>,
    /// Bad tokens one client address may present per minute, after a burst of
    /// `bad_token_burst`; past it, 429.
    pub bad_tokens_per_minute: std::num::NonZeroU32,
    pub bad_token_burst: std::num::NonZeroU32,
}

impl HttpSettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.check(
            self.reads_off_loopback.is_none(),
            "reads_off_loopback",
            "removed: the API (now under /api/v1) takes bearer tokens instead: set \
             [api] tokens (`eliot api-token new` makes one) or ELIOT_API_TOKENS, and \
             delete this key",
        );
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
    /// The API v1's handlers' state.
    pub v1: v1::V1State,
    /// Who may call the API v1.
    pub gate: v1::Gate,
    /// How many API tokens are kept (0: loopback only), for the start's log line.
    pub api_tokens: usize,
    /// The dashboard at `/`.
    pub dashboard: dashboard::Dashboard,
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
        let server = actix_web::HttpServer::new(move || {
            let (v1, gate) = (state.v1.clone(), state.gate.clone());
            let dashboard = state.dashboard.clone();
            actix_web::App::new()
                .app_data(actix_web::web::Data::new(state.clone()))
                .configure(routes::configure)
                .configure(|cfg| v1::configure(cfg, v1, gate))
                .configure(|cfg| dashboard::configure(cfg, dashboard))
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
            Event::HttpListening {
                addr,
                api_tokens: self.state.api_tokens,
            }
            .emit(&self.telemetry);
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
