use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::envelope::{ApiError, Envelope, ErrorDetail};
use crate::api::extract::{Caller, GeweJson};
use crate::domain::{AppId, ProfileUpdate};

/// `sex` as clients send it: a number, or a numeric string.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SexInput {
    Number(i64),
    Text(String),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateProfileRequest {
    /// 设备ID
    #[schema(required = true, value_type = String, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
    /// 昵称: at most 16 Chinese characters or 32 ASCII ones (WeChat counts CJK and
    /// emoji as 2). Absent, null or "" leaves it unchanged.
    #[schema(value_type = Option<String>, example = "朝夕。")]
    nick_name: Option<String>,
    /// 国家, at most 32 characters
    #[schema(value_type = Option<String>, example = "CN")]
    country: Option<String>,
    /// 省份, at most 32 characters
    #[schema(value_type = Option<String>, example = "Jiangsu")]
    province: Option<String>,
    /// 城市, at most 32 characters
    #[schema(value_type = Option<String>, example = "Xuzhou")]
    city: Option<String>,
    /// 性别: 0 未知, 1 男, 2 女; a number or a numeric string
    #[schema(value_type = Option<SexInput>, example = 1)]
    sex: Option<SexInput>,
    /// 个性签名: at most 30 Chinese characters or 60 ASCII ones
    #[schema(value_type = Option<String>, example = "")]
    signature: Option<String>,
}

/// 修改个人信息
///
/// Changes the fields given; absent, null and empty fields stay as they are (so
/// clients may send all seven every time). Values are trimmed; control characters
/// and texts longer than WeChat allows are refused with the field named. getProfile
/// shows the change at once, and every changed field is kept in the profile history.
#[utoipa::path(
    post,
    path = "/personal/updateProfile",
    operation_id = "updateProfile",
    tag = "个人模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = UpdateProfileRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope: `ret` 200 once the profile is changed, or 500 with the reason",
         body = Envelope<ErrorDetail>, content_type = "application/json",
         examples(
            ("成功" = (value = json!({"ret": 200, "msg": "操作成功"}))),
            ("昵称过长" = (value = json!({"ret": 500, "msg": "修改个人信息失败",
                "data": {"code": "invalid-field", "msg": "nickName过长: 最多16个汉字或32个英文字符(汉字和表情计2, 英文计1), 当前34"}}))),
            ("设备不存在" = (value = json!({"ret": 500, "msg": "修改个人信息失败",
                "data": {"code": "-1", "msg": "[wx_wR_U4zPj2M_OTS3BCyoE4]设备不存在"}}))),
         )),
    ),
)]
pub async fn update_profile(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<UpdateProfileRequest>,
) -> Result<Envelope<()>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    let update = ProfileUpdate {
        nick_name: request.nick_name,
        country: request.country,
        province: request.province,
        city: request.city,
        sex: request.sex.map(|sex| match sex {
            SexInput::Number(n) => n.to_string(),
            SexInput::Text(text) => text,
        }),
        signature: request.signature,
    };
    state
        .profiles
        .update(owner, &app_id, update)
        .await
        .map_err(|e| ApiError::operation("修改个人信息", e))?;
    Ok(Envelope::done("操作成功"))
}
