use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::envelope::{ApiError, DataOrError, Envelope};
use crate::api::extract::{Caller, GeweJson};
use crate::domain::AppId;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DialogLoginRequest {
    /// 设备ID
    #[schema(required = true, value_type = String, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
    /// 地区ID (ignored)
    #[schema(value_type = String, example = "320000")]
    #[allow(dead_code)]
    region_id: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DialogLoginData {
    app_id: String,
    /// Poll `login/checkLogin` with it
    uuid: String,
}

/// 弹框登录
///
/// For a device that logged in before and is offline: a login prompt on the
/// account's phone, completed like a QR (poll checkLogin with the uuid). A device
/// without an account, or one that is online, answers an error.
#[utoipa::path(
    post,
    path = "/login/dialogLogin",
    operation_id = "dialogLogin",
    tag = "登录模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = DialogLoginRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope with the uuid, or 500 with the reason",
         body = Envelope<DataOrError<DialogLoginData>>, content_type = "application/json",
         examples(
            ("成功" = (value = json!({"ret": 200, "msg": "操作成功",
                "data": {"appId": "wx_wR_U4zPj2M_OTS3BCyoE4", "uuid": "4dmHZZMtoLbHoLZwd1wE"}}))),
            ("未登录过" = (value = json!({"ret": 500, "msg": "弹框登录失败",
                "data": {"code": "-1", "msg": "设备尚未登录过微信，请先扫码登录"}}))),
            ("已登录" = (value = json!({"ret": 500, "msg": "微信已登录，请勿重复登录。"}))),
         )),
    ),
)]
pub async fn dialog_login(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<DialogLoginRequest>,
) -> Result<Envelope<DialogLoginData>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    let uuid = state
        .logins
        .dialog_login(owner, &app_id)
        .await
        .map_err(|e| ApiError::operation("弹框登录", e))?;
    Ok(Envelope::ok(
        "操作成功",
        DialogLoginData {
            app_id: app_id.to_string(),
            uuid,
        },
    ))
}
