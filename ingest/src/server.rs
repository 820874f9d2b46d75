//! Serving: the public listener (and an optional admin listener), both
//! stopping on the shutdown token after in-flight requests finish.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::routes::{admin_router, router};
use crate::state::AppState;

/// Serves the public router on `listener` (and the admin router on
/// `admin`, when given) until `shutdown` is cancelled, drains in-flight
/// requests, then flushes the NATS connection.
///
/// # Errors
/// A listener failed.
pub async fn serve(
    listener: TcpListener,
    admin: Option<TcpListener>,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let public = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    match admin {
        Some(admin) => {
            let admin = axum::serve(admin, admin_router(state.clone()))
                .with_graceful_shutdown(shutdown.cancelled_owned());
            tokio::try_join!(public.into_future(), admin.into_future()).map_err(Error::Serve)?;
        }
        None => public.await.map_err(Error::Serve)?,
    }
    if let Err(error) = state.nats().flush().await {
        tracing::warn!(%error, "could not flush NATS on shutdown");
    }
    Ok(())
}
