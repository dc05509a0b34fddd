use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::envelope::{ApiError, Envelope, ErrorDetail};
use crate::api::extract::{Caller, GeweJson};
use crate::domain::{AppId, HeadImgUrl};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateHeadImgRequest {
    /// 设备ID
    #[schema(required = true, value_type = String, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
    /// 头像的图片地址 (http/https; JPEG, PNG, WebP or GIF; at most 10 MiB and 8192 px a side)
    #[schema(value_type = String, example = "https://wx.qlogo.cn/mmhead/ver_1/REoLX7KfdibFAgDbtoeXGNjE6sGa8NCib8UaiazlekKjuLneCvicM4xQpuEbZWjjQooSicsKEbKdhqCOCpTHWtnBqdJicJ0I3CgZumwJ6SxR3ibuNs/0")]
    head_img_url: Option<String>,
}

/// 修改头像
///
/// The server downloads `headImgUrl` itself (public addresses only, unless the
/// operator allows more), crops it to a square and stores it at WeChat's avatar
/// sizes. It answers only once the new avatar is stored and the account points at
/// it: getProfile returns the new URLs at once, and they show the new picture — no
/// restart of anything needed.
#[utoipa::path(
    post,
    path = "/personal/updateHeadImg",
    operation_id = "updateHeadImg",
    tag = "个人模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = UpdateHeadImgRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope: `ret` 200 once the avatar is changed, or 500 with the reason",
         body = Envelope<ErrorDetail>, content_type = "application/json",
         examples(
            ("成功" = (value = json!({"ret": 200, "msg": "操作成功"}))),
            ("地址不允许" = (value = json!({"ret": 500, "msg": "修改头像失败",
                "data": {"code": "fetch-address-not-allowed", "msg": "地址不允许: 127.0.0.1 无法解析，或是内网、保留地址"}}))),
            ("不支持的格式" = (value = json!({"ret": 500, "msg": "修改头像失败",
                "data": {"code": "image-unsupported-format", "msg": "不支持的图片格式(仅支持JPEG/PNG/WebP/GIF)，检测到: HTML"}}))),
            ("缺少地址" = (value = json!({"ret": 500, "msg": "headImgUrl不可为空"}))),
         )),
    ),
)]
pub async fn update_head_img(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<UpdateHeadImgRequest>,
) -> Result<Envelope<()>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    let url = HeadImgUrl::parse(request.head_img_url)?;
    state
        .avatars
        .update_online_from_url(owner, &app_id, &url)
        .await
        .map_err(|e| ApiError::operation("修改头像", e))?;
    Ok(Envelope::done("操作成功"))
}
