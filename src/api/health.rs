use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "运维",
    responses((status = 200, description = "The process answers", body = String, content_type = "text/plain")))]
pub async fn alive() -> &'static str {
    "ok"
}

/// How long readiness waits for each dependency.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Ready: the database and the blob store answer too.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "运维",
    responses(
        (status = 200, description = "The database and the blob store answer", body = String, content_type = "text/plain"),
        (status = 503, description = "Which of them does not answer, and why", body = String, content_type = "text/plain"),
    ))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, String) {
    let database = check(state.repo.ping());
    let blobs = check(state.storage.ping());
    let (database, blobs) = tokio::join!(database, blobs);
    let failed: Vec<String> = [("database", database), ("blob store", blobs)]
        .into_iter()
        .filter_map(|(what, outcome)| outcome.err().map(|why| format!("{what}: {why}")))
        .collect();
    if failed.is_empty() {
        return (StatusCode::OK, "ready".to_owned());
    }
    let report = failed.join("; ");
    tracing::warn!(%report, "readiness check failed");
    (StatusCode::SERVICE_UNAVAILABLE, report)
}

async fn check<E: std::fmt::Display>(
    probe: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    }
}
