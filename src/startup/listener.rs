//! The accept loop: what stands between a socket and the router.
//!
//! `axum::serve` has no header-read timeout, no connection cap and no shutdown
//! deadline, so one machine holding a thousand half-sent requests could starve
//! everyone. Here every connection gets hyper's header-read deadline (which also
//! closes an idle keep-alive connection that sends no new request), at most
//! `max_connections` are served at once (more are closed as soon as they are
//! accepted, so they cannot queue behind the stalled ones), accept errors such as
//! EMFILE back off instead of spinning, and shutdown waits for in-flight requests
//! only as long as the grace period. Accepted connections are served, requests
//! and all, on the connection threads (`connection_threads`).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};

use super::connection_threads::ConnectionThreads;
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
    threads: Arc<ConnectionThreads>,
    limits: ConnectionLimits,
    max_connections: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max_connections = max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max_connections));
    let open = OpenConnections::default();
    let mut http = http1::Builder::new();
    // Half-closed connections are allowed: otherwise hyper watches for a
    // hang-up while each request is in flight with a read into a fresh 8 KiB
    // buffer (the request still holds the old one), 0.2 µs of a 8 µs avatar
    // read. A caller that hangs up no longer cancels its request; it finishes,
    // as it would had the hang-up come a moment later.
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .half_close(true);
    let http = Arc::new(http);
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
        let (served, http) = (served.clone(), http.clone());
        let (key, stop) = open.add();
        let serving = open.clone();
        let handed_over = threads.hand_over(stream, move |stream| async move {
            let service =
                hyper::service::service_fn(move |request| route(served.clone(), request, peer));
            let connection = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let ended = tokio::select! {
                biased;
                ended = connection.as_mut() => ended,
                () = stop => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            serving.remove(key);
            drop(slot);
        });
        if let Err(e) = handed_over {
            tracing::warn!(%peer, error = %e, "connection dropped: not handed to a thread");
            open.remove(key);
        }
    }
    drop(listener);
    tracing::info!("shutdown requested; finishing in-flight requests");
    open.stop_all();
    let all_closed = slots.acquire_many(u32::try_from(max_connections).unwrap_or(u32::MAX));
    if tokio::time::timeout(limits.shutdown_grace, all_closed)
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

/// The connections being served, each with the means to ask it to finish its
/// request in flight and close. Each connection waits on a signal of its own:
/// one signal shared by all (hyper-util's `GracefulShutdown`) is a lock every
/// connection takes each time it is polled, and that cost 0.6 µs of a 6 µs
/// avatar read here.
#[derive(Clone, Default)]
struct OpenConnections(Arc<std::sync::Mutex<Registry>>);

#[derive(Default)]
struct Registry {
    next: u64,
    stops: HashMap<u64, oneshot::Sender<()>>,
}

impl OpenConnections {
    /// Registers a connection: its key, and a future that completes when the
    /// server asks it to stop (never, if the server never does).
    fn add(&self) -> (u64, impl Future<Output = ()> + use<>) {
        let (sender, receiver) = oneshot::channel();
        let mut registry = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = registry.next;
        registry.next += 1;
        registry.stops.insert(key, sender);
        let stop = async move {
            if receiver.await.is_err() {
                // Dropped unsent: only its own end removes it, so never.
                std::future::pending::<()>().await;
            }
        };
        (key, stop)
    }

    fn remove(&self, key: u64) {
        let mut registry = self.0.lock().unwrap_or_else(|e| e.into_inner());
        registry.stops.remove(&key);
    }

    fn stop_all(&self) {
        let stops = std::mem::take(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()).stops);
        for stop in stops.into_values() {
            let _ = stop.send(());
        }
    }
}

/// A fault rule asked to close the connection instead of answering.
#[derive(Debug, thiserror::Error)]
#[error("connection closed on purpose by a fault rule")]
struct ClosedOnPurpose;

async fn route(
    served: Served,
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> Result<axum::response::Response, ClosedOnPurpose> {
    let response = served.answer(request, peer).await;
    if response.extensions().get::<CloseConnection>().is_some() {
        // Failing the service makes hyper drop the connection unanswered.
        return Err(ClosedOnPurpose);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::Router;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    const GRACE: Duration = Duration::from_secs(30);

    async fn send(stream: &mut TcpStream, path: &str) {
        let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
    }

    /// Reads until `needle` has arrived; `None` if the connection ends first.
    async fn read_until(stream: &mut TcpStream, needle: &str) -> Option<String> {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 1024];
        while !String::from_utf8_lossy(&seen).contains(needle) {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
        Some(String::from_utf8_lossy(&seen).into_owned())
    }

    /// A server with `/quick` and `/slow` (300 ms): its address, the means to
    /// stop it, and the task serving it.
    async fn spawn_server() -> (
        SocketAddr,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let router = Router::new()
            .route("/quick", get(|| async { "quick" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "slow"
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let limits = ConnectionLimits {
            header_timeout: GRACE,
            body_timeout: GRACE,
            max_connections: None,
            http_threads: 2,
            shutdown_grace: GRACE,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            Served::routed(router),
            Arc::new(ConnectionThreads::start(limits.http_threads).unwrap()),
            limits,
            16,
            async move {
                let _ = stopped.await;
            },
        ));
        (address, stop, server)
    }

    /// A caller that sends its request and closes its sending side (as some
    /// HTTP/1.0-style clients and `nc -N` do) still gets the answer.
    #[tokio::test]
    async fn a_request_whose_caller_stops_sending_is_still_answered() {
        let (address, _stop, _server) = spawn_server().await;
        let mut stream = TcpStream::connect(address).await.unwrap();
        send(&mut stream, "/slow").await;
        stream.shutdown().await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), read_until(&mut stream, "slow"))
            .await
            .expect("an answer or a close within the deadline");
        assert!(answer.is_some(), "the connection was closed unanswered");
    }

    /// Shutdown asks every connection to close: an idle keep-alive connection
    /// is closed at once, a request in flight is answered first, and the server
    /// is done long before the grace period.
    #[tokio::test]
    async fn shutdown_closes_idle_connections_and_finishes_requests_in_flight() {
        let (address, stop, server) = spawn_server().await;

        let mut idle = TcpStream::connect(address).await.unwrap();
        send(&mut idle, "/quick").await;
        assert!(read_until(&mut idle, "quick").await.is_some());
        let mut busy = TcpStream::connect(address).await.unwrap();
        send(&mut busy, "/slow").await;
        tokio::time::sleep(Duration::from_millis(100)).await;

        let asked = Instant::now();
        stop.send(()).unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), read_until(&mut busy, "slow"))
            .await
            .expect("the request in flight is answered");
        assert!(answer.is_some(), "answered, not dropped");
        let mut rest = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut rest))
            .await
            .expect("the idle connection is closed");
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops once its connections are closed")
            .unwrap()
            .unwrap();
        assert!(asked.elapsed() < GRACE);
    }
}
