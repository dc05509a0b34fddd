use axum::extract::State;
use serde::Deserialize;

use crate::api::AppState;
use crate::api::envelope::{ApiError, Envelope};
use crate::api::extract::{Caller, GeweJson};
use crate::domain::{AppId, HeadImgUrl};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateHeadImgRequest {
    app_id: Option<String>,
    head_img_url: Option<String>,
}

/// `POST {prefix}/personal/updateHeadImg` — 修改头像. Answers only once the new
/// avatar is stored and the account points at it; getProfile shows it at once.
pub async fn update_head_img(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<UpdateHeadImgRequest>,
) -> Result<Envelope<()>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    let url = HeadImgUrl::parse(request.head_img_url)?;
    state
        .avatars
        .update_from_url(owner, &app_id, &url)
        .await
        .map_err(|e| ApiError::operation("修改头像", e))?;
    Ok(Envelope::done("操作成功"))
}
