//! Per-request context: a request id (taken from `X-Request-Id` when sane, made up
//! otherwise), a tracing span, one log line per request, the log line of an
//! internal failure (with its cause, which the caller never sees), and a guard that
//! turns a panicking handler into an envelope instead of a dropped connection.
//!
//! The finish line of a GeWe call says what the caller was told: the route,
//! `ret`, `data.code` and `data.msg` — at INFO for `ret` 200, WARN for 500, ERROR
//! for an internal failure. It never holds the token (a header) or the picture
//! (fetched bytes): only what the envelope itself holds.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{self as http, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::FutureExt;
use rand::RngCore;
use tracing::Instrument;

use super::envelope::{Answered, ApiError, InternalFailure, Ret};
use crate::telemetry::metrics;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The same name, parsed once rather than for every response.
static REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

fn incoming_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(&REQUEST_ID)?.to_str().ok()?;
    let sane = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    sane.then(|| value.to_owned())
}

/// 16 random hex digits, without formatting machinery: this runs for every
/// request, the avatar reads included.
fn new_id() -> String {
    let mut digits = [0u8; 16];
    // Cannot fail: 8 bytes fill 16 digits exactly.
    let _ = hex::encode_to_slice(rand::rng().next_u64().to_be_bytes(), &mut digits);
    digits.iter().map(|&digit| char::from(digit)).collect()
}

/// The context for requests the router answers: the route as registered.
pub async fn request_context(request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    in_context(
        request,
        matched.as_ref().map(MatchedPath::as_str),
        |request| next.run(request),
    )
    .await
}

/// Runs `answer` on `request` inside the per-request context. `route` is the
/// route template when one matched: logs name it (else the path), metrics
/// only ever the template, a bounded label set.
pub async fn in_context<B, F, Fut>(
    request: http::Request<B>,
    route: Option<&str>,
    answer: F,
) -> Response
where
    F: FnOnce(http::Request<B>) -> Fut,
    Fut: Future<Output = Response>,
{
    let id = incoming_id(request.headers()).unwrap_or_else(new_id);
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    // Kept only when no route matched (cheap: shared bytes); the path is only
    // formatted when a line is logged.
    let uri = route.is_none().then(|| request.uri().clone());
    let logged_route = route.or(uri.as_ref().map(|uri| uri.path())).unwrap_or("");
    let started = Instant::now();
    let mut internal = false;
    let outcome = AssertUnwindSafe(answer(request))
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let mut response = match outcome {
        Ok(mut response) => match response.extensions_mut().remove::<InternalFailure>() {
            Some(InternalFailure(cause)) => {
                internal = true;
                span.in_scope(|| tracing::error!(route = %logged_route, %cause, "internal error"));
                ApiError::internal_answer(&id).into_response()
            }
            None => response,
        },
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            internal = true;
            span.in_scope(
                || tracing::error!(route = %logged_route, panic = %what, "handler panicked"),
            );
            ApiError::internal_answer(&id).into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(id)) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let elapsed_ms = elapsed.as_millis() as u64;
    let ret = response.extensions().get::<Ret>().map(|r| r.0);
    metrics::request(route.unwrap_or("unmatched"), ret, status, elapsed);
    let answered = response.extensions_mut().remove::<Answered>();
    let route = logged_route;
    span.in_scope(|| match answered {
        Some(Answered { ret, .. }) if internal => tracing::error!(
            %route, ret, code = "internal", status, elapsed_ms, "request finished"
        ),
        Some(Answered { ret, code, detail }) if ret != 200 => tracing::warn!(
            %route,
            ret,
            code = code.as_deref().unwrap_or("-"),
            detail = detail.as_deref().unwrap_or("-"),
            status,
            elapsed_ms,
            "request finished"
        ),
        Some(Answered { ret, .. }) => {
            tracing::info!(%route, ret, status, elapsed_ms, "request finished")
        }
        // Not a GeWe envelope: avatars, health, docs.
        None => tracing::info!(%route, status, elapsed_ms, "request finished"),
    });
    response
}
