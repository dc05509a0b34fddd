use axum::extract::State;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::envelope::{ApiError, DataOrError, Envelope};
use crate::api::extract::{Caller, GeweJson};
use crate::domain::AppId;

/// Cloud GeWe sends `{appId, regionId, type, proxyIp, ttuid, aid}`, self-hosted
/// Gewechat `{appId}`; only `appId` and `type` matter here, the rest is ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetLoginQrCodeRequest {
    /// 设备ID: empty on the first login (a new device is created), the device's
    /// appId afterwards
    #[schema(value_type = String, example = "")]
    app_id: Option<String>,
    /// 地区ID (ignored)
    #[schema(value_type = String, example = "320000")]
    #[allow(dead_code)]
    region_id: Option<serde_json::Value>,
    /// 设备类型 `ipad` (default) or `mac`
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "ipad")]
    device_type: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginQrData {
    /// 设备ID
    app_id: String,
    /// What the QR encodes: `http://weixin.qq.com/x/<uuid>`
    qr_data: String,
    /// The QR picture, `data:image/jpg;base64,…`
    qr_img_base64: String,
    /// Poll `login/checkLogin` with it
    uuid: String,
}

/// 获取登录二维码(步骤1)
///
/// With an empty `appId`, creates a new device (offline, no account yet) for the
/// token. The QR expires after `GEWE_LOGIN_QR_TTL_SECS` (240 s); poll
/// `login/checkLogin` with the `uuid`. A device that is online answers
/// `微信已登录，请勿重复登录。`.
#[utoipa::path(
    post,
    path = "/login/getLoginQrCode",
    operation_id = "getLoginQrCode",
    tag = "登录模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = GetLoginQrCodeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope with the QR, or 500 with the reason",
         body = Envelope<DataOrError<LoginQrData>>, content_type = "application/json",
         examples(
            ("成功" = (value = json!({"ret": 200, "msg": "操作成功", "data": {
                "appId": "wx_wR_U4zPj2M_OTS3BCyoE4", "qrData": "http://weixin.qq.com/x/4dmHZZMtoLbHoLZwd1wE",
                "qrImgBase64": "data:image/jpg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD…", "uuid": "4dmHZZMtoLbHoLZwd1wE"}}))),
            ("已登录" = (value = json!({"ret": 500, "msg": "微信已登录，请勿重复登录。"}))),
            ("设备不存在" = (value = json!({"ret": 500, "msg": "获取二维码失败",
                "data": {"code": "-1", "msg": "[wx_wR_U4zPj2M_OTS3BCyoE4]设备不存在"}}))),
         )),
    ),
)]
pub async fn get_login_qr_code(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<GetLoginQrCodeRequest>,
) -> Result<Envelope<LoginQrData>, ApiError> {
    let app_id = match request.app_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(_) => Some(AppId::parse(request.app_id)?),
    };
    let device_type = match request.device_type {
        Some(serde_json::Value::String(t)) => Some(t),
        _ => None,
    };
    let qr = state
        .logins
        .qr_code(owner, app_id, device_type)
        .await
        .map_err(|e| ApiError::operation("获取二维码", e))?;
    let picture = base64::engine::general_purpose::STANDARD.encode(&qr.qr_jpeg);
    Ok(Envelope::ok(
        "操作成功",
        LoginQrData {
            app_id: qr.app_id.to_string(),
            qr_data: qr.qr_data,
            qr_img_base64: format!("data:image/jpg;base64,{picture}"),
            uuid: qr.uuid,
        },
    ))
}
