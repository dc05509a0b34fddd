use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

/// Alive: the process answers.
pub async fn alive() -> &'static str {
    "ok"
}

/// Ready: the database answers too.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.repo.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
