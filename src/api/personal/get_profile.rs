use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::envelope::{ApiError, DataOrError, Envelope};
use crate::api::extract::{Caller, GeweJson};
use crate::api::{AppState, AvatarUrls};
use crate::domain::{AppId, AvatarSize, Profile};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetProfileRequest {
    /// 设备ID
    #[schema(required = true, value_type = String, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
}

/// The 14 fields GeWe documents, every string a string (never null: some clients
/// cannot decode null).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileData {
    /// 微信号 (empty when none is set)
    alias: String,
    wxid: String,
    /// 昵称
    nick_name: String,
    /// 绑定的手机号
    mobile: String,
    uin: i64,
    /// 性别: 0 未知, 1 男, 2 女
    sex: i64,
    province: String,
    city: String,
    /// 个性签名
    signature: String,
    country: String,
    /// 大尺寸头像 (640×640), `…/0`
    big_head_img_url: String,
    /// 小尺寸头像 (132×132), `…/132`
    small_head_img_url: String,
    /// 注册国家
    reg_country: String,
    /// 朋友圈背景图
    sns_bg_img: String,
}

impl ProfileData {
    fn new(profile: Profile, urls: &AvatarUrls) -> Self {
        ProfileData {
            big_head_img_url: urls.url(profile.avatar_id, AvatarSize::Big),
            small_head_img_url: urls.url(profile.avatar_id, AvatarSize::S132),
            alias: profile.alias,
            wxid: profile.wxid.to_string(),
            nick_name: profile.nick_name,
            mobile: profile.mobile,
            uin: profile.uin,
            sex: profile.sex,
            province: profile.province,
            city: profile.city,
            signature: profile.signature,
            country: profile.country,
            reg_country: profile.reg_country,
            sns_bg_img: profile.sns_bg_img,
        }
    }
}

/// 获取个人资料
///
/// The account's profile: the 14 fields GeWe documents. Every string is a string,
/// never null. Avatar URLs point at this server and resolve at once.
#[utoipa::path(
    post,
    path = "/personal/getProfile",
    operation_id = "getProfile",
    tag = "个人模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = GetProfileRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope: `ret` 200 with the profile, or 500 with the reason",
         body = Envelope<DataOrError<ProfileData>>, content_type = "application/json",
         examples(
            ("成功" = (value = json!({"ret": 200, "msg": "操作成功", "data": {
                "alias": "", "wxid": "wxid_phyyedw9xap22", "nickName": "朝夕。", "mobile": "",
                "uin": 1042679712, "sex": 1, "province": "Jiangsu", "city": "Xuzhou",
                "signature": "", "country": "CN",
                "bigHeadImgUrl": "http://127.0.0.1:2531/mmhead/3f1c0e9a5b7d4c2e8a6f1b3d5c7e9a0b/0",
                "smallHeadImgUrl": "http://127.0.0.1:2531/mmhead/3f1c0e9a5b7d4c2e8a6f1b3d5c7e9a0b/132",
                "regCountry": "CN", "snsBgImg": ""}}))),
            ("设备不存在" = (value = json!({"ret": 500, "msg": "获取个人资料失败",
                "data": {"code": "-1", "msg": "[wx_wR_U4zPj2M_OTS3BCyoE4]设备不存在"}}))),
            ("微信已离线" = (value = json!({"ret": 500, "msg": "获取个人资料失败",
                "data": {"code": "-1", "msg": "微信已离线"}}))),
            ("缺少token" = (value = json!({"ret": 500, "msg": "header:X-GEWE-TOKEN 不可为空"}))),
         )),
    ),
)]
pub async fn get_profile(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<GetProfileRequest>,
) -> Result<Envelope<ProfileData>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    let profile = state
        .accounts
        .online_profile(owner, &app_id)
        .await
        .map_err(|e| ApiError::operation("获取个人资料", e))?;
    Ok(Envelope::ok(
        "操作成功",
        ProfileData::new(profile, &state.avatar_urls),
    ))
}
