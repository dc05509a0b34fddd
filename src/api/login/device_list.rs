use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::envelope::{ApiError, DataOrError, Envelope};
use crate::api::extract::{Caller, GeweJson};

/// deviceList takes an empty object.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeviceListRequest {}

/// 查看设备列表
///
/// The appIds of the devices this token owns, online or not, in order of
/// creation (self-hosted Gewechat).
#[utoipa::path(
    post,
    path = "/login/deviceList",
    operation_id = "deviceList",
    tag = "登录模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = DeviceListRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope with the token's appIds",
         body = Envelope<DataOrError<Vec<String>>>, content_type = "application/json",
         example = json!({"ret": 200, "msg": "操作成功", "data": ["wx_wR_U4zPj2M_OTS3BCyoE4"]})),
    ),
)]
pub async fn device_list(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(_): GeweJson<DeviceListRequest>,
) -> Result<Envelope<Vec<String>>, ApiError> {
    let devices = state
        .accounts
        .device_ids(owner)
        .await
        .map_err(|e| ApiError::operation("查看设备列表", e))?;
    let app_ids = devices.into_iter().map(|d| d.to_string()).collect();
    Ok(Envelope::ok("操作成功", app_ids))
}
