use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::envelope::{ApiError, Envelope, ErrorDetail};
use crate::api::extract::{Caller, GeweJson};
use crate::domain::AppId;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppIdRequest {
    /// 设备ID
    #[schema(required = true, value_type = String, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
}

impl AppIdRequest {
    pub(super) fn app_id(self) -> Result<AppId, ApiError> {
        Ok(AppId::parse(self.app_id)?)
    }
}

/// 退出
///
/// Logs the device's account out: checkOnline answers false and calls that need
/// an online account answer `微信已离线` until a new login (QR or dialogLogin).
/// The device stays in deviceList, bound to its wxid.
#[utoipa::path(
    post,
    path = "/login/logout",
    operation_id = "logout",
    tag = "登录模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = AppIdRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope: `ret` 200, or 500 with the reason",
         body = Envelope<ErrorDetail>, content_type = "application/json",
         example = json!({"ret": 200, "msg": "操作成功"})),
    ),
)]
pub async fn logout(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<AppIdRequest>,
) -> Result<Envelope<()>, ApiError> {
    let app_id = request.app_id()?;
    state
        .logins
        .logout(owner, &app_id)
        .await
        .map_err(|e| ApiError::operation("退出登录", e))?;
    Ok(Envelope::done("操作成功"))
}
