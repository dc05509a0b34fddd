use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::envelope::{ApiError, DataOrError, Envelope};
use crate::api::extract::{Caller, GeweJson};
use crate::domain::AppId;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetSafetyInfoRequest {
    /// 设备ID
    #[schema(required = true, value_type = String, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SafetyDevice {
    /// 32 hex characters
    #[schema(example = "80d6218be93f570a971d8c605fa542c3")]
    uuid: String,
    #[schema(example = "iPad")]
    device_name: String,
    #[schema(example = "iPad iOS17.2")]
    device_type: String,
    /// Last login from this device, Unix seconds
    #[schema(example = 1703065642)]
    last_time: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SafetyInfoData {
    /// Newest login first
    list: Vec<SafetyDevice>,
}

/// 获取设备记录
///
/// The devices the account has logged in from, newest login first. An account
/// created here starts with one, an iPad.
#[utoipa::path(
    post,
    path = "/personal/getSafetyInfo",
    operation_id = "getSafetyInfo",
    tag = "个人模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = GetSafetyInfoRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope: `ret` 200 with the devices, or 500 with the reason",
         body = Envelope<DataOrError<SafetyInfoData>>, content_type = "application/json",
         examples(
            ("成功" = (value = json!({"ret": 200, "msg": "操作成功", "data": {"list": [
                {"uuid": "80d6218be93f570a971d8c605fa542c3", "deviceName": "iPad",
                 "deviceType": "iPad iOS17.2", "lastTime": 1703065642}]}}))),
            ("设备不存在" = (value = json!({"ret": 500, "msg": "获取设备记录失败",
                "data": {"code": "-1", "msg": "[wx_wR_U4zPj2M_OTS3BCyoE4]设备不存在"}}))),
         )),
    ),
)]
pub async fn get_safety_info(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<GetSafetyInfoRequest>,
) -> Result<Envelope<SafetyInfoData>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    let devices = state
        .profiles
        .login_devices(owner, &app_id)
        .await
        .map_err(|e| ApiError::operation("获取设备记录", e))?;
    let list = devices
        .into_iter()
        .map(|d| SafetyDevice {
            uuid: d.uuid,
            device_name: d.device_name,
            device_type: d.device_type,
            last_time: d.last_time,
        })
        .collect();
    Ok(Envelope::ok("操作成功", SafetyInfoData { list }))
}
