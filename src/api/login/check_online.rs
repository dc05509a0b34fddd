use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::envelope::{ApiError, DataOrError, Envelope};
use crate::api::extract::{Caller, GeweJson};
use crate::domain::AppId;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckOnlineRequest {
    /// 设备ID
    #[schema(required = true, value_type = String, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
}

/// 检查是否在线
///
/// `data` is `true` when the device's account is logged in, `false` when it is
/// logged out, dropped, or has no account yet.
#[utoipa::path(
    post,
    path = "/login/checkOnline",
    operation_id = "checkOnline",
    tag = "登录模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = CheckOnlineRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope: `data` true when online",
         body = Envelope<DataOrError<bool>>, content_type = "application/json",
         example = json!({"ret": 200, "msg": "操作成功", "data": true})),
    ),
)]
pub async fn check_online(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<CheckOnlineRequest>,
) -> Result<Envelope<bool>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    let online = state
        .accounts
        .is_online(owner, &app_id)
        .await
        .map_err(|e| ApiError::operation("查询在线状态", e))?;
    Ok(Envelope::ok("操作成功", online))
}
