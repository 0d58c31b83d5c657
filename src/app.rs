//! Runs the supervision tree until a shutdown request, then shuts it down in phases. The
//! binary, the integration tests and the examples all start Eliot through `Server`, so
//! the tests run what users run.

use std::future::Future;
use std::net::SocketAddr;

use eliot_actors::{
    Adopter, Escalation, Event, HealthProbe, ShutdownReport, StartError, Telemetry, Tree,
};

use crate::config::Config;

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

/// A started Eliot. Must be started and run inside an actix `System`.
pub struct Server {
    tree: Tree,
    /// How long the drain after a shutdown request may take.
    deadline: std::time::Duration,
    telemetry: Telemetry,
}

impl Server {
    /// Opens the store and starts the tree on `listener` (the device endpoint's socket).
    pub fn start(
        config: &Config,
        listener: std::net::TcpListener,
        telemetry: &Telemetry,
    ) -> Result<Server, StartError> {
        let tree = Tree::start(config.tree(), listener, telemetry)?;
        Ok(Server {
            tree,
            deadline: config.shutdown.deadline,
            telemetry: telemetry.clone(),
        })
    }

    /// Where devices connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.tree.local_addr()
    }

    pub fn health_probe(&self) -> HealthProbe {
        self.tree.health_probe()
    }

    /// Serves devices connected over any byte stream (see `Transport`).
    pub fn adopter(&self) -> Adopter {
        self.tree.adopter()
    }

    /// Runs until `shutdown` resolves or a child exceeds its restart intensity (logged as
    /// `escalated`); either way the tree is then drained within the configured deadline.
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
        let report = self.tree.shutdown(self.deadline).await;
        (ending, report)
    }
}

/// Starts Eliot on `listener` and runs it until `shutdown` resolves (a clean stop) or a
/// child exceeds its restart intensity (an escalation). Must run inside an actix `System`.
pub async fn serve(
    config: &Config,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()>,
    telemetry: &Telemetry,
) -> Result<ShutdownReport, ServeError> {
    let server = Server::start(config, listener, telemetry)?;
    match server.run(shutdown).await {
        (Ending::Requested(()), report) => Ok(report),
        (Ending::Escalated(e), _) => Err(ServeError::Escalated(e)),
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
