use axum::extract::State;

use super::check_login::CheckLoginData;
use super::logout::AppIdRequest;
use crate::api::AppState;
use crate::api::envelope::{ApiError, DataOrError, Envelope};
use crate::api::extract::{Caller, GeweJson};

/// 断线重连
///
/// Brings a device WeChat dropped (`gewe account kick`) back online and answers
/// like checkLogin at status 2. A logged-out device needs a new login instead; an
/// online one has nothing to reconnect.
#[utoipa::path(
    post,
    path = "/login/reconnection",
    operation_id = "reconnection",
    tag = "登录模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = AppIdRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope with checkLogin-like data, or 500 with the reason",
         body = Envelope<DataOrError<CheckLoginData>>, content_type = "application/json",
         examples(
            ("成功" = (value = json!({"ret": 200, "msg": "操作成功", "data": {"uuid": "Qm0yN8d1wJmiNfQBKFgu",
                "headImgUrl": "http://127.0.0.1:2531/mmhead/3f1c0e9a5b7d4c2e8a6f1b3d5c7e9a0b/0", "nickName": "微信用户a1b2",
                "expiredTime": 240, "status": 2, "loginInfo": {"uin": 1042679712, "wxid": "wxid_phyyedw9xapa1b2",
                "nickName": "微信用户a1b2", "mobile": "", "alias": ""}}}))),
            ("已退出" = (value = json!({"ret": 500, "msg": "断线重连失败",
                "data": {"code": "-1", "msg": "微信已退出登录，无法断线重连，请重新扫码登录"}}))),
         )),
    ),
)]
pub async fn reconnection(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<AppIdRequest>,
) -> Result<Envelope<CheckLoginData>, ApiError> {
    let app_id = request.app_id()?;
    let check = state
        .logins
        .reconnect(owner, &app_id)
        .await
        .map_err(|e| ApiError::operation("断线重连", e))?;
    Ok(Envelope::ok(
        "操作成功",
        CheckLoginData::new(check, &state.avatar_urls),
    ))
}
