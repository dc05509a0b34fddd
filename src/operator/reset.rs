use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Operator, named_token};
use crate::api::extract::GeweJson;
use crate::api::{ApiError, AppState, DataOrError, Envelope};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetRequest {
    /// The token to reset, as the bot uses it
    #[schema(required = true, value_type = String, example = "3943353706b94e9ea3901a3e57ff255d")]
    token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResetData {
    /// Accounts and devices removed
    removed: u64,
}

/// Reset a token
///
/// Removes everything the token owns — accounts and devices with their
/// history, contacts, messages, login QRs, pending and past callback events,
/// journal entries and fault rules — and keeps the token and its callback URL,
/// so a bot that is still running starts the next test from nothing. Other
/// tokens are untouched.
#[utoipa::path(
    post,
    path = "/operator/reset",
    operation_id = "operatorReset",
    tag = "operator",
    security(("X-GEWE-OPERATOR-KEY" = [])),
    request_body(content = ResetRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "What went, or ret 500 with the reason",
         body = Envelope<DataOrError<ResetData>>, content_type = "application/json"),
    ),
)]
pub async fn reset(
    _: Operator,
    State(state): State<AppState>,
    GeweJson(request): GeweJson<ResetRequest>,
) -> Result<Envelope<ResetData>, ApiError> {
    let owner = named_token(&state, request.token.as_deref())
        .await?
        .ok_or_else(|| ApiError::with_detail("token不可为空", "invalid-field", "token不可为空"))?;
    let removed = state
        .repo
        .reset_owner(owner)
        .await
        .map_err(ApiError::internal)?;
    Ok(Envelope::ok("操作成功", ResetData { removed }))
}
