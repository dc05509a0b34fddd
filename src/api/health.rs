use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "运维",
    responses((status = 200, description = "The process answers", body = String, content_type = "text/plain")))]
pub async fn alive() -> &'static str {
    "ok"
}

/// Ready: the database answers too.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "运维",
    responses(
        (status = 200, description = "The database answers", body = String, content_type = "text/plain"),
        (status = 503, description = "The database does not answer", body = String, content_type = "text/plain"),
    ))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.repo.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
