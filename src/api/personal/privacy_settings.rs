use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::envelope::{ApiError, Envelope, ErrorDetail};
use crate::api::extract::{Caller, GeweJson};
use crate::domain::AppId;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivacySettingsRequest {
    /// 设备ID
    #[schema(required = true, value_type = String, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
    /// 4 加我为朋友时需要验证, 7 向我推荐通讯录朋友, 8 添加我的方式-手机号,
    /// 25 添加我的方式-微信号, 38 添加我的方式-群聊, 39 添加我的方式-我的二维码,
    /// 40 添加我的方式-名片
    #[schema(required = true, value_type = i64, example = 4)]
    option: Option<i64>,
    /// 开启或关闭
    #[schema(required = true, value_type = bool, example = true)]
    open: Option<bool>,
}

/// 隐私设置
///
/// Turns one privacy option on or off (`open: false` turns it off). Settings
/// persist and show in `gewe account show`.
#[utoipa::path(
    post,
    path = "/personal/privacySettings",
    operation_id = "privacySettings",
    tag = "个人模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = PrivacySettingsRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope: `ret` 200 once the option is set, or 500 with the reason",
         body = Envelope<ErrorDetail>, content_type = "application/json",
         examples(
            ("成功" = (value = json!({"ret": 200, "msg": "操作成功"}))),
            ("未知选项" = (value = json!({"ret": 500, "msg": "隐私设置失败",
                "data": {"code": "invalid-field", "msg": "option只能是4、7、8、25、38、39或40，收到: 5"}}))),
            ("缺少open" = (value = json!({"ret": 500, "msg": "open不可为空"}))),
         )),
    ),
)]
pub async fn privacy_settings(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<PrivacySettingsRequest>,
) -> Result<Envelope<()>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    let option = request
        .option
        .ok_or_else(|| ApiError::new("option不可为空"))?;
    let open = request.open.ok_or_else(|| ApiError::new("open不可为空"))?;
    state
        .profiles
        .set_privacy(owner, &app_id, option, open)
        .await
        .map_err(|e| ApiError::operation("隐私设置", e))?;
    Ok(Envelope::done("操作成功"))
}
