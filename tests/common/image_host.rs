//! A picture host on 127.0.0.1 for fetch tests: serves registered files (with an
//! ETag, answering 304 to a matching If-None-Match, when given one), redirect
//! chains, slow and endless bodies, and counts every request it receives.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

#[derive(Clone, Default)]
struct HostState {
    files: Arc<Mutex<HashMap<String, File>>>,
    hits: Arc<AtomicUsize>,
    /// The If-None-Match of every `/files/` and `/redirect/` request, in
    /// order, and how many were answered 304.
    conditions: Arc<Mutex<Vec<Option<String>>>>,
    not_modified: Arc<AtomicUsize>,
    /// `/delayed/` requests being answered now, and the most there ever were.
    delayed_now: Arc<AtomicUsize>,
    delayed_peak: Arc<AtomicUsize>,
}

struct File {
    content_type: String,
    bytes: Bytes,
    etag: Option<String>,
}

pub struct ImageHost {
    pub base: String,
    state: HostState,
}

impl ImageHost {
    pub async fn start() -> ImageHost {
        Self::start_on("127.0.0.1").await
    }

    pub async fn start_on(ip: &str) -> ImageHost {
        let state = HostState::default();
        let app = Router::new()
            .route("/files/{name}", get(file))
            .route("/delayed/{name}", get(delayed))
            .route("/redirect/{hops}/{name}", get(redirect))
            .route("/to", get(redirect_to))
            .route("/slow", get(slow))
            .route("/not-modified", get(not_modified))
            .route("/endless", get(endless))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        ImageHost { base, state }
    }

    /// Serves `bytes` at the returned URL with the given Content-Type.
    pub fn serve(&self, name: &str, content_type: &str, bytes: Vec<u8>) -> String {
        self.serve_tagged(name, content_type, bytes, None)
    }

    /// [`serve`](Self::serve) with an ETag header (sent as given): a request
    /// whose If-None-Match is the same text is answered 304, as nginx does.
    pub fn serve_tagged(
        &self,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
        etag: Option<&str>,
    ) -> String {
        let file = File {
            content_type: content_type.to_owned(),
            bytes: Bytes::from(bytes),
            etag: etag.map(str::to_owned),
        };
        self.state
            .files
            .lock()
            .unwrap()
            .insert(name.to_owned(), file);
        format!("{}/files/{name}", self.base)
    }

    /// The If-None-Match header of each `/files/` and `/redirect/` request so far.
    pub fn conditions(&self) -> Vec<Option<String>> {
        self.state.conditions.lock().unwrap().clone()
    }

    /// How many `/files/` requests were answered 304.
    pub fn not_modified(&self) -> usize {
        self.state.not_modified.load(Ordering::SeqCst)
    }

    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// The most `/delayed/` downloads that were ever in progress at once.
    pub fn delayed_peak(&self) -> usize {
        self.state.delayed_peak.load(Ordering::SeqCst)
    }
}

async fn file(
    State(state): State<HostState>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let condition = if_none_match(&headers);
    state.conditions.lock().unwrap().push(condition.clone());
    let files = state.files.lock().unwrap();
    let Some(file) = files.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = if file.etag.is_some() && condition == file.etag {
        state.not_modified.fetch_add(1, Ordering::SeqCst);
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, file.content_type.clone())],
            file.bytes.clone(),
        )
            .into_response()
    };
    if let Some(etag) = &file.etag {
        response
            .headers_mut()
            .insert(header::ETAG, etag.parse().unwrap());
    }
    response
}

/// Like `/files/x`, a second later.
async fn delayed(
    state: State<HostState>,
    name: Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let now = state.delayed_now.fetch_add(1, Ordering::SeqCst) + 1;
    state.delayed_peak.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    state.delayed_now.fetch_sub(1, Ordering::SeqCst);
    file(state, name, headers).await
}

fn if_none_match(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::IF_NONE_MATCH)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// 304 to every request, asked or not.
async fn not_modified(State(state): State<HostState>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    StatusCode::NOT_MODIFIED.into_response()
}

/// `/redirect/3/x` → `/redirect/2/x` → … → `/files/x`.
async fn redirect(
    State(state): State<HostState>,
    Path((hops, name)): Path<(u32, String)>,
    headers: axum::http::HeaderMap,
) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    state
        .conditions
        .lock()
        .unwrap()
        .push(if_none_match(&headers));
    let location = if hops <= 1 {
        format!("/files/{name}")
    } else {
        format!("/redirect/{}/{name}", hops - 1)
    };
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// `/to?<absolute url>`: one redirect anywhere.
async fn redirect_to(State(state): State<HostState>, uri: axum::http::Uri) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let target = uri.query().unwrap_or_default().to_owned();
    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
}

/// A valid JPEG start, then one byte a second.
async fn slow(State(state): State<HostState>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let stream = futures_util::stream::unfold(0u8, |n| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Some((Ok::<_, Infallible>(Bytes::from(vec![n])), n.wrapping_add(1)))
    });
    (
        [(header::CONTENT_TYPE, "image/jpeg")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Data without end and without Content-Length.
async fn endless(State(state): State<HostState>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let chunk = Bytes::from(vec![0xFFu8; 64 * 1024]);
    let stream = futures_util::stream::repeat_with(move || Ok::<_, Infallible>(chunk.clone()));
    (
        [(header::CONTENT_TYPE, "image/jpeg")],
        Body::from_stream(stream),
    )
        .into_response()
}
