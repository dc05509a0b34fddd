use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::journal::{Deleted, TokenScope};
use super::{Operator, failed, named_token};
use crate::api::extract::GeweJson;
use crate::api::{ApiError, AppState, DataOrError, Envelope};
use crate::domain::{FaultRule, FaultSpec};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddFaultRequest {
    /// Only this token's calls (every token's when absent)
    #[schema(value_type = Option<String>)]
    token: Option<String>,
    /// `module/action`; `risk-control` defaults to personal/updateHeadImg
    #[schema(value_type = Option<String>, example = "personal/updateHeadImg")]
    route: Option<String>,
    /// Only this appId's calls
    #[schema(value_type = Option<String>)]
    app_id: Option<String>,
    /// `risk-control` (GeWe refuses: 操作过于频繁), `offline` (微信已离线),
    /// `slow` (5 s delay), `disconnect` (close the connection)
    #[schema(value_type = Option<String>, example = "risk-control")]
    preset: Option<String>,
    /// A whole GeWe envelope to answer with
    #[schema(value_type = Option<Object>)]
    answer: Option<serde_json::Value>,
    /// Wait this long first (at most 120 000)
    delay_ms: Option<i64>,
    /// Close the connection without an answer
    #[serde(default)]
    close: bool,
    /// The next N matching calls (unlimited when absent)
    times: Option<i64>,
    /// A fraction of the matching calls, 0 < p ≤ 1
    probability: Option<f64>,
    /// Seeds the fraction's draws, so a run is reproducible (default 0)
    seed: Option<i64>,
    /// The rule ends after this many seconds
    ttl_secs: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FaultView {
    id: i64,
    route: String,
    app_id: Option<String>,
    /// Only one token's calls
    scoped: bool,
    #[schema(value_type = Option<Object>)]
    answer: Option<serde_json::Value>,
    delay_ms: i64,
    close: bool,
    /// Calls it still takes; null: unlimited
    remaining: Option<i64>,
    probability: Option<f64>,
    seed: i64,
    /// Matching calls seen
    draws: i64,
    /// Calls taken
    hits: i64,
    expires_at: Option<i64>,
}

impl From<FaultRule> for FaultView {
    fn from(rule: FaultRule) -> Self {
        FaultView {
            id: rule.id,
            route: rule.route,
            app_id: rule.app_id,
            scoped: rule.owner.is_some(),
            answer: rule.answer.and_then(|a| serde_json::from_str(&a).ok()),
            delay_ms: rule.delay_ms,
            close: rule.close,
            remaining: rule.remaining,
            probability: rule.probability,
            seed: rule.seed,
            draws: rule.draws,
            hits: rule.hits,
            expires_at: rule.expires_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FaultsData {
    rules: Vec<FaultView>,
}

/// Add a fault rule
///
/// The matching GeWe calls (route, optionally appId and token) answer the given
/// envelope, after a delay, or by closing the connection, for the next N calls
/// or a seeded fraction of them, until the rule expires or is cleared.
#[utoipa::path(
    post,
    path = "/operator/addFault",
    operation_id = "operatorAddFault",
    tag = "operator",
    security(("X-GEWE-OPERATOR-KEY" = [])),
    request_body(content = AddFaultRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The rule as stored, or ret 500 with the reason",
         body = Envelope<DataOrError<FaultView>>, content_type = "application/json"),
    ),
)]
pub async fn add_fault(
    Operator(control): Operator,
    State(state): State<AppState>,
    GeweJson(request): GeweJson<AddFaultRequest>,
) -> Result<Envelope<FaultView>, ApiError> {
    let owner = named_token(&state, request.token.as_deref()).await?;
    let rule = control
        .faults
        .add(FaultSpec {
            owner,
            route: request.route.filter(|r| !r.is_empty()),
            app_id: request.app_id,
            preset: request.preset.filter(|p| !p.is_empty()),
            answer: request.answer,
            delay_ms: request.delay_ms,
            close: request.close,
            times: request.times,
            probability: request.probability,
            seed: request.seed,
            ttl_secs: request.ttl_secs,
        })
        .await
        .map_err(|e| failed("添加故障规则", e))?;
    Ok(Envelope::ok("操作成功", rule.into()))
}

/// List fault rules
#[utoipa::path(
    post,
    path = "/operator/listFaults",
    operation_id = "operatorListFaults",
    tag = "operator",
    security(("X-GEWE-OPERATOR-KEY" = [])),
    request_body(content = TokenScope, content_type = "application/json"),
    responses(
        (status = 200, description = "The rules that apply (the token's and the global ones)",
         body = Envelope<DataOrError<FaultsData>>, content_type = "application/json"),
    ),
)]
pub async fn list_faults(
    Operator(control): Operator,
    State(state): State<AppState>,
    GeweJson(request): GeweJson<TokenScope>,
) -> Result<Envelope<FaultsData>, ApiError> {
    let owner = named_token(&state, request.token.as_deref()).await?;
    let rules = control
        .faults
        .list(owner)
        .await
        .map_err(|e| failed("查询故障规则", e))?;
    Ok(Envelope::ok(
        "操作成功",
        FaultsData {
            rules: rules.into_iter().map(FaultView::from).collect(),
        },
    ))
}

/// Clear fault rules
#[utoipa::path(
    post,
    path = "/operator/clearFaults",
    operation_id = "operatorClearFaults",
    tag = "operator",
    security(("X-GEWE-OPERATOR-KEY" = [])),
    request_body(content = TokenScope, content_type = "application/json"),
    responses(
        (status = 200, description = "How many rules went",
         body = Envelope<DataOrError<Deleted>>, content_type = "application/json"),
    ),
)]
pub async fn clear_faults(
    Operator(control): Operator,
    State(state): State<AppState>,
    GeweJson(request): GeweJson<TokenScope>,
) -> Result<Envelope<Deleted>, ApiError> {
    let owner = named_token(&state, request.token.as_deref()).await?;
    let deleted = control
        .faults
        .clear(owner)
        .await
        .map_err(|e| failed("清除故障规则", e))?;
    Ok(Envelope::ok("操作成功", Deleted::new(deleted)))
}
