//! The shutdown signal: a [`CancellationToken`] cancelled on SIGINT or
//! SIGTERM, passed down to every loop (never a static).

use tokio_util::sync::CancellationToken;

/// Returns a token that is cancelled when the process receives SIGINT or
/// SIGTERM. Must be called inside a Tokio runtime.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        // Cancel first: nothing after the signal (a log line included) may
        // stand between it and the drain.
        trigger.cancel();
        tracing::info!("shutdown signal received; draining");
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the process");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
