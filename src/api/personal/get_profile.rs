use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::api::envelope::{ApiError, Envelope};
use crate::api::extract::{Caller, GeweJson};
use crate::api::{AppState, AvatarUrls};
use crate::domain::{AppId, Profile};
use crate::imaging::AvatarSize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetProfileRequest {
    app_id: Option<String>,
}

/// The 14 fields GeWe documents, every string a string (never null: some clients
/// cannot decode null).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileData {
    alias: String,
    wxid: String,
    nick_name: String,
    mobile: String,
    uin: i64,
    sex: i64,
    province: String,
    city: String,
    signature: String,
    country: String,
    big_head_img_url: String,
    small_head_img_url: String,
    reg_country: String,
    sns_bg_img: String,
}

impl ProfileData {
    fn new(profile: Profile, urls: &AvatarUrls) -> Self {
        ProfileData {
            big_head_img_url: urls.url(&profile.avatar_id, AvatarSize::Big),
            small_head_img_url: urls.url(&profile.avatar_id, AvatarSize::S132),
            alias: profile.alias,
            wxid: profile.wxid,
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

/// `POST {prefix}/personal/getProfile` — 获取个人资料.
pub async fn get_profile(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<GetProfileRequest>,
) -> Result<Envelope<ProfileData>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    let profile = state
        .accounts
        .profile(owner, &app_id)
        .await
        .map_err(|e| ApiError::operation("获取个人资料", e))?;
    Ok(Envelope::ok(
        "操作成功",
        ProfileData::new(profile, &state.avatar_urls),
    ))
}
