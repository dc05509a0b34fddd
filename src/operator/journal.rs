use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Operator, failed, named_token};
use crate::api::extract::GeweJson;
use crate::api::{ApiError, AppState, DataOrError, Envelope};
use crate::domain::JournalQuery;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalRequest {
    /// Only this token's calls (the token as the bot uses it)
    #[schema(value_type = Option<String>, example = "3943353706b94e9ea3901a3e57ff255d")]
    token: Option<String>,
    /// Only this route, `module/action`
    #[schema(value_type = Option<String>, example = "personal/updateHeadImg")]
    route: Option<String>,
    #[schema(value_type = Option<String>, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
    /// Only calls at or after this Unix millisecond
    since: Option<i64>,
    /// Only entries after this id (poll with the last id seen)
    after_id: Option<i64>,
    /// The newest this many (default 100, at most 1000)
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalView {
    id: i64,
    /// Unix milliseconds
    at: i64,
    route: String,
    app_id: Option<String>,
    /// The request body: JSON when it was JSON (`token` fields redacted), else text
    #[schema(value_type = Object)]
    request: serde_json::Value,
    /// The answer body: JSON when it was JSON, else text
    #[schema(value_type = Object)]
    response: serde_json::Value,
    duration_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JournalData {
    /// Oldest first
    entries: Vec<JournalView>,
}

/// Read the journal
///
/// Every GeWe call made while the operator API is on: time, route, appId,
/// request (capped, `token` fields redacted), answer and duration, kept per
/// token (the last `GEWE_JOURNAL_LIMIT`).
#[utoipa::path(
    post,
    path = "/operator/journal",
    operation_id = "operatorJournal",
    tag = "operator",
    security(("X-GEWE-OPERATOR-KEY" = [])),
    request_body(content = JournalRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The entries, or ret 500 with the reason",
         body = Envelope<DataOrError<JournalData>>, content_type = "application/json"),
    ),
)]
pub async fn journal(
    Operator(control): Operator,
    State(state): State<AppState>,
    GeweJson(request): GeweJson<JournalRequest>,
) -> Result<Envelope<JournalData>, ApiError> {
    let owner = named_token(&state, request.token.as_deref()).await?;
    let entries = control
        .journal
        .query(JournalQuery {
            owner,
            route: request.route.filter(|r| !r.is_empty()),
            app_id: request.app_id.filter(|a| !a.is_empty()),
            since_ms: request.since,
            after_id: request.after_id,
            limit: request.limit.unwrap_or(100),
        })
        .await
        .map_err(|e| failed("查询日志", e))?;
    let as_json =
        |text: String| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Ok(Envelope::ok(
        "操作成功",
        JournalData {
            entries: entries
                .into_iter()
                .map(|e| JournalView {
                    id: e.id,
                    at: e.at_ms,
                    route: e.route,
                    app_id: e.app_id,
                    request: as_json(e.request),
                    response: as_json(e.response),
                    duration_ms: e.duration_ms,
                })
                .collect(),
        },
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenScope {
    /// This token only; every token when absent
    #[schema(value_type = Option<String>, example = "3943353706b94e9ea3901a3e57ff255d")]
    pub token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    deleted: u64,
}

impl Deleted {
    pub fn new(deleted: u64) -> Self {
        Deleted { deleted }
    }
}

/// Clear the journal
#[utoipa::path(
    post,
    path = "/operator/clearJournal",
    operation_id = "operatorClearJournal",
    tag = "operator",
    security(("X-GEWE-OPERATOR-KEY" = [])),
    request_body(content = TokenScope, content_type = "application/json"),
    responses(
        (status = 200, description = "How many entries went",
         body = Envelope<DataOrError<Deleted>>, content_type = "application/json"),
    ),
)]
pub async fn clear_journal(
    Operator(control): Operator,
    State(state): State<AppState>,
    GeweJson(request): GeweJson<TokenScope>,
) -> Result<Envelope<Deleted>, ApiError> {
    let owner = named_token(&state, request.token.as_deref()).await?;
    let deleted = control
        .journal
        .clear(owner)
        .await
        .map_err(|e| failed("清空日志", e))?;
    Ok(Envelope::ok("操作成功", Deleted { deleted }))
}
