//! While the operator API is on, every GeWe call passes through here: a fault
//! rule may take it (answer something else, wait, or close the connection),
//! and the journal records it (route, appId, bodies, duration) per token.

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::extract::{TOKEN_HEADER, read_body};
use super::{AppState, JSON_UTF8, PREFIXES};
use crate::domain::{Clock, FaultAction, Faults, Journal, JournalEntry, TokenId};

/// The control plane's reach into the GeWe surface; present only while the
/// operator API is on.
#[derive(Clone)]
pub struct ControlPlane {
    pub journal: Journal,
    pub faults: Faults,
    pub clock: Clock,
}

/// Marks a response the server must not send: the connection is closed
/// instead (a fault rule's `close`).
#[derive(Debug, Clone, Copy)]
pub struct CloseConnection;

/// `module/action` of a GeWe path under either prefix.
pub fn gewe_route(path: &str) -> Option<&str> {
    PREFIXES
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix)?.strip_prefix('/'))
        .filter(|route| !route.is_empty())
}

pub async fn gewe_calls(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(control) = state.control.clone() else {
        return next.run(request).await;
    };
    let Some(route) = gewe_route(request.uri().path()).map(str::to_owned) else {
        return next.run(request).await;
    };
    let started = Instant::now();
    let at_ms = control.clock.unix_millis();
    let token = request
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let owner = caller(&state, token.as_deref()).await;
    let (parts, body) = request.into_parts();
    let body = match read_body(body, state.body_timeout).await {
        Ok(body) => body,
        Err(refusal) => {
            let response = refusal.into_response();
            let (response, answer) = buffered(response).await;
            record(&control, owner, at_ms, &route, None, "", &answer, started).await;
            return response;
        }
    };
    let request_text = String::from_utf8_lossy(&body).into_owned();
    let app_id = app_id_of(&body);
    let fault = control
        .faults
        .take(owner, &route, app_id.as_deref())
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "fault rules could not be read; none applied");
            None
        });
    let response = match fault.as_ref().map(|rule| (rule.id, rule.action())) {
        Some((id, FaultAction::Close { delay_ms })) => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            tracing::info!(rule = id, route, "fault rule closes the connection");
            let mut response = Response::new(Body::empty());
            response.extensions_mut().insert(CloseConnection);
            record(
                &control,
                owner,
                at_ms,
                &route,
                app_id,
                &request_text,
                &format!("[connection closed by fault rule {id}]"),
                started,
            )
            .await;
            return response;
        }
        Some((id, FaultAction::Answer { delay_ms, answer })) => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            match answer {
                Some(answer) => {
                    tracing::info!(rule = id, route, "fault rule answers instead of the route");
                    let mut response = Response::new(Body::from(answer));
                    response
                        .headers_mut()
                        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
                    response
                }
                None => next.run(Request::from_parts(parts, Body::from(body))).await,
            }
        }
        None => next.run(Request::from_parts(parts, Body::from(body))).await,
    };
    let (response, answer) = buffered(response).await;
    record(
        &control,
        owner,
        at_ms,
        &route,
        app_id,
        &request_text,
        &answer,
        started,
    )
    .await;
    response
}

/// The caller's token owner, if the call carries a valid token.
async fn caller(state: &AppState, header: Option<&str>) -> Option<TokenId> {
    state.tokens.authenticate(header?.into()).await.ok()
}

fn app_id_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct WithAppId {
        #[serde(rename = "appId")]
        app_id: Option<serde_json::Value>,
    }
    let parsed: WithAppId = serde_json::from_slice(body).ok()?;
    match parsed.app_id? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// The response with its body read (GeWe answers are small JSON documents),
/// and that body as text.
async fn buffered(response: Response) -> (Response, String) {
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            (Response::from_parts(parts, Body::from(bytes)), text)
        }
        Err(e) => (
            Response::from_parts(parts, Body::from(Bytes::new())),
            format!("[answer body unreadable: {e}]"),
        ),
    }
}

#[allow(clippy::too_many_arguments)]
async fn record(
    control: &ControlPlane,
    owner: Option<TokenId>,
    at_ms: i64,
    route: &str,
    app_id: Option<String>,
    request: &str,
    response: &str,
    started: Instant,
) {
    let entry = JournalEntry {
        id: 0,
        owner,
        at_ms,
        route: route.to_owned(),
        app_id,
        request: request.to_owned(),
        response: response.to_owned(),
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
    };
    if let Err(e) = control.journal.record(entry).await {
        tracing::warn!(error = %e, route, "journal entry lost");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_come_from_either_prefix() {
        assert_eq!(
            gewe_route("/gewe/v2/api/personal/updateHeadImg"),
            Some("personal/updateHeadImg")
        );
        assert_eq!(
            gewe_route("/v2/api/message/postText"),
            Some("message/postText")
        );
        assert_eq!(gewe_route("/mmhead/abc/132"), None);
        assert_eq!(gewe_route("/v2/api/"), None);
    }

    #[test]
    fn app_ids_are_read_from_json_bodies_only() {
        assert_eq!(app_id_of(br#"{"appId":"wx_1"}"#).as_deref(), Some("wx_1"));
        assert_eq!(app_id_of(br#"{"appId":""}"#), None);
        assert_eq!(app_id_of(b"not json"), None);
        assert_eq!(app_id_of(br#"{"appId":5}"#), None);
    }
}
