//! `GET /metrics`: the Prometheus text exposition (see `telemetry::metrics` for
//! what is in it). Off the GeWe prefixes; on the main listener unless
//! `GEWE_METRICS_LISTEN` gives it an address of its own.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::telemetry::metrics;

/// Prometheus' text format, version 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn serve_metrics(State(state): State<AppState>) -> Response {
    // The outbox is read at scrape time; a database that does not answer
    // leaves the last values and is reported by /readyz.
    if let Err(e) = state.callbacks.record_outbox_metrics().await {
        tracing::warn!(error = %e, "metrics: cannot read the outbox");
    }
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], metrics::render()).into_response()
}
