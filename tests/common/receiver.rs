//! A callback receiver on 127.0.0.1: records every POST it gets and answers the
//! way it is told (fine, slow, redirecting, a huge body, a body that never ends).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 "SUCCESS", as clients answer.
    Ok,
    /// This status, empty body.
    Status(u16),
    /// 500 to the n-th request received (counting from 1), 200 to the others.
    FailNth(usize),
    /// Answers 200 after this long.
    Slow(Duration),
    /// 302 to `/elsewhere` on itself.
    Redirect,
    /// 200 with a 100 MiB body.
    Huge,
    /// 200, then a body that never ends (one chunk, then silence).
    Endless,
}

#[derive(Debug, Clone)]
pub struct Received {
    /// The sender's address: one per connection.
    pub peer: SocketAddr,
    pub path: String,
    pub content_type: Option<String>,
    pub body: String,
}

#[derive(Clone)]
struct Shared {
    mode: Arc<Mutex<Mode>>,
    log: Arc<Mutex<Vec<Received>>>,
    notify: Arc<Notify>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
    task: JoinHandle<()>,
}

impl Receiver {
    pub async fn start(mode: Mode) -> Receiver {
        Self::start_on("127.0.0.1:0".parse().unwrap(), mode).await
    }

    /// On a given address (a receiver coming back on its old port).
    pub async fn start_on(addr: SocketAddr, mode: Mode) -> Receiver {
        let listener = TcpListener::bind(addr).await.expect("receiver binds");
        let addr = listener.local_addr().unwrap();
        let shared = Shared {
            mode: Arc::new(Mutex::new(mode)),
            log: Arc::default(),
            notify: Arc::default(),
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/callback", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.log.lock().unwrap().clone()
    }

    pub fn bodies(&self) -> Vec<String> {
        self.received().into_iter().map(|r| r.body).collect()
    }

    /// Waits until at least `n` requests came in (panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.shared.notify.notified();
            let bodies = self.bodies();
            if bodies.len() >= n {
                return bodies;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("expected {n} callbacks within {within:?}, got {bodies:?}");
            }
        }
    }

    /// Stops listening; the port is free for [`Receiver::start_on`].
    pub fn stop(self) -> SocketAddr {
        self.task.abort();
        self.addr
    }
}

async fn handle(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let nth = {
        let mut log = shared.log.lock().unwrap();
        log.push(Received {
            peer,
            path: uri.path().to_owned(),
            content_type: headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        log.len()
    };
    shared.notify.notify_waiters();
    let mode = *shared.mode.lock().unwrap();
    match mode {
        Mode::Ok => "SUCCESS".into_response(),
        Mode::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Mode::FailNth(n) if n == nth => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Mode::FailNth(_) => "SUCCESS".into_response(),
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            "SUCCESS".into_response()
        }
        Mode::Redirect => (
            StatusCode::FOUND,
            [(header::LOCATION, "/elsewhere")],
            "moved",
        )
            .into_response(),
        Mode::Huge => {
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let stream = futures_util::stream::iter(
                (0..1600).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            Body::from_stream(stream).into_response()
        }
        Mode::Endless => {
            let first = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(b"SUCC"))
            });
            let stream = futures_util::StreamExt::chain(first, futures_util::stream::pending());
            Body::from_stream(stream).into_response()
        }
    }
}
