//! Per-request context: a request id (taken from `X-Request-Id` when sane, made up
//! otherwise), a tracing span, one log line per request, the log line of an
//! internal failure (with its cause, which the caller never sees), and a guard that
//! turns a panicking handler into an envelope instead of a dropped connection.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use rand::RngCore;
use tracing::Instrument;

use super::envelope::{ApiError, InternalFailure, Ret};
use crate::telemetry::metrics;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

fn incoming_id(request: &Request) -> Option<String> {
    let value = request.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let sane = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    sane.then(|| value.to_owned())
}

fn new_id() -> String {
    let mut raw = [0u8; 8];
    rand::rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

pub async fn request_context(request: Request, next: Next) -> Response {
    let id = incoming_id(&request).unwrap_or_else(new_id);
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    // The route's template, never the path itself: a bounded label set.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let started = Instant::now();
    let outcome = AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let mut response = match outcome {
        Ok(mut response) => match response.extensions_mut().remove::<InternalFailure>() {
            Some(InternalFailure(cause)) => {
                span.in_scope(|| tracing::error!(%cause, "internal error"));
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
            span.in_scope(|| tracing::error!(panic = %what, "handler panicked"));
            ApiError::internal_answer(&id).into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let elapsed = started.elapsed();
    let ret = response.extensions().get::<Ret>().map(|r| r.0);
    metrics::request(&route, ret, response.status().as_u16(), elapsed);
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = elapsed.as_millis() as u64,
            "request finished"
        )
    });
    response
}
