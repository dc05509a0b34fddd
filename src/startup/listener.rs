//! The accept loop: what stands between a socket and the router.
//!
//! `axum::serve` has no header-read timeout, no connection cap and no shutdown
//! deadline, so one machine holding a thousand half-sent requests could starve
//! everyone. Here every connection gets hyper's header-read deadline (which also
//! closes an idle keep-alive connection that sends no new request), at most
//! `max_connections` are served at once (more are closed as soon as they are
//! accepted, so they cannot queue behind the stalled ones), accept errors such as
//! EMFILE back off instead of spinning, and shutdown waits for in-flight requests
//! only as long as the grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::api::{CloseConnection, Served};
use crate::config::ConnectionLimits;

/// File descriptors kept for the database, blobs and outgoing fetches when the
/// connection cap is derived from the open-files limit.
const DESCRIPTOR_RESERVE: u64 = 128;

/// Raises the soft open-files limit to the hard one (services often start with a
/// soft 1024) and returns the limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().ok()?;
    if soft < hard && rlimit::Resource::NOFILE.set(hard, hard).is_ok() {
        tracing::info!(from = soft, to = hard, "raised the open-files limit");
        return Some(hard);
    }
    tracing::info!(soft, hard, "open-files limit");
    Some(soft)
}

/// Connections served at once: the setting, else what the open-files limit allows.
pub fn connection_cap(limits: &ConnectionLimits, open_files: Option<u64>) -> usize {
    limits.max_connections.unwrap_or_else(|| {
        let files = open_files.unwrap_or(1024);
        usize::try_from(files.saturating_sub(DESCRIPTOR_RESERVE).max(16)).unwrap_or(usize::MAX)
    })
}

pub async fn serve(
    listener: TcpListener,
    served: Served,
    limits: ConnectionLimits,
    max_connections: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before it
                    // was accepted: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max_connections, "connection refused: at the connection limit");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let served = served.clone();
        let service =
            hyper::service::service_fn(move |request| route(served.clone(), request, peer));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!("shutdown requested; finishing in-flight requests");
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "connections still open after the grace period; closing them"
        );
    }
    Ok(())
}

/// A fault rule asked to close the connection instead of answering.
#[derive(Debug, thiserror::Error)]
#[error("connection closed on purpose by a fault rule")]
struct ClosedOnPurpose;

async fn route(
    served: Served,
    mut request: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> Result<axum::response::Response, ClosedOnPurpose> {
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = served.answer(request.map(axum::body::Body::new)).await;
    if response.extensions().get::<CloseConnection>().is_some() {
        // Failing the service makes hyper drop the connection unanswered.
        return Err(ClosedOnPurpose);
    }
    Ok(response)
}
