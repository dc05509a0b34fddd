use axum::extract::State;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::envelope::{ApiError, DataOrError, Envelope};
use crate::api::extract::{Caller, GeweJson};
use crate::domain::AppId;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetQrCodeRequest {
    /// 设备ID
    #[schema(required = true, value_type = String, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QrCodeData {
    /// The card as a base64 JPEG, without a `data:` prefix
    #[schema(example = "/9j/4AAQSkZJRgABAQAAAQABAAD…")]
    qr_code: String,
}

/// 获取自己的二维码
///
/// The account's contact card: a scannable QR code of its contact link
/// (`https://u.wechat.com/<id>`, the same for the same account) with the current
/// avatar in the centre, as a base64 JPEG of about 450 px.
#[utoipa::path(
    post,
    path = "/personal/getQrCode",
    operation_id = "getQrCode",
    tag = "个人模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = GetQrCodeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope: `ret` 200 with the card, or 500 with the reason",
         body = Envelope<DataOrError<QrCodeData>>, content_type = "application/json",
         examples(
            ("成功" = (value = json!({"ret": 200, "msg": "操作成功",
                "data": {"qrCode": "/9j/4AAQSkZJRgABAQAAAQABAAD…"}}))),
            ("设备不存在" = (value = json!({"ret": 500, "msg": "获取自己的二维码失败",
                "data": {"code": "-1", "msg": "[wx_wR_U4zPj2M_OTS3BCyoE4]设备不存在"}}))),
         )),
    ),
)]
pub async fn get_qr_code(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<GetQrCodeRequest>,
) -> Result<Envelope<QrCodeData>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    let card = state
        .profiles
        .qr_card(owner, &app_id)
        .await
        .map_err(|e| ApiError::operation("获取自己的二维码", e))?;
    Ok(Envelope::ok(
        "操作成功",
        QrCodeData {
            qr_code: base64::engine::general_purpose::STANDARD.encode(&card.jpeg),
        },
    ))
}
