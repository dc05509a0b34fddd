use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::envelope::{ApiError, DataOrError, Envelope};
use crate::api::extract::{Caller, GeweJson};
use crate::api::{AppState, AvatarUrls};
use crate::domain::{AppId, AvatarSize, LoginCheck};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckLoginRequest {
    /// 设备ID
    #[schema(required = true, value_type = String, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
    /// 取码返回的uuid
    #[schema(required = true, value_type = String, example = "4dmHZZMtoLbHoLZwd1wE")]
    uuid: Option<String>,
    /// 安全验证码, when checkLogin asked for one
    #[schema(value_type = String)]
    captch_code: Option<serde_json::Value>,
}

/// `loginInfo` of status 2: strings are never null.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginInfoData {
    uin: i64,
    wxid: String,
    nick_name: String,
    mobile: String,
    alias: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckLoginData {
    uuid: String,
    /// The scanning account's avatar (status 1 and 2), else null
    head_img_url: Option<String>,
    /// The scanning account's nickname (status 1 and 2), else null
    nick_name: Option<String>,
    /// Seconds the QR has left; always a number
    expired_time: i64,
    /// 0 未扫码, 1 已扫码未确认, 2 登录成功
    status: u8,
    /// Set at status 2
    login_info: Option<LoginInfoData>,
}

impl CheckLoginData {
    pub(in crate::api) fn new(check: LoginCheck, urls: &AvatarUrls) -> Self {
        CheckLoginData {
            uuid: check.uuid,
            head_img_url: check.avatar_id.map(|id| urls.url(id, AvatarSize::Big)),
            nick_name: check.nick_name,
            expired_time: check.expired_time,
            status: check.status,
            login_info: check.login_info.map(|info| LoginInfoData {
                uin: info.uin,
                wxid: info.wxid,
                nick_name: info.nick_name,
                mobile: info.mobile,
                alias: info.alias,
            }),
        }
    }
}

/// 执行登录(步骤2)
///
/// Poll with the uuid of getLoginQrCode (or dialogLogin). The phone is emulated:
/// with `GEWE_LOGIN_SCAN=auto` (the default) the first poll sees status 1 and the
/// next status 2; with `manual` the QR waits for `gewe login confirm <uuid>`. A
/// security code set with `gewe login confirm --captcha` (or `GEWE_LOGIN_CAPTCHA`)
/// must come as `captchCode` before the login completes.
#[utoipa::path(
    post,
    path = "/login/checkLogin",
    operation_id = "checkLogin",
    tag = "登录模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = CheckLoginRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope with the login status, or 500 with the reason",
         body = Envelope<DataOrError<CheckLoginData>>, content_type = "application/json",
         examples(
            ("未扫码" = (value = json!({"ret": 200, "msg": "操作成功", "data": {"uuid": "4dmHZZMtoLbHoLZwd1wE",
                "headImgUrl": null, "nickName": null, "expiredTime": 235, "status": 0, "loginInfo": null}}))),
            ("已扫码" = (value = json!({"ret": 200, "msg": "操作成功", "data": {"uuid": "4dmHZZMtoLbHoLZwd1wE",
                "headImgUrl": "http://127.0.0.1:2531/mmhead/3f1c0e9a5b7d4c2e8a6f1b3d5c7e9a0b/0", "nickName": "微信用户a1b2",
                "expiredTime": 230, "status": 1, "loginInfo": null}}))),
            ("登录成功" = (value = json!({"ret": 200, "msg": "操作成功", "data": {"uuid": "4dmHZZMtoLbHoLZwd1wE",
                "headImgUrl": "http://127.0.0.1:2531/mmhead/3f1c0e9a5b7d4c2e8a6f1b3d5c7e9a0b/0", "nickName": "微信用户a1b2",
                "expiredTime": 225, "status": 2, "loginInfo": {"uin": 1042679712, "wxid": "wxid_phyyedw9xapa1b2",
                "nickName": "微信用户a1b2", "mobile": "", "alias": ""}}}))),
            ("需要验证码" = (value = json!({"ret": 500, "msg": "检测登录失败",
                "data": {"code": "-1", "msg": "本次登录需要输入安全验证码"}}))),
            ("微信不同" = (value = json!({"ret": 500,
                "msg": "检测登录失败，扫码登录的微信与设备绑定微信不同，请使用当前设备所属的微信登录。"}))),
         )),
    ),
)]
pub async fn check_login(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<CheckLoginRequest>,
) -> Result<Envelope<CheckLoginData>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    let uuid = request
        .uuid
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| ApiError::new("uuid不可为空"))?;
    let captcha = match request.captch_code {
        Some(serde_json::Value::String(code)) => Some(code),
        Some(serde_json::Value::Number(code)) => Some(code.to_string()),
        _ => None,
    };
    let check = state
        .logins
        .check(owner, &app_id, uuid.trim(), captcha.as_deref())
        .await
        .map_err(|e| ApiError::operation("检测登录", e))?;
    Ok(Envelope::ok(
        "操作成功",
        CheckLoginData::new(check, &state.avatar_urls),
    ))
}
