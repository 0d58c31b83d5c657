//! Runs the supervision tree until a shutdown signal, then shuts it down in phases.

use std::future::Future;

use eliot_actors::events::Event;
use eliot_actors::restart::Escalation;
use eliot_actors::tree::{ShutdownReport, StartError, Tree};
use slog::Logger;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("{} restarted {} times within {:?}: restart intensity exceeded", .0.child, .0.restarts, .0.window)]
    Escalated(Escalation),
}

/// Starts the tree on `listener` and runs it until `shutdown` resolves (a clean stop) or
/// a child exceeds its restart intensity (an escalation); either way the tree is then
/// drained within the configured deadline. Must run inside an actix `System`.
pub async fn serve(
    config: &Config,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()>,
    log: &Logger,
) -> Result<ShutdownReport, ServeError> {
    let mut tree = Tree::start(config.tree(), listener, log)?;
    let escalation = tokio::select! {
        () = shutdown => None,
        escalation = tree.escalation() => Some(escalation),
    };
    if let Some(e) = &escalation {
        Event::Escalated {
            actor: &e.child,
            restarts: e.restarts,
            window: e.window,
        }
        .emit(log);
    }
    let report = tree.shutdown(config.shutdown.deadline).await;
    match escalation {
        None => Ok(report),
        Some(e) => Err(ServeError::Escalated(e)),
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
