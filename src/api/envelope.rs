//! The GeWe wire envelope, and the one place where every layer's error becomes one.
//!
//! GeWe routes always answer HTTP 200 with `application/json;charset=UTF-8` and
//! `{ret, msg[, data]}`; clients look only at `ret == 200`.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::domain::{AvatarError, DomainError, FieldError, LoginError};

pub const JSON_UTF8: &str = "application/json;charset=UTF-8";

/// `{ret, msg[, data]}`. The OpenAPI schema of a route is `Envelope<DataOrError<T>>`
/// (or `Envelope<ErrorDetail>` when success carries no data): one shape describes
/// both answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Envelope<T: Serialize> {
    /// 200 成功, 500 失败
    pub ret: i32,
    pub msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

/// `data` of an envelope, as the OpenAPI document describes it: the payload on
/// success, the reason on failure. Answers are built by [`Envelope`] and [`ApiError`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum DataOrError<T: Serialize> {
    Data(T),
    Error(ErrorDetail),
}

impl Envelope<()> {
    /// Success without data, e.g. `{"ret":200,"msg":"操作成功"}`.
    pub fn done(msg: &str) -> Self {
        Envelope {
            ret: 200,
            msg: msg.to_owned(),
            data: None,
        }
    }
}

impl<T: Serialize> Envelope<T> {
    pub fn ok(msg: &str, data: T) -> Self {
        Envelope {
            ret: 200,
            msg: msg.to_owned(),
            data: Some(data),
        }
    }
}

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self) {
            Ok(body) => {
                let mut response = json_response(self.ret, body);
                response.extensions_mut().insert(Answered {
                    ret: self.ret,
                    code: None,
                    detail: None,
                });
                response
            }
            Err(e) => ApiError::internal(format!("cannot serialise response: {e}")).into_response(),
        }
    }
}

fn json_response(ret: i32, body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    response.extensions_mut().insert(Ret(ret));
    response
}

/// The `ret` of an envelope answer, riding on the response for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ret(pub i32);

/// `data` of an error envelope: a machine code and a human detail.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine code: GeWe's `-1` for 设备不存在, kebab-case codes such as
    /// `fetch-address-not-allowed` or `image-too-large` for the rest
    pub code: String,
    /// What went wrong, in plain words
    pub msg: String,
}

/// A failure that is ours, not the caller's. It rides on the response to the
/// request-context middleware, which logs it with the request id and puts that id
/// into the answer.
#[derive(Debug, Clone)]
pub struct InternalFailure(pub Arc<str>);

/// What a GeWe answer said, for the request's log line (`ret`, `data.code`
/// and `data.msg`); it rides on the response to the request-context middleware.
/// Never the token, never the picture: only what the envelope itself holds.
#[derive(Debug, Clone)]
pub struct Answered {
    pub ret: i32,
    /// `data.code`, or for answers GeWe gives without `data` (a missing or
    /// unknown token, a missing field) a stable code for the log only.
    pub code: Option<String>,
    /// `data.msg`, the reason.
    pub detail: Option<String>,
}

/// A failed GeWe call: `{"ret":500,"msg":…,"data":{"code":…,"msg":…}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub msg: String,
    pub detail: Option<ErrorDetail>,
    /// Set for failures that are ours; never shown to the caller.
    cause: Option<Arc<str>>,
    /// For the log line when the answer has no `data.code` (GeWe's token and
    /// missing-field answers carry none); never shown to the caller.
    log_code: Option<&'static str>,
}

impl ApiError {
    pub fn new(msg: impl Into<String>) -> Self {
        ApiError {
            msg: msg.into(),
            detail: None,
            cause: None,
            log_code: None,
        }
    }

    /// The code the request's log line shows for an answer without `data`.
    pub fn logged_as(mut self, code: &'static str) -> Self {
        self.log_code = Some(code);
        self
    }

    pub fn with_detail(
        msg: impl Into<String>,
        code: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        ApiError {
            msg: msg.into(),
            detail: Some(ErrorDetail {
                code: code.into(),
                msg: detail.into(),
            }),
            cause: None,
            log_code: None,
        }
    }

