//! Runs the supervision tree until a shutdown signal, then shuts it down in phases.

use std::future::Future;

use eliot_actors::tree::{ShutdownReport, StartError, Tree};
use slog::Logger;

use crate::config::Config;

/// Starts the tree on `listener`, waits for `shutdown`, then drains within the configured
/// deadline. Must run inside an actix `System`.
pub async fn serve(
    config: &Config,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()>,
    log: &Logger,
) -> Result<ShutdownReport, StartError> {
    let tree = Tree::start(config.tree(), listener, log)?;
    shutdown.await;
    Ok(tree.shutdown(config.shutdown.deadline).await)
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