    /// A failure that is ours: answered as `服务器内部错误` with the request id,
    /// its cause logged (not answered) by the middleware.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError {
            cause: Some(cause.to_string().into()),
            ..Self::internal_answer("")
        }
    }

    /// What the caller sees of an internal failure of request `request_id`.
    pub fn internal_answer(request_id: &str) -> Self {
        ApiError::with_detail(
            "服务器内部错误",
            "internal",
            format!("请求ID: {request_id}"),
        )
    }

    /// Maps a domain failure of operation `op` (e.g. "修改头像") to GeWe's
    /// `<op>失败` envelope.
    pub fn operation(op: &str, err: DomainError) -> Self {
        let failed = format!("{op}失败");
        match err {
            DomainError::DeviceNotFound(app_id) => {
                ApiError::with_detail(failed, "-1", format!("[{app_id}]设备不存在"))
            }
            DomainError::Offline => ApiError::with_detail(failed, "-1", OFFLINE),
            // Frameworks match this exact text to skip logging in.
            DomainError::AlreadyOnline => ApiError::new("微信已登录，请勿重复登录。"),
            DomainError::Login(LoginError::WrongWxid) => ApiError::new(format!(
                "{failed}，扫码登录的微信与设备绑定微信不同，请使用当前设备所属的微信登录。"
            )),
            DomainError::Login(err) => {
                ApiError::with_detail(failed, "-1", login_error_detail(&err))
            }
            DomainError::WxidTaken(wxid) => {
                ApiError::with_detail(failed, "wxid-taken", format!("wxid {wxid} 已被占用"))
            }
            DomainError::InvalidInput(detail) => {
                ApiError::with_detail(failed, "invalid-input", detail)
            }
            DomainError::InvalidField { detail, .. } => {
                ApiError::with_detail(failed, "invalid-field", detail)
            }
            DomainError::Avatar(AvatarError::Worker(cause)) => ApiError::internal(cause),
            DomainError::Avatar(err) => {
                let (code, detail) = avatar_error_detail(&err);
                ApiError::with_detail(failed, code, detail)
            }
            DomainError::Storage(e) => ApiError::internal(e),
            DomainError::Store(e) => ApiError::internal(e),
            DomainError::Internal(e) => ApiError::internal(e),
        }
    }
}

/// GeWe's reason for a call that needs an online account.
pub const OFFLINE: &str = "微信已离线";

fn login_error_detail(err: &LoginError) -> String {
    match err {
        LoginError::UnknownQr(uuid) => format!("二维码[{uuid}]不存在，请重新获取登录二维码"),
        LoginError::QrExpired(uuid) => format!("二维码[{uuid}]已过期，请重新获取登录二维码"),
        LoginError::CaptchaRequired => "本次登录需要输入安全验证码".to_owned(),
        LoginError::WrongWxid => {
            "扫码登录的微信与设备绑定微信不同，请使用当前设备所属的微信登录。".to_owned()
        }
        LoginError::LoggedOut => "微信已退出登录，无法断线重连，请重新扫码登录".to_owned(),
        LoginError::NotDropped => "微信在线，无需断线重连".to_owned(),
        LoginError::NotBound => "设备尚未登录过微信，请先扫码登录".to_owned(),
        LoginError::NotWaiting => "二维码已被扫描".to_owned(),
    }
}

fn avatar_error_detail(err: &AvatarError) -> (&'static str, String) {
    match err {
        AvatarError::Fetch(e) => {
            // The caller gets one text for refused and unresolvable addresses;
            // the log keeps which, and where the name pointed.
            tracing::warn!(error = %e, code = e.code(), "picture fetch failed");
            (e.code(), e.message())
        }
        AvatarError::Image(e) => (e.code(), e.message()),
        AvatarError::Busy(_) => ("busy", "系统繁忙，图片处理排队超时，请稍后再试".to_owned()),
        AvatarError::Timeout(t) => (
            "timeout",
            format!("处理超时: 下载和处理图片超过{}秒", t.as_secs_f32()),
        ),
        AvatarError::Worker(cause) => ("internal", cause.clone()),
        AvatarError::RateLimited {
            limit,
            retry_after_secs,
        } => (
            "rate-limited",
            format!(
                "修改头像过于频繁，请稍后再试: 每{}秒最多修改{}次，请在{}秒后重试",
                limit.window_secs, limit.max, retry_after_secs
            ),
        ),
    }
}

impl From<FieldError> for ApiError {
    fn from(err: FieldError) -> Self {
        match err {
            FieldError::Missing(field) => {
                ApiError::new(format!("{field}不可为空")).logged_as("missing-field")
            }
            FieldError::Invalid { field, detail } => {
                ApiError::with_detail(format!("{field}格式错误"), "invalid-field", detail)
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Missing => {
                ApiError::new("header:X-GEWE-TOKEN 不可为空").logged_as("token-missing")
            }
            AuthError::Unknown => {
                ApiError::new("header:X-GEWE-TOKEN 不可用或已过期").logged_as("token-unknown")
            }
            AuthError::Store(e) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let answered = Answered {
            ret: 500,
            code: self
                .detail
                .as_ref()
                .map(|d| d.code.clone())
                .or_else(|| self.log_code.map(str::to_owned)),
            detail: self.detail.as_ref().map(|d| d.msg.clone()),
        };
        let envelope = Envelope {
            ret: 500,
            msg: self.msg,
            data: self.detail,
        };
        // Serialising strings and a struct of strings cannot fail.
        let mut response = json_response(
            envelope.ret,
            serde_json::to_vec(&envelope).unwrap_or_default(),
        );
        response.extensions_mut().insert(answered);
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(InternalFailure(cause));
        }
        response
    }
}
